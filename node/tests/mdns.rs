//! mDNS on a LAN: two community nodes in two network namespaces joined by a veth pair (a LAN
//! this test creates; no traffic leaves it), with no peer addresses in the genesis, find each
//! other by mDNS and replicate each other's ledgers. Needs root and `ip netns` (as on CI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use linli_node::config::ConfigFile;
use linli_node::keyfile;
use linli_protocol::genesis::{RawCommunity, RawGenesis};
use linli_protocol::testkit::key;
use linli_protocol::Genesis;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("the `ip` command (iproute2) is needed");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Two namespaces joined by a veth pair; removed on drop (with everything running in them).
struct Lan {
    names: [String; 2],
}

impl Lan {
    fn new() -> Lan {
        let tag = std::process::id() % 100_000;
        let names = [format!("linli-a{tag}"), format!("linli-b{tag}")];
        let veth = [format!("la{tag}"), format!("lb{tag}")];
        let lan = Lan { names: names.clone() };
        for (i, ns) in names.iter().enumerate() {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            let _ = i;
        }
        ip(&[
            "link", "add", &veth[0], "netns", &names[0], "type", "veth", "peer", "name", &veth[1], "netns", &names[1],
        ]);
        for (i, ns) in names.iter().enumerate() {
            ip(&["-n", ns, "addr", "add", &format!("10.231.{}.{}/24", tag % 250, i + 1), "dev", &veth[i]]);
            ip(&["-n", ns, "link", "set", &veth[i], "multicast", "on", "up"]);
        }
        lan
    }

    fn exec(&self, i: usize, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.names[i], program]).args(args);
        c
    }

    /// `GET url` from inside namespace `i`.
    fn get(&self, i: usize, url: &str) -> Option<serde_json::Value> {
        let out = self.exec(i, "curl", &["-sf", "--max-time", "2", url]).output().ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    fn post(&self, i: usize, url: &str, token: &str, body: &str) -> Option<serde_json::Value> {
        let auth = format!("Authorization: Bearer {token}");
        let args = ["-sf", "--max-time", "5", "-H", &auth, "-H", "content-type: application/json", "-d", body, url];
        let out = self.exec(i, "curl", &args).output().ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_community(dir: &Path, id: &str, genesis: &Genesis) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("genesis.toml"), genesis.to_toml()).unwrap();
    keyfile::write_key(&dir.join("signing.key"), &key(&format!("{id}/signing"))).unwrap();
    keyfile::write_secret(&dir.join("operator.token"), "mdns-token").unwrap();
    let cfg = ConfigFile {
        community: id.into(),
        data_dir: "data".into(),
        genesis_file: "genesis.toml".into(),
        signing_key_file: "signing.key".into(),
        operator_token_file: "operator.token".into(),
        http_listen: "127.0.0.1:8101".into(),
        p2p_listen: Some("/ip4/0.0.0.0/tcp/4101".into()),
        checkpoint_interval_ms: 1000,
        follow: None,
        mdns: true,
    };
    std::fs::write(dir.join("node.toml"), toml::to_string(&cfg).unwrap()).unwrap();
}

#[test]
fn nodes_on_a_lan_find_each_other_by_mdns() {
    assert!(
        Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false),
        "this test creates network namespaces and must run as root (as CI does)"
    );
    let lan = Lan::new();
    let root = tempfile::tempdir().unwrap();
    let ids = ["east", "west"];
    let raw = RawGenesis {
        federation: "mdns-lan".into(),
        fen_per_point: 10,
        created_ms: 0,
        communities: ids
            .iter()
            .map(|id| RawCommunity {
                id: (*id).into(),
                name: format!("{id} street office"),
                district: "lan".into(),
                signing_key: key(&format!("{id}/signing")).public().to_hex(),
                recovery_key: key(&format!("{id}/recovery")).public().to_hex(),
                p2p_addresses: vec![], // nothing to dial: only mDNS can connect them
                http_address: None,
            })
            .collect(),
    };
    let genesis = Genesis::try_from(raw).unwrap();
    let mut nodes = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let dir = root.path().join(id);
        write_community(&dir, id, &genesis);
        let config = dir.join("node.toml");
        let child = lan
            .exec(i, env!("CARGO_BIN_EXE_linli-node"), &["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info,libp2p_mdns=debug,linli_node::network=debug")
            .stdout(std::fs::File::create(root.path().join(format!("{id}.log"))).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        nodes.push(Node(child));
    }
    let start = Instant::now();
    while (0..2).any(|i| lan.get(i, "http://127.0.0.1:8101/v1/status").is_none()) {
        assert!(start.elapsed() < Duration::from_secs(30), "nodes did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each community enrols a resident; each must end up holding both ledgers.
    for (i, id) in ids.iter().enumerate() {
        let body = format!(
            r#"{{"resident":"{}","profile_hash":"{}"}}"#,
            key(&format!("{id}-resident")).public(),
            linli_protocol::Hash::ZERO
        );
        let start = Instant::now();
        while lan.post(i, "http://127.0.0.1:8101/v1/operator/residents", "mdns-token", &body).is_none() {
            assert!(start.elapsed() < Duration::from_secs(30), "could not enrol on {id}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let start = Instant::now();
    loop {
        let sizes: Vec<Vec<u64>> = (0..2)
            .map(|i| {
                lan.get(i, "http://127.0.0.1:8101/v1/status")
                    .and_then(|s| {
                        s["ledgers"].as_array().map(|l| l.iter().filter_map(|x| x["size"].as_u64()).collect())
                    })
                    .unwrap_or_default()
            })
            .collect();
        if sizes.iter().all(|s| s == &vec![1, 1]) {
            eprintln!("found by mDNS and replicated both ledgers in {:?}", start.elapsed());
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            for id in ids {
                let log = std::fs::read_to_string(root.path().join(format!("{id}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("--- {id} log (last 60 lines) ---");
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
            panic!("no replication over mDNS: {sizes:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(nodes);
}
