//! The time bank, in minutes, separate from points: `TimeCredit` (the served resident confirms;
//! the provider earns), `TimeSpend` (the home ledger debits) and `TimeFulfil` (the serving
//! community records that the service was given, once per draw).

use super::apply::{same_ref, Cx, MAX_TEXT};
use super::checks::{self, add, sub};
use super::{Change, DrawRecord, Rejection, Role, MAX_TIME_RECORD_MINUTES};
use crate::body::{Signed, TimeDraw, TimeFulfil, TimeService};

pub(super) fn time_credit(cx: &mut Cx, s: &Signed<TimeService>) -> Result<(), Rejection> {
    let t = &s.payload;
    checks::minutes_in_range(t.minutes, MAX_TIME_RECORD_MINUTES)?;
    checks::text_within("service", &t.service, MAX_TEXT)?;
    if t.provider == t.served {
        return Err(Rejection::SourceMismatch {
            field: "served",
            expected: "a resident other than the provider".into(),
            actual: t.served.to_hex(),
        });
    }
    let mut provider = cx.active_account(&t.provider, Role::Resident)?;
    cx.use_nonce(s)?;
    provider.minutes = add("minutes", provider.minutes, t.minutes)?;
    let here = cx.community().clone();
    let totals = cx.totals(&here)?;
    totals.minutes_credited = add("minutes credited", totals.minutes_credited, t.minutes)?;
    totals.minutes_held = add("minutes held", totals.minutes_held, t.minutes)?;
    cx.changes.push(Change::Account(here, t.provider, provider));
    Ok(())
}

pub(super) fn time_spend(cx: &mut Cx, s: &Signed<TimeDraw>) -> Result<(), Rejection> {
    let d = &s.payload;
    checks::minutes_in_range(d.minutes, MAX_TIME_RECORD_MINUTES)?;
    checks::text_within("service", &d.service, MAX_TEXT)?;
    cx.known_community(&d.serving_community)?;
    let mut resident = cx.active_account(&d.resident, Role::Resident)?;
    cx.use_nonce(s)?;
    resident.minutes = checks::debit_minutes(&d.resident, resident.minutes, d.minutes)?;
    let here = cx.community().clone();
    let totals = cx.totals(&here)?;
    totals.minutes_spent = add("minutes spent", totals.minutes_spent, d.minutes)?;
    totals.minutes_held = sub("minutes held", totals.minutes_held, d.minutes)?;
    cx.changes.push(Change::Account(here, d.resident, resident));
    cx.changes.push(Change::Draw(cx.here.hash, DrawRecord::unfulfilled(cx.here.clone(), d)));
    Ok(())
}

pub(super) fn time_fulfil(cx: &mut Cx, f: &TimeFulfil) -> Result<(), Rejection> {
    let mut draw = cx
        .draw_record(&f.source)
        .ok_or_else(|| Rejection::MissingDependency { what: "time-bank draw", reference: f.source.clone() })?;
    same_ref("source", &draw.at, &f.source)?;
    if &draw.serving_community != cx.community() {
        return Err(Rejection::SourceMismatch {
            field: "serving_community",
            expected: draw.serving_community.to_string(),
            actual: cx.community().to_string(),
        });
    }
    if let Some(first) = &draw.fulfilled_by {
        return Err(Rejection::AlreadyUsed { source_ref: f.source.clone(), first: first.clone() });
    }
    if draw.minutes != f.minutes {
        return Err(Rejection::SourceMismatch {
            field: "minutes",
            expected: draw.minutes.to_string(),
            actual: f.minutes.to_string(),
        });
    }
    draw.fulfilled_by = Some(cx.here.clone());
    cx.changes.push(Change::Draw(f.source.hash, draw));
    Ok(())
}
