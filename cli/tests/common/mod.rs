//! Test rig for the `linli` binary: a community node's files in a temp dir, the node started
//! in-process over real HTTP on 127.0.0.1 with a real RocksDB directory, a scenario of operator
//! and resident calls, and raw RocksDB access to corrupt a stopped node's directory the way an
//! attacker with disk access would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use linli_node::config::{Config, ConfigFile};
use linli_node::keyfile;
use linli_node::store::{position_key, Column};
use linli_protocol::body::{Payment, Redemption, SettlementRequest, Signed, TimeDraw, TimeService};
use linli_protocol::rules::RuleTable;
use linli_protocol::testkit;
use linli_protocol::{CommunityId, Genesis, Hash, Keypair};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../../tests/src/port.rs"]
mod port;
pub use port::free_port;

pub const TOKEN: &str = "test-operator-token-0123456789";
pub const FEDERATION: [&str; 2] = ["lianhua", "shatou"];

/// Files of one node in a temp dir.
pub struct NodeFiles {
    pub dir: tempfile::TempDir,
    pub genesis: Genesis,
    pub genesis_hash: Hash,
}

impl NodeFiles {
    /// Keys, token, genesis and config of `lianhua` in a federation of [`FEDERATION`].
    pub fn new() -> NodeFiles {
        NodeFiles::member(testkit::genesis(&FEDERATION), "lianhua", None)
    }

    /// The files of every member of [`FEDERATION`], networked: a genesis listing each
    /// member's libp2p address on 127.0.0.1, so the nodes replicate each other's ledgers and
    /// cosign each other's checkpoints as witnesses.
    pub fn networked() -> Vec<NodeFiles> {
        use linli_protocol::genesis::{RawCommunity, RawGenesis};
        let ports: Vec<u16> = FEDERATION.iter().map(|_| free_port()).collect();
        let raw = RawGenesis {
            federation: "cli-tests".into(),
            fen_per_point: 10,
            created_ms: 0,
            communities: FEDERATION
                .iter()
                .zip(&ports)
                .map(|(id, port)| RawCommunity {
                    id: id.to_string(),
                    name: format!("{id} street office"),
                    district: "test".into(),
                    signing_key: key(&format!("{id}/signing")).public().to_hex(),
                    recovery_key: key(&format!("{id}/recovery")).public().to_hex(),
                    p2p_addresses: vec![format!("/ip4/127.0.0.1/tcp/{port}")],
                    http_address: None,
                })
                .collect(),
        };
        let genesis = Genesis::try_from(raw).unwrap();
        FEDERATION
            .iter()
            .zip(&ports)
            .map(|(id, port)| NodeFiles::member(genesis.clone(), id, Some(format!("/ip4/127.0.0.1/tcp/{port}"))))
            .collect()
    }

    fn member(genesis: Genesis, id: &str, p2p_listen: Option<String>) -> NodeFiles {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("genesis.toml"), genesis.to_toml()).unwrap();
        keyfile::write_key(&dir.path().join("keys/signing.key"), &testkit::key(&format!("{id}/signing"))).unwrap();
        keyfile::write_secret(&dir.path().join("operator.token"), TOKEN).unwrap();
        let cfg = ConfigFile {
            community: id.into(),
            data_dir: "data".into(),
            genesis_file: "genesis.toml".into(),
            signing_key_file: "keys/signing.key".into(),
            operator_token_file: "operator.token".into(),
            http_listen: "127.0.0.1:0".into(),
            p2p_listen,
            checkpoint_interval_ms: 3_600_000,
            follow: None,
            mdns: false,
        };
        std::fs::write(dir.path().join("node.toml"), toml::to_string(&cfg).unwrap()).unwrap();
        let genesis_hash = genesis.hash();
        NodeFiles { dir, genesis, genesis_hash }
    }

    /// A second node directory with the same files and a copy of this one's data.
    pub fn copy(&self) -> NodeFiles {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(self.dir.path(), dir.path());
        NodeFiles { dir, genesis: self.genesis.clone(), genesis_hash: self.genesis_hash }
    }

    pub fn config(&self) -> Config {
        Config::load(&self.dir.path().join("node.toml")).unwrap()
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn genesis_path(&self) -> PathBuf {
        self.dir.path().join("genesis.toml")
    }
    pub fn data(&self) -> String {
        self.data_dir().display().to_string()
    }
    pub fn genesis_arg(&self) -> String {
        self.genesis_path().display().to_string()
    }
}

/// Wait until no process holds the RocksDB directory open (a stopped node's sequencer thread
/// closes the store shortly after `RunningNode::stop` returns).
pub fn wait_closed(dir: &Path) {
    let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match rocksdb::DB::open_cf(&rocksdb::Options::default(), dir, &names) {
            Ok(db) => {
                drop(db);
                return;
            }
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("{}: {e}", dir.display()),
        }
    }
}

/// Stop a node and wait until its store is closed.
pub async fn stop(node: linli_node::node::RunningNode, dir: PathBuf) {
    node.stop().await;
    tokio::task::spawn_blocking(move || wait_closed(&dir)).await.unwrap();
}

/// Copy a directory tree (files keep their permissions).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

pub fn key(label: &str) -> Keypair {
    testkit::key(label)
}

pub fn cid(id: &str) -> CommunityId {
    CommunityId::new(id).unwrap()
}

/// Run the real `linli` binary.
pub fn linli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linli")).args(args).output().unwrap()
}

/// Exit code, stdout and stderr of a run.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let o = linli(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Run with `--json` and parse stdout.
pub fn run_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}\nstderr: {err}"));
    (code, v, err)
}

/// Run the binary off the async threads (a node is serving on them).
pub async fn run_async(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs)
    })
    .await
    .unwrap()
}

/// A node's API over HTTP.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub genesis_hash: Hash,
}

impl Api {
    pub fn new(addr: std::net::SocketAddr, genesis_hash: Hash) -> Api {
        Api { base: format!("http://{addr}"), http: reqwest::Client::new(), genesis_hash }
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// An operator call that must succeed; returns the receipt's seq.
    pub async fn op(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.post(path, body, Some(TOKEN)).await;
        assert_eq!(s, 200, "{path}: {v}");
        v
    }

    /// A resident-signed call that must succeed.
    pub async fn signed(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.post(path, body, None).await;
        assert_eq!(s, 200, "{path}: {v}");
        v
    }

    pub fn sign<T: linli_protocol::body::SignedPayload + serde::Serialize>(&self, payload: T, key: &Keypair) -> Value {
        serde_json::to_value(Signed::sign(payload, key, &self.genesis_hash)).unwrap()
    }

    pub async fn enroll(&self, who: &Keypair) -> Value {
        self.op("/v1/operator/residents", json!({"resident": who.public(), "profile_hash": Hash([3; 32])})).await
    }

    pub async fn checkpoint(&self) -> Value {
        self.op("/v1/operator/checkpoints", json!({})).await
    }
}

/// Seqs of the scenario's entries, by name.
pub type Seqs = BTreeMap<&'static str, u64>;

fn seq_of(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap()
}

/// Drive a node through enrolment, rules, awards, a payment at a same-community merchant
/// (credited in the same group), a settlement, a redemption, the time bank and two checkpoints.
/// Returns the seqs by name and the checkpoint sizes.
pub async fn scenario(api: &Api) -> (Seqs, Vec<u64>) {
    let (r1, r2, shop) = (key("r1"), key("r2"), key("shop"));
    let mut seqs = Seqs::new();
    seqs.insert("enroll-r1", seq_of(&api.enroll(&r1).await));
    seqs.insert("enroll-r2", seq_of(&api.enroll(&r2).await));
    let m = api
        .op(
            "/v1/operator/merchants",
            json!({"merchant": shop.public(), "name": "Tea, \"Good\" shop", "category": "food"}),
        )
        .await;
    seqs.insert("merchant", seq_of(&m));
    let rules = api.op("/v1/operator/rules", serde_json::to_value(RuleTable::default_table(1)).unwrap()).await;
    seqs.insert("rules", seq_of(&rules));
    // Newcomer: (50 + 50) x 2 = 200 (the cap); (20 + 10) x 2 = 60.
    let a = api.op("/v1/operator/awards", json!({"resident": r1.public(), "activity": "mediation", "minutes": 180, "rating": 5, "bonuses": ["complex"], "request_id": 1})).await;
    assert_eq!(a["entry"]["entry"]["body"]["Award"]["points"], 200, "{a}");
    seqs.insert("award", seq_of(&a));
    let a = api.op("/v1/operator/awards", json!({"resident": r1.public(), "activity": "cleanup", "minutes": 60, "rating": 5, "bonuses": ["bad-weather"], "request_id": 2})).await;
    seqs.insert("award-2", seq_of(&a));
    let first = api.checkpoint().await;
    let mut checkpoints = vec![first["signed"]["checkpoint"]["size"].as_u64().unwrap()];

    let pay = Payment {
        payer: r1.public(),
        merchant: shop.public(),
        merchant_community: cid("lianhua"),
        points: 30,
        price_fen: 450,
        nonce: 1,
        expiry_ms: u64::MAX,
        genesis: api.genesis_hash,
    };
    let p = api.signed("/v1/pay", api.sign(pay, &r1)).await;
    seqs.insert("pay", seq_of(&p));
    seqs.insert("credit", seq_of(&p) + 1);
    let settle = SettlementRequest { merchant: shop.public(), issuer: cid("lianhua"), points: 30, fen: 300, nonce: 1 };
    seqs.insert("settle", seq_of(&api.signed("/v1/settle", api.sign(settle, &shop)).await));
    let redeem = Redemption { resident: r1.public(), points: 20, item: "rice".into(), nonce: 2 };
    seqs.insert("redeem", seq_of(&api.signed("/v1/redeem", api.sign(redeem, &r1)).await));
    let svc =
        TimeService { provider: r1.public(), served: r2.public(), minutes: 90, service: "tutoring".into(), nonce: 1 };
    seqs.insert("time-credit", seq_of(&api.signed("/v1/time/credit", api.sign(svc, &r2)).await));
    let draw = TimeDraw {
        resident: r1.public(),
        minutes: 60,
        serving_community: cid("shatou"),
        service: "repair".into(),
        nonce: 3,
    };
    seqs.insert("time-spend", seq_of(&api.signed("/v1/time/spend", api.sign(draw, &r1)).await));
    let limit = api.op("/v1/operator/exposure-limits", json!({"issuer": "shatou", "limit_fen": 100000})).await;
    seqs.insert("limit", seq_of(&limit));
    let last = api.checkpoint().await;
    checkpoints.push(last["signed"]["checkpoint"]["size"].as_u64().unwrap());
    (seqs, checkpoints)
}

/// A stopped node's directory holding the scenario's ledger.
pub struct Ledger {
    pub files: NodeFiles,
    pub seqs: Seqs,
    pub checkpoints: Vec<u64>,
}

impl Ledger {
    pub fn size(&self) -> u64 {
        *self.checkpoints.last().unwrap()
    }
    pub fn seq(&self, name: &str) -> u64 {
        self.seqs[name]
    }
}

/// Start a node on `files`, run the scenario, stop it.
pub fn build_ledger() -> Ledger {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let files = NodeFiles::new();
    let (seqs, checkpoints) = rt.block_on(async {
        let node = linli_node::node::start(&files.config(), false).await.unwrap();
        let api = Api::new(node.http_addr, files.genesis_hash);
        let out = scenario(&api).await;
        stop(node, files.data_dir()).await;
        out
    });
    drop(rt);
    Ledger { files, seqs, checkpoints }
}

/// Raw RocksDB access to a stopped node's data directory: an attacker with disk access.
pub struct Raw {
    db: rocksdb::DB,
}

impl Raw {
    pub fn open(dir: &Path) -> Raw {
        let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir, names).unwrap();
        Raw { db }
    }
    fn cf(&self, c: Column) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(c.name()).unwrap()
    }
    pub fn get(&self, c: Column, community: &str, n: u64) -> Vec<u8> {
        self.db.get_cf(self.cf(c), position_key(&cid(community), n)).unwrap().unwrap()
    }
    pub fn put(&self, c: Column, community: &str, n: u64, value: &[u8]) {
        self.db.put_cf(self.cf(c), position_key(&cid(community), n), value).unwrap();
    }
    pub fn get_raw(&self, c: Column, k: &[u8]) -> Vec<u8> {
        self.db.get_cf(self.cf(c), k).unwrap().unwrap()
    }
    pub fn put_raw(&self, c: Column, k: &[u8], value: &[u8]) {
        self.db.put_cf(self.cf(c), k, value).unwrap();
    }
    pub fn delete_raw(&self, c: Column, k: &[u8]) {
        self.db.delete_cf(self.cf(c), k).unwrap();
    }
    pub fn delete(&self, c: Column, community: &str, n: u64) {
        self.db.delete_cf(self.cf(c), position_key(&cid(community), n)).unwrap();
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        for c in Column::ALL {
            let _ = self.db.flush_cf(self.cf(c));
        }
    }
}

/// A private copy of a ledger's data directory (to corrupt, or to read while the original is
/// left alone).
pub fn copy_data(ledger: &Ledger) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    copy_dir(&ledger.files.data_dir(), &data);
    (t, data)
}

/// Arguments as owned strings (for [`run_async`]).
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}
