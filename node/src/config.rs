//! The node's configuration file (TOML). Relative paths are relative to the file's directory.
//!
//! ```toml
//! community = "lianhua"
//! data_dir = "data"
//! genesis_file = "genesis.toml"
//! signing_key_file = "keys/signing.key"
//! operator_token_file = "operator.token"
//! http_listen = "127.0.0.1:8101"
//! p2p_listen = "/ip4/127.0.0.1/tcp/4101"
//! checkpoint_interval_ms = 2000
//! follow = ["district:futian", "shatou"]   # optional; default: every community
//! mdns = false                               # optional; also find peers on the LAN
//! ```

use linli_protocol::CommunityId;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: invalid configuration: {reason}")]
    Invalid { path: String, reason: String },
}

/// The file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub community: String,
    pub data_dir: PathBuf,
    pub genesis_file: PathBuf,
    pub signing_key_file: PathBuf,
    pub operator_token_file: PathBuf,
    pub http_listen: String,
    #[serde(default)]
    pub p2p_listen: Option<String>,
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_ms: u64,
    /// Ledgers to replicate: community ids and/or `district:NAME`; absent = every community.
    #[serde(default)]
    pub follow: Option<Vec<String>>,
    /// Also discover peers on the local network with mDNS.
    #[serde(default)]
    pub mdns: bool,
}

fn default_checkpoint_interval() -> u64 {
    2000
}

/// A checked configuration with absolute paths.
#[derive(Debug, Clone)]
pub struct Config {
    pub community: CommunityId,
    pub data_dir: PathBuf,
    pub genesis_file: PathBuf,
    pub signing_key_file: PathBuf,
    pub operator_token_file: PathBuf,
    pub http_listen: SocketAddr,
    pub p2p_listen: Option<String>,
    pub checkpoint_interval_ms: u64,
    /// `None`: follow every community of the genesis.
    pub follow: Option<Vec<String>>,
    pub mdns: bool,
}

impl Config {
    /// The communities whose ledgers this node replicates (always including its own).
    pub fn followed(&self, genesis: &linli_protocol::Genesis) -> Result<Vec<CommunityId>, String> {
        let Some(list) = &self.follow else {
            return Ok(genesis.communities.iter().map(|c| c.id.clone()).collect());
        };
        let mut out = vec![self.community.clone()];
        for item in list {
            let matched: Vec<CommunityId> = match item.strip_prefix("district:") {
                Some(d) => genesis.communities.iter().filter(|c| c.district == d).map(|c| c.id.clone()).collect(),
                None => genesis.communities.iter().filter(|c| c.id.as_str() == item).map(|c| c.id.clone()).collect(),
            };
            if matched.is_empty() {
                return Err(format!("follow entry {item:?} names no community of the genesis"));
            }
            out.extend(matched);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.display().to_string(), source })?;
        let file: ConfigFile = toml::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: path.display().to_string(), reason: e.to_string() })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::from_file(file, &base)
            .map_err(|reason| ConfigError::Invalid { path: path.display().to_string(), reason })
    }

    /// Check a parsed file, resolving relative paths against `base`.
    pub fn from_file(file: ConfigFile, base: &Path) -> Result<Config, String> {
        let community = CommunityId::new(file.community).map_err(|e| e.to_string())?;
        let http_listen = file.http_listen.parse().map_err(|e| format!("http_listen {:?}: {e}", file.http_listen))?;
        if file.checkpoint_interval_ms == 0 {
            return Err("checkpoint_interval_ms must be at least 1".into());
        }
        let abs = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        Ok(Config {
            community,
            data_dir: abs(file.data_dir),
            genesis_file: abs(file.genesis_file),
            signing_key_file: abs(file.signing_key_file),
            operator_token_file: abs(file.operator_token_file),
            http_listen,
            p2p_listen: file.p2p_listen,
            checkpoint_interval_ms: file.checkpoint_interval_ms,
            follow: file.follow,
            mdns: file.mdns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> ConfigFile {
        ConfigFile {
            community: "lianhua".into(),
            data_dir: "data".into(),
            genesis_file: "/etc/linli/genesis.toml".into(),
            signing_key_file: "keys/signing.key".into(),
            operator_token_file: "operator.token".into(),
            http_listen: "127.0.0.1:8101".into(),
            p2p_listen: None,
            checkpoint_interval_ms: 2000,
            follow: None,
            mdns: false,
        }
    }

    #[test]
    fn resolves_relative_paths() {
        let c = Config::from_file(file(), Path::new("/srv/lianhua")).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/lianhua/data"));
        assert_eq!(c.genesis_file, PathBuf::from("/etc/linli/genesis.toml"));
    }

    #[test]
    fn refuses_bad_values() {
        let mut f = file();
        f.http_listen = "nowhere".into();
        assert!(Config::from_file(f, Path::new("/")).unwrap_err().contains("http_listen"));
        let mut f = file();
        f.community = "Bad Id".into();
        assert!(Config::from_file(f, Path::new("/")).is_err());
        assert!(toml::from_str::<ConfigFile>("community = \"a\"\nbogus = 1").is_err());
    }

    #[test]
    fn followed_ledgers_by_id_and_district() {
        let g = linli_protocol::testkit::genesis(&["a", "b", "c", "d"]); // districts: east, west, east, west
        let mut f = file();
        f.community = "a".into();
        let all = Config::from_file(f.clone(), Path::new("/")).unwrap();
        assert_eq!(all.followed(&g).unwrap().len(), 4);
        f.follow = Some(vec!["district:west".into()]);
        let west = Config::from_file(f.clone(), Path::new("/")).unwrap();
        let ids: Vec<String> = west.followed(&g).unwrap().iter().map(|c| c.to_string()).collect();
        assert_eq!(ids, vec!["a", "b", "d"]);
        f.follow = Some(vec!["nowhere".into()]);
        let bad = Config::from_file(f, Path::new("/")).unwrap();
        assert!(bad.followed(&g).unwrap_err().contains("nowhere"));
    }
}
