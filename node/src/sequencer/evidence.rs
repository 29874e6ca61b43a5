//! Citations of an equivocator's other branch: when a peer entry waits on an entry of a
//! community proven faulty, at or past its first conflict, this node will never take that entry
//! into its copy of the ledger (it is quarantined, and may lie on the branch this node did not
//! take). The sequencer notes the citation as wanted; the network asks the peer that sent the
//! citing entry for the cited entry by hash (`SyncRequest::Evidence`); the answer comes back as
//! peer entries, and the ones wanted are checked here as evidence
//! ([`linli_protocol::State::check_evidence`]) and stored beside the ledgers. The citing entry
//! then applies when it comes again.

use super::{IngestOutcome, Sequencer};
use crate::metrics::Origin;
use crate::store::Batch;
use linli_protocol::state::LedgerState;
use linli_protocol::{CommunityId, EntryRef, Rejection, SignedEntry, State};
use std::collections::BTreeSet;

/// Most citations waited on at once (then the set starts again: a citation still waiting is
/// noted again when its entry is tried again).
const MAX_WANTED: usize = 4096;

/// Cited entries of equivocators, past their conflict, that entries this node holds back cite.
#[derive(Debug, Default)]
pub(super) struct Wanted {
    refs: BTreeSet<EntryRef>,
}

impl Wanted {
    fn insert(&mut self, r: EntryRef) {
        if self.refs.len() >= MAX_WANTED {
            self.refs.clear();
        }
        self.refs.insert(r);
    }

    fn any_of(&self, community: &CommunityId) -> bool {
        self.refs.iter().any(|r| &r.community == community)
    }
}

/// Whether `reference` lies in the quarantined part of a faulty ledger.
fn quarantined(ledger: Option<&LedgerState>, reference: &EntryRef) -> bool {
    ledger.is_some_and(|l| l.faulty && reference.seq >= l.faulty_from)
}

impl Sequencer {
    /// A peer entry waits on `rejection`'s cited entry: if that entry is quarantined, note it
    /// as wanted and tell the caller to ask for it.
    pub(super) fn want_if_quarantined(&mut self, rejection: &Rejection, outcome: &mut IngestOutcome) {
        let Rejection::MissingDependency { reference, .. } = rejection else { return };
        if quarantined(self.state.ledgers.get(&reference.community), reference) {
            self.wanted.insert(reference.clone());
            outcome.evidence_wanted.get_or_insert_with(|| reference.clone());
        }
    }

    /// Take the wanted evidence out of a run of `community`'s entries and admit it.
    pub(super) fn take_evidence(
        &mut self,
        community: &CommunityId,
        run: Vec<SignedEntry>,
        batch: &mut Batch,
        outcome: &mut IngestOutcome,
    ) -> Vec<SignedEntry> {
        let Some(ledger) = self.state.ledgers.get(community) else { return run };
        if !ledger.faulty || !self.wanted.any_of(community) {
            return run;
        }
        let conflict_at = ledger.faulty_from;
        let gh = self.genesis_hash;
        let mut rest = Vec::with_capacity(run.len());
        for e in run {
            let wanted =
                (e.entry.seq >= conflict_at).then(|| e.entry_ref(&gh)).filter(|r| self.wanted.refs.contains(r));
            match wanted {
                Some(reference) => self.admit_evidence(e, reference, conflict_at, batch, outcome),
                None => rest.push(e),
            }
        }
        rest
    }

    fn admit_evidence(
        &mut self,
        e: SignedEntry,
        reference: EntryRef,
        conflict_at: u64,
        batch: &mut Batch,
        outcome: &mut IngestOutcome,
    ) {
        self.wanted.refs.remove(&reference);
        let community = reference.community.clone();
        let Some(key) = self.state.ledgers.get(&community).and_then(|l| l.key_in_force_at(conflict_at)) else {
            tracing::debug!(%community, conflict_at, "evidence before this node holds the ledger to its conflict");
            return;
        };
        let v = match linli_protocol::verify::verify_entry(&self.genesis_hash, e, key) {
            Ok(v) => v,
            Err(err) => {
                self.metrics.rejected("signature", Origin::Peer);
                outcome.rejected.get_or_insert(format!("evidence: {err}"));
                return;
            }
        };
        if let Err(err) = self.load_records(State::evidence_reads(&v.signed().entry, v.hash())) {
            outcome.rejected.get_or_insert(format!("storage failure reading records: {err}"));
            return;
        }
        match self.state.check_evidence(&v, conflict_at) {
            Ok(changes) if changes.is_empty() => {}
            Ok(changes) => {
                tracing::info!(%community, seq = reference.seq, "took an equivocator's entry past its conflict as evidence");
                self.state.commit(changes.clone());
                batch.changes.extend(changes);
                let hash = v.hash();
                batch.evidence.push((v.into_signed(), hash));
                outcome.evidence += 1;
                self.metrics.evidence_taken(community.as_str());
            }
            Err(err) => {
                self.metrics.rejected(err.rejection.rule(), Origin::Peer);
                outcome.rejected.get_or_insert(format!("evidence: {err}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::super::peers::tests::ingest_outcome;
    use super::super::{Input, Output, Sequencer};
    use super::IngestOutcome;
    use linli_protocol::testkit::{cid, key, ForkedPayment, TestFederation};
    use linli_protocol::{SignedEntry, State};
    use std::sync::Arc;

    /// A node of `c` that took the branch of `a` without the payment, and holds `b`'s merchant
    /// and credit limit; the fork is proven.
    fn node_on_the_other_branch() -> (tempfile::TempDir, Sequencer, ForkedPayment, linli_protocol::Hash) {
        let fed = TestFederation::new(&["a", "b", "c"]);
        let fork = ForkedPayment::new(&fed);
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path(), &fed.genesis).unwrap();
        let clock: super::super::Clock = Arc::new(|| u64::MAX / 4);
        let state = State::new(&fed.genesis);
        let mut seq = Sequencer::new(cid("c"), fed.genesis.clone(), key("c/signing"), store, state, None, clock);
        let a = [fork.a_prefix.clone(), vec![fork.other.clone()]].concat();
        assert_eq!(ingest(&mut seq, a).applied, 4);
        assert_eq!(ingest(&mut seq, fork.b_entries[..2].to_vec()).applied, 2);
        assert!(matches!(seq.step(vec![Input::Alert(fork.proof())]).pop(), Some(Output::Alert(true))));
        (dir, seq, fork, fed.genesis_hash)
    }

    fn ingest(seq: &mut Sequencer, entries: Vec<SignedEntry>) -> IngestOutcome {
        ingest_outcome(seq.step(vec![Input::Ingest(entries)]).pop())
    }

    #[test]
    fn a_credit_citing_the_other_branch_waits_asks_and_applies_on_evidence() {
        let (_dir, mut seq, fork, gh) = node_on_the_other_branch();
        let credit = fork.b_entries[2].clone();
        let waiting = ingest(&mut seq, vec![credit.clone()]);
        assert!(waiting.waiting && waiting.rejected.is_none(), "{waiting:?}");
        assert_eq!(waiting.evidence_wanted, Some(fork.pay.entry_ref(&gh)));

        let taken = ingest(&mut seq, vec![fork.pay.clone()]);
        assert_eq!((taken.evidence, taken.applied), (1, 0), "{taken:?}");
        assert_eq!(seq.store().evidence_entry(&fork.pay.hash(&gh)).unwrap(), Some(fork.pay.clone()));
        // The ledger of `a` here keeps the other branch.
        assert_eq!(seq.store().entry(&cid("a"), 3).unwrap(), Some(fork.other.clone()));

        let metrics = seq.metrics.encode().unwrap();
        assert!(metrics.contains("linli_evidence_taken_total{community=\"a\"} 1"), "{metrics}");

        let applied = ingest(&mut seq, vec![credit]);
        assert_eq!(applied.applied, 1, "{applied:?}");
        let state = seq.state_with_records().unwrap();
        assert_eq!(state.holding(&cid("b"), &fork.merchant.public(), &cid("a")), 30);
        assert_eq!(state.conservation_violation(), None);
        crate::node::full_check(seq.store(), &seq.genesis, &state).unwrap();
    }

    #[test]
    fn an_entry_past_the_fork_nobody_cites_is_not_taken() {
        let (_dir, mut seq, fork, gh) = node_on_the_other_branch();
        let unasked = ingest(&mut seq, vec![fork.pay.clone()]);
        assert_eq!(unasked.evidence, 0, "{unasked:?}");
        assert_eq!(seq.store().evidence_entry(&fork.pay.hash(&gh)).unwrap(), None);
    }

    #[test]
    fn evidence_with_a_bad_signature_is_refused() {
        let (_dir, mut seq, fork, gh) = node_on_the_other_branch();
        ingest(&mut seq, vec![fork.b_entries[2].clone()]);
        // The same entry (same hash), signed by another key.
        let forged = SignedEntry::sign(fork.pay.entry.clone(), &key("b/signing"), &gh);
        let refused = ingest(&mut seq, vec![forged]);
        assert_eq!(refused.evidence, 0);
        assert!(refused.rejected.as_deref().is_some_and(|r| r.contains("evidence")), "{refused:?}");
        assert_eq!(seq.store().evidence_entry(&fork.pay.hash(&gh)).unwrap(), None);
    }
}
