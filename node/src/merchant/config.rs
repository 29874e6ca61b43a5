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

use linli_protocol::{CommunityId, Genesis};
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

/// Why a merchant light node's configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerchantConfigError {
    #[error("home {home:?} is not a valid community id: {reason}")]
    BadHome { home: String, reason: String },
    #[error("home community {home} is not in the genesis (its communities: {known})")]
    HomeNotInGenesis { home: CommunityId, known: String },
    #[error("min_witnesses must be at least 1: a checkpoint only its issuer signed proves nothing to a till")]
    NoWitnesses,
    #[error("min_witnesses is {actual}, but the genesis has only {expected_at_most} other communities to cosign an issuer's checkpoint")]
    TooManyWitnesses { expected_at_most: usize, actual: usize },
}

/// Check a home community id and a witness minimum against the genesis: the home is a valid
/// id of one of its communities, and 1 ≤ `min_witnesses` ≤ the number of other communities
/// (the witnesses an issuer's checkpoint can have).
pub fn check_against_genesis(
    home: &str,
    min_witnesses: usize,
    genesis: &Genesis,
) -> Result<CommunityId, MerchantConfigError> {
    let id = CommunityId::new(home)
        .map_err(|e| MerchantConfigError::BadHome { home: home.to_string(), reason: e.to_string() })?;
    if genesis.community(&id).is_none() {
        let known = genesis.communities.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ");
        return Err(MerchantConfigError::HomeNotInGenesis { home: id, known });
    }
    if min_witnesses == 0 {
        return Err(MerchantConfigError::NoWitnesses);
    }
    let expected_at_most = genesis.communities.len().saturating_sub(1);
    if min_witnesses > expected_at_most {
        return Err(MerchantConfigError::TooManyWitnesses { expected_at_most, actual: min_witnesses });
    }
    Ok(id)
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
        if file.min_witnesses == 0 {
            return Err(MerchantConfigError::NoWitnesses.to_string());
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
        let mut f = file();
        f.min_witnesses = 0;
        assert!(MerchantConfig::from_file(f, Path::new("/")).unwrap_err().contains("min_witnesses must be at least 1"));
    }

    #[test]
    fn home_and_witnesses_must_fit_the_genesis() {
        let g = linli_protocol::testkit::genesis(&["lianhua", "shatou", "xiangmihu"]);
        assert_eq!(check_against_genesis("lianhua", 1, &g).unwrap().as_str(), "lianhua");
        assert_eq!(check_against_genesis("shatou", 2, &g).unwrap().as_str(), "shatou", "both others may cosign");
        assert!(
            matches!(check_against_genesis("B", 1, &g), Err(MerchantConfigError::BadHome { home, .. }) if home == "B")
        );
        let err = check_against_genesis("futian", 1, &g).unwrap_err();
        assert!(
            matches!(&err, MerchantConfigError::HomeNotInGenesis { known, .. } if known == "lianhua, shatou, xiangmihu"),
            "{err}"
        );
        assert_eq!(check_against_genesis("lianhua", 0, &g), Err(MerchantConfigError::NoWitnesses));
        assert_eq!(
            check_against_genesis("lianhua", 3, &g),
            Err(MerchantConfigError::TooManyWitnesses { expected_at_most: 2, actual: 3 })
        );
    }
}
