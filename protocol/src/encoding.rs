//! The one canonical binary encoding of Linli: bincode 2, `standard()` configuration
//! (little-endian, variable-length integers as bincode defines them), through serde.
//!
//! Decoding is strict: it has a byte limit, refuses trailing bytes, and refuses any input that
//! does not re-encode to exactly the same bytes (so every value has one encoding, and hashes
//! and signatures over "the canonical bytes" are well defined). Every failure is a typed
//! [`DecodeError`]; no input makes it panic.

use serde::{de::DeserializeOwned, Serialize};

/// Largest encoded signed entry accepted, in bytes.
pub const MAX_ENTRY_BYTES: usize = 16 * 1024;
/// Largest encoded genesis accepted, in bytes (room for thousands of communities).
pub const MAX_GENESIS_BYTES: usize = 8 * 1024 * 1024;
/// Largest encoded network message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what}: input of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { what: &'static str, len: usize, limit: usize },
    #[error("{what}: malformed bytes: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("{what}: {trailing} trailing bytes after the value")]
    TrailingBytes { what: &'static str, trailing: usize },
    #[error("{what}: bytes are not in canonical form")]
    NonCanonical { what: &'static str },
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Canonical bytes of a value. Encoding our own types into a `Vec` cannot fail, so this
/// returns the bytes directly (an impossible failure yields an empty vector).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, config()).unwrap_or_default()
}

/// Strictly decode `bytes` as a `T`, refusing more than `limit` bytes.
pub fn decode<T: DeserializeOwned + Serialize>(
    what: &'static str,
    bytes: &[u8],
    limit: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge { what, len: bytes.len(), limit });
    }
    // The bincode limit also bounds any allocation a length prefix could ask for.
    let cfg = config().with_limit::<{ MAX_GENESIS_BYTES }>();
    let (value, read): (T, usize) = bincode::serde::decode_from_slice(bytes, cfg)
        .map_err(|e| DecodeError::Malformed { what, reason: e.to_string() })?;
    if read != bytes.len() {
        return Err(DecodeError::TrailingBytes { what, trailing: bytes.len().saturating_sub(read) });
    }
    if encode(&value) != bytes {
        return Err(DecodeError::NonCanonical { what });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_trailing_bytes() {
        let v: (u64, String) = (300, "邻里".to_string());
        let mut bytes = encode(&v);
        assert_eq!(decode::<(u64, String)>("pair", &bytes, 100), Ok(v));
        bytes.push(0);
        assert_eq!(
            decode::<(u64, String)>("pair", &bytes, 100),
            Err(DecodeError::TrailingBytes { what: "pair", trailing: 1 })
        );
    }

    #[test]
    fn refuses_oversized_and_non_canonical() {
        assert!(matches!(decode::<u64>("n", &[0u8; 20], 10), Err(DecodeError::TooLarge { len: 20, .. })));
        // 5 encoded with the 2-byte form (tag 251 then u16) is valid bincode but not canonical.
        assert_eq!(decode::<u64>("n", &[251, 5, 0], 10), Err(DecodeError::NonCanonical { what: "n" }));
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        // A Vec<u8> claiming u64::MAX elements.
        let bytes = [253u8, 255, 255, 255, 255, 255, 255, 255, 255];
        assert!(matches!(decode::<Vec<u8>>("v", &bytes, 100), Err(DecodeError::Malformed { .. })));
    }
}
