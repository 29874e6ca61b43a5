//! Money along a payment's path: `Pay` (issuer's ledger, with the exposure-limit check),
//! `Credit` (merchant's ledger, once per source), `Settle` (cash out at exactly 10 fen a point),
//! `Clearing` between two communities, and `SetExposureLimit`.

use super::apply::{same_ref, Cx};
use super::checks::{self, add, sub};
use super::{Change, ClearingState, LimitRecord, PayRecord, Rejection, Role, SettleRecord};
use crate::body::{Clearing, Credit, ExposureLimit, PayEntry, SettleEntry};
use crate::primitives::PublicKey;

pub(super) fn pay(cx: &mut Cx, b: &PayEntry) -> Result<(), Rejection> {
    let p = &b.payment.payload;
    checks::same_genesis(&cx.state.genesis_hash, &p.genesis)?;
    checks::nonzero("points", p.points)?;
    checks::points_within_price(p.points, p.price_fen)?;
    checks::not_expired(p.expiry_ms, cx.time_ms)?;
    cx.known_community(&p.merchant_community)?;
    let mut payer = cx.active_account(&p.payer, Role::Resident)?;
    cx.use_nonce(&b.payment)?;
    payer.points = checks::debit_points(&p.payer, payer.points, p.points)?;
    let here = cx.community().clone();

    if p.merchant_community != here {
        let creditor = p.merchant_community.clone();
        let cited = b
            .exposure_limit
            .as_ref()
            .ok_or_else(|| Rejection::ExposureLimitMissing { issuer: here.clone(), creditor: creditor.clone() })?;
        let limit = cx
            .state
            .limits
            .get(&cited.hash)
            .ok_or_else(|| Rejection::MissingDependency { what: "exposure limit entry", reference: cited.clone() })?;
        if &limit.at != cited || limit.at.community != creditor || limit.issuer != here {
            return Err(Rejection::ExposureLimitWrong { reference: cited.clone(), issuer: here, creditor });
        }
        let mut exposure = cx.state.exposure.get(&(here.clone(), creditor.clone())).cloned().unwrap_or_default();
        if let Some(latest) = exposure.limit_seq {
            if cited.seq < latest {
                return Err(Rejection::ExposureLimitStale { latest, actual: cited.seq });
            }
        }
        let uncleared = exposure.paid_points.saturating_sub(exposure.cleared_points);
        checks::within_exposure_limit(limit.limit_fen, uncleared, p.points)?;
        exposure.limit_seq = Some(cited.seq);
        exposure.paid_points = add("paid points", exposure.paid_points, p.points)?;
        cx.changes.push(Change::Exposure(here.clone(), creditor, exposure));
    } else if b.exposure_limit.is_some() {
        return Err(Rejection::ExposureLimitUnexpected);
    }

    let t = cx.totals(&here)?;
    t.resident_points = sub("resident points total", t.resident_points, p.points)?;
    t.in_flight = add("in flight", t.in_flight, p.points)?;
    cx.changes.push(Change::Account(here, p.payer, payer));
    cx.changes.push(Change::Pay(cx.here.hash, PayRecord::uncredited(cx.here.clone(), p)));
    Ok(())
}

/// The key a merchant account acts under now, following key replacements.
fn current_key(cx: &Cx, key: &PublicKey) -> PublicKey {
    let mut k = *key;
    for _ in 0..1024 {
        match cx.state.account(cx.community(), &k).and_then(|a| a.replaced_by) {
            Some(next) => k = next,
            None => break,
        }
    }
    k
}

fn mismatch(field: &'static str, expected: impl ToString, actual: impl ToString) -> Rejection {
    Rejection::SourceMismatch { field, expected: expected.to_string(), actual: actual.to_string() }
}

pub(super) fn credit(cx: &mut Cx, c: &Credit) -> Result<(), Rejection> {
    let here = cx.community().clone();
    let mut record = cx
        .pay_record(&c.source)
        .ok_or_else(|| Rejection::MissingDependency { what: "source payment", reference: c.source.clone() })?;
    same_ref("source", &record.at, &c.source)?;
    if record.merchant_community != here {
        return Err(mismatch("merchant_community", &record.merchant_community, &here));
    }
    if let Some(first) = &record.credited_by {
        return Err(Rejection::AlreadyUsed { source_ref: c.source.clone(), first: first.clone() });
    }
    let merchant = current_key(cx, &record.merchant);
    if c.merchant != merchant {
        return Err(mismatch("merchant", merchant, c.merchant));
    }
    if c.issuer != record.at.community {
        return Err(mismatch("issuer", &record.at.community, &c.issuer));
    }
    if c.points != record.points {
        return Err(mismatch("points", record.points, c.points));
    }
    cx.active_account(&merchant, Role::Merchant)?;
    let held = cx.state.holding(&here, &merchant, &c.issuer);
    cx.changes.push(Change::Holding(here, merchant, c.issuer.clone(), add("merchant holding", held, c.points)?));
    record.credited_by = Some(cx.here.clone());
    cx.changes.push(Change::Pay(c.source.hash, record));
    let t = cx.totals(&c.issuer)?;
    t.in_flight = sub("in flight", t.in_flight, c.points)?;
    t.merchant_points = add("merchant points total", t.merchant_points, c.points)?;
    Ok(())
}

pub(super) fn settle(cx: &mut Cx, s: &SettleEntry) -> Result<(), Rejection> {
    let r = &s.request.payload;
    checks::nonzero("points", r.points)?;
    checks::settle_fen_exact(r.points, r.fen)?;
    cx.known_community(&r.issuer)?;
    cx.active_account(&r.merchant, Role::Merchant)?;
    cx.use_nonce(&s.request)?;
    let here = cx.community().clone();
    let held = cx.state.holding(&here, &r.merchant, &r.issuer);
    let left = held.checked_sub(r.points).ok_or_else(|| Rejection::InsufficientHoldings {
        merchant: r.merchant,
        issuer: r.issuer.clone(),
        balance: held,
        required: r.points,
    })?;
    let before = cx.state.settled_by.get(&(here.clone(), r.issuer.clone())).copied().unwrap_or(0);
    let total = add("settled total", before, r.points)?;
    if s.settled_total != total {
        return Err(Rejection::SettledTotal { expected: total, actual: s.settled_total });
    }
    cx.changes.push(Change::Holding(here.clone(), r.merchant, r.issuer.clone(), left));
    cx.changes.push(Change::SettledBy(here, r.issuer.clone(), total));
    let record = SettleRecord { at: cx.here.clone(), issuer: r.issuer.clone(), settled_total: total };
    cx.changes.push(Change::Settle(cx.here.hash, record));
    let t = cx.totals(&r.issuer)?;
    t.merchant_points = sub("merchant points total", t.merchant_points, r.points)?;
    t.settled = add("settled", t.settled, r.points)?;
    Ok(())
}

pub(super) fn clearing(cx: &mut Cx, c: &Clearing) -> Result<(), Rejection> {
    let here = cx.community().clone();
    let other = c.counterparty.clone();
    if other == here {
        return Err(Rejection::SelfReference { what: "a clearing", community: here });
    }
    cx.known_community(&other)?;
    let prev: ClearingState = cx.state.clearings.get(&(here.clone(), other.clone())).cloned().unwrap_or_default();
    let settled_here = cx.state.settled_by.get(&(here.clone(), other.clone())).copied().unwrap_or(0);
    checks::figure_matches("settled_here_total", settled_here, c.settled_here_total)?;
    let settled_there = match &c.settled_there_ref {
        Some(cited) => {
            let rec = cx.state.settles.get(&cited.hash).ok_or_else(|| Rejection::MissingDependency {
                what: "counterparty settlement",
                reference: cited.clone(),
            })?;
            same_ref("settled_there_ref", &rec.at, cited)?;
            if rec.at.community != other || rec.issuer != here {
                return Err(mismatch(
                    "settled_there_ref",
                    format!("a settlement by {other} of {here} points"),
                    format!("{:?}", rec.at),
                ));
            }
            rec.settled_total
        }
        None => prev.settled_there_total,
    };
    checks::figure_matches("settled_there_total", settled_there, c.settled_there_total)?;
    if settled_there < prev.settled_there_total {
        return Err(Rejection::ClearingFigure {
            field: "settled_there_total",
            expected: prev.settled_there_total,
            actual: settled_there,
        });
    }
    let receivable = checks::points_to_fen(sub("settled here", settled_here, prev.settled_here_total)?)?;
    let payable = checks::points_to_fen(sub("settled there", settled_there, prev.settled_there_total)?)?;
    checks::figure_matches("receivable_fen", receivable, c.receivable_fen)?;
    checks::figure_matches("payable_fen", payable, c.payable_fen)?;
    let next = ClearingState {
        settled_here_total: settled_here,
        settled_there_total: settled_there,
        clearings: add("clearings", prev.clearings, 1)?,
    };
    cx.changes.push(Change::Clearing(here.clone(), other.clone(), next));
    let mut exposure = cx.state.exposure.get(&(here.clone(), other.clone())).cloned().unwrap_or_default();
    exposure.cleared_points = settled_there;
    cx.changes.push(Change::Exposure(here, other, exposure));
    Ok(())
}

pub(super) fn set_exposure_limit(cx: &mut Cx, l: &ExposureLimit) -> Result<(), Rejection> {
    let here = cx.community().clone();
    if l.issuer == here {
        return Err(Rejection::SelfReference { what: "an exposure limit", community: here });
    }
    cx.known_community(&l.issuer)?;
    let record = LimitRecord { at: cx.here.clone(), issuer: l.issuer.clone(), limit_fen: l.limit_fen };
    cx.changes.push(Change::Limit(cx.here.hash, record));
    Ok(())
}
