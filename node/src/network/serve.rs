//! Answering requests from peers and merchant light nodes: ledger heads and entry ranges (sync);
//! payment and settlement submissions, sequenced here when this node is the home community
//! (the event loop forwards them to the home community's node otherwise); entry proofs (the
//! entry, the best stored checkpoint covering it and the audit path); the `Credit` of a payment;
//! consistency proofs; the equivocation alerts this node holds; a community's key history; and
//! the latest checkpoint of a ledger.
//!
//! Store reads run on the blocking pool; submissions go through the sequencer like any other.

use super::messages::{SyncRequest, SyncResponse, MAX_RANGE_ENTRIES, MAX_RESPONSE_BYTES};
use crate::sequencer::{Draft, Receipt, SequencerHandle, SubmitError};
use crate::store::{Store, StoreError};
use linli_protocol::checkpoint::CosignedCheckpoint;
use linli_protocol::light::{EntryProof, KeyChangeProof, KeyHistoryProof};
use linli_protocol::merkle::{prove_consistency_from, prove_inclusion_from};
use linli_protocol::{Change, CommunityId, EntryRef, StateKey};
use std::collections::BTreeSet;
use tokio::sync::mpsc;

/// Most checkpoints looked at when choosing the one to prove an entry against.
const CHECKPOINTS_CONSIDERED: usize = 64;

/// What answers requests: a cheap clone per request.
#[derive(Clone)]
pub(super) struct Server {
    pub community: CommunityId,
    pub store: Store,
    pub sequencer: SequencerHandle,
    /// Ask for a checkpoint soon (coalesced): a light node is waiting for one.
    pub checkpoint_soon: mpsc::Sender<()>,
}

impl Server {
    /// The community a submission must be forwarded to, if it is not this node's.
    pub fn forward_to(&self, request: &SyncRequest) -> Option<CommunityId> {
        match request {
            SyncRequest::SubmitPayment { home, .. } | SyncRequest::SubmitSettlement { home, .. }
                if *home != self.community =>
            {
                Some(home.clone())
            }
            _ => None,
        }
    }

    pub async fn answer(self, request: SyncRequest) -> SyncResponse {
        match request {
            SyncRequest::SubmitPayment { payment, .. } => {
                let result = self.sequencer.submit(Draft::Pay(*payment)).await;
                self.soon();
                submitted(result)
            }
            SyncRequest::SubmitSettlement { request, .. } => {
                submitted(self.sequencer.submit(Draft::Settle(*request)).await)
            }
            other => {
                let me = self.clone();
                let response = tokio::task::spawn_blocking(move || me.read(other))
                    .await
                    .unwrap_or_else(|e| SyncResponse::Error(e.to_string()));
                if matches!(response, SyncResponse::NotYet(_)) {
                    self.soon();
                }
                response
            }
        }
    }

    fn soon(&self) {
        let _ = self.checkpoint_soon.try_send(());
    }

    fn read(&self, request: SyncRequest) -> SyncResponse {
        let result = match request {
            SyncRequest::Head(community) => {
                self.store.head(&community).map(|(size, head)| SyncResponse::Head { community, size, head })
            }
            SyncRequest::Range { community, from, limit } => {
                let limit = limit.clamp(1, MAX_RANGE_ENTRIES) as usize;
                self.store.entries(&community, from, limit, MAX_RESPONSE_BYTES / 2).map(SyncResponse::Entries)
            }
            SyncRequest::Proof { community, seq } => entry_proof(&self.store, &community, seq),
            SyncRequest::CreditOf { merchant_community, source } => {
                match self.store.state_item(&StateKey::Pay(source.hash)) {
                    Ok(Some(Change::Pay(_, record))) if record.at == source => match record.credited_by {
                        Some(at) if at.community == merchant_community => {
                            entry_proof(&self.store, &at.community, at.seq)
                        }
                        Some(at) => Ok(SyncResponse::Error(format!("payment credited on {}, not here", at.community))),
                        None => Ok(SyncResponse::NotYet(format!(
                            "{} seq {} is not credited yet",
                            source.community, source.seq
                        ))),
                    },
                    Ok(_) => Ok(SyncResponse::NotYet(format!(
                        "payment {} seq {} is not held here",
                        source.community, source.seq
                    ))),
                    Err(e) => Err(e),
                }
            }
            SyncRequest::Consistency { community, old_size, new_size } => {
                match prove_consistency_from(&self.store.leaves(&community), old_size, new_size) {
                    Ok(p) => Ok(SyncResponse::Consistency(p)),
                    Err(e) => Ok(SyncResponse::Error(format!("consistency proof of {community}: {e}"))),
                }
            }
            SyncRequest::Alerts => self.store.alerts().map(SyncResponse::Alerts),
            SyncRequest::KeyHistory(community) => key_history(&self.store, &community),
            SyncRequest::Evidence(reference) => cited_entry(&self.store, &reference),
            SyncRequest::LatestCheckpoint(community) => self.store.latest_checkpoint(&community).map(|cp| match cp {
                Some(cp) => SyncResponse::Checkpoint(Box::new(cp)),
                None => SyncResponse::NotYet(format!("no checkpoint of {community} is held here")),
            }),
            SyncRequest::SubmitPayment { .. } | SyncRequest::SubmitSettlement { .. } => {
                Ok(SyncResponse::Error("submissions are not reads".into()))
            }
        };
        result.unwrap_or_else(|e| SyncResponse::Error(e.to_string()))
    }
}

/// The entry `reference` names, from this node's copy of its ledger or from the evidence it
/// holds (answer to [`SyncRequest::Evidence`]).
pub fn cited_entry(store: &Store, reference: &EntryRef) -> Result<SyncResponse, StoreError> {
    let (c, seq) = (&reference.community, reference.seq);
    if linli_protocol::merkle::LeafSource::leaf(&store.leaves(c), seq) == Some(reference.hash) {
        if let Some(e) = store.entry(c, seq)? {
            return Ok(SyncResponse::Entries(vec![e]));
        }
    }
    match store.evidence_entry(&reference.hash)? {
        Some(e) => Ok(SyncResponse::Entries(vec![e])),
        None => Ok(SyncResponse::NotYet(format!("{c} seq {seq} with hash {} is not held here", reference.hash))),
    }
}

/// The stored checkpoint covering `seq` with the most witnesses (then the smallest), among
/// those this node can prove against: a checkpoint gossiped by a peer may be ahead of the
/// entries held here.
fn best_checkpoint(store: &Store, community: &CommunityId, seq: u64) -> Result<Option<CosignedCheckpoint>, StoreError> {
    let held = store.head(community)?.0;
    let mut covering = store.checkpoints_covering(community, seq, CHECKPOINTS_CONSIDERED)?;
    covering.retain(|cp| cp.signed.checkpoint.size <= held);
    let witnesses = |cp: &CosignedCheckpoint| cp.cosignatures.iter().map(|c| &c.witness).collect::<BTreeSet<_>>().len();
    Ok(covering.into_iter().max_by_key(|cp| (witnesses(cp), std::cmp::Reverse(cp.signed.checkpoint.size))))
}

/// Entry `seq` of `community`, the best checkpoint covering it, and the audit path from the
/// entry to its root (what a merchant's till verifies a sale with).
pub fn entry_proof(store: &Store, community: &CommunityId, seq: u64) -> Result<SyncResponse, StoreError> {
    let Some(entry) = store.entry(community, seq)? else {
        return Ok(SyncResponse::NotYet(format!("{community} seq {seq} is not held here")));
    };
    let Some(checkpoint) = best_checkpoint(store, community, seq)? else {
        return Ok(SyncResponse::NotYet(format!("no checkpoint of {community} covers seq {seq} yet")));
    };
    let size = checkpoint.signed.checkpoint.size;
    let inclusion = prove_inclusion_from(&store.leaves(community), seq, size)
        .map_err(|e| StoreError::CorruptRecord(format!("inclusion proof of {community} seq {seq}: {e}")))?;
    Ok(SyncResponse::Proof(Box::new(EntryProof { entry, checkpoint, inclusion })))
}

/// Every key change of `community` (seqs from its ledger state) with audit paths into the best
/// checkpoint covering the last of them.
pub fn key_history(store: &Store, community: &CommunityId) -> Result<SyncResponse, StoreError> {
    let seqs = match store.state_item(&StateKey::Ledger(community.clone()))? {
        Some(Change::Ledger(_, ledger)) => ledger.key_changes,
        _ => vec![],
    };
    let last = seqs.last().copied().unwrap_or(0);
    let Some(checkpoint) = best_checkpoint(store, community, last)? else {
        return Ok(SyncResponse::NotYet(format!("no checkpoint of {community} covers seq {last} yet")));
    };
    let size = checkpoint.signed.checkpoint.size;
    let leaves = store.leaves(community);
    let mut changes = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let entry = store
            .entry(community, seq)?
            .ok_or_else(|| StoreError::CorruptRecord(format!("key change {community} seq {seq} is missing")))?;
        let inclusion = prove_inclusion_from(&leaves, seq, size)
            .map_err(|e| StoreError::CorruptRecord(format!("inclusion proof of {community} seq {seq}: {e}")))?;
        changes.push(KeyChangeProof { entry, inclusion });
    }
    Ok(SyncResponse::KeyHistory(Box::new(KeyHistoryProof { community: community.clone(), changes, checkpoint })))
}

fn submitted(result: Result<Receipt, SubmitError>) -> SyncResponse {
    match result {
        Ok(receipt) => SyncResponse::Sequenced(Box::new(receipt.entry)),
        Err(SubmitError::Rejected(r)) => {
            SyncResponse::Refused { rule: r.rejection.rule().to_string(), message: r.to_string() }
        }
        Err(e) => SyncResponse::Error(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::store::Batch;
    use linli_protocol::body::{Body, Enroll};
    use linli_protocol::checkpoint::{Checkpoint, SignedCheckpoint};
    use linli_protocol::testkit::{cid, key, TestFederation};
    use linli_protocol::Hash;

    /// Found by the simulated tills: a checkpoint gossiped by a peer can be ahead of the
    /// entries held here; a proof is then made against one this node holds the entries for.
    #[test]
    fn an_entry_proof_uses_a_checkpoint_this_node_holds_the_entries_for() {
        let f = TestFederation::new(&["a"]);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &f.genesis).unwrap();
        let mut w = f.chain("a");
        let entries: Vec<_> = (0..5)
            .map(|i| {
                let e =
                    w.next(Body::Enroll(Enroll { resident: key(&format!("r{i}")).public(), profile_hash: Hash::ZERO }));
                let h = e.hash(&f.genesis_hash);
                (e, h)
            })
            .collect();
        store.commit(&Batch { entries, ..Batch::default() }).unwrap();
        let checkpoint = |size: u64, root: Hash| CosignedCheckpoint {
            signed: SignedCheckpoint::sign(
                Checkpoint { community: cid("a"), size, root, time_ms: 1 },
                &key("a/signing"),
                &f.genesis_hash,
            ),
            cosignatures: vec![],
        };
        let ahead = checkpoint(8, Hash([8; 32]));
        store.commit(&Batch { checkpoints: vec![ahead], ..Batch::default() }).unwrap();
        // Only the checkpoint ahead covers seq 2: not yet provable here, and not "corrupt".
        assert!(matches!(entry_proof(&store, &cid("a"), 2).unwrap(), SyncResponse::NotYet(_)));
        let held = checkpoint(5, store.root(&cid("a"), 5).unwrap());
        store.commit(&Batch { checkpoints: vec![held], ..Batch::default() }).unwrap();
        match entry_proof(&store, &cid("a"), 2).unwrap() {
            SyncResponse::Proof(p) => {
                assert_eq!(p.checkpoint.signed.checkpoint.size, 5);
                p.inclusion.verify(&p.entry.hash(&f.genesis_hash), &p.checkpoint.signed.checkpoint.root).unwrap();
            }
            other => panic!("expected a proof, got {other:?}"),
        }
    }
}
