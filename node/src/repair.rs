//! Repairing a damaged store from what peers hold.
//!
//! Every ledger is read back entry by entry (a RocksDB checksum error or bytes that no longer
//! decode stop it), each entry must hash to its stored Merkle leaf, signatures and the hash
//! chain are verified, and the ledgers are replayed from genesis through the state machine.
//! A peer ledger that fails at seq k is cut back to its first k entries (with any ledger whose
//! entries cite what was cut); the state is rebuilt from the replay; on its next start the node
//! syncs the rest from its peers and re-validates it. Stored Merkle subtree roots are recomputed
//! from the leaves. The community's own ledger is never cut:
//! the node refuses to sign from a damaged ledger, and the operator restores it (peers hold
//! signed copies: `linli export` / a copy of a peer's data directory).

use crate::store::{Store, StoreError, OLDEST_UPGRADABLE_SCHEMA, SCHEMA_VERSION};
use linli_protocol::replay::{replay_with_evidence, ReplayError};
use linli_protocol::verify::{verify_run, SignerKeys};
use linli_protocol::{CommunityId, Genesis, SignedEntry};
use std::collections::BTreeMap;
use std::path::Path;

/// What a repair did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// (community, kept entries, entries before, why): ledgers cut back.
    pub cut: Vec<(CommunityId, u64, u64, String)>,
    pub entries_kept: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("this community's own ledger {community} is damaged at seq {seq}: {reason}; the node will not sign from it. Restore the data directory from a backup, or rebuild it from a peer's copy of the ledger")]
    OwnLedger { community: CommunityId, seq: u64, reason: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("replay: {0}")]
    Replay(ReplayError),
}

/// The readable, well-formed prefix of one stored ledger, and why it stops early (if it does).
fn readable_prefix(
    store: &Store,
    c: &CommunityId,
    gh: &linli_protocol::Hash,
) -> (Vec<SignedEntry>, u64, Option<String>) {
    let size = store.head(c).map(|(n, _)| n).unwrap_or(0);
    let leaves = store.leaves(c);
    let mut out = Vec::new();
    for seq in 0..size {
        let problem = match store.entry(c, seq) {
            Ok(Some(e)) => match linli_protocol::merkle::LeafSource::leaf(&leaves, seq) {
                Some(leaf) if leaf == e.hash(gh) => {
                    out.push(e);
                    continue;
                }
                _ => "the entry does not hash to its stored Merkle leaf".to_string(),
            },
            Ok(None) => "the entry is missing".to_string(),
            Err(e) => e.to_string(),
        };
        return (out, size, Some(problem));
    }
    (out, size, None)
}

/// Open the store at `path`, first bringing one of an older schema version to
/// [`SCHEMA_VERSION`] (node stopped, at start): the logged parts (entries, leaves,
/// checkpoints, alerts) are kept; everything derived from them — the state, the per-entry
/// records, the Merkle subtree roots — is rebuilt by a [`repair`] (which also verifies every
/// ledger), then the new version is recorded. Also returns, when it upgraded, the version it
/// found and the repair's report.
pub fn open_upgrading(
    path: &Path,
    genesis: &Genesis,
    own: &CommunityId,
) -> Result<(Store, Option<(u32, RepairReport)>), RepairError> {
    let (store, found) = Store::open_any_version(path, genesis)?;
    if found == SCHEMA_VERSION {
        return Ok((store, None));
    }
    if !(OLDEST_UPGRADABLE_SCHEMA..SCHEMA_VERSION).contains(&found) {
        return Err(StoreError::Schema { expected: SCHEMA_VERSION, actual: found }.into());
    }
    tracing::warn!(
        from = found,
        to = SCHEMA_VERSION,
        "upgrading the store: rebuilding the derived state from the ledgers"
    );
    let report = repair(&store, genesis, own)?;
    store.set_schema_version(SCHEMA_VERSION)?;
    Ok((store, Some((found, report))))
}

/// Check every ledger, cut damaged peer ledgers back and rebuild the state (node stopped).
pub fn repair(store: &Store, genesis: &Genesis, own: &CommunityId) -> Result<RepairReport, RepairError> {
    let gh = genesis.hash();
    let mut ledgers: BTreeMap<CommunityId, Vec<SignedEntry>> = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    let mut reasons: BTreeMap<CommunityId, String> = BTreeMap::new();
    for info in &genesis.communities {
        let (mut entries, size, problem) = readable_prefix(store, &info.id, &gh);
        let keys = SignerKeys { current: info.signing_key, recovery: info.recovery_key };
        let mut problem = problem;
        if let Err((prefix, e)) = verify_run(&gh, entries.clone(), keys) {
            entries.truncate(prefix.len());
            problem = Some(e.to_string());
        }
        if let Some(p) = problem {
            reasons.insert(info.id.clone(), p);
        }
        sizes.insert(info.id.clone(), size);
        ledgers.insert(info.id.clone(), entries);
    }
    // Evidence for citations of equivocators' other branches (unreadable evidence is dropped:
    // the citing ledgers are then cut back, and peers serve both again).
    let evidence = store.evidence().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "evidence unreadable; dropped");
        Default::default()
    });
    // Replay; an entry the state machine refuses (or whose citation was cut) cuts its ledger.
    let state = loop {
        match replay_with_evidence(genesis, ledgers.clone(), &evidence, None) {
            Ok(state) => break state,
            Err(ReplayError::Rejected(e)) => {
                reasons.entry(e.community.clone()).or_insert_with(|| e.to_string());
                if let Some(l) = ledgers.get_mut(&e.community) {
                    l.truncate(e.seq as usize);
                }
            }
            Err(ReplayError::Unresolved { community, seq, reason }) => {
                reasons.entry(community.clone()).or_insert(reason);
                if let Some(l) = ledgers.get_mut(&community) {
                    l.truncate(seq as usize);
                }
            }
            Err(e) => return Err(RepairError::Replay(e)),
        }
    };
    let mut report = RepairReport::default();
    let mut cuts = Vec::new();
    for (c, entries) in &ledgers {
        let (kept, before) = (entries.len() as u64, sizes.get(c).copied().unwrap_or(0));
        report.entries_kept += kept;
        if kept < before {
            let reason = reasons.get(c).cloned().unwrap_or_default();
            if c == own {
                return Err(RepairError::OwnLedger { community: c.clone(), seq: kept, reason });
            }
            tracing::warn!(community = %c, seq = kept, %reason, "cutting a damaged peer ledger back; peers will restore it");
            cuts.push((c.clone(), kept, before));
            report.cut.push((c.clone(), kept, before, reason));
        }
    }
    // Quarantine flags come from stored equivocation proofs, not from the log.
    let mut state = state;
    for proof in store.alerts()? {
        state.mark_faulty(proof.community(), proof.position());
    }
    store.truncate_and_rebuild(&cuts, &state)?;
    // Merkle subtree roots are derived from the leaves: recompute them all.
    for info in &genesis.communities {
        store.rebuild_subtrees(&info.id)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::store::{Batch, Column};
    use linli_protocol::body::{Body, Enroll};
    use linli_protocol::testkit::{cid, key, TestFederation};
    use linli_protocol::Hash;

    /// A stopped node's store of `b` holding 5 entries of `a`, written at schema `version`,
    /// with a state row the current code cannot decode (as an older layout's would be).
    fn old_store(dir: &Path, version: u32) -> TestFederation {
        let mut fed = TestFederation::new(&["a", "b"]);
        let store = Store::open(dir, &fed.genesis).unwrap();
        let mut batch = Batch::default();
        for i in 0..5 {
            let body = Body::Enroll(Enroll { resident: key(&format!("r{i}")).public(), profile_hash: Hash::ZERO });
            let v = fed.append("a", body).unwrap();
            batch.entries.push((v.signed().clone(), v.hash()));
        }
        store.commit(&batch).unwrap();
        store.truncate_and_rebuild(&[], &fed.state).unwrap();
        let totals = linli_protocol::encoding::encode(&linli_protocol::StateKey::Totals(cid("a")));
        store.put_raw(Column::State, &totals, &[1, 2, 3]).unwrap();
        store.set_schema_version(version).unwrap();
        fed
    }

    #[test]
    fn an_older_store_is_upgraded_by_rebuilding_what_is_derived() {
        let dir = tempfile::tempdir().unwrap();
        let fed = old_store(dir.path(), SCHEMA_VERSION - 1);
        let refused = Store::open(dir.path(), &fed.genesis);
        assert!(matches!(refused, Err(StoreError::Schema { actual, .. }) if actual == SCHEMA_VERSION - 1));

        let (store, upgraded) = open_upgrading(dir.path(), &fed.genesis, &cid("b")).unwrap();
        let (from, report) = upgraded.unwrap();
        assert_eq!((from, report.entries_kept, report.cut.len()), (SCHEMA_VERSION - 1, 5, 0));
        drop(store);
        let store = Store::open(dir.path(), &fed.genesis).unwrap();
        let state = store.load_state(&fed.genesis).unwrap();
        assert_eq!(state, fed.state);
        crate::node::full_check(&store, &fed.genesis, &state).unwrap();
        drop(store);
        // Current now: nothing more to do.
        assert!(open_upgrading(dir.path(), &fed.genesis, &cid("b")).unwrap().1.is_none());
    }

    #[test]
    fn a_newer_or_too_old_store_is_refused() {
        for version in [SCHEMA_VERSION + 1, OLDEST_UPGRADABLE_SCHEMA - 1] {
            let dir = tempfile::tempdir().unwrap();
            let fed = old_store(dir.path(), version);
            let Err(err) = open_upgrading(dir.path(), &fed.genesis, &cid("b")) else {
                panic!("a store of schema {version} was opened")
            };
            assert!(matches!(err, RepairError::Store(StoreError::Schema { actual, .. }) if actual == version), "{err}");
        }
    }
}
