//! What a light client (a merchant's till) checks before it trusts an entry of a ledger it does
//! not replicate: the entry's signature by its community, the entry's inclusion in a checkpoint
//! (RFC 9162 audit path), the checkpoint's signature by the same community, enough distinct
//! witness cosignatures, and that the community is not known to have equivocated.
//!
//! Keys start from the genesis; a light client follows a community's rotations and revocations
//! by checking a [`KeyHistoryProof`] (see [`keys`]).

use crate::body::{Body, Payment, Signed};
use crate::checkpoint::{CheckpointError, CosignedCheckpoint};
use crate::entry::SignedEntry;
use crate::genesis::Genesis;
use crate::merkle::{InclusionProof, MerkleError};
use crate::primitives::{CommunityId, Hash, PublicKey};
use crate::verify::{verify_entry, VerifyError};
use crate::EntryRef;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub mod keys;
pub use keys::{KeyChangeProof, KeyHistory, KeyHistoryProof};

/// An entry with a checkpoint that covers it and the audit path from the entry to the
/// checkpoint's root: everything a light client needs to trust the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryProof {
    pub entry: SignedEntry,
    pub checkpoint: CosignedCheckpoint,
    pub inclusion: InclusionProof,
}

/// Why a light client refused a proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightError {
    #[error("community {community} is not in the genesis")]
    UnknownCommunity { community: CommunityId },
    #[error("community {community} is marked faulty (equivocation proven): its proofs are refused")]
    Faulty { community: CommunityId },
    #[error("the checkpoint is of {actual}, but the entry is of {expected}")]
    CheckpointCommunity { expected: CommunityId, actual: CommunityId },
    #[error("{0}")]
    Signature(Box<VerifyError>),
    #[error("{0}")]
    Checkpoint(CheckpointError),
    #[error("the checkpoint covers {size} entries, so it cannot contain seq {seq}")]
    NotCovered { seq: u64, size: u64 },
    #[error("inclusion proof is for leaf {actual}, but the entry's seq is {expected}")]
    LeafIndex { expected: u64, actual: u64 },
    #[error("inclusion proof is for a tree of {actual} entries, but the checkpoint has {expected}")]
    TreeSize { expected: u64, actual: u64 },
    #[error("inclusion proof of {community} seq {seq}: {error}")]
    Inclusion { community: CommunityId, seq: u64, error: MerkleError },
    #[error("the entry at {community} seq {seq} is not the payment that was submitted ({what})")]
    NotThePayment { community: CommunityId, seq: u64, what: &'static str },
    #[error("key changes out of order: seq {actual} after seq {after}")]
    KeyChangeOrder { after: u64, actual: u64 },
    #[error("the entry at {community} seq {seq} is not a key change")]
    NotAKeyChange { community: CommunityId, seq: u64 },
    #[error("the revocation at {community} seq {seq} revokes {actual}, but the key in force is {expected}")]
    RevokedKey { community: CommunityId, seq: u64, expected: PublicKey, actual: PublicKey },
    #[error("the key history of {community} conflicts with the one already verified")]
    KeyHistoryConflict { community: CommunityId },
}

/// What a light client trusts: the genesis, how many witnesses a checkpoint needs, and which
/// communities have been proven faulty.
#[derive(Debug, Clone)]
pub struct LightTrust {
    genesis: Genesis,
    genesis_hash: Hash,
    min_witnesses: usize,
    faulty: BTreeSet<CommunityId>,
    /// Each community's keys: from the genesis, then as learned from key history proofs.
    keys: BTreeMap<CommunityId, KeyHistory>,
}

/// A proof that passed: the entry, where it is, and how many witnesses vouched for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    pub at: EntryRef,
    pub checkpoint_size: u64,
    pub witnesses: usize,
}

impl LightTrust {
    pub fn new(genesis: Genesis, min_witnesses: usize) -> Self {
        let genesis_hash = genesis.hash();
        let keys = genesis
            .communities
            .iter()
            .map(|c| (c.id.clone(), KeyHistory::genesis(c.signing_key, c.recovery_key)))
            .collect();
        Self { genesis, genesis_hash, min_witnesses, faulty: BTreeSet::new(), keys }
    }

    /// What this client knows of `community`'s keys.
    pub fn history(&self, community: &CommunityId) -> Option<&KeyHistory> {
        self.keys.get(community)
    }

    /// Restore a history this client verified before (kept in its own store). It is taken only
    /// if it extends the genesis history of that community.
    pub fn restore_history(&mut self, community: &CommunityId, history: KeyHistory) -> Result<(), LightError> {
        let known = self.history_or_unknown(community)?;
        if !history.extends(known) {
            return Err(LightError::KeyHistoryConflict { community: community.clone() });
        }
        self.keys.insert(community.clone(), history);
        Ok(())
    }

    /// Check a key history proof; returns the history when it is longer than the one known
    /// (and now in force here), `None` when it tells nothing new.
    pub fn learn_keys(&mut self, proof: &KeyHistoryProof) -> Result<Option<KeyHistory>, LightError> {
        let community = &proof.community;
        not_faulty(&self.faulty, community)?;
        let known = self.history_or_unknown(community)?;
        let learned = keys::verify_history(
            &self.genesis_hash,
            known,
            proof,
            |w, k| self.keys.get(w).is_some_and(|h| h.may_cosign(k)),
            self.min_witnesses,
        )?;
        if !keys::replaces(community, known, &learned)? {
            return Ok(None);
        }
        self.keys.insert(community.clone(), learned.clone());
        Ok(Some(learned))
    }

    fn history_or_unknown(&self, community: &CommunityId) -> Result<&KeyHistory, LightError> {
        self.keys.get(community).ok_or_else(|| LightError::UnknownCommunity { community: community.clone() })
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    pub fn genesis_hash(&self) -> &Hash {
        &self.genesis_hash
    }

    pub fn min_witnesses(&self) -> usize {
        self.min_witnesses
    }

    /// Refuse this community's proofs from now on (an equivocation proof was verified).
    pub fn mark_faulty(&mut self, community: CommunityId) {
        self.faulty.insert(community);
    }

    pub fn is_faulty(&self, community: &CommunityId) -> bool {
        self.faulty.contains(community)
    }

    /// Check an entry proof: not faulty, entry signature, checkpoint signature and witnesses,
    /// and the audit path from the entry to the checkpoint's root.
    pub fn verify(&self, proof: &EntryProof) -> Result<VerifiedProof, LightError> {
        let community = &proof.entry.entry.community;
        let seq = proof.entry.entry.seq;
        not_faulty(&self.faulty, community)?;
        let history = self.history_or_unknown(community)?;
        let cp = &proof.checkpoint.signed.checkpoint;
        same_community(community, &cp.community)?;
        let verified = verify_entry(&self.genesis_hash, proof.entry.clone(), history.signer_of(&proof.entry))
            .map_err(|e| LightError::Signature(Box::new(e)))?;
        let witnesses = proof
            .checkpoint
            .verify(
                &self.genesis_hash,
                &history.key_at(cp.size),
                |w, k| self.keys.get(w).is_some_and(|h| h.may_cosign(k)),
                self.min_witnesses,
            )
            .map_err(LightError::Checkpoint)?;
        covers(seq, cp.size)?;
        inclusion_matches(&proof.inclusion, seq, cp.size)?;
        let hash = verified.hash();
        proof.inclusion.verify(&hash, &cp.root).map_err(|error| LightError::Inclusion {
            community: community.clone(),
            seq,
            error,
        })?;
        Ok(VerifiedProof {
            at: EntryRef { community: community.clone(), seq, hash },
            checkpoint_size: cp.size,
            witnesses,
        })
    }

    /// Check a proof and that its entry is the `Pay` of exactly this signed payment.
    pub fn verify_payment(&self, proof: &EntryProof, payment: &Signed<Payment>) -> Result<VerifiedProof, LightError> {
        is_the_payment(&proof.entry, payment)?;
        self.verify(proof)
    }
}

fn not_faulty(faulty: &BTreeSet<CommunityId>, community: &CommunityId) -> Result<(), LightError> {
    if faulty.contains(community) {
        return Err(LightError::Faulty { community: community.clone() });
    }
    Ok(())
}

fn same_community(expected: &CommunityId, actual: &CommunityId) -> Result<(), LightError> {
    if expected != actual {
        return Err(LightError::CheckpointCommunity { expected: expected.clone(), actual: actual.clone() });
    }
    Ok(())
}

fn covers(seq: u64, size: u64) -> Result<(), LightError> {
    if seq >= size {
        return Err(LightError::NotCovered { seq, size });
    }
    Ok(())
}

fn inclusion_matches(p: &InclusionProof, seq: u64, size: u64) -> Result<(), LightError> {
    if p.leaf_index != seq {
        return Err(LightError::LeafIndex { expected: seq, actual: p.leaf_index });
    }
    if p.tree_size != size {
        return Err(LightError::TreeSize { expected: size, actual: p.tree_size });
    }
    Ok(())
}

fn is_the_payment(entry: &SignedEntry, payment: &Signed<Payment>) -> Result<(), LightError> {
    let what = match &entry.entry.body {
        Body::Pay(p) if p.payment == *payment => return Ok(()),
        Body::Pay(_) => "another payment",
        _ => "not a payment",
    };
    Err(LightError::NotThePayment { community: entry.entry.community.clone(), seq: entry.entry.seq, what })
}

#[cfg(test)]
mod tests;
