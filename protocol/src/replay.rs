//! Replaying ledgers from genesis: batch-verify each community's entries (following key
//! rotations), then apply them to a fresh [`State`] round-robin, so that an entry citing
//! another ledger (a `Credit` citing a `Pay`) waits until the cited entry has been applied.
//! Used by nodes (`--check`, start-up) and by the CLI's `verify`.

use crate::body::EntryRef;
use crate::genesis::Genesis;
use crate::primitives::{CommunityId, Hash};
use crate::state::{ApplyContext, RejectedEntry, Rejection, State};
use crate::verify::{verify_entry, verify_run, SignerKeys, VerifiedEntry, VerifyError};
use crate::SignedEntry;
use std::collections::{BTreeMap, VecDeque};

/// Why a replay stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("community {0} is not in the genesis")]
    UnknownCommunity(CommunityId),
    #[error(transparent)]
    Signature(#[from] VerifyError),
    #[error(transparent)]
    Rejected(#[from] RejectedEntry),
    #[error("community {community} seq {seq}: cites an entry that no ledger holds ({reason})")]
    Unresolved { community: CommunityId, seq: u64, reason: String },
}

/// Progress callback: called with the number of entries applied so far.
pub type Progress<'a> = &'a mut dyn FnMut(u64);

/// What a node holds about equivocators beside their ledgers: the first proven conflict of
/// each faulty community, and the entries past it that it took as evidence for citations by
/// honest ledgers ([`State::check_evidence`]), by hash.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub conflicts: BTreeMap<CommunityId, u64>,
    pub entries: BTreeMap<Hash, SignedEntry>,
}

/// Replay every ledger in `ledgers` (each in seq order from 0) from genesis.
pub fn replay(
    genesis: &Genesis,
    ledgers: BTreeMap<CommunityId, Vec<SignedEntry>>,
    progress: Option<Progress<'_>>,
) -> Result<State, ReplayError> {
    replay_with_evidence(genesis, ledgers, &Evidence::default(), progress)
}

/// Admit the evidence entry `reference` names, if `evidence` holds it; true when it made a new
/// record.
fn admit(state: &mut State, evidence: &Evidence, reference: &EntryRef) -> Result<bool, ReplayError> {
    let (Some(entry), Some(conflict_at)) =
        (evidence.entries.get(&reference.hash), evidence.conflicts.get(&reference.community))
    else {
        return Ok(false);
    };
    let Some(key) = state.ledgers.get(&reference.community).and_then(|l| l.key_in_force_at(*conflict_at)) else {
        return Ok(false);
    };
    let v = verify_entry(&state.genesis_hash, entry.clone(), key)?;
    let changes = state.check_evidence(&v, *conflict_at)?;
    // Nothing new (already admitted, or not the record the citation reads): not progress.
    let admitted = !changes.is_empty();
    state.commit(changes);
    Ok(admitted)
}

/// [`replay`], with the evidence a node took for citations of an equivocator's other branch.
pub fn replay_with_evidence(
    genesis: &Genesis,
    ledgers: BTreeMap<CommunityId, Vec<SignedEntry>>,
    evidence: &Evidence,
    progress: Option<Progress<'_>>,
) -> Result<State, ReplayError> {
    let genesis_hash = genesis.hash();
    let mut state = State::new(genesis);
    let mut queues: BTreeMap<CommunityId, VecDeque<VerifiedEntry>> = BTreeMap::new();
    for (community, entries) in ledgers {
        let info = genesis.community(&community).ok_or_else(|| ReplayError::UnknownCommunity(community.clone()))?;
        let keys = SignerKeys { current: info.signing_key, recovery: info.recovery_key };
        let verified = verify_run(&genesis_hash, entries, keys).map_err(|(_, e)| e)?;
        queues.insert(community, verified.into_iter().collect());
    }
    let mut applied: u64 = 0;
    let mut progress = progress;
    loop {
        let mut progressed = false;
        let mut blocked: Option<RejectedEntry> = None;
        for queue in queues.values_mut() {
            while let Some(v) = queue.front() {
                match state.check(v, &ApplyContext::default()) {
                    Ok(changes) => {
                        state.commit(changes);
                        queue.pop_front();
                        progressed = true;
                        applied = applied.saturating_add(1);
                        if applied.is_multiple_of(4096) {
                            if let Some(p) = progress.as_mut() {
                                p(applied);
                            }
                        }
                    }
                    Err(e) if e.rejection.is_missing_dependency() => {
                        if let Rejection::MissingDependency { reference, .. } = &e.rejection {
                            if admit(&mut state, evidence, reference)? {
                                progressed = true;
                                continue;
                            }
                        }
                        blocked.get_or_insert(e);
                        break;
                    }
                    Err(e) => return Err(ReplayError::Rejected(e)),
                }
            }
        }
        if queues.values().all(|q| q.is_empty()) {
            if let Some(p) = progress.as_mut() {
                p(applied);
            }
            return Ok(state);
        }
        if !progressed {
            // Every non-empty queue is waiting on a citation nothing can satisfy.
            let (community, seq, reason) = match blocked {
                Some(e) => (e.community, e.seq, e.rejection.to_string()),
                None => queues
                    .iter()
                    .find_map(|(c, q)| q.front().map(|v| (c.clone(), v.signed().entry.seq, "no progress".to_string())))
                    .unwrap_or_else(|| {
                        (
                            genesis.communities.first().map(|c| c.id.clone()).unwrap_or(community_of_last_resort()),
                            0,
                            String::new(),
                        )
                    }),
            };
            return Err(ReplayError::Unresolved { community, seq, reason });
        }
    }
}

fn community_of_last_resort() -> CommunityId {
    // Unreachable: a checked genesis has at least one community.
    CommunityId::new("unknown").unwrap_or_else(|_| community_of_last_resort())
}
