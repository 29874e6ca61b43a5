//! What the sequencer does with what peers send: entries of other ledgers (validated into the
//! same group commit), equivocation detection and alerts, and checkpoint witnessing (verify,
//! merge cosignatures, cosign when this node holds the same prefix, gossip).

use super::{IngestOutcome, Sequencer};
use crate::metrics::Origin;
use crate::network::messages::GossipMessage;
use crate::store::Batch;
use linli_protocol::checkpoint::{CosignedCheckpoint, EquivocationProof};
use linli_protocol::{ApplyContext, CommunityId, Rejection, SignedEntry};

impl Sequencer {
    /// Validate peer entries (runs of consecutive entries per community) into the batch.
    /// Entries ahead of a ledger's head are held back and tried once the head reaches them.
    pub(super) fn ingest(&mut self, entries: Vec<SignedEntry>, batch: &mut Batch) -> IngestOutcome {
        let mut outcome = IngestOutcome::default();
        let mut runs: Vec<(CommunityId, Vec<SignedEntry>)> = Vec::new();
        for e in entries {
            match runs.last_mut() {
                Some((c, run)) if *c == e.entry.community => run.push(e),
                _ => runs.push((e.entry.community.clone(), vec![e])),
            }
        }
        let mut touched = std::collections::BTreeSet::new();
        for (community, run) in runs {
            self.ingest_run(&community, run, batch, &mut outcome);
            touched.insert(community);
        }
        for community in touched {
            self.apply_held(&community, batch, &mut outcome);
        }
        // A gap the held-back entries have filled is no longer a gap.
        if let Some((c, from)) = &outcome.gap {
            if self.state.ledgers.get(c).is_some_and(|l| l.next_seq > *from) {
                outcome.gap = None;
            }
        }
        outcome
    }

    /// Try the held-back entries of `community` that its new head reaches. Their refusals are
    /// logged and counted, not charged to the message that moved the head.
    fn apply_held(&mut self, community: &CommunityId, batch: &mut Batch, outcome: &mut IngestOutcome) {
        loop {
            let Some(next) = self.state.ledgers.get(community).map(|l| l.next_seq) else { return };
            let ready = self.early.take_ready(community, next);
            if ready.is_empty() {
                return;
            }
            let mut held = IngestOutcome::default();
            self.ingest_run(community, ready, batch, &mut held);
            outcome.applied += held.applied;
            if let Some(reason) = held.rejected {
                tracing::debug!(%community, %reason, "a held-back entry was refused");
            }
            if held.applied == 0 {
                return;
            }
        }
    }

    /// Validate one run of entries of `community` (any order) into the batch.
    fn ingest_run(
        &mut self,
        community: &CommunityId,
        run: Vec<SignedEntry>,
        batch: &mut Batch,
        outcome: &mut IngestOutcome,
    ) {
        let Some(ledger) = self.state.ledgers.get(community).cloned() else {
            outcome.rejected.get_or_insert(format!("community {community} is not in the genesis"));
            return;
        };
        let mut run = self.take_evidence(community, run, batch, outcome);
        run.sort_by_key(|e| e.entry.seq);
        let before = run.len();
        let (old, new): (Vec<SignedEntry>, Vec<SignedEntry>) =
            run.into_iter().partition(|e| e.entry.seq < ledger.next_seq);
        run = new;
        for e in old {
            self.detect_equivocation(e, batch, outcome);
        }
        outcome.known += before - run.len();
        if *community == self.community {
            outcome.known += run.len(); // this node is the authority of its own ledger
            return;
        }
        if ledger.faulty {
            // Quarantined from the first proven conflict on; the common prefix is still taken.
            let before = run.len();
            run.retain(|e| e.entry.seq < ledger.faulty_from);
            outcome.known += before - run.len();
        }
        let Some(first) = run.first() else { return };
        if first.entry.seq > ledger.next_seq {
            outcome.gap.get_or_insert((community.clone(), ledger.next_seq));
            for e in run {
                if self.early.hold(e, ledger.next_seq) {
                    outcome.held += 1;
                }
            }
            return;
        }
        if run.windows(2).any(|w| w[1].entry.seq != w[0].entry.seq + 1) {
            outcome.rejected.get_or_insert(format!("community {community}: entries are not consecutive"));
            return;
        }
        let Some(keys) = self.state.signer_keys(community) else { return };
        let reads = run.iter().flat_map(|e| linli_protocol::state::records_read(&e.entry)).collect();
        if let Err(e) = self.load_records(reads) {
            outcome.rejected.get_or_insert(format!("storage failure reading records: {e}"));
            return;
        }
        let ctx = ApplyContext { now_ms: Some(self.now()) };
        let error = if run.len() >= crate::parallel_verify::MIN_PARALLEL {
            // Long runs (sync chunks): verified on worker threads while this thread applies.
            let genesis_hash = self.genesis_hash;
            // The cache is lent to the workers (read-only) while this thread applies.
            let mut screened = std::mem::take(&mut self.screened);
            let error = crate::parallel_verify::verify_streaming(&genesis_hash, run, keys, &mut screened, |v| {
                self.apply_verified(v, &ctx, batch, outcome)
            });
            self.screened = screened;
            error
        } else {
            let gh = self.genesis_hash;
            let checked = match self.preverified.take(community, &run, keys) {
                Some(verified) => Ok(verified),
                None => linli_protocol::verify::verify_run_cached(&gh, run, keys, &mut self.screened),
            };
            let (verified, error) = match checked {
                Ok(verified) => (verified, None),
                Err((prefix, e)) => (prefix, Some(e)),
            };
            // The signature refusal counts only if the state took every entry before it.
            let all_taken = verified.into_iter().all(|v| self.apply_verified(v, &ctx, batch, outcome));
            error.filter(|_| all_taken)
        };
        if let Some(e) = error {
            self.metrics.rejected("signature", Origin::Peer);
            outcome.rejected.get_or_insert(e.to_string());
        }
    }

    /// Check one verified peer entry against the state and add it to the batch; false when it
    /// was refused or waits on another ledger (the rest of its run is then not tried).
    fn apply_verified(
        &mut self,
        v: linli_protocol::verify::VerifiedEntry,
        ctx: &ApplyContext,
        batch: &mut Batch,
        outcome: &mut IngestOutcome,
    ) -> bool {
        match self.state.check(&v, ctx) {
            Ok(changes) => {
                self.state.commit(changes.clone());
                batch.changes.extend(changes);
                let hash = v.hash();
                let signed = v.into_signed();
                batch.entries.push((signed.clone(), hash));
                outcome.applied += 1;
                self.follow_up(&signed, hash, batch);
                true
            }
            Err(e) if e.rejection.is_missing_dependency() => {
                outcome.waiting = true;
                if let Rejection::MissingDependency { reference, .. } = &e.rejection {
                    outcome.waiting_on = Some(reference.community.clone());
                }
                self.want_if_quarantined(&e.rejection, outcome);
                false
            }
            Err(e) => {
                self.metrics.rejected(e.rejection.rule(), Origin::Peer);
                outcome.rejected.get_or_insert(e.to_string());
                false
            }
        }
    }

    /// A peer entry at a position this node already holds: if its hash differs and both are
    /// validly signed by the same community key, that is an equivocation: store the proof,
    /// quarantine the community and gossip the alert.
    fn detect_equivocation(&mut self, theirs: SignedEntry, batch: &mut Batch, outcome: &mut IngestOutcome) {
        let c = theirs.entry.community.clone();
        let Some(ours) = self.lookup_position(&c, theirs.entry.seq, batch) else { return };
        if ours.hash(&self.genesis_hash) == theirs.hash(&self.genesis_hash) {
            return;
        }
        let candidates = self.community_keys(&c);
        let proof = EquivocationProof::Entries(Box::new(ours), Box::new(theirs));
        if candidates.iter().any(|k| proof.verify(&self.genesis_hash, k).is_ok()) {
            self.record_alert(proof, batch);
        } else {
            outcome.rejected.get_or_insert(format!(
                "community {c} seq {}: conflicting entry with a bad signature",
                proof.position()
            ));
        }
    }

    fn lookup_position(&self, c: &CommunityId, seq: u64, batch: &Batch) -> Option<SignedEntry> {
        if let Some((e, _)) = batch.entries.iter().find(|(e, _)| &e.entry.community == c && e.entry.seq == seq) {
            return Some(e.clone());
        }
        self.store.entry(c, seq).ok().flatten()
    }

    /// Store a verified equivocation proof and quarantine its community (once).
    pub(super) fn record_alert(&mut self, proof: EquivocationProof, batch: &mut Batch) {
        let c = proof.community().clone();
        // New: not faulty yet, or faulty from a later position than this proof shows.
        let new = self.state.ledgers.get(&c).is_some_and(|l| !l.faulty || proof.position() < l.faulty_from);
        if new {
            tracing::warn!(community = %c, position = proof.position(), "equivocation proven; community quarantined");
            self.state.mark_faulty(&c, proof.position());
            if let Some(l) = self.state.ledgers.get(&c) {
                batch.changes.push(linli_protocol::Change::Ledger(c, l.clone()));
            }
            batch.alerts.push(proof);
        }
    }

    /// An equivocation proof received from a peer: verify it, then record it.
    pub(super) fn take_alert(&mut self, proof: EquivocationProof, batch: &mut Batch) -> bool {
        let c = proof.community().clone();
        let candidates = self.community_keys(&c);
        if candidates.iter().any(|k| proof.verify(&self.genesis_hash, k).is_ok()) {
            self.record_alert(proof, batch);
            true
        } else {
            false
        }
    }

    pub(super) fn gossip(&self, msg: GossipMessage) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.try_send(msg);
        }
    }

    /// Keys a community may have signed with: the key in force, retired ones, the recovery key
    /// (it signs revocations), the genesis key.
    fn community_keys(&self, c: &CommunityId) -> Vec<linli_protocol::PublicKey> {
        let mut keys = Vec::new();
        if let Some(l) = self.state.ledgers.get(c) {
            keys.push(l.key);
            keys.extend(l.retired_keys.iter().copied());
            keys.push(l.recovery_key);
        }
        if let Some(info) = self.genesis.community(c) {
            keys.push(info.signing_key);
        }
        keys
    }

    /// A checkpoint from a peer: verify the issuer's signature; two checkpoints of one size with
    /// different roots are an equivocation; keep the valid cosignatures; and, as a witness that
    /// holds the same prefix (same root), cosign it and gossip the cosignature.
    pub(super) fn take_checkpoint(&mut self, incoming: CosignedCheckpoint, batch: &mut Batch) -> CheckpointVerdict {
        let cp = incoming.signed.checkpoint.clone();
        let keys = self.community_keys(&cp.community);
        if !keys.iter().any(|k| incoming.signed.verify(&self.genesis_hash, k).is_ok()) {
            return CheckpointVerdict::Invalid;
        }
        let stored = batch
            .checkpoints
            .iter()
            .rev()
            .find(|c| c.signed.checkpoint.community == cp.community && c.signed.checkpoint.size == cp.size)
            .cloned()
            .or_else(|| self.store.checkpoint(&cp.community, cp.size).ok().flatten());
        let is_new = stored.is_none();
        let mut merged = match stored {
            Some(s) if s.signed.checkpoint.root != cp.root => {
                let proof = EquivocationProof::Checkpoints(Box::new(s.signed), Box::new(incoming.signed));
                if keys.iter().any(|k| proof.verify(&self.genesis_hash, k).is_ok()) {
                    self.record_alert(proof, batch);
                }
                return CheckpointVerdict::Valid;
            }
            Some(s) => s,
            None => CosignedCheckpoint { signed: incoming.signed.clone(), cosignatures: vec![] },
        };
        let before = merged.cosignatures.len();
        for c in incoming.cosignatures {
            let witness_key = self.state.ledgers.get(&c.witness).map(|l| l.key);
            let known = merged.cosignatures.iter().any(|m| m.witness == c.witness);
            if !known && witness_key == Some(c.key) && merged.signed.verify_cosignature(&self.genesis_hash, &c).is_ok()
            {
                merged.cosignatures.push(c);
            }
        }
        let cosigned_now = self.cosign_if_witness(&mut merged);
        if is_new || merged.cosignatures.len() != before || cosigned_now {
            batch.checkpoints.push(merged.clone());
        }
        if cosigned_now {
            self.gossip(GossipMessage::Checkpoint(merged));
        }
        CheckpointVerdict::Valid
    }

    /// Add this community's cosignature if it is a witness (not the issuer), has not cosigned
    /// yet, and holds the same prefix (the root of its copy at that size matches).
    fn cosign_if_witness(&self, cp: &mut CosignedCheckpoint) -> bool {
        let c = &cp.signed.checkpoint;
        if c.community == self.community || cp.cosignatures.iter().any(|x| x.witness == self.community) {
            return false;
        }
        let held = self.state.ledgers.get(&c.community).map(|l| l.next_seq).unwrap_or(0);
        if c.size > held || c.size == 0 {
            return false;
        }
        match self.store.root(&c.community, c.size) {
            Ok(root) if root == c.root => {
                let sig = cp.signed.cosign(self.community.clone(), &self.key, &self.genesis_hash);
                cp.cosignatures.push(sig);
                true
            }
            _ => false,
        }
    }

    /// After new entries of `c` are durable, cosign a stored checkpoint of `c` that this node
    /// could not witness before.
    pub(super) fn cosign_pending(&mut self, c: &CommunityId) {
        let Ok(Some(mut cp)) = self.store.latest_checkpoint(c) else { return };
        if self.cosign_if_witness(&mut cp) {
            let batch = Batch { checkpoints: vec![cp.clone()], ..Batch::default() };
            if self.store.commit(&batch).is_ok() {
                self.gossip(GossipMessage::Checkpoint(cp));
            }
        }
    }
}

/// What became of a checkpoint received from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointVerdict {
    /// Validly signed by its community (relay it).
    Valid,
    /// Not signed by its community (reject: the sender is penalised).
    Invalid,
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::super::{Input, Output, Sequencer};
    use super::IngestOutcome;
    use linli_protocol::body::{Body, Enroll};
    use linli_protocol::testkit::{cid, key, TestFederation};
    use linli_protocol::{Hash, SignedEntry, State};
    use std::sync::Arc;

    /// A sequencer of community `b` over a fresh store, and entries of community `a`'s ledger.
    pub(in crate::sequencer) fn setup(n: u64) -> (tempfile::TempDir, Sequencer, Vec<SignedEntry>) {
        let fed = TestFederation::new(&["a", "b"]);
        let mut w = fed.chain("a");
        let entries = (0..n)
            .map(|i| {
                w.next(Body::Enroll(Enroll { resident: key(&format!("a{i}")).public(), profile_hash: Hash::ZERO }))
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path(), &fed.genesis).unwrap();
        let state = State::new(&fed.genesis);
        let clock: super::super::Clock = Arc::new(|| u64::MAX / 4);
        let seq = Sequencer::new(cid("b"), fed.genesis.clone(), key("b/signing"), store, state, None, clock);
        (dir, seq, entries)
    }

    /// The outcome of an `Ingest` input (any other output is a test failure).
    pub(in crate::sequencer) fn ingest_outcome(output: Option<Output>) -> IngestOutcome {
        match output {
            Some(Output::Ingest(o)) => o,
            other => panic!("unexpected output {other:?}"),
        }
    }

    fn ingest(seq: &mut Sequencer, entries: Vec<SignedEntry>) -> IngestOutcome {
        ingest_outcome(seq.step(vec![Input::Ingest(entries)]).pop())
    }

    /// A peer's refusals are counted by rule with `origin="peer"` (what `/metrics` serves).
    #[test]
    fn refusals_of_peer_entries_are_counted_as_peer_refusals() {
        let (_dir, mut seq, entries) = setup(2);
        let gh = TestFederation::new(&["a", "b"]).genesis_hash;
        let forged = SignedEntry::sign(entries[0].entry.clone(), &key("b/signing"), &gh);
        let refused = ingest(&mut seq, vec![forged]);
        assert!(refused.rejected.is_some(), "{refused:?}");
        let mut wrong_prev = entries[1].entry.clone();
        wrong_prev.seq = 0;
        let refused = ingest(&mut seq, vec![SignedEntry::sign(wrong_prev, &key("a/signing"), &gh)]);
        assert!(refused.rejected.is_some(), "{refused:?}");
        let text = seq.metrics.encode().unwrap();
        for rule in ["signature", "prev-hash"] {
            let line = format!("linli_validation_failures_total{{rule=\"{rule}\",origin=\"peer\"}} 1");
            assert!(text.contains(&line), "no `{line}` in:\n{text}");
        }
        assert!(!text.contains("origin=\"local\"} 1"), "{text}");
    }

    #[test]
    fn records_are_dropped_after_each_group_and_read_back_when_an_entry_needs_them() {
        use linli_protocol::body::Award;
        use linli_protocol::rules::{AwardClaim, RuleTable};
        let (_dir, mut seq, _) = setup(0);
        let fed = TestFederation::new(&["a", "b"]);
        let mut w = fed.chain("a");
        let rules = RuleTable::default_table(1);
        let award = |request_id: u64, minutes: u64, prior_awards: u64| {
            let claim = AwardClaim { activity: "cleanup", minutes, rating: 5, bonuses: &[], prior_awards };
            Body::Award(Award {
                resident: key("r").public(),
                activity: "cleanup".into(),
                minutes,
                rating: 5,
                bonuses: vec![],
                points: rules.award_points(&claim).unwrap(),
                rules_version: 1,
                request_id,
            })
        };
        let first = vec![
            w.next(Body::SetRules(rules.clone())),
            w.next(Body::Enroll(Enroll { resident: key("r").public(), profile_hash: Hash::ZERO })),
            w.next(award(7, 60, 0)),
        ];
        assert_eq!(ingest(&mut seq, first).applied, 3);
        assert_eq!(seq.state().record_count(), 0, "the request id is on disk, not in memory");
        // A later award reusing request id 7 is refused: the record is read back from the store.
        let o = ingest(&mut seq, vec![w.next(award(7, 90, 1))]);
        assert_eq!(o.applied, 0);
        assert!(o.rejected.as_deref().unwrap_or("").contains("request id 7"), "{o:?}");
        assert_eq!(seq.state().record_count(), 0);
        assert_eq!(seq.state_with_records().unwrap().record_count(), 1);
    }

    #[test]
    fn entries_that_overtake_their_predecessor_are_applied_when_it_arrives() {
        let (_dir, mut seq, e) = setup(4);
        let o = ingest(&mut seq, vec![e[0].clone()]);
        assert_eq!(o.applied, 1);
        // 2 and 3 arrive before 1: held back, and the gap at 1 is reported.
        let o = ingest(&mut seq, vec![e[3].clone()]);
        assert_eq!((o.applied, o.held, o.gap.clone()), (0, 1, Some((cid("a"), 1))));
        let o = ingest(&mut seq, vec![e[2].clone()]);
        assert_eq!((o.applied, o.held), (0, 1));
        // 1 arrives: it and the two held entries are applied, no gap is left.
        let o = ingest(&mut seq, vec![e[1].clone()]);
        assert_eq!((o.applied, o.gap, o.rejected), (3, None, None));
        assert_eq!(seq.store.head(&cid("a")).unwrap().0, 4);
    }

    #[test]
    fn a_forged_held_entry_is_refused_when_its_turn_comes_without_blaming_the_good_one() {
        let (_dir, mut seq, mut e) = setup(3);
        let mut sig = e[2].signature.0;
        sig[0] ^= 1;
        e[2].signature = linli_protocol::Signature(sig);
        assert_eq!(ingest(&mut seq, vec![e[0].clone()]).applied, 1);
        assert_eq!(ingest(&mut seq, vec![e[2].clone()]).held, 1);
        let o = ingest(&mut seq, vec![e[1].clone()]);
        assert_eq!((o.applied, o.rejected), (1, None), "the honest entry is accepted, the forgery dropped");
        assert_eq!(seq.store.head(&cid("a")).unwrap().0, 2);
    }
}
