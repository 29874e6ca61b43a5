//! Peer entries that arrived before their predecessor (gossip takes several paths through the
//! mesh, so entry k+1 can overtake entry k). They are held back, unverified, within a bounded
//! window ahead of each ledger's head and tried again once the head reaches them; anything that
//! does not fit is dropped and comes back by sync. Nothing here is trusted: held entries go
//! through the same verification and rules as any other when their turn comes.

use linli_protocol::{CommunityId, SignedEntry};
use std::collections::BTreeMap;

/// Entries further than this ahead of a ledger's head are not held back.
pub const EARLY_WINDOW: u64 = 4096;
/// Most entries held back over all ledgers (a flood of far-ahead entries cannot grow memory).
pub const EARLY_MAX: usize = 16_384;

/// The held-back entries of every ledger, by seq.
#[derive(Debug, Default)]
pub struct EarlyEntries {
    by_ledger: BTreeMap<CommunityId, BTreeMap<u64, SignedEntry>>,
    held: usize,
}

impl EarlyEntries {
    /// Hold `entry` back while its ledger's head is `next_seq`; false if it was not kept
    /// (outside the window, the position is taken, or the store of held entries is full).
    pub fn hold(&mut self, entry: SignedEntry, next_seq: u64) -> bool {
        let seq = entry.entry.seq;
        if seq <= next_seq || seq - next_seq > EARLY_WINDOW || self.held >= EARLY_MAX {
            return false;
        }
        let ledger = self.by_ledger.entry(entry.entry.community.clone()).or_default();
        if ledger.contains_key(&seq) {
            return false;
        }
        ledger.insert(seq, entry);
        self.held = self.held.saturating_add(1);
        true
    }

    /// Take the entries of `community` that can now be tried with its head at `next_seq`: any
    /// held at or behind the head (already known, or a conflicting copy), then the consecutive
    /// run from `next_seq` on. Later entries stay held.
    pub fn take_ready(&mut self, community: &CommunityId, next_seq: u64) -> Vec<SignedEntry> {
        let Some(ledger) = self.by_ledger.get_mut(community) else { return Vec::new() };
        let mut ready = Vec::new();
        let mut expected = next_seq;
        while let Some(entry) = ledger.first_entry() {
            let seq = *entry.key();
            if seq <= expected {
                ready.push(entry.remove());
                if seq == expected {
                    expected = expected.saturating_add(1);
                }
            } else {
                break;
            }
        }
        if ledger.is_empty() {
            self.by_ledger.remove(community);
        }
        self.held = self.held.saturating_sub(ready.len());
        ready
    }

    /// How many entries are held back.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.held
    }

    /// True when nothing is held back.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use linli_protocol::body::{Body, Enroll};
    use linli_protocol::testkit::{cid, key, TestFederation};
    use linli_protocol::Hash;

    fn entries(n: u64) -> Vec<SignedEntry> {
        let fed = TestFederation::new(&["early"]);
        let mut w = fed.chain("early");
        (0..n)
            .map(|i| {
                w.next(Body::Enroll(Enroll { resident: key(&format!("r{i}")).public(), profile_hash: Hash::ZERO }))
            })
            .collect()
    }

    #[test]
    fn held_entries_come_back_in_order_once_the_head_reaches_them() {
        let e = entries(6);
        let mut early = EarlyEntries::default();
        assert!(early.hold(e[3].clone(), 1));
        assert!(early.hold(e[2].clone(), 1));
        assert!(early.hold(e[5].clone(), 1));
        assert_eq!(early.len(), 3);
        // Head at 1: nothing is ready (seq 1 is missing).
        assert!(early.take_ready(&cid("early"), 1).is_empty());
        // Head at 2: seqs 2 and 3 are ready; 5 waits for 4.
        let ready: Vec<u64> = early.take_ready(&cid("early"), 2).iter().map(|x| x.entry.seq).collect();
        assert_eq!(ready, vec![2, 3]);
        assert_eq!(early.len(), 1);
    }

    #[test]
    fn entries_at_or_behind_the_head_or_too_far_ahead_are_not_held() {
        let e = entries(3);
        let mut early = EarlyEntries::default();
        assert!(!early.hold(e[1].clone(), 1), "the head itself is not early");
        assert!(!early.hold(e[0].clone(), 1), "behind the head");
        let mut far = e[2].clone();
        far.entry.seq = 2 + EARLY_WINDOW;
        assert!(!early.hold(far, 1), "beyond the window");
        assert!(early.hold(e[2].clone(), 1));
        assert!(!early.hold(e[2].clone(), 1), "one entry per position");
        assert_eq!(early.len(), 1);
    }

    #[test]
    fn the_store_of_held_entries_is_bounded() {
        let e = entries(1);
        let mut early = EarlyEntries::default();
        let mut kept = 0;
        for i in 0..(EARLY_MAX as u64 + 10) {
            let mut x = e[0].clone();
            // Spread over many ledgers so the per-ledger window is not what stops it.
            x.entry.community = cid(&format!("c{}", i / 4000));
            x.entry.seq = 1 + i % 4000;
            if early.hold(x, 0) {
                kept += 1;
            }
        }
        assert_eq!(kept, EARLY_MAX);
        assert_eq!(early.len(), EARLY_MAX);
    }

    #[test]
    fn stale_held_entries_are_handed_back_with_the_ready_run() {
        let e = entries(5);
        let mut early = EarlyEntries::default();
        assert!(early.hold(e[2].clone(), 0));
        assert!(early.hold(e[4].clone(), 0));
        // The head moved past 2 by another path: 2 comes back (for the fork check), 4 waits.
        let ready: Vec<u64> = early.take_ready(&cid("early"), 3).iter().map(|x| x.entry.seq).collect();
        assert_eq!(ready, vec![2]);
        assert!(!early.is_empty());
    }
}
