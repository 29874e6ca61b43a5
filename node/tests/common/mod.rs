//! A test rig: a community node with generated keys, genesis and config in a temporary
//! directory, either in-process or as a child process of the real binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;

use linli_node::config::{Config, ConfigFile};
use linli_node::keyfile;
use linli_protocol::testkit;
use linli_protocol::{Genesis, Hash, Keypair};
use std::path::{Path, PathBuf};

#[path = "../../../tests/src/port.rs"]
pub mod port;

pub const TOKEN: &str = "test-operator-token-0123456789";

/// Files of one node in a temp dir.
pub struct NodeFiles {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub genesis: Genesis,
    pub genesis_hash: Hash,
    pub community: String,
}

/// Write keys, token, genesis and config for `community` of a federation of `ids`.
pub fn node_files(ids: &[&str], community: &str, http: &str) -> NodeFiles {
    let dir = tempfile::tempdir().unwrap();
    let genesis = testkit::genesis(ids);
    std::fs::write(dir.path().join("genesis.toml"), genesis.to_toml()).unwrap();
    keyfile::write_key(&dir.path().join("keys/signing.key"), &testkit::key(&format!("{community}/signing"))).unwrap();
    keyfile::write_secret(&dir.path().join("operator.token"), TOKEN).unwrap();
    let cfg = ConfigFile {
        community: community.into(),
        data_dir: "data".into(),
        genesis_file: "genesis.toml".into(),
        signing_key_file: "keys/signing.key".into(),
        operator_token_file: "operator.token".into(),
        http_listen: http.into(),
        p2p_listen: None,
        checkpoint_interval_ms: 60_000,
        follow: None,
        mdns: false,
    };
    let config_path = dir.path().join("node.toml");
    std::fs::write(&config_path, toml::to_string(&cfg).unwrap()).unwrap();
    let genesis_hash = genesis.hash();
    NodeFiles { dir, config_path, genesis, genesis_hash, community: community.into() }
}

impl NodeFiles {
    pub fn config(&self) -> Config {
        Config::load(&self.config_path).unwrap()
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

pub fn resident(label: &str) -> Keypair {
    testkit::key(label)
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
