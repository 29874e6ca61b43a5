//! Per-entry records: used nonces, award request ids, payments and time-bank draws. They are
//! the part of the [`State`] that grows with every entry; the rest (ledger heads, accounts,
//! holdings, totals, limits, settlements, clearings) grows only with accounts and communities.
//!
//! A node keeps the records on disk and, before it checks entries, loads only the records
//! those entries read ([`records_read`]); after a durable write it drops them again
//! ([`State::forget_records`]). So its memory does not grow with its ledgers.
//!
//! Every read the checks make of these records goes through the `Cx` methods below, beside
//! [`records_read`] that declares them, so the two cannot drift apart unnoticed; the property
//! test `protocol/tests/state_props` also checks each entry against a state that holds only the
//! records it declared, and requires the same verdict and changes.

use super::apply::Cx;
use super::{Change, DrawRecord, PayRecord, State, StateKey};
use crate::body::{Body, EntryRef, SignedPayload};
use crate::entry::Entry;

impl StateKey {
    /// True for the per-entry records (nonces, request ids, payments, draws).
    pub fn is_record(&self) -> bool {
        matches!(self, StateKey::Nonce(..) | StateKey::RequestId(..) | StateKey::Pay(_) | StateKey::Draw(_))
    }
}

/// The records the check of `entry` reads (whether or not they exist yet).
pub fn records_read(entry: &Entry) -> Vec<StateKey> {
    fn nonce<T: SignedPayload>(entry: &Entry, payload: &T) -> Vec<StateKey> {
        vec![StateKey::Nonce(entry.community.clone(), payload.signer(), payload.nonce())]
    }
    match &entry.body {
        Body::Award(a) => vec![StateKey::RequestId(entry.community.clone(), a.request_id)],
        Body::Redeem(s) => nonce(entry, &s.payload),
        Body::Pay(p) => nonce(entry, &p.payment.payload),
        Body::Settle(s) => nonce(entry, &s.request.payload),
        Body::TimeCredit(s) => nonce(entry, &s.payload),
        Body::TimeSpend(s) => nonce(entry, &s.payload),
        Body::Credit(c) => vec![StateKey::Pay(c.source.hash)],
        Body::TimeFulfil(f) => vec![StateKey::Draw(f.source.hash)],
        Body::Enroll(_)
        | Body::RegisterMerchant(_)
        | Body::SetRules(_)
        | Body::Clearing(_)
        | Body::SetExposureLimit(_)
        | Body::RotateKey(_)
        | Body::RevokeKey(_)
        | Body::ReplaceKey(_) => Vec::new(),
    }
}

impl State {
    /// Drop every per-entry record from memory (they are on disk; see the module doc).
    pub fn forget_records(&mut self) {
        self.nonces.clear();
        self.request_ids.clear();
        self.pays.clear();
        self.draws.clear();
    }

    /// Whether the record of `key` is in memory (false for keys that are not records).
    pub fn holds_record(&self, key: &StateKey) -> bool {
        match key {
            StateKey::Nonce(c, k, n) => self.nonces.contains_key(&(c.clone(), *k, *n)),
            StateKey::RequestId(c, n) => self.request_ids.contains_key(&(c.clone(), *n)),
            StateKey::Pay(h) => self.pays.contains_key(h),
            StateKey::Draw(h) => self.draws.contains_key(h),
            _ => false,
        }
    }

    /// The record of `key` in memory, as the change that sets it (None for other keys).
    pub fn record(&self, key: &StateKey) -> Option<Change> {
        match key {
            StateKey::Nonce(c, k, n) => {
                self.nonces.get(&(c.clone(), *k, *n)).map(|r| Change::Nonce(c.clone(), *k, *n, r.clone()))
            }
            StateKey::RequestId(c, n) => {
                self.request_ids.get(&(c.clone(), *n)).map(|r| Change::RequestId(c.clone(), *n, r.clone()))
            }
            StateKey::Pay(h) => self.pays.get(h).map(|p| Change::Pay(*h, p.clone())),
            StateKey::Draw(h) => self.draws.get(h).map(|d| Change::Draw(*h, d.clone())),
            _ => None,
        }
    }

    /// How many records are in memory.
    pub fn record_count(&self) -> usize {
        [self.nonces.len(), self.request_ids.len(), self.pays.len(), self.draws.len()]
            .into_iter()
            .fold(0usize, usize::saturating_add)
    }
}

impl Cx<'_> {
    /// The entry that first used `signer`'s `nonce` at this community, if any.
    pub(super) fn nonce_first(&self, signer: &crate::PublicKey, nonce: u64) -> Option<&EntryRef> {
        self.state.nonces.get(&(self.community().clone(), *signer, nonce))
    }

    /// The award that first used `request_id` at this community, if any.
    pub(super) fn request_first(&self, request_id: u64) -> Option<&EntryRef> {
        self.state.request_ids.get(&(self.community().clone(), request_id))
    }

    /// The payment with entry hash `source`.
    pub(super) fn pay_record(&self, source: &EntryRef) -> Option<PayRecord> {
        self.state.pays.get(&source.hash).cloned()
    }

    /// The time-bank draw with entry hash `source`.
    pub(super) fn draw_record(&self, source: &EntryRef) -> Option<DrawRecord> {
        self.state.draws.get(&source.hash).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{cid, key, TestFederation};

    #[test]
    fn records_read_names_the_nonce_request_id_or_cited_entry() {
        let f = TestFederation::new(&["a"]);
        let mut chain = f.chain("a");
        let award = chain.next(Body::Award(crate::body::Award {
            resident: key("r").public(),
            activity: "cleanup".into(),
            minutes: 60,
            rating: 5,
            bonuses: vec![],
            request_id: 42,
            rules_version: 1,
            points: 10,
        }));
        assert_eq!(records_read(&award.entry), vec![StateKey::RequestId(cid("a"), 42)]);
        let enroll = chain.next(Body::Enroll(crate::body::Enroll {
            resident: key("r").public(),
            profile_hash: crate::Hash([1; 32]),
        }));
        assert!(records_read(&enroll.entry).is_empty());
        assert!(StateKey::RequestId(cid("a"), 42).is_record());
        assert!(!StateKey::Ledger(cid("a")).is_record());
    }

    #[test]
    fn forgetting_records_keeps_the_rest_of_the_state() {
        let f = TestFederation::new(&["a"]);
        let mut s = State::new(&f.genesis);
        let at = EntryRef { community: cid("a"), seq: 3, hash: crate::Hash([9; 32]) };
        s.commit(vec![
            Change::Nonce(cid("a"), key("r").public(), 7, at.clone()),
            Change::RequestId(cid("a"), 1, at.clone()),
        ]);
        assert!(s.holds_record(&StateKey::Nonce(cid("a"), key("r").public(), 7)));
        assert_eq!(s.record(&StateKey::RequestId(cid("a"), 1)), Some(Change::RequestId(cid("a"), 1, at)));
        assert_eq!(s.record_count(), 2);
        s.forget_records();
        assert_eq!(s.record_count(), 0);
        assert!(!s.holds_record(&StateKey::Nonce(cid("a"), key("r").public(), 7)));
        assert!(s.ledgers.contains_key(&cid("a")), "ledger heads stay");
    }
}
