//! Ledger entries: `{community, seq, prev_hash, time_ms, body}`, signed by the community key.
//!
//! * Entry hash = `BLAKE3("linli/v1/entry" || 0x00 || genesis_hash || canonical(entry))`. The
//!   hash covers the content, not the signature; `prev_hash` chains these hashes and the Merkle
//!   tree's leaves are these hashes.
//! * The community signs the entry hash under the domain `entry` (see [`keys::signing_message`]).
//! * Wire and disk form: canonical bincode of [`SignedEntry`], at most
//!   [`MAX_ENTRY_BYTES`](crate::encoding::MAX_ENTRY_BYTES), decoded strictly.

use crate::body::{Body, EntryRef};
use crate::encoding::{self, DecodeError, MAX_ENTRY_BYTES};
use crate::keys::{self, Keypair, SignatureError};
use crate::primitives::{CommunityId, Hash, PublicKey, Signature};
use serde::{Deserialize, Serialize};

/// Domain of the community's signature over an entry hash.
pub const ENTRY_DOMAIN: &str = "entry";

/// The unsigned content of a ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub community: CommunityId,
    pub seq: u64,
    pub prev_hash: Hash,
    pub time_ms: u64,
    pub body: Body,
}

impl Entry {
    /// The entry hash, bound to the genesis.
    pub fn hash(&self, genesis: &Hash) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(b"linli/v1/entry\0");
        h.update(&genesis.0);
        h.update(&encoding::encode(self));
        Hash(*h.finalize().as_bytes())
    }
}

/// An entry with its community's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEntry {
    pub entry: Entry,
    pub signature: Signature,
}

impl SignedEntry {
    /// Sign `entry` with the community key.
    pub fn sign(entry: Entry, key: &Keypair, genesis: &Hash) -> Self {
        let hash = entry.hash(genesis);
        let signature = key.sign(ENTRY_DOMAIN, genesis, &hash.0);
        Self { entry, signature }
    }

    /// The entry hash.
    pub fn hash(&self, genesis: &Hash) -> Hash {
        self.entry.hash(genesis)
    }

    /// A reference to this entry.
    pub fn entry_ref(&self, genesis: &Hash) -> EntryRef {
        EntryRef { community: self.entry.community.clone(), seq: self.entry.seq, hash: self.hash(genesis) }
    }

    /// Check the community signature against `key`.
    pub fn verify_signature(&self, genesis: &Hash, key: &PublicKey) -> Result<(), SignatureError> {
        keys::verify(key, ENTRY_DOMAIN, genesis, &self.hash(genesis).0, &self.signature)
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Strictly decode canonical bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode("signed entry", bytes, MAX_ENTRY_BYTES)
    }
}
