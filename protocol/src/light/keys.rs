//! How a light client follows a community's key changes without replicating its ledger.
//!
//! A light client starts from the genesis keys. When a community rotates its key (`RotateKey`,
//! signed by the old key and the new one) or revokes it (`RevokeKey`, signed by the offline
//! recovery key), a full node answers with a [`KeyHistoryProof`]: every key-change entry of the
//! ledger, each with its audit path into one cosigned checkpoint that covers them all. The light
//! client checks the chain from the genesis key (each change signed by the key it replaces, or by
//! the recovery key), each audit path, and the checkpoint's signature by the key in force at its
//! size plus enough witness cosignatures. It then knows which key signs which seqs
//! ([`KeyHistory`]). A server that leaves out changes cannot fool it: the checkpoint (signed by
//! the newest key) then fails to verify; an older checkpoint only yields a shorter history, which
//! never replaces a longer one already learned.

use super::{covers, inclusion_matches, same_community, LightError};
use crate::body::Body;
use crate::checkpoint::CosignedCheckpoint;
use crate::entry::SignedEntry;
use crate::merkle::InclusionProof;
use crate::primitives::{CommunityId, Hash, PublicKey};
use crate::verify::{verify_entry, SignerKeys};
use serde::{Deserialize, Serialize};

/// One key-change entry and its audit path into the proof's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChangeProof {
    pub entry: SignedEntry,
    pub inclusion: InclusionProof,
}

/// Every key change of a community's ledger up to a cosigned checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHistoryProof {
    pub community: CommunityId,
    pub changes: Vec<KeyChangeProof>,
    pub checkpoint: CosignedCheckpoint,
}

/// Which key signs a community's entries from which seq on, as a light client verified it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHistory {
    /// The offline recovery key (from the genesis); it signs revocations.
    pub recovery: PublicKey,
    /// `(first seq, key)`, in order; the first is `(0, genesis key)`.
    pub keys: Vec<(u64, PublicKey)>,
    /// Keys revoked as compromised, in order: their cosignatures no longer count.
    pub revoked: Vec<PublicKey>,
    /// The checkpoint size the history was proven at (0 for the genesis history).
    pub proven_at: u64,
}

impl KeyHistory {
    /// The history a light client starts from: the genesis key from seq 0.
    pub fn genesis(signing: PublicKey, recovery: PublicKey) -> Self {
        Self { recovery, keys: vec![(0, signing)], revoked: vec![], proven_at: 0 }
    }

    /// The key that signs the entry at `seq` and checkpoints of size `seq` (as far as known).
    pub fn key_at(&self, seq: u64) -> PublicKey {
        self.keys.iter().rev().find(|(from, _)| *from <= seq).or(self.keys.first()).map(|(_, k)| *k).unwrap_or_default()
    }

    /// Whether a cosignature by `key` counts for this community as a witness: any key it had,
    /// unless revoked (a cosignature made before a rotation stays good).
    pub fn may_cosign(&self, key: &PublicKey) -> bool {
        self.keys.iter().any(|(_, k)| k == key) && !self.revoked.contains(key)
    }

    /// The newest key known.
    pub fn latest(&self) -> PublicKey {
        self.keys.last().map(|(_, k)| *k).unwrap_or_default()
    }

    /// The keys that may sign `entry`, and those in force after it.
    pub fn signer_of(&self, entry: &SignedEntry) -> PublicKey {
        SignerKeys { current: self.key_at(entry.entry.seq), recovery: self.recovery }.step(entry).0
    }

    /// Every key this community ever signed with, the recovery key included.
    pub fn all_keys(&self) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = self.keys.iter().map(|(_, k)| *k).collect();
        keys.push(self.recovery);
        keys
    }

    /// Whether `self` starts with every change of `known` (so it may replace it).
    pub fn extends(&self, known: &KeyHistory) -> bool {
        self.recovery == known.recovery
            && self.keys.get(..known.keys.len()) == Some(known.keys.as_slice())
            && self.revoked.starts_with(&known.revoked)
    }
}

/// The change entries are in increasing seq order.
pub(super) fn in_order(previous: Option<u64>, seq: u64) -> Result<(), LightError> {
    match previous {
        Some(p) if seq <= p => Err(LightError::KeyChangeOrder { after: p, actual: seq }),
        _ => Ok(()),
    }
}

/// The entry changes the community key.
pub(super) fn is_key_change(entry: &SignedEntry) -> Result<(), LightError> {
    match entry.entry.body {
        Body::RotateKey(_) | Body::RevokeKey(_) => Ok(()),
        _ => Err(LightError::NotAKeyChange { community: entry.entry.community.clone(), seq: entry.entry.seq }),
    }
}

/// A revocation names the key in force as the revoked one.
pub(super) fn revokes_the_key_in_force(entry: &SignedEntry, in_force: &PublicKey) -> Result<(), LightError> {
    match &entry.entry.body {
        Body::RevokeKey(r) if r.revoked_key != *in_force => Err(LightError::RevokedKey {
            community: entry.entry.community.clone(),
            seq: entry.entry.seq,
            expected: *in_force,
            actual: r.revoked_key,
        }),
        _ => Ok(()),
    }
}

/// Check a key history proof against `start` (the genesis history) and return the history it
/// proves. `witness_may_sign` says which keys count for each witness community.
pub(super) fn verify_history(
    genesis_hash: &Hash,
    start: &KeyHistory,
    proof: &KeyHistoryProof,
    witness_may_sign: impl Fn(&CommunityId, &PublicKey) -> bool,
    min_witnesses: usize,
) -> Result<KeyHistory, LightError> {
    let community = &proof.community;
    let cp = &proof.checkpoint.signed.checkpoint;
    same_community(community, &cp.community)?;
    let first = start.keys.get(..1).unwrap_or(&[]).to_vec();
    let mut history = KeyHistory { recovery: start.recovery, keys: first, revoked: vec![], proven_at: cp.size };
    let mut keys = SignerKeys { current: history.latest(), recovery: history.recovery };
    let mut previous = None;
    for change in &proof.changes {
        let entry = &change.entry;
        let seq = entry.entry.seq;
        same_community(community, &entry.entry.community)?;
        in_order(previous, seq)?;
        is_key_change(entry)?;
        revokes_the_key_in_force(entry, &keys.current)?;
        let (signer, next) = keys.step(entry);
        let verified =
            verify_entry(genesis_hash, entry.clone(), signer).map_err(|e| LightError::Signature(Box::new(e)))?;
        covers(seq, cp.size)?;
        inclusion_matches(&change.inclusion, seq, cp.size)?;
        change.inclusion.verify(&verified.hash(), &cp.root).map_err(|error| LightError::Inclusion {
            community: community.clone(),
            seq,
            error,
        })?;
        let from = seq.checked_add(1).ok_or(LightError::NotCovered { seq, size: cp.size })?;
        history.keys.push((from, next.current));
        if let Body::RevokeKey(r) = &entry.entry.body {
            history.revoked.push(r.revoked_key);
        }
        keys = next;
        previous = Some(seq);
    }
    proof
        .checkpoint
        .verify(genesis_hash, &keys.current, witness_may_sign, min_witnesses)
        .map_err(LightError::Checkpoint)?;
    Ok(history)
}

/// Whether a learned history may replace the known one: it must extend what is known (a
/// shorter, older one is ignored; a conflicting one is an error).
pub(super) fn replaces(community: &CommunityId, known: &KeyHistory, learned: &KeyHistory) -> Result<bool, LightError> {
    if learned.extends(known) {
        return Ok(learned.keys.len() > known.keys.len());
    }
    if known.extends(learned) {
        return Ok(false);
    }
    Err(LightError::KeyHistoryConflict { community: community.clone() })
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
