//! Checkpoints, witness cosignatures and equivocation proofs.
//!
//! A checkpoint `{community, size, root, time_ms}` commits a community to the first `size`
//! entries of its ledger (Merkle root). The community signs it (domain `checkpoint`); peers that
//! hold the same prefix cosign it (domain `cosign`). Two validly signed entries at one
//! `(community, seq)` with different hashes, or two signed checkpoints of one size with
//! different roots, form an [`EquivocationProof`] that anyone holding the genesis can check.

use crate::encoding::{self, DecodeError, MAX_MESSAGE_BYTES};
use crate::entry::SignedEntry;
use crate::keys::{self, Keypair, SignatureError};
use crate::primitives::{CommunityId, Hash, PublicKey, Signature};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A community's commitment to its ledger prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub community: CommunityId,
    pub size: u64,
    pub root: Hash,
    pub time_ms: u64,
}

/// A checkpoint signed by its community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub signature: Signature,
}

/// A witness community's cosignature of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cosignature {
    pub witness: CommunityId,
    pub key: PublicKey,
    pub signature: Signature,
}

/// A signed checkpoint with the cosignatures collected so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosignedCheckpoint {
    pub signed: SignedCheckpoint,
    pub cosignatures: Vec<Cosignature>,
}

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint of {community} size {size}: {error}")]
    Signature { community: CommunityId, size: u64, error: SignatureError },
    #[error("checkpoint of {community} size {size}: {actual} valid witness cosignatures, {expected} required")]
    TooFewWitnesses { community: CommunityId, size: u64, expected: usize, actual: usize },
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

const CHECKPOINT_DOMAIN: &str = "checkpoint";
const COSIGN_DOMAIN: &str = "cosign";

impl Checkpoint {
    fn bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }
}

impl SignedCheckpoint {
    /// Sign a checkpoint with the community key.
    pub fn sign(checkpoint: Checkpoint, key: &Keypair, genesis: &Hash) -> Self {
        let signature = key.sign(CHECKPOINT_DOMAIN, genesis, &checkpoint.bytes());
        Self { checkpoint, signature }
    }

    /// Check the community's signature.
    pub fn verify(&self, genesis: &Hash, key: &PublicKey) -> Result<(), CheckpointError> {
        keys::verify(key, CHECKPOINT_DOMAIN, genesis, &self.checkpoint.bytes(), &self.signature).map_err(|error| {
            CheckpointError::Signature {
                community: self.checkpoint.community.clone(),
                size: self.checkpoint.size,
                error,
            }
        })
    }

    /// A witness's cosignature of this checkpoint.
    pub fn cosign(&self, witness: CommunityId, key: &Keypair, genesis: &Hash) -> Cosignature {
        Cosignature {
            witness,
            key: key.public(),
            signature: key.sign(COSIGN_DOMAIN, genesis, &self.checkpoint.bytes()),
        }
    }

    /// Check one cosignature.
    pub fn verify_cosignature(&self, genesis: &Hash, c: &Cosignature) -> Result<(), SignatureError> {
        keys::verify(&c.key, COSIGN_DOMAIN, genesis, &self.checkpoint.bytes(), &c.signature)
    }
}

impl CosignedCheckpoint {
    /// Verify the issuer's signature and count distinct valid witnesses other than the issuer.
    /// `witness_may_sign(community, key)` says whether a witness community cosigns with that key
    /// (its key in force, or one it had when it cosigned); cosignatures by other keys are ignored.
    pub fn verify(
        &self,
        genesis: &Hash,
        issuer_key: &PublicKey,
        witness_may_sign: impl Fn(&CommunityId, &PublicKey) -> bool,
        min_witnesses: usize,
    ) -> Result<usize, CheckpointError> {
        self.signed.verify(genesis, issuer_key)?;
        let mut seen = BTreeSet::new();
        for c in &self.cosignatures {
            if c.witness == self.signed.checkpoint.community || !witness_may_sign(&c.witness, &c.key) {
                continue;
            }
            if self.signed.verify_cosignature(genesis, c).is_ok() {
                seen.insert(c.witness.clone());
            }
        }
        if seen.len() < min_witnesses {
            return Err(CheckpointError::TooFewWitnesses {
                community: self.signed.checkpoint.community.clone(),
                size: self.signed.checkpoint.size,
                expected: min_witnesses,
                actual: seen.len(),
            });
        }
        Ok(seen.len())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CheckpointError> {
        Ok(encoding::decode("cosigned checkpoint", bytes, MAX_MESSAGE_BYTES)?)
    }
}

/// Proof that a community signed two conflicting statements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EquivocationProof {
    /// Two entries at one `(community, seq)` with different hashes.
    Entries(Box<SignedEntry>, Box<SignedEntry>),
    /// Two checkpoints of one `(community, size)` with different roots.
    Checkpoints(Box<SignedCheckpoint>, Box<SignedCheckpoint>),
}

/// Why an equivocation proof does not prove anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EquivocationError {
    #[error("the two statements are by different communities ({0} and {1})")]
    DifferentCommunities(CommunityId, CommunityId),
    #[error("the two statements are at different positions ({0} and {1})")]
    DifferentPositions(u64, u64),
    #[error("the two statements are identical")]
    NotConflicting,
    #[error("a statement's signature does not verify: {0}")]
    Signature(SignatureError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl EquivocationProof {
    /// The accused community.
    pub fn community(&self) -> &CommunityId {
        match self {
            EquivocationProof::Entries(a, _) => &a.entry.community,
            EquivocationProof::Checkpoints(a, _) => &a.checkpoint.community,
        }
    }

    /// The seq (entries) or size (checkpoints) where the conflict is.
    pub fn position(&self) -> u64 {
        match self {
            EquivocationProof::Entries(a, _) => a.entry.seq,
            EquivocationProof::Checkpoints(a, _) => a.checkpoint.size,
        }
    }

    /// Check the proof: both statements verify under `key` (the community key in force at that
    /// position) and conflict.
    pub fn verify(&self, genesis: &Hash, key: &PublicKey) -> Result<(), EquivocationError> {
        match self {
            EquivocationProof::Entries(a, b) => {
                if a.entry.community != b.entry.community {
                    return Err(EquivocationError::DifferentCommunities(
                        a.entry.community.clone(),
                        b.entry.community.clone(),
                    ));
                }
                if a.entry.seq != b.entry.seq {
                    return Err(EquivocationError::DifferentPositions(a.entry.seq, b.entry.seq));
                }
                if a.hash(genesis) == b.hash(genesis) {
                    return Err(EquivocationError::NotConflicting);
                }
                a.verify_signature(genesis, key).map_err(EquivocationError::Signature)?;
                b.verify_signature(genesis, key).map_err(EquivocationError::Signature)?;
            }
            EquivocationProof::Checkpoints(a, b) => {
                let (ca, cb) = (&a.checkpoint, &b.checkpoint);
                if ca.community != cb.community {
                    return Err(EquivocationError::DifferentCommunities(ca.community.clone(), cb.community.clone()));
                }
                if ca.size != cb.size {
                    return Err(EquivocationError::DifferentPositions(ca.size, cb.size));
                }
                if ca.root == cb.root {
                    return Err(EquivocationError::NotConflicting);
                }
                for s in [a.as_ref(), b.as_ref()] {
                    s.verify(genesis, key).map_err(|e| match e {
                        CheckpointError::Signature { error, .. } => EquivocationError::Signature(error),
                        other => EquivocationError::Signature(SignatureError::BadSignature {
                            key: *key,
                            purpose: if matches!(other, CheckpointError::Decode(_)) { "decode" } else { "checkpoint" },
                        }),
                    })?;
                }
            }
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EquivocationError> {
        Ok(encoding::decode("equivocation proof", bytes, MAX_MESSAGE_BYTES)?)
    }
}
