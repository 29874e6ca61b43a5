//! Batch verification across a group: the peer entries that wait in the sequencer's queue
//! arrive one gossip message (one `Ingest` command) at a time, and each command verified alone
//! is a batch of one. Before the group is handled, the entries of each ledger that continue it
//! (consecutive from its next seq) are verified together in one batch, and each command then
//! takes its entries from here instead of verifying them again. A batch that fails keeps its
//! verified prefix; the rest is verified per command as before, so a bad entry is still named
//! and charged to the message that carried it.

use super::{Command, Sequencer};
use linli_protocol::verify::{verify_run_cached, SignerKeys, VerifiedEntry};
use linli_protocol::{CommunityId, SignedEntry};
use std::collections::{BTreeMap, HashMap};

/// Entries verified ahead of their command, by ledger and seq.
#[derive(Debug, Default)]
pub(super) struct Preverified {
    entries: HashMap<(CommunityId, u64), VerifiedEntry>,
    /// Entries taken from here so far (for tests).
    taken: u64,
}

impl Preverified {
    /// The verified copies of `run` (one ledger's consecutive entries, with `keys` in force at
    /// its first), if every one of them was verified ahead with the same bytes and under the
    /// community key that is in force for it now (the ledger may have taken a different
    /// predecessor since, such as a held-back entry of an equivocating community).
    pub(super) fn take(
        &mut self,
        community: &CommunityId,
        run: &[SignedEntry],
        mut keys: SignerKeys,
    ) -> Option<Vec<VerifiedEntry>> {
        if self.entries.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(run.len());
        for e in run {
            let (signer, next) = keys.step(e);
            keys = next;
            match self.entries.remove(&(community.clone(), e.entry.seq)) {
                Some(v) if v.signed() == e && v.signer() == signer => out.push(v),
                _ => return None,
            }
        }
        self.taken = self.taken.saturating_add(out.len() as u64);
        Some(out)
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }
}

impl Sequencer {
    /// Verify together, per ledger, the peer entries of `group` that continue that ledger.
    pub(super) fn preverify(&mut self, group: &[Command]) {
        let mut candidates: BTreeMap<CommunityId, BTreeMap<u64, &SignedEntry>> = BTreeMap::new();
        let mut conflicting: Vec<CommunityId> = Vec::new();
        for cmd in group {
            let Command::Ingest { entries, .. } = cmd else { continue };
            if entries.len() >= crate::parallel_verify::MIN_PARALLEL {
                continue; // verified on worker threads
            }
            for e in entries {
                let c = &e.entry.community;
                if *c == self.community {
                    continue;
                }
                let slot = candidates.entry(c.clone()).or_default();
                if let Some(other) = slot.insert(e.entry.seq, e) {
                    if other != e {
                        conflicting.push(c.clone()); // two entries at one seq: left to ingest
                    }
                }
            }
        }
        for c in conflicting {
            candidates.remove(&c);
        }
        for (community, by_seq) in candidates {
            let Some(ledger) = self.state.ledgers.get(&community) else { continue };
            let (mut next, stop) = (ledger.next_seq, if ledger.faulty { ledger.faulty_from } else { u64::MAX });
            let mut run = Vec::new();
            for (seq, e) in by_seq.range(next..) {
                if *seq != next || *seq >= stop {
                    break;
                }
                run.push((*e).clone());
                next = next.saturating_add(1);
            }
            if run.len() < 2 {
                continue; // a batch of one gains nothing
            }
            let Some(keys) = self.state.signer_keys(&community) else { continue };
            let verified = match verify_run_cached(&self.genesis_hash, run, keys, &mut self.screened) {
                Ok(all) => all,
                Err((prefix, _)) => prefix,
            };
            for v in verified {
                self.preverified.entries.insert((community.clone(), v.signed().entry.seq), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::super::peers::tests::{ingest_outcome, setup};
    use super::super::{Input, Output};
    use super::Preverified;
    use linli_protocol::testkit::{cid, key};
    use linli_protocol::verify::{verify_run_cached, ScreenedKeys, SignerKeys};

    fn outcomes(outputs: Vec<Output>) -> Vec<(usize, Option<String>)> {
        outputs.into_iter().map(|o| ingest_outcome(Some(o))).map(|o| (o.applied, o.rejected)).collect()
    }

    #[test]
    fn gossiped_entries_waiting_in_one_group_are_verified_in_one_batch() {
        let (_dir, mut seq, e) = setup(4);
        let inputs = e.iter().map(|e| Input::Ingest(vec![e.clone()])).collect();
        let out = outcomes(seq.step(inputs));
        assert_eq!(out, vec![(1, None), (1, None), (1, None), (1, None)]);
        assert_eq!(seq.preverified.taken, 4, "every command took its entry from the group's batch");
        assert_eq!(seq.store.head(&cid("a")).unwrap().0, 4);
        // A lone entry is a batch of one: verified by its command.
        let (_dir, mut seq, e) = setup(1);
        assert_eq!(outcomes(seq.step(vec![Input::Ingest(vec![e[0].clone()])])), vec![(1, None)]);
        assert_eq!(seq.preverified.taken, 0);
    }

    #[test]
    fn a_forgery_in_the_group_keeps_the_verified_prefix_and_is_charged_to_its_own_message() {
        let (_dir, mut seq, mut e) = setup(3);
        let mut sig = e[1].signature.0;
        sig[5] ^= 1;
        e[1].signature = linli_protocol::Signature(sig);
        let inputs = e.iter().map(|e| Input::Ingest(vec![e.clone()])).collect();
        let out = outcomes(seq.step(inputs));
        assert_eq!(out[0], (1, None), "the entry before the forgery is taken");
        assert_eq!(out[1].0, 0);
        assert!(out[1].1.as_deref().unwrap_or("").contains("signature"), "{out:?}");
        assert_eq!((out[2].0, out[2].1.clone()), (0, None), "the good entry after it waits for its predecessor");
        assert_eq!(seq.preverified.taken, 1, "only the verified prefix came from the batch");
        assert_eq!(seq.store.head(&cid("a")).unwrap().0, 1);
    }

    #[test]
    fn an_entry_verified_under_another_community_key_is_not_taken() {
        let (_dir, seq, e) = setup(2);
        let keys = seq.state.signer_keys(&cid("a")).unwrap();
        let verified = verify_run_cached(&seq.genesis_hash, e.clone(), keys, &mut ScreenedKeys::default()).unwrap();
        let fill = || {
            let mut p = Preverified::default();
            for v in verified.clone() {
                p.entries.insert((cid("a"), v.signed().entry.seq), v);
            }
            p
        };
        assert_eq!(fill().take(&cid("a"), &e, keys).map(|v| v.len()), Some(2));
        let other = SignerKeys { current: key("someone else").public(), recovery: keys.recovery };
        assert!(fill().take(&cid("a"), &e, other).is_none());
        let mut changed = e.clone();
        changed[1].signature = changed[0].signature;
        assert!(fill().take(&cid("a"), &changed, keys).is_none(), "other bytes at the same seq");
    }
}
