//! The federation's genesis file: which communities honour each other's points, their keys and
//! addresses, and the exchange rule `fen_per_point = 10` (1 point = 0.1 yuan).
//!
//! A genesis is read from TOML into a raw form and checked into a [`Genesis`] (`TryFrom`), so a
//! bad file never becomes a valid value. Its canonical bytes are the bincode encoding of the
//! checked value; the genesis hash is `BLAKE3("linli/v1/genesis" || 0x00 || canonical bytes)`.
//! Every signature, handshake and topic name is bound to that hash.

use crate::encoding::{self, DecodeError, MAX_GENESIS_BYTES};
use crate::keys::{self, SignatureError};
use crate::primitives::{CommunityId, CommunityIdError, Hash, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The exchange rule every node enforces on every money figure: 1 point = 10 fen = 0.1 yuan.
pub const FEN_PER_POINT: u64 = 10;

/// Why a genesis file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis is not valid TOML: {0}")]
    Toml(String),
    #[error("genesis sets fen_per_point = {actual}; Linli requires {expected} (1 point = 0.1 yuan)")]
    WrongExchangeRate { expected: u64, actual: u64 },
    #[error("genesis lists no communities")]
    NoCommunities,
    #[error("genesis lists community {0} twice")]
    DuplicateCommunity(CommunityId),
    #[error("genesis community id is invalid: {0}")]
    BadCommunityId(#[from] CommunityIdError),
    #[error("genesis community {community}: {field} is invalid: {source}")]
    BadKey { community: CommunityId, field: &'static str, source: SignatureError },
    #[error("genesis community {community}: {field} is not 32 bytes of hex")]
    BadKeyHex { community: CommunityId, field: &'static str },
    #[error("genesis community {community}: the recovery key must differ from the signing key")]
    RecoveryEqualsSigning { community: CommunityId },
    #[error("genesis community {community}: field {field} is empty or longer than {max} bytes")]
    BadText { community: CommunityId, field: &'static str, max: usize },
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// One community as written in the TOML file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawCommunity {
    pub id: String,
    pub name: String,
    pub district: String,
    pub signing_key: String,
    pub recovery_key: String,
    #[serde(default)]
    pub p2p_addresses: Vec<String>,
    #[serde(default)]
    pub http_address: Option<String>,
}

/// The genesis file as written (TOML), before any check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawGenesis {
    pub federation: String,
    pub fen_per_point: u64,
    #[serde(default)]
    pub created_ms: u64,
    #[serde(rename = "community")]
    pub communities: Vec<RawCommunity>,
}

/// A checked member community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityInfo {
    pub id: CommunityId,
    pub name: String,
    pub district: String,
    pub signing_key: PublicKey,
    pub recovery_key: PublicKey,
    pub p2p_addresses: Vec<String>,
    pub http_address: Option<String>,
}

/// A checked genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub federation: String,
    pub fen_per_point: u64,
    pub created_ms: u64,
    pub communities: Vec<CommunityInfo>,
}

const MAX_TEXT: usize = 256;

fn check_text(community: &CommunityId, field: &'static str, s: &str, may_be_empty: bool) -> Result<(), GenesisError> {
    if (!may_be_empty && s.is_empty()) || s.len() > MAX_TEXT {
        return Err(GenesisError::BadText { community: community.clone(), field, max: MAX_TEXT });
    }
    Ok(())
}

fn parse_key(community: &CommunityId, field: &'static str, hex_key: &str) -> Result<PublicKey, GenesisError> {
    let key =
        PublicKey::from_hex(hex_key).map_err(|_| GenesisError::BadKeyHex { community: community.clone(), field })?;
    keys::verifying_key(&key).map_err(|source| GenesisError::BadKey { community: community.clone(), field, source })?;
    Ok(key)
}

impl TryFrom<RawCommunity> for CommunityInfo {
    type Error = GenesisError;
    fn try_from(raw: RawCommunity) -> Result<Self, GenesisError> {
        let id = CommunityId::new(raw.id)?;
        check_text(&id, "name", &raw.name, false)?;
        check_text(&id, "district", &raw.district, false)?;
        let signing_key = parse_key(&id, "signing_key", &raw.signing_key)?;
        let recovery_key = parse_key(&id, "recovery_key", &raw.recovery_key)?;
        if signing_key == recovery_key {
            return Err(GenesisError::RecoveryEqualsSigning { community: id });
        }
        for a in &raw.p2p_addresses {
            check_text(&id, "p2p_addresses", a, false)?;
        }
        if let Some(h) = &raw.http_address {
            check_text(&id, "http_address", h, false)?;
        }
        Ok(CommunityInfo {
            id,
            name: raw.name,
            district: raw.district,
            signing_key,
            recovery_key,
            p2p_addresses: raw.p2p_addresses,
            http_address: raw.http_address,
        })
    }
}

impl TryFrom<RawGenesis> for Genesis {
    type Error = GenesisError;
    fn try_from(raw: RawGenesis) -> Result<Self, GenesisError> {
        if raw.fen_per_point != FEN_PER_POINT {
            return Err(GenesisError::WrongExchangeRate { expected: FEN_PER_POINT, actual: raw.fen_per_point });
        }
        if raw.communities.is_empty() {
            return Err(GenesisError::NoCommunities);
        }
        let mut seen = BTreeSet::new();
        let mut communities = Vec::with_capacity(raw.communities.len());
        for rc in raw.communities {
            let c = CommunityInfo::try_from(rc)?;
            if !seen.insert(c.id.clone()) {
                return Err(GenesisError::DuplicateCommunity(c.id));
            }
            communities.push(c);
        }
        Ok(Genesis {
            federation: raw.federation,
            fen_per_point: raw.fen_per_point,
            created_ms: raw.created_ms,
            communities,
        })
    }
}

impl From<&Genesis> for RawGenesis {
    fn from(g: &Genesis) -> Self {
        RawGenesis {
            federation: g.federation.clone(),
            fen_per_point: g.fen_per_point,
            created_ms: g.created_ms,
            communities: g
                .communities
                .iter()
                .map(|c| RawCommunity {
                    id: c.id.to_string(),
                    name: c.name.clone(),
                    district: c.district.clone(),
                    signing_key: c.signing_key.to_hex(),
                    recovery_key: c.recovery_key.to_hex(),
                    p2p_addresses: c.p2p_addresses.clone(),
                    http_address: c.http_address.clone(),
                })
                .collect(),
        }
    }
}

impl Genesis {
    /// Parse and check a genesis TOML file.
    pub fn from_toml(text: &str) -> Result<Self, GenesisError> {
        if text.len() > MAX_GENESIS_BYTES {
            return Err(GenesisError::Toml(format!("file is {} bytes; limit is {MAX_GENESIS_BYTES}", text.len())));
        }
        let raw: RawGenesis = toml::from_str(text).map_err(|e| GenesisError::Toml(e.to_string()))?;
        Genesis::try_from(raw)
    }

    /// The TOML text of this genesis.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&RawGenesis::from(self)).unwrap_or_default()
    }

    /// The canonical bytes (bincode) of the checked genesis.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decode canonical bytes, re-running every check.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, GenesisError> {
        let g: Genesis = encoding::decode("genesis", bytes, MAX_GENESIS_BYTES)?;
        Genesis::try_from(RawGenesis::from(&g))
    }

    /// The genesis hash every signature and topic is bound to.
    pub fn hash(&self) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(b"linli/v1/genesis\0");
        h.update(&self.canonical_bytes());
        Hash(*h.finalize().as_bytes())
    }

    /// Look a community up by id.
    pub fn community(&self, id: &CommunityId) -> Option<&CommunityInfo> {
        self.communities.iter().find(|c| &c.id == id)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::Keypair;

    /// A two-community genesis with deterministic keys, used across the crate's tests.
    pub fn sample_genesis() -> Genesis {
        let raw = RawGenesis {
            federation: "futian-pilot".into(),
            fen_per_point: 10,
            created_ms: 1_790_000_000_000,
            communities: ["lianhua", "xiangmihu", "shatou"]
                .iter()
                .map(|id| RawCommunity {
                    id: (*id).into(),
                    name: format!("{id} street office"),
                    district: "futian".into(),
                    signing_key: Keypair::from_label(&format!("{id}/signing")).public().to_hex(),
                    recovery_key: Keypair::from_label(&format!("{id}/recovery")).public().to_hex(),
                    p2p_addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
                    http_address: Some("127.0.0.1:8001".into()),
                })
                .collect(),
        };
        Genesis::try_from(raw).unwrap()
    }

    #[test]
    fn toml_round_trip_keeps_the_hash() {
        let g = sample_genesis();
        let back = Genesis::from_toml(&g.to_toml()).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.hash(), g.hash());
        assert_eq!(Genesis::from_canonical_bytes(&g.canonical_bytes()).unwrap(), g);
    }

    #[test]
    fn refuses_another_exchange_rate() {
        let text = sample_genesis().to_toml().replace("fen_per_point = 10", "fen_per_point = 12");
        assert_eq!(Genesis::from_toml(&text), Err(GenesisError::WrongExchangeRate { expected: 10, actual: 12 }));
    }

    #[test]
    fn refuses_duplicates_bad_keys_and_garbage() {
        let g = sample_genesis();
        let mut raw = RawGenesis::from(&g);
        let first = raw.communities[0].clone();
        raw.communities.push(first);
        assert!(matches!(Genesis::try_from(raw), Err(GenesisError::DuplicateCommunity(_))));

        let mut raw = RawGenesis::from(&g);
        raw.communities[0].signing_key = "zz".into();
        assert!(matches!(Genesis::try_from(raw), Err(GenesisError::BadKeyHex { field: "signing_key", .. })));

        let mut raw = RawGenesis::from(&g);
        raw.communities[0].recovery_key = raw.communities[0].signing_key.clone();
        assert!(matches!(Genesis::try_from(raw), Err(GenesisError::RecoveryEqualsSigning { .. })));

        let mut raw = RawGenesis::from(&g);
        raw.communities.clear();
        assert_eq!(Genesis::try_from(raw), Err(GenesisError::NoCommunities));

        assert!(matches!(Genesis::from_toml("federation = ["), Err(GenesisError::Toml(_))));
    }

    #[test]
    fn hash_changes_with_any_field() {
        let g = sample_genesis();
        let mut g2 = g.clone();
        g2.communities[1].district = "luohu".into();
        assert_ne!(g.hash(), g2.hash());
    }
}
