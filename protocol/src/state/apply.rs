//! The transition: envelope rules (community, seq, chain, time, signer) shared by every entry,
//! then the body's own rules. Money movements live in `payments.rs`, the time bank in
//! `timebank.rs`; enrolment, rules, awards, redemptions and keys are here.

use super::checks::{self, add, sub};
use super::{
    Account, ApplyContext, Change, IssuerTotals, LedgerState, Rejection, Role, State, MAX_CLOCK_SKEW_MS,
    MAX_TIME_RECORD_MINUTES,
};
use crate::body::Redemption;
use crate::body::{
    Award, Body, Enroll, EntryRef, RegisterMerchant, ReplaceKey, RevokeKey, RotateKey, Signed, SignedPayload,
};
use crate::keys;
use crate::primitives::{CommunityId, PublicKey};
use crate::rules::{AwardClaim, RuleTable};
use crate::verify::VerifiedEntry;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest merchant name, activity label or service description, in bytes.
pub(super) const MAX_TEXT: usize = 128;

/// Working context of one entry's check: the state read-only, plus the changes so far.
pub(super) struct Cx<'a> {
    pub state: &'a State,
    pub here: EntryRef,
    pub time_ms: u64,
    pub ledger: LedgerState,
    pub changes: Vec<Change>,
    totals: BTreeMap<CommunityId, IssuerTotals>,
}

impl<'a> Cx<'a> {
    pub fn community(&self) -> &CommunityId {
        &self.here.community
    }

    /// The running totals of `issuer`, as modified so far by this entry.
    pub fn totals(&mut self, issuer: &CommunityId) -> Result<&mut IssuerTotals, Rejection> {
        if !self.totals.contains_key(issuer) {
            let t = self
                .state
                .totals
                .get(issuer)
                .cloned()
                .ok_or_else(|| Rejection::UnknownCommunity { community: issuer.clone() })?;
            self.totals.insert(issuer.clone(), t);
        }
        self.totals.get_mut(issuer).ok_or(Rejection::UnknownCommunity { community: issuer.clone() })
    }

    /// An account of this community that can act: it exists, has `role`, and was not replaced.
    pub fn active_account(&self, key: &PublicKey, role: Role) -> Result<Account, Rejection> {
        let a = self
            .state
            .account(self.community(), key)
            .ok_or_else(|| Rejection::UnknownAccount { community: self.community().clone(), key: *key })?;
        if let Some(new_key) = a.replaced_by {
            return Err(Rejection::AccountReplaced { key: *key, new_key });
        }
        if a.role != role {
            return Err(Rejection::WrongRole { key: *key, expected: role, actual: a.role });
        }
        Ok(a.clone())
    }

    /// Record a signer's nonce as used, refusing reuse.
    pub fn use_nonce<T: SignedPayload>(&mut self, s: &Signed<T>) -> Result<(), Rejection> {
        let (signer, nonce) = (s.payload.signer(), s.payload.nonce());
        if let Some(first) = self.nonce_first(&signer, nonce) {
            return Err(Rejection::NonceReused { signer, nonce, first: first.clone() });
        }
        self.changes.push(Change::Nonce(self.community().clone(), signer, nonce, self.here.clone()));
        Ok(())
    }

    pub fn known_community(&self, id: &CommunityId) -> Result<(), Rejection> {
        if self.state.ledgers.contains_key(id) {
            Ok(())
        } else {
            Err(Rejection::UnknownCommunity { community: id.clone() })
        }
    }

    pub fn rules(&self) -> Result<&Arc<RuleTable>, Rejection> {
        self.ledger.rules.as_ref().ok_or_else(|| Rejection::RulesNotPublished { community: self.community().clone() })
    }

    fn finish(mut self) -> Result<Vec<Change>, Rejection> {
        self.ledger.next_seq = add("seq", self.ledger.next_seq, 1)?;
        self.ledger.head = self.here.hash;
        self.ledger.last_time_ms = self.time_ms;
        self.changes.push(Change::Ledger(self.here.community.clone(), self.ledger));
        for (id, t) in self.totals {
            self.changes.push(Change::Totals(id, t));
        }
        Ok(self.changes)
    }
}

/// Both references name the same entry.
pub(super) fn same_ref(field: &'static str, expected: &EntryRef, actual: &EntryRef) -> Result<(), Rejection> {
    if expected == actual {
        Ok(())
    } else {
        Err(Rejection::SourceMismatch { field, expected: format!("{expected:?}"), actual: format!("{actual:?}") })
    }
}

pub(super) fn check(state: &State, v: &VerifiedEntry, ctx: &ApplyContext) -> Result<Vec<Change>, Rejection> {
    let e = &v.signed().entry;
    let ledger = state
        .ledgers
        .get(&e.community)
        .ok_or_else(|| Rejection::UnknownCommunity { community: e.community.clone() })?;
    if ledger.faulty && e.seq >= ledger.faulty_from {
        return Err(Rejection::CommunityFaulty { community: e.community.clone() });
    }
    let size = crate::encoding::encode(v.signed()).len();
    if size > crate::encoding::MAX_ENTRY_BYTES {
        return Err(Rejection::EntryTooLarge { limit: crate::encoding::MAX_ENTRY_BYTES, actual: size });
    }
    checks::seq_follows(ledger.next_seq, e.seq)?;
    checks::prev_hash_chains(&ledger.head, &e.prev_hash)?;
    checks::time_not_backwards(ledger.last_time_ms, e.time_ms)?;
    if let Some(now_ms) = ctx.now_ms {
        checks::time_not_ahead(now_ms, e.time_ms, MAX_CLOCK_SKEW_MS)?;
    }
    let expected_signer = match e.body {
        Body::RevokeKey(_) => ledger.recovery_key,
        _ => ledger.key,
    };
    checks::signed_by_key_in_force(&expected_signer, &v.signer())?;

    let mut cx = Cx {
        state,
        here: EntryRef { community: e.community.clone(), seq: e.seq, hash: v.hash() },
        time_ms: e.time_ms,
        ledger: ledger.clone(),
        changes: Vec::new(),
        totals: BTreeMap::new(),
    };
    match &e.body {
        Body::Enroll(b) => enroll(&mut cx, b)?,
        Body::RegisterMerchant(b) => register_merchant(&mut cx, b)?,
        Body::SetRules(b) => set_rules(&mut cx, b)?,
        Body::Award(b) => award(&mut cx, b)?,
        Body::Redeem(b) => redeem(&mut cx, b)?,
        Body::Pay(b) => super::payments::pay(&mut cx, b)?,
        Body::Credit(b) => super::payments::credit(&mut cx, b)?,
        Body::Settle(b) => super::payments::settle(&mut cx, b)?,
        Body::Clearing(b) => super::payments::clearing(&mut cx, b)?,
        Body::SetExposureLimit(b) => super::payments::set_exposure_limit(&mut cx, b)?,
        Body::TimeCredit(b) => super::timebank::time_credit(&mut cx, b)?,
        Body::TimeSpend(b) => super::timebank::time_spend(&mut cx, b)?,
        Body::TimeFulfil(b) => super::timebank::time_fulfil(&mut cx, b)?,
        Body::RotateKey(b) => rotate_key(&mut cx, b)?,
        Body::RevokeKey(b) => revoke_key(&mut cx, b)?,
        Body::ReplaceKey(b) => replace_key(&mut cx, b)?,
    }
    cx.finish()
}

fn usable_key(key: &PublicKey) -> Result<(), Rejection> {
    keys::verifying_key(key).map(|_| ()).map_err(|error| Rejection::BadKey { key: *key, error })
}

fn new_account(cx: &mut Cx, key: &PublicKey, role: Role) -> Result<(), Rejection> {
    usable_key(key)?;
    if cx.state.account(cx.community(), key).is_some() {
        return Err(Rejection::AccountExists { community: cx.community().clone(), key: *key });
    }
    let account = Account::new(role, cx.here.seq);
    cx.changes.push(Change::Account(cx.community().clone(), *key, account));
    Ok(())
}

fn enroll(cx: &mut Cx, b: &Enroll) -> Result<(), Rejection> {
    new_account(cx, &b.resident, Role::Resident)
}

fn register_merchant(cx: &mut Cx, b: &RegisterMerchant) -> Result<(), Rejection> {
    checks::text_within("name", &b.name, MAX_TEXT)?;
    checks::text_within("category", &b.category, MAX_TEXT)?;
    new_account(cx, &b.merchant, Role::Merchant)
}

fn set_rules(cx: &mut Cx, table: &RuleTable) -> Result<(), Rejection> {
    table.validate().map_err(Rejection::InvalidRules)?;
    let current = cx.ledger.rules.as_ref().map(|r| r.version).unwrap_or(0);
    if table.version <= current {
        return Err(Rejection::RulesVersion { current, actual: table.version });
    }
    cx.ledger.rules = Some(Arc::new(table.clone()));
    Ok(())
}

fn award(cx: &mut Cx, a: &Award) -> Result<(), Rejection> {
    // A shared handle (cheap), so `cx` can be changed below while the table is read.
    let rules = cx.rules()?.clone();
    if a.rules_version != rules.version {
        return Err(Rejection::AwardRulesVersion { expected: rules.version, actual: a.rules_version });
    }
    if a.minutes > MAX_TIME_RECORD_MINUTES {
        return Err(Rejection::MinutesOutOfRange { max: MAX_TIME_RECORD_MINUTES, actual: a.minutes });
    }
    let mut account = cx.active_account(&a.resident, Role::Resident)?;
    if let Some(first) = cx.request_first(a.request_id) {
        return Err(Rejection::RequestIdReused { request_id: a.request_id, first: first.clone() });
    }
    let claim = AwardClaim {
        activity: &a.activity,
        minutes: a.minutes,
        rating: a.rating,
        bonuses: &a.bonuses,
        prior_awards: account.awards,
    };
    let expected = rules.award_points(&claim).map_err(Rejection::AwardInvalid)?;
    checks::award_points_match(expected, a.points)?;
    account.points = add("resident points", account.points, a.points)?;
    account.lifetime_points = add("lifetime points", account.lifetime_points, a.points)?;
    account.served_minutes = add("served minutes", account.served_minutes, a.minutes)?;
    if a.rating >= rules.min_rating {
        account.awards = add("awards", account.awards, 1)?;
    }
    let here = cx.community().clone();
    let t = cx.totals(&here)?;
    t.minted = add("minted", t.minted, a.points)?;
    t.resident_points = add("resident points total", t.resident_points, a.points)?;
    cx.changes.push(Change::Account(here.clone(), a.resident, account));
    cx.changes.push(Change::RequestId(here, a.request_id, cx.here.clone()));
    Ok(())
}

fn redeem(cx: &mut Cx, s: &Signed<Redemption>) -> Result<(), Rejection> {
    let r = &s.payload;
    checks::nonzero("points", r.points)?;
    checks::text_within("item", &r.item, MAX_TEXT)?;
    let mut account = cx.active_account(&r.resident, Role::Resident)?;
    let min_hours = cx.rules()?.min_hours_before_redeem;
    checks::served_enough(min_hours, account.served_minutes)?;
    cx.use_nonce(s)?;
    account.points = checks::debit_points(&r.resident, account.points, r.points)?;
    let here = cx.community().clone();
    let t = cx.totals(&here)?;
    t.redeemed = add("redeemed", t.redeemed, r.points)?;
    t.resident_points = sub("resident points total", t.resident_points, r.points)?;
    cx.changes.push(Change::Account(here, r.resident, account));
    Ok(())
}

fn fresh_community_key(cx: &Cx, key: &PublicKey) -> Result<(), Rejection> {
    usable_key(key)?;
    if *key == cx.ledger.key || cx.ledger.retired_keys.contains(key) {
        return Err(Rejection::KeyRotation { reason: "the new key was already used by this community" });
    }
    if *key == cx.ledger.recovery_key {
        return Err(Rejection::KeyRotation { reason: "the recovery key cannot become the signing key" });
    }
    Ok(())
}

fn rotate_key(cx: &mut Cx, r: &RotateKey) -> Result<(), Rejection> {
    fresh_community_key(cx, &r.new_key)?;
    let old = cx.ledger.key;
    cx.ledger.retired_keys.push(old);
    cx.ledger.key = r.new_key;
    cx.ledger.key_changes.push(cx.here.seq);
    Ok(())
}

fn revoke_key(cx: &mut Cx, r: &RevokeKey) -> Result<(), Rejection> {
    if r.revoked_key != cx.ledger.key {
        return Err(Rejection::KeyRotation { reason: "the revoked key is not the key in force" });
    }
    fresh_community_key(cx, &r.new_key)?;
    cx.ledger.retired_keys.push(r.revoked_key);
    cx.ledger.key = r.new_key;
    cx.ledger.key_changes.push(cx.here.seq);
    Ok(())
}

fn replace_key(cx: &mut Cx, r: &ReplaceKey) -> Result<(), Rejection> {
    let here = cx.community().clone();
    let old = cx
        .state
        .account(&here, &r.old_key)
        .cloned()
        .ok_or_else(|| Rejection::UnknownAccount { community: here.clone(), key: r.old_key })?;
    if let Some(new_key) = old.replaced_by {
        return Err(Rejection::AccountReplaced { key: r.old_key, new_key });
    }
    usable_key(&r.new_key)?;
    if cx.state.account(&here, &r.new_key).is_some() {
        return Err(Rejection::AccountExists { community: here, key: r.new_key });
    }
    let moved = Account { replaced_by: None, ..old.clone() };
    let retired = Account { replaced_by: Some(r.new_key), points: 0, minutes: 0, ..old };
    cx.changes.push(Change::Account(here.clone(), r.new_key, moved));
    cx.changes.push(Change::Account(here.clone(), r.old_key, retired));
    let holdings: Vec<(CommunityId, u64)> = cx
        .state
        .holdings
        .iter()
        .filter(|((c, m, _), p)| c == &here && m == &r.old_key && **p > 0)
        .map(|((_, _, issuer), p)| (issuer.clone(), *p))
        .collect();
    for (issuer, points) in holdings {
        cx.changes.push(Change::Holding(here.clone(), r.old_key, issuer.clone(), 0));
        cx.changes.push(Change::Holding(here.clone(), r.new_key, issuer, points));
    }
    Ok(())
}
