//! The merchant light node's configuration file (TOML). Relative paths are relative to the
//! file's directory.
//!
//! ```toml
//! home = "lianhua"                       # the merchant's community
//! genesis_file = "genesis.toml"
//! merchant_key_file = "merchant.key"     # 0600, from `linli-node keygen`
//! till_token_file = "till.token"         # bearer token for settlement and reconciliation calls
//! data_dir = "till-data"
//! http_listen = "127.0.0.1:8201"
//! full_nodes = ["/ip4/127.0.0.1/tcp/4101"]   # optional; default: the home community's addresses
//! min_witnesses = 2                      # cosignatures a checkpoint needs besides the issuer's
//! proof_timeout_ms = 5000                # how long a sale waits for a cosigned checkpoint
//! ```

use linli_protocol::CommunityId;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantConfigFile {
    pub home: String,
    pub genesis_file: PathBuf,
    pub merchant_key_file: PathBuf,
    pub till_token_file: PathBuf,
    pub data_dir: PathBuf,
    pub http_listen: String,
    #[serde(default)]
    pub full_nodes: Option<Vec<String>>,
    #[serde(default = "default_min_witnesses")]
    pub min_witnesses: usize,
    #[serde(default = "default_proof_timeout")]
    pub proof_timeout_ms: u64,
}

fn default_min_witnesses() -> usize {
    1
}

fn default_proof_timeout() -> u64 {
    5000
}

/// A checked configuration with absolute paths.
#[derive(Debug, Clone)]
pub struct MerchantConfig {
    pub home: CommunityId,
    pub genesis_file: PathBuf,
    pub merchant_key_file: PathBuf,
    pub till_token_file: PathBuf,
    pub data_dir: PathBuf,
    pub http_listen: SocketAddr,
    /// `None`: the home community's addresses from the genesis.
    pub full_nodes: Option<Vec<String>>,
    pub min_witnesses: usize,
    pub proof_timeout_ms: u64,
}

impl MerchantConfig {
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<Self, crate::config::ConfigError> {
        let invalid = |reason: String| crate::config::ConfigError::Invalid { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path)
            .map_err(|source| crate::config::ConfigError::Io { path: path.display().to_string(), source })?;
        let file: MerchantConfigFile = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_file(file, &base).map_err(invalid)
    }

    /// Check a parsed file, resolving relative paths against `base`.
    pub fn from_file(file: MerchantConfigFile, base: &Path) -> Result<Self, String> {
        let home = CommunityId::new(file.home).map_err(|e| e.to_string())?;
        let http_listen = file.http_listen.parse().map_err(|e| format!("http_listen {:?}: {e}", file.http_listen))?;
        if file.proof_timeout_ms == 0 {
            return Err("proof_timeout_ms must be at least 1".into());
        }
        let abs = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        Ok(Self {
            home,
            genesis_file: abs(file.genesis_file),
            merchant_key_file: abs(file.merchant_key_file),
            till_token_file: abs(file.till_token_file),
            data_dir: abs(file.data_dir),
            http_listen,
            full_nodes: file.full_nodes,
            min_witnesses: file.min_witnesses,
            proof_timeout_ms: file.proof_timeout_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> MerchantConfigFile {
        toml::from_str(
            r#"home = "lianhua"
genesis_file = "genesis.toml"
merchant_key_file = "merchant.key"
till_token_file = "till.token"
data_dir = "till"
http_listen = "127.0.0.1:0"
"#,
        )
        .unwrap()
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = MerchantConfig::from_file(file(), Path::new("/etc/linli")).unwrap();
        assert_eq!(c.home.as_str(), "lianhua");
        assert_eq!(c.data_dir, PathBuf::from("/etc/linli/till"));
        assert_eq!((c.min_witnesses, c.proof_timeout_ms), (1, 5000));
    }

    #[test]
    fn bad_values_are_refused() {
        let mut f = file();
        f.home = "Not An Id!".into();
        assert!(MerchantConfig::from_file(f, Path::new("/")).is_err());
        let mut f = file();
        f.http_listen = "nowhere".into();
        assert!(MerchantConfig::from_file(f, Path::new("/")).unwrap_err().contains("http_listen"));
        let mut f = file();
        f.proof_timeout_ms = 0;
        assert!(MerchantConfig::from_file(f, Path::new("/")).is_err());
        assert!(toml::from_str::<MerchantConfigFile>("home = \"a\"\nunknown = 1").is_err());
    }
}
