//! An in-process test rig for multi-node scenarios (as Lighthouse's `node_test_rig`): a
//! federation of community nodes on 127.0.0.1 with generated keys, a generated genesis (with
//! each node's libp2p address) and fresh RocksDB directories; helpers to drive them over HTTP
//! and to wait for convergence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use linli_node::config::{Config, ConfigFile};
use linli_node::keyfile;
use linli_node::node::RunningNode;
use linli_protocol::genesis::{RawCommunity, RawGenesis};
use linli_protocol::testkit::key;
use linli_protocol::{Genesis, Hash};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub mod peer;
mod port;
pub mod sim;
pub mod status;

pub use port::free_port;

pub const TOKEN: &str = "rig-operator-token";

/// One member of the federation: its files and, while running, the node.
pub struct Member {
    pub id: String,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub http_port: u16,
    pub node: Option<RunningNode>,
}

impl Member {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
}

pub struct Rig {
    pub _root: tempfile::TempDir,
    pub genesis: Genesis,
    pub genesis_hash: Hash,
    pub members: Vec<Member>,
    pub http: reqwest::Client,
}

impl Rig {
    /// Files for `n` communities named c0..c{n-1}, all in district [`RIG_DISTRICT`] (nodes not
    /// started).
    pub fn new(n: usize) -> Rig {
        Rig::in_districts(&vec![RIG_DISTRICT; n])
    }

    /// Files for one community per entry of `districts` (c0, c1, ...), c{i} in `districts[i]`.
    pub fn in_districts(districts: &[&str]) -> Rig {
        let n = districts.len();
        let root = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let ids: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let raw = RawGenesis {
            federation: "rig".into(),
            fen_per_point: 10,
            created_ms: 0,
            communities: ids
                .iter()
                .zip(&ports)
                .zip(districts)
                .map(|((id, (http, p2p)), district)| RawCommunity {
                    id: id.clone(),
                    name: format!("{id} street office"),
                    district: district.to_string(),
                    signing_key: key(&format!("{id}/signing")).public().to_hex(),
                    recovery_key: key(&format!("{id}/recovery")).public().to_hex(),
                    p2p_addresses: vec![format!("/ip4/127.0.0.1/tcp/{p2p}")],
                    http_address: Some(format!("127.0.0.1:{http}")),
                })
                .collect(),
        };
        let genesis = Genesis::try_from(raw).unwrap();
        let mut members = Vec::new();
        for (id, (http, p2p)) in ids.iter().zip(&ports) {
            let dir = root.path().join(id);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("genesis.toml"), genesis.to_toml()).unwrap();
            keyfile::write_key(&dir.join("signing.key"), &key(&format!("{id}/signing"))).unwrap();
            keyfile::write_secret(&dir.join("operator.token"), TOKEN).unwrap();
            let cfg = ConfigFile {
                community: id.clone(),
                data_dir: "data".into(),
                genesis_file: "genesis.toml".into(),
                signing_key_file: "signing.key".into(),
                operator_token_file: "operator.token".into(),
                http_listen: format!("127.0.0.1:{http}"),
                p2p_listen: Some(format!("/ip4/127.0.0.1/tcp/{p2p}")),
                checkpoint_interval_ms: 1000,
                follow: None,
                mdns: false,
            };
            let config_path = dir.join("node.toml");
            std::fs::write(&config_path, toml::to_string(&cfg).unwrap()).unwrap();
            members.push(Member { id: id.clone(), dir, config_path, http_port: *http, node: None });
        }
        let genesis_hash = genesis.hash();
        Rig { _root: root, genesis, genesis_hash, members, http: reqwest::Client::new() }
    }

    /// Make member `i` replicate only `follow` (community ids or `district:NAME`); before start.
    pub fn set_follow(&mut self, i: usize, follow: &[&str]) {
        let path = &self.members[i].config_path;
        let mut cfg: ConfigFile = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        cfg.follow = Some(follow.iter().map(|s| s.to_string()).collect());
        std::fs::write(path, toml::to_string(&cfg).unwrap()).unwrap();
    }

    /// A second instance of member `i`'s community node (a split-brain operator): the same
    /// community and signing key, its own data directory, HTTP port and libp2p identity, listening
    /// on a p2p address that is not in the genesis (it dials the others; nobody dials it). Files
    /// only; returns its member index for [`Rig::start`].
    pub fn twin(&mut self, i: usize) -> usize {
        let id = self.members[i].id.clone();
        let dir = self._root.path().join(format!("{id}-twin{}", self.members.len()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["genesis.toml", "signing.key", "operator.token"] {
            std::fs::copy(self.members[i].dir.join(f), dir.join(f)).unwrap();
        }
        let text = std::fs::read_to_string(&self.members[i].config_path).unwrap();
        let mut cfg: ConfigFile = toml::from_str(&text).unwrap();
        let (http, p2p) = (free_port(), free_port());
        cfg.http_listen = format!("127.0.0.1:{http}");
        cfg.p2p_listen = Some(format!("/ip4/127.0.0.1/tcp/{p2p}"));
        let config_path = dir.join("node.toml");
        std::fs::write(&config_path, toml::to_string(&cfg).unwrap()).unwrap();
        self.members.push(Member { id, dir, config_path, http_port: http, node: None });
        self.members.len() - 1
    }

    /// Member `i`'s network handle (it must be running with networking).
    pub fn net(&self, i: usize) -> linli_node::network::NetworkHandle {
        self.members[i].node.as_ref().unwrap().network.clone().unwrap()
    }

    /// Cut the link between members `a` and `b` (both refuse the other).
    pub async fn cut(&self, a: usize, b: usize) {
        use linli_node::network::Control;
        self.net(a).control(Control::Block(self.net(b).peer_id)).await;
        self.net(b).control(Control::Block(self.net(a).peer_id)).await;
    }

    /// Heal the link between members `a` and `b`.
    pub async fn heal(&self, a: usize, b: usize) {
        use linli_node::network::Control;
        self.net(a).control(Control::Unblock(self.net(b).peer_id)).await;
        self.net(b).control(Control::Unblock(self.net(a).peer_id)).await;
    }

    /// Wait until `check` holds for member `i`'s `/v1/status` (panics after `limit`).
    pub async fn wait_status(&self, i: usize, what: &str, limit: Duration, check: impl Fn(&Value) -> bool) {
        let start = Instant::now();
        loop {
            let st = self.get(i, "/v1/status").await;
            if check(&st) {
                return;
            }
            assert!(start.elapsed() < limit, "node {i}: {what} did not happen within {limit:?}: {st}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn start(&mut self, i: usize) {
        let config = Config::load(&self.members[i].config_path).unwrap();
        self.members[i].node = Some(linli_node::node::start(&config, false).await.unwrap());
    }

    pub async fn stop(&mut self, i: usize) {
        if let Some(n) = self.members[i].node.take() {
            n.stop().await;
        }
    }

    pub async fn post(&self, i: usize, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.members[i].base()))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, i: usize, path: &str) -> Value {
        self.http.get(format!("{}{path}", self.members[i].base())).send().await.unwrap().json().await.unwrap()
    }

    /// Member `i`'s Prometheus scrape (`/metrics`, which must answer 200).
    pub async fn metrics(&self, i: usize) -> String {
        let resp = self.http.get(format!("{}/metrics", self.members[i].base())).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.text().await.unwrap()
    }

    /// Enrol `count` residents in member `i` (labels `{id}-r{k}`), concurrently.
    pub async fn enroll_many(&self, i: usize, from: usize, count: usize) {
        let id = self.members[i].id.clone();
        let mut tasks = Vec::new();
        for k in from..from + count {
            let body = json!({"resident": key(&format!("{id}-r{k}")).public(), "profile_hash": Hash::ZERO});
            let req = self
                .http
                .post(format!("{}/v1/operator/residents", self.members[i].base()))
                .bearer_auth(TOKEN)
                .json(&body);
            tasks.push(tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) }));
            if tasks.len() >= 64 {
                for t in tasks.drain(..) {
                    assert_eq!(t.await.unwrap().unwrap(), 200);
                }
            }
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 200);
        }
    }

    /// (size, head) of every ledger as member `i` holds it.
    pub async fn heads(&self, i: usize) -> Vec<(String, u64, String)> {
        let st = self.get(i, "/v1/status").await;
        st["ledgers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["community"].as_str().unwrap().to_string(),
                    l["size"].as_u64().unwrap(),
                    l["head"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// (latest checkpoint size, root, number of cosigners) of every ledger as member `i` holds it.
    pub async fn checkpoints(&self, i: usize) -> Vec<(String, Option<u64>, Option<String>, u64)> {
        let st = self.get(i, "/v1/status").await;
        st["ledgers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["community"].as_str().unwrap().to_string(),
                    l["latest_checkpoint_size"].as_u64(),
                    l["latest_checkpoint_root"].as_str().map(str::to_string),
                    l["latest_checkpoint_cosigners"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// Wait until every running member in `among` reports the same heads and `done(heads)` holds.
    pub async fn converge(
        &self,
        among: &[usize],
        limit: Duration,
        done: impl Fn(&[(String, u64, String)]) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let mut views = Vec::new();
            for &i in among {
                views.push(self.heads(i).await);
            }
            if views.windows(2).all(|w| w[0] == w[1]) && done(&views[0]) {
                return start.elapsed();
            }
            assert!(start.elapsed() < limit, "no convergence within {limit:?}: {views:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until every member in `among` holds the same latest checkpoint of every ledger and
    /// `done(checkpoints)` holds (see [`Rig::checkpoints`]); `what` is said if it never does.
    pub async fn converge_checkpoints(
        &self,
        among: &[usize],
        limit: Duration,
        what: &str,
        done: impl Fn(&[(String, Option<u64>, Option<String>, u64)]) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let mut views = Vec::new();
            for &i in among {
                views.push(self.checkpoints(i).await);
            }
            if views.windows(2).all(|w| w[0] == w[1]) && done(&views[0]) {
                return start.elapsed();
            }
            assert!(start.elapsed() < limit, "{what}: {views:#?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A merchant light node of the rig: its files and, while running, the till.
pub struct MerchantRig {
    pub label: String,
    pub home: usize,
    pub config_path: PathBuf,
    pub http_port: u16,
    pub till: Option<linli_node::merchant::RunningTill>,
}

impl MerchantRig {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
}

impl Rig {
    /// Files for a merchant light node with key `key(label)`, home member `home`, connected to
    /// the community nodes `via` (member indices), needing `min_witnesses` cosignatures.
    pub fn merchant(&self, label: &str, home: usize, via: &[usize], min_witnesses: usize) -> MerchantRig {
        use linli_node::merchant::config::MerchantConfigFile;
        let dir = self._root.path().join(format!("merchant-{label}"));
        std::fs::create_dir_all(&dir).unwrap();
        keyfile::write_key(&dir.join("merchant.key"), &key(label)).unwrap();
        keyfile::write_secret(&dir.join("till.token"), TOKEN).unwrap();
        let full_nodes = via.iter().map(|&i| self.genesis.communities[i].p2p_addresses[0].clone()).collect::<Vec<_>>();
        let http_port = free_port();
        let cfg = MerchantConfigFile {
            home: self.members[home].id.clone(),
            genesis_file: self.members[home].dir.join("genesis.toml"),
            merchant_key_file: "merchant.key".into(),
            till_token_file: "till.token".into(),
            data_dir: "till-data".into(),
            http_listen: format!("127.0.0.1:{http_port}"),
            full_nodes: Some(full_nodes),
            min_witnesses,
            proof_timeout_ms: 10_000,
        };
        let config_path = dir.join("merchant.toml");
        std::fs::write(&config_path, toml::to_string(&cfg).unwrap()).unwrap();
        MerchantRig { label: label.into(), home, config_path, http_port, till: None }
    }

    /// Register the merchant's key with its home community (operator call).
    pub async fn register_merchant(&self, m: &MerchantRig) {
        let body = serde_json::json!({"merchant": key(&m.label).public(), "name": m.label, "category": "grocery"});
        let (s, v) = self.post(m.home, "/v1/operator/merchants", body).await;
        assert_eq!(s, 200, "{v}");
    }

    /// Start (or restart) a merchant light node and wait until it reaches a community node.
    pub async fn start_merchant(&self, m: &mut MerchantRig) {
        let cfg = linli_node::merchant::config::MerchantConfig::load(&m.config_path).unwrap();
        m.till = Some(linli_node::merchant::start(&cfg).await.unwrap());
        let start = Instant::now();
        loop {
            let r = self.http.get(format!("{}/v1/till/status", m.base())).send().await;
            if let Ok(r) = r {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                if v["connected"].as_u64().unwrap_or(0) > 0 {
                    return;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(20), "merchant {} never connected", m.label);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop_merchant(&self, m: &mut MerchantRig) {
        if let Some(t) = m.till.take() {
            t.stop().await;
        }
    }

    /// POST to a till (with its token); status and JSON body.
    pub async fn till_post(&self, m: &MerchantRig, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", m.base())).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// GET from a till (with its token); the JSON body.
    pub async fn till_get(&self, m: &MerchantRig, path: &str) -> Value {
        self.http.get(format!("{}{path}", m.base())).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap()
    }

    /// Publish the default rule table on member `i`.
    pub async fn publish_default_rules(&self, i: usize) {
        let table = serde_json::to_value(linli_protocol::rules::RuleTable::default_table(1)).unwrap();
        let (s, v) = self.post(i, "/v1/operator/rules", table).await;
        assert_eq!(s, 200, "{v}");
    }

    /// Enrol resident `key(label)` in member `i` and award a newcomer's mediation (100 points).
    pub async fn resident_with_100_points(&self, i: usize, label: &str, request_id: u64) {
        let r = key(label).public();
        let (s, v) = self.post(i, "/v1/operator/residents", json!({"resident": r, "profile_hash": Hash::ZERO})).await;
        assert_eq!(s, 200, "{v}");
        let award =
            json!({"resident": r, "activity": "mediation", "minutes": 600, "rating": 5, "request_id": request_id});
        let (s, v) = self.post(i, "/v1/operator/awards", award).await;
        assert_eq!(s, 200, "{v}");
        let points = v["entry"]["entry"]["body"]["Award"]["points"].as_u64();
        assert_eq!(points, Some(100), "{v}");
    }

    /// A resident's account as member `i` holds it.
    pub async fn account(&self, i: usize, community: &str, key_hex: &str) -> Value {
        self.get(i, &format!("/v1/accounts/{community}/{key_hex}")).await
    }
}

/// A raw libp2p gossipsub peer that is not a Linli node: it can publish anything (garbage,
/// forgeries, an equivocating community's entries) to the node it dials.
pub struct GossipPeer {
    pub swarm: libp2p::Swarm<libp2p::gossipsub::Behaviour>,
    pub topic: libp2p::gossipsub::IdentTopic,
    /// Messages received on the topic while driven.
    pub received: Vec<Vec<u8>>,
}

/// The district of every rig community.
pub const RIG_DISTRICT: &str = "rig";
/// The topic the rig communities' new entries are gossiped on (their district's).
pub const ENTRIES_TOPIC: &str = "entries/rig";

impl GossipPeer {
    /// Dial member `i` and subscribe to the federation's topic `name` ([`ENTRIES_TOPIC`],
    /// `checkpoints`, `alerts`); returns
    /// once the node has subscribed towards this peer.
    pub async fn connect(rig: &Rig, i: usize, name: &str) -> GossipPeer {
        use futures::StreamExt;
        use libp2p::gossipsub::{self, IdentTopic};
        use libp2p::swarm::SwarmEvent;
        use libp2p::{noise, tcp, yamux, Multiaddr};
        use linli_node::network::gossip;
        let target: Multiaddr = rig.genesis.communities[i].p2p_addresses[0].parse().unwrap();
        let topic = IdentTopic::new(format!("/linli/{}/{name}", rig.genesis_hash));
        // The nodes' own settings (anonymous messages), but a larger size limit (the attacker
        // may send more than a node accepts) and a fresh id for every publish, so the same bytes
        // can be sent again (replays); the nodes name messages by their content.
        let published = std::sync::atomic::AtomicU64::new(0);
        let config = gossip::config_builder()
            .message_id_fn(move |_| {
                let n = published.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                gossipsub::MessageId::new(&n.to_be_bytes())
            })
            .max_transmit_size(1 << 20)
            .heartbeat_interval(Duration::from_millis(200))
            .build()
            .unwrap();
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|_| gossipsub::Behaviour::new(gossip::authenticity(), config).unwrap())
            .unwrap()
            .build();
        swarm.behaviour_mut().subscribe(&topic).unwrap();
        swarm.dial(target).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(20), swarm.select_next_some()).await.unwrap();
            if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) = ev {
                break;
            }
            assert!(Instant::now() < deadline, "the node never subscribed");
        }
        GossipPeer { swarm, topic, received: Vec::new() }
    }

    pub fn peer_id(&self) -> libp2p::PeerId {
        *self.swarm.local_peer_id()
    }

    /// Whether the node still keeps a connection with this peer.
    pub fn connected(&self) -> bool {
        self.swarm.connected_peers().next().is_some()
    }

    /// Publish bytes on the topic (false if gossipsub refused to send them).
    pub fn publish(&mut self, bytes: Vec<u8>) -> bool {
        let topic = self.topic.clone();
        self.swarm.behaviour_mut().publish(topic, bytes).is_ok()
    }

    /// Publish, retrying while gossipsub has no peer to send to yet (up to 10 s).
    pub async fn publish_when_ready(&mut self, bytes: Vec<u8>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.publish(bytes.clone()) {
            assert!(Instant::now() < deadline, "gossipsub never had a peer to publish to");
            self.drive(Duration::from_millis(50)).await;
        }
    }

    /// Run the swarm for `d` (it must be driven for messages to leave).
    pub async fn drive(&mut self, d: Duration) {
        use futures::StreamExt;
        let end = Instant::now() + d;
        while Instant::now() < end {
            let ev = tokio::time::timeout(Duration::from_millis(20), self.swarm.select_next_some()).await;
            if let Ok(libp2p::swarm::SwarmEvent::Behaviour(libp2p::gossipsub::Event::Message { message, .. })) = ev {
                self.received.push(message.data);
            }
        }
    }
}
