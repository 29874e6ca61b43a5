//! Fixed-size values every other module builds on: hashes, public keys, signatures and
//! community identifiers.
//!
//! In the canonical (bincode) encoding a fixed-size value is its raw bytes with no length
//! prefix; in human-readable formats (JSON, TOML) it is lower-case hex. A `CommunityId` is a
//! short lower-case slug (`[a-z0-9-]{1,32}`), checked whenever one is built or decoded.

use core::fmt;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serialize `N` raw bytes: hex when human-readable, a fixed-length tuple otherwise.
fn serialize_fixed<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&hex::encode(bytes))
    } else {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(N)?;
        for b in bytes {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

struct FixedVisitor<const N: usize>;

impl<'de, const N: usize> Visitor<'de> for FixedVisitor<N> {
    type Value = [u8; N];
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{N} bytes ({} hex digits)", N.saturating_mul(2))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let mut out = [0u8; N];
        hex::decode_to_slice(v, &mut out).map_err(|e| E::custom(format!("expected {N} bytes of hex: {e}")))?;
        Ok(out)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = [0u8; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
        }
        Ok(out)
    }
}

fn deserialize_fixed<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    if d.is_human_readable() {
        d.deserialize_str(FixedVisitor::<N>)
    } else {
        d.deserialize_tuple(N, FixedVisitor::<N>)
    }
}

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $n:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $n]);

        impl Default for $name {
            fn default() -> Self {
                Self([0u8; $n])
            }
        }

        impl $name {
            /// The length of this value in bytes.
            pub const LEN: usize = $n;
            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// Parse lower- or upper-case hex of exactly the right length.
            pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
                let mut out = [0u8; $n];
                hex::decode_to_slice(s.trim(), &mut out)?;
                Ok(Self(out))
            }
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_fixed(&self.0, s)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_fixed::<D, $n>(d).map(Self)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
        impl core::str::FromStr for $name {
            type Err = hex::FromHexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }
    };
}

fixed_bytes!(
    /// A BLAKE3 digest: entry hashes, Merkle roots, the genesis hash, profile hashes.
    Hash,
    32
);
fixed_bytes!(
    /// An ed25519 public key (compressed Edwards point) of a community, resident or merchant.
    PublicKey,
    32
);
fixed_bytes!(
    /// An ed25519 signature.
    Signature,
    64
);

impl Hash {
    /// The all-zero hash, used as `prev_hash` of a ledger's first entry.
    pub const ZERO: Hash = Hash([0u8; 32]);
}

impl PublicKey {
    /// A short form for logs and tables: the first 8 hex digits.
    pub fn short(&self) -> String {
        let mut s = self.to_hex();
        s.truncate(8);
        s
    }
}

/// Why a string is not a valid [`CommunityId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommunityIdError {
    #[error("community id is empty")]
    Empty,
    #[error("community id {id:?} is {len} bytes long; at most {max} allowed")]
    TooLong { id: String, len: usize, max: usize },
    #[error("community id {id:?} contains {ch:?}; only a-z, 0-9 and '-' are allowed")]
    BadChar { id: String, ch: char },
}

/// A community's identifier: a short slug such as `lianhua` or `futian-1`, unique in the genesis.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CommunityId(String);

impl CommunityId {
    /// The longest identifier allowed, in bytes.
    pub const MAX_LEN: usize = 32;

    /// Build a checked identifier.
    pub fn new(id: impl Into<String>) -> Result<Self, CommunityIdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(CommunityIdError::Empty);
        }
        if id.len() > Self::MAX_LEN {
            return Err(CommunityIdError::TooLong { len: id.len(), id, max: Self::MAX_LEN });
        }
        if let Some(ch) = id.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
            return Err(CommunityIdError::BadChar { id, ch });
        }
        Ok(Self(id))
    }

    /// The identifier as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for CommunityId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CommunityId::new(s).map_err(de::Error::custom)
    }
}

impl fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "CommunityId({})", self.0)
    }
}

impl fmt::Display for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::str::FromStr for CommunityId {
    type Err = CommunityIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CommunityId::new(s)
    }
}

impl TryFrom<&str> for CommunityId {
    type Error = CommunityIdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        CommunityId::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_id_accepts_slugs() {
        assert_eq!(CommunityId::new("futian-1").map(|c| c.to_string()), Ok("futian-1".to_string()));
    }

    #[test]
    fn community_id_refuses_bad_input() {
        assert_eq!(CommunityId::new(""), Err(CommunityIdError::Empty));
        assert!(matches!(CommunityId::new("A"), Err(CommunityIdError::BadChar { ch: 'A', .. })));
        assert!(matches!(CommunityId::new("x".repeat(33)), Err(CommunityIdError::TooLong { len: 33, .. })));
    }

    #[test]
    fn fixed_bytes_hex_round_trip() {
        let h = Hash([7u8; 32]);
        let json = serde_json::to_string(&h).unwrap_or_default();
        assert_eq!(json, format!("\"{}\"", "07".repeat(32)));
        let back: Hash = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, h);
        assert!(serde_json::from_str::<Hash>("\"0707\"").is_err());
    }
}
