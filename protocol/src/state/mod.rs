//! The ledger state machine: the federation-wide state that every node derives from the
//! ledgers it follows, and the pure transition that applies one verified entry to it.
//!
//! [`State::check`] takes a [`VerifiedEntry`] and returns either the list of [`Change`]s it
//! makes or a typed [`Rejection`] naming the rule broken; [`State::commit`] writes the changes.
//! Nothing here does I/O or reads a clock: `now_ms` comes in through [`ApplyContext`]. A node
//! persists the changes of a group of entries in the same atomic write as the entries.
//!
//! Every cross-ledger check depends only on the existence of a cited entry of the other ledger
//! (never on how two ledgers interleave), so every validator reaches the same verdict; a cited
//! entry not yet seen gives [`Rejection::MissingDependency`] and the entry is held back.

mod apply;
pub mod checks;
mod evidence;
mod payments;
mod records;
mod rejection;
mod timebank;

pub use records::records_read;
pub use rejection::{RejectedEntry, Rejection, Role};

use crate::body::EntryRef;
use crate::genesis::Genesis;
use crate::primitives::{CommunityId, Hash, PublicKey};
use crate::rules::RuleTable;
use crate::verify::{SignerKeys, VerifiedEntry};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How far ahead of the validator's clock an entry's time may be.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// The most minutes one time-bank record may carry (one day).
pub const MAX_TIME_RECORD_MINUTES: u64 = 24 * 60;

/// Inputs from outside the pure state: the validator's clock, when validating live traffic.
/// Replays pass `now_ms: None` (the clock-skew rule applies only to live entries).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyContext {
    pub now_ms: Option<u64>,
}

/// The head of one community's ledger and its keys and rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    pub next_seq: u64,
    pub head: Hash,
    pub last_time_ms: u64,
    pub key: PublicKey,
    pub recovery_key: PublicKey,
    pub retired_keys: Vec<PublicKey>,
    /// Seqs of this ledger's `RotateKey` and `RevokeKey` entries, in order: what a light client
    /// asks for to follow the community's key ([`crate::light::KeyHistoryProof`]).
    pub key_changes: Vec<u64>,
    /// Shared, not copied: every entry's ledger change carries it (serialized as the table).
    pub rules: Option<std::sync::Arc<RuleTable>>,
    pub faulty: bool,
    /// When faulty: entries from this seq on (the first proven conflict) are refused; the
    /// prefix before it is the same on every branch and is still taken (later entries of other
    /// ledgers may cite it).
    pub faulty_from: u64,
}

/// A resident's or merchant's account at its home community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub role: Role,
    pub replaced_by: Option<PublicKey>,
    pub points: u64,
    pub minutes: u64,
    pub served_minutes: u64,
    pub awards: u64,
    pub lifetime_points: u64,
    pub enrolled_at: u64,
}

impl Account {
    fn new(role: Role, seq: u64) -> Self {
        Account {
            role,
            replaced_by: None,
            points: 0,
            minutes: 0,
            served_minutes: 0,
            awards: 0,
            lifetime_points: 0,
            enrolled_at: seq,
        }
    }
}

/// Running totals for the points and minutes one community issued (conservation, invariant 3):
/// `minted - redeemed - settled + evidence_points == resident_points + merchant_points + in_flight`
/// (`evidence_points` is zero unless the issuer equivocated; see [`State::check_evidence`]) and
/// `minutes_credited - minutes_spent == minutes_held`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerTotals {
    pub minted: u64,
    pub redeemed: u64,
    pub settled: u64,
    pub resident_points: u64,
    pub merchant_points: u64,
    /// Paid on the issuer's ledger, not yet credited on the merchant's.
    pub in_flight: u64,
    pub minutes_credited: u64,
    pub minutes_spent: u64,
    pub minutes_held: u64,
    /// Points of `Pay` entries this node holds only as evidence (a proven equivocator's entries
    /// past its first conflict, on a branch this node did not take, cited by an honest ledger):
    /// issued on that branch, so they enter this node's books as in flight without a mint here.
    pub evidence_points: u64,
}

/// A `Pay` entry as later entries need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayRecord {
    pub at: EntryRef,
    pub payer: PublicKey,
    pub merchant: PublicKey,
    pub merchant_community: CommunityId,
    pub points: u64,
    pub price_fen: u64,
    pub credited_by: Option<EntryRef>,
}

impl PayRecord {
    /// The `Pay` entry at `at` carrying payment `p`, not credited yet.
    pub fn uncredited(at: EntryRef, p: &crate::body::Payment) -> Self {
        PayRecord {
            at,
            payer: p.payer,
            merchant: p.merchant,
            merchant_community: p.merchant_community.clone(),
            points: p.points,
            price_fen: p.price_fen,
            credited_by: None,
        }
    }
}

/// A `TimeSpend` entry as its fulfilment needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawRecord {
    pub at: EntryRef,
    pub serving_community: CommunityId,
    pub minutes: u64,
    pub fulfilled_by: Option<EntryRef>,
}

impl DrawRecord {
    /// The `TimeSpend` entry at `at` carrying draw `d`, not fulfilled yet.
    pub fn unfulfilled(at: EntryRef, d: &crate::body::TimeDraw) -> Self {
        DrawRecord { at, serving_community: d.serving_community.clone(), minutes: d.minutes, fulfilled_by: None }
    }
}

/// A `SetExposureLimit` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRecord {
    pub at: EntryRef,
    pub issuer: CommunityId,
    pub limit_fen: u64,
}

/// A `Settle` entry as clearings cite it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleRecord {
    pub at: EntryRef,
    pub issuer: CommunityId,
    pub settled_total: u64,
}

/// An issuer's uncleared debt towards one creditor community, tracked on the issuer's ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    /// Seq of the newest limit entry cited so far (limits cannot be cited out of order).
    pub limit_seq: Option<u64>,
    /// Points of the issuer paid to the creditor's merchants.
    pub paid_points: u64,
    /// Of those, points the creditor's merchants settled that a clearing has covered.
    pub cleared_points: u64,
}

/// The last clearing of one community with one counterparty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearingState {
    pub settled_here_total: u64,
    pub settled_there_total: u64,
    pub clearings: u64,
}

/// One change an entry makes to the state (the new value of one item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Ledger(CommunityId, LedgerState),
    Account(CommunityId, PublicKey, Account),
    Holding(CommunityId, PublicKey, CommunityId, u64),
    Totals(CommunityId, IssuerTotals),
    Nonce(CommunityId, PublicKey, u64, EntryRef),
    RequestId(CommunityId, u64, EntryRef),
    Pay(Hash, PayRecord),
    Draw(Hash, DrawRecord),
    Limit(Hash, LimitRecord),
    Settle(Hash, SettleRecord),
    Exposure(CommunityId, CommunityId, Exposure),
    SettledBy(CommunityId, CommunityId, u64),
    Clearing(CommunityId, CommunityId, ClearingState),
}

/// The identity of one state item (the key a store keeps its latest [`Change`] under).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StateKey {
    Ledger(CommunityId),
    Account(CommunityId, PublicKey),
    Holding(CommunityId, PublicKey, CommunityId),
    Totals(CommunityId),
    Nonce(CommunityId, PublicKey, u64),
    RequestId(CommunityId, u64),
    Pay(Hash),
    Draw(Hash),
    Limit(Hash),
    Settle(Hash),
    Exposure(CommunityId, CommunityId),
    SettledBy(CommunityId, CommunityId),
    Clearing(CommunityId, CommunityId),
}

impl Change {
    /// Which state item this change sets.
    pub fn key(&self) -> StateKey {
        match self {
            Change::Ledger(c, _) => StateKey::Ledger(c.clone()),
            Change::Account(c, k, _) => StateKey::Account(c.clone(), *k),
            Change::Holding(c, m, i, _) => StateKey::Holding(c.clone(), *m, i.clone()),
            Change::Totals(c, _) => StateKey::Totals(c.clone()),
            Change::Nonce(c, k, n, _) => StateKey::Nonce(c.clone(), *k, *n),
            Change::RequestId(c, n, _) => StateKey::RequestId(c.clone(), *n),
            Change::Pay(h, _) => StateKey::Pay(*h),
            Change::Draw(h, _) => StateKey::Draw(*h),
            Change::Limit(h, _) => StateKey::Limit(*h),
            Change::Settle(h, _) => StateKey::Settle(*h),
            Change::Exposure(i, c, _) => StateKey::Exposure(i.clone(), c.clone()),
            Change::SettledBy(c, i, _) => StateKey::SettledBy(c.clone(), i.clone()),
            Change::Clearing(c, o, _) => StateKey::Clearing(c.clone(), o.clone()),
        }
    }
}

/// The federation-wide derived state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    pub genesis_hash: Hash,
    pub ledgers: BTreeMap<CommunityId, LedgerState>,
    /// (home community, key) → account.
    pub accounts: BTreeMap<(CommunityId, PublicKey), Account>,
    /// (merchant community, merchant, issuer) → points held.
    pub holdings: BTreeMap<(CommunityId, PublicKey, CommunityId), u64>,
    pub totals: BTreeMap<CommunityId, IssuerTotals>,
    /// (sequencing community, signer, nonce) → the entry that used it.
    pub nonces: BTreeMap<(CommunityId, PublicKey, u64), EntryRef>,
    pub request_ids: BTreeMap<(CommunityId, u64), EntryRef>,
    pub pays: BTreeMap<Hash, PayRecord>,
    pub draws: BTreeMap<Hash, DrawRecord>,
    pub limits: BTreeMap<Hash, LimitRecord>,
    pub settles: BTreeMap<Hash, SettleRecord>,
    /// (issuer, creditor) → exposure.
    pub exposure: BTreeMap<(CommunityId, CommunityId), Exposure>,
    /// (settling community, issuer) → cumulative points settled.
    pub settled_by: BTreeMap<(CommunityId, CommunityId), u64>,
    /// (community, counterparty) → last clearing.
    pub clearings: BTreeMap<(CommunityId, CommunityId), ClearingState>,
}

impl State {
    /// The state before any entry: every genesis community at seq 0 with its genesis keys.
    pub fn new(genesis: &Genesis) -> Self {
        let mut s = State { genesis_hash: genesis.hash(), ..State::default() };
        for c in &genesis.communities {
            s.ledgers.insert(
                c.id.clone(),
                LedgerState {
                    next_seq: 0,
                    head: Hash::ZERO,
                    last_time_ms: 0,
                    key: c.signing_key,
                    recovery_key: c.recovery_key,
                    retired_keys: vec![],
                    key_changes: vec![],
                    rules: None,
                    faulty: false,
                    faulty_from: u64::MAX,
                },
            );
            s.totals.insert(c.id.clone(), IssuerTotals::default());
        }
        s
    }

    /// The keys that must sign the next entry of `community`.
    pub fn signer_keys(&self, community: &CommunityId) -> Option<SignerKeys> {
        self.ledgers.get(community).map(|l| SignerKeys { current: l.key, recovery: l.recovery_key })
    }

    /// Validate `entry` against the state; on success, the changes it makes.
    pub fn check(&self, entry: &VerifiedEntry, ctx: &ApplyContext) -> Result<Vec<Change>, RejectedEntry> {
        let e = &entry.signed().entry;
        apply::check(self, entry, ctx).map_err(|rejection| RejectedEntry {
            community: e.community.clone(),
            seq: e.seq,
            kind: e.body.kind(),
            rejection,
        })
    }

    /// Write changes produced by [`State::check`].
    pub fn commit(&mut self, changes: Vec<Change>) {
        for c in changes {
            match c {
                Change::Ledger(id, l) => {
                    self.ledgers.insert(id, l);
                }
                Change::Account(c, k, a) => {
                    self.accounts.insert((c, k), a);
                }
                Change::Holding(c, m, i, p) => {
                    self.holdings.insert((c, m, i), p);
                }
                Change::Totals(c, t) => {
                    self.totals.insert(c, t);
                }
                Change::Nonce(c, k, n, r) => {
                    self.nonces.insert((c, k, n), r);
                }
                Change::RequestId(c, n, r) => {
                    self.request_ids.insert((c, n), r);
                }
                Change::Pay(h, p) => {
                    self.pays.insert(h, p);
                }
                Change::Draw(h, d) => {
                    self.draws.insert(h, d);
                }
                Change::Limit(h, l) => {
                    self.limits.insert(h, l);
                }
                Change::Settle(h, s) => {
                    self.settles.insert(h, s);
                }
                Change::Exposure(i, c, x) => {
                    self.exposure.insert((i, c), x);
                }
                Change::SettledBy(c, i, n) => {
                    self.settled_by.insert((c, i), n);
                }
                Change::Clearing(c, o, x) => {
                    self.clearings.insert((c, o), x);
                }
            }
        }
    }

    /// Every item of the state as a [`Change`] (`commit` of these onto an empty state with the
    /// same genesis hash rebuilds it): what a store writes when it rebuilds its state.
    pub fn to_changes(&self) -> Vec<Change> {
        let mut out = Vec::new();
        out.extend(self.ledgers.iter().map(|(c, l)| Change::Ledger(c.clone(), l.clone())));
        out.extend(self.accounts.iter().map(|((c, k), a)| Change::Account(c.clone(), *k, a.clone())));
        out.extend(self.holdings.iter().map(|((c, m, i), p)| Change::Holding(c.clone(), *m, i.clone(), *p)));
        out.extend(self.totals.iter().map(|(c, t)| Change::Totals(c.clone(), t.clone())));
        out.extend(self.nonces.iter().map(|((c, k, n), r)| Change::Nonce(c.clone(), *k, *n, r.clone())));
        out.extend(self.request_ids.iter().map(|((c, n), r)| Change::RequestId(c.clone(), *n, r.clone())));
        out.extend(self.pays.iter().map(|(h, p)| Change::Pay(*h, p.clone())));
        out.extend(self.draws.iter().map(|(h, d)| Change::Draw(*h, d.clone())));
        out.extend(self.limits.iter().map(|(h, l)| Change::Limit(*h, l.clone())));
        out.extend(self.settles.iter().map(|(h, x)| Change::Settle(*h, x.clone())));
        out.extend(self.exposure.iter().map(|((i, c), x)| Change::Exposure(i.clone(), c.clone(), x.clone())));
        out.extend(self.settled_by.iter().map(|((c, i), n)| Change::SettledBy(c.clone(), i.clone(), *n)));
        out.extend(self.clearings.iter().map(|((c, o), x)| Change::Clearing(c.clone(), o.clone(), x.clone())));
        out
    }

    /// Check and, if valid, commit.
    pub fn apply(&mut self, entry: &VerifiedEntry, ctx: &ApplyContext) -> Result<(), RejectedEntry> {
        let changes = self.check(entry, ctx)?;
        self.commit(changes);
        Ok(())
    }

    /// Mark a community faulty from seq `from` on (the position of a verified equivocation
    /// proof; a lower one moves it down): its entries from there on are refused.
    pub fn mark_faulty(&mut self, community: &CommunityId, from: u64) {
        if let Some(l) = self.ledgers.get_mut(community) {
            l.faulty = true;
            l.faulty_from = l.faulty_from.min(from);
        }
    }

    /// An account at its home community.
    pub fn account(&self, community: &CommunityId, key: &PublicKey) -> Option<&Account> {
        self.accounts.get(&(community.clone(), *key))
    }

    /// Points of `issuer` held by a merchant of `community`.
    pub fn holding(&self, community: &CommunityId, merchant: &PublicKey, issuer: &CommunityId) -> u64 {
        self.holdings.get(&(community.clone(), *merchant, issuer.clone())).copied().unwrap_or(0)
    }

    /// Uncleared debt of `issuer` towards `creditor`, in points.
    pub fn uncleared_points(&self, issuer: &CommunityId, creditor: &CommunityId) -> u64 {
        self.exposure
            .get(&(issuer.clone(), creditor.clone()))
            .map(|x| x.paid_points.saturating_sub(x.cleared_points))
            .unwrap_or(0)
    }

    /// The newest exposure-limit entry `creditor` published for `issuer`, if any.
    pub fn latest_limit(&self, creditor: &CommunityId, issuer: &CommunityId) -> Option<&LimitRecord> {
        self.limits.values().filter(|l| &l.at.community == creditor && &l.issuer == issuer).max_by_key(|l| l.at.seq)
    }

    /// Recompute conservation for every issuer from the raw balances (independent of the
    /// running totals) and compare. Returns the first issuer whose books do not balance.
    pub fn conservation_violation(&self) -> Option<CommunityId> {
        let mut resident: BTreeMap<&CommunityId, u128> = BTreeMap::new();
        let mut minutes: BTreeMap<&CommunityId, u128> = BTreeMap::new();
        for ((c, _), a) in &self.accounts {
            let r = resident.entry(c).or_default();
            *r = r.saturating_add(u128::from(a.points));
            let m = minutes.entry(c).or_default();
            *m = m.saturating_add(u128::from(a.minutes));
        }
        let mut merchant: BTreeMap<&CommunityId, u128> = BTreeMap::new();
        for ((_, _, issuer), p) in &self.holdings {
            let m = merchant.entry(issuer).or_default();
            *m = m.saturating_add(u128::from(*p));
        }
        let mut in_flight: BTreeMap<&CommunityId, u128> = BTreeMap::new();
        for p in self.pays.values().filter(|p| p.credited_by.is_none()) {
            let f = in_flight.entry(&p.at.community).or_default();
            *f = f.saturating_add(u128::from(p.points));
        }
        for (id, t) in &self.totals {
            let outstanding = u128::from(t.minted)
                .checked_add(u128::from(t.evidence_points))
                .and_then(|x| x.checked_sub(u128::from(t.redeemed)))
                .and_then(|x| x.checked_sub(u128::from(t.settled)));
            let held = resident
                .get(id)
                .copied()
                .unwrap_or(0)
                .saturating_add(merchant.get(id).copied().unwrap_or(0))
                .saturating_add(in_flight.get(id).copied().unwrap_or(0));
            let minutes_outstanding = u128::from(t.minutes_credited).checked_sub(u128::from(t.minutes_spent));
            if outstanding != Some(held) || minutes_outstanding != Some(minutes.get(id).copied().unwrap_or(0)) {
                return Some(id.clone());
            }
            if u128::from(t.resident_points) != resident.get(id).copied().unwrap_or(0)
                || u128::from(t.merchant_points) != merchant.get(id).copied().unwrap_or(0)
                || u128::from(t.in_flight) != in_flight.get(id).copied().unwrap_or(0)
            {
                return Some(id.clone());
            }
        }
        None
    }
}
