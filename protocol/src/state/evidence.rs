//! Evidence: an entry of a proven equivocator, at or past its first proven conflict, that an
//! honest ledger cites.
//!
//! Once a community is proven to have signed two entries at one seq, every node refuses its
//! entries from that seq on, whichever branch it holds. But an honest community may already
//! have sequenced a `Credit` (or a `TimeFulfil`, a `Clearing`, a `Pay` citing a limit) that
//! cites one of the equivocator's entries past the conflict, on the branch it took. A node that
//! took the other branch cannot find the cited entry in its copy and would wait forever, so the
//! honest ledger would stall there.
//!
//! Such a citation is checked on evidence instead: the cited entry itself, fetched by hash from
//! a peer, signed by the key the equivocator had in force at the conflict (the prefix before
//! the conflict is the same on every branch, so every honest node derives the same key). It
//! becomes the record the citing entry reads (a payment, a draw, a limit, a settlement); it
//! moves no balance of the equivocator's ledger. A payment admitted this way is in flight on
//! this node's books without a mint here; [`IssuerTotals::evidence_points`] counts it, so the
//! conservation check still balances.

use super::checks::{self, add};
use super::{
    Change, DrawRecord, IssuerTotals, LedgerState, LimitRecord, PayRecord, RejectedEntry, Rejection, SettleRecord,
    State, StateKey,
};
use crate::body::Body;
use crate::primitives::{CommunityId, PublicKey};
use crate::verify::VerifiedEntry;

impl LedgerState {
    /// The community key in force at `seq` of this ledger, when this node holds the ledger up to
    /// `seq` (a key change at seq `c` takes effect from `c + 1`).
    pub fn key_in_force_at(&self, seq: u64) -> Option<PublicKey> {
        if seq > self.next_seq {
            return None;
        }
        let changes_before = self.key_changes.iter().filter(|c| **c < seq).count();
        match self.retired_keys.get(changes_before) {
            Some(k) => Some(*k),
            None => Some(self.key),
        }
    }
}

/// The evidence lies at or past the first proven conflict.
pub fn at_or_past_conflict(community: &CommunityId, conflict_at: u64, actual: u64) -> Result<(), Rejection> {
    if actual >= conflict_at {
        Ok(())
    } else {
        Err(Rejection::EvidenceBeforeConflict { community: community.clone(), conflict_at, actual })
    }
}

impl State {
    /// The records the evidence check of an entry with hash `hash` reads.
    pub fn evidence_reads(entry: &crate::entry::Entry, hash: crate::Hash) -> Vec<StateKey> {
        match entry.body {
            Body::Pay(_) => vec![StateKey::Pay(hash)],
            Body::TimeSpend(_) => vec![StateKey::Draw(hash)],
            _ => Vec::new(),
        }
    }

    /// Check `v`, an entry of a community proven faulty from `conflict_at`, as evidence for a
    /// citation (see the module doc); on success, the record it creates (nothing when it is
    /// already known).
    pub fn check_evidence(&self, v: &VerifiedEntry, conflict_at: u64) -> Result<Vec<Change>, RejectedEntry> {
        let e = &v.signed().entry;
        evidence(self, v, conflict_at).map_err(|rejection| RejectedEntry {
            community: e.community.clone(),
            seq: e.seq,
            kind: e.body.kind(),
            rejection,
        })
    }
}

fn evidence(state: &State, v: &VerifiedEntry, conflict_at: u64) -> Result<Vec<Change>, Rejection> {
    let e = &v.signed().entry;
    let community = &e.community;
    let ledger =
        state.ledgers.get(community).ok_or_else(|| Rejection::UnknownCommunity { community: community.clone() })?;
    at_or_past_conflict(community, conflict_at, e.seq)?;
    let key = ledger.key_in_force_at(conflict_at).ok_or_else(|| Rejection::EvidenceKeyUnknown {
        community: community.clone(),
        conflict_at,
        held_to: ledger.next_seq,
    })?;
    checks::signed_by_key_in_force(&key, &v.signer())?;
    let hash = v.hash();
    let at = crate::body::EntryRef { community: community.clone(), seq: e.seq, hash };
    let change = match &e.body {
        Body::Pay(b) => {
            if state.pays.contains_key(&hash) {
                return Ok(Vec::new());
            }
            let p = &b.payment.payload;
            checks::same_genesis(&state.genesis_hash, &p.genesis)?;
            checks::nonzero("points", p.points)?;
            checks::points_within_price(p.points, p.price_fen)?;
            let mut totals: IssuerTotals = state
                .totals
                .get(community)
                .cloned()
                .ok_or_else(|| Rejection::UnknownCommunity { community: community.clone() })?;
            totals.in_flight = add("in flight", totals.in_flight, p.points)?;
            totals.evidence_points = add("evidence points", totals.evidence_points, p.points)?;
            return Ok(vec![
                Change::Pay(hash, PayRecord::uncredited(at, p)),
                Change::Totals(community.clone(), totals),
            ]);
        }
        Body::TimeSpend(d) if !state.draws.contains_key(&hash) => {
            Change::Draw(hash, DrawRecord::unfulfilled(at, &d.payload))
        }
        Body::SetExposureLimit(l) if !state.limits.contains_key(&hash) => {
            Change::Limit(hash, LimitRecord { at, issuer: l.issuer.clone(), limit_fen: l.limit_fen })
        }
        Body::Settle(s) if !state.settles.contains_key(&hash) => Change::Settle(
            hash,
            SettleRecord { at, issuer: s.request.payload.issuer.clone(), settled_total: s.settled_total },
        ),
        Body::TimeSpend(_) | Body::SetExposureLimit(_) | Body::Settle(_) => return Ok(Vec::new()),
        other => {
            return Err(Rejection::EvidenceNotCitable { community: community.clone(), seq: e.seq, kind: other.kind() })
        }
    };
    Ok(vec![change])
}

#[cfg(test)]
#[path = "evidence_tests.rs"]
mod tests;
