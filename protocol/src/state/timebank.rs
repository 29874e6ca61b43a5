//! The time bank, in minutes, separate from points: `TimeCredit` (the served resident confirms;
//! the provider earns), `TimeSpend` (the home ledger debits) and `TimeFulfil` (the serving
//! community records that the service was given, once per draw).

use super::apply::{same_ref, Cx, MAX_TEXT};
use super::checks::{self, add, sub};
use super::{Change, DrawRecord, Rejection, Role, MAX_TIME_RECORD_MINUTES};
use crate::body::{Signed, TimeDraw, TimeFulfil, TimeService};
use crate::primitives::PublicKey;

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
    served_is_resident(cx, &t.served)?;
    cx.use_nonce(s)?;
    provider.minutes = add("minutes", provider.minutes, t.minutes)?;
    let here = cx.community().clone();
    let totals = cx.totals(&here)?;
    totals.minutes_credited = add("minutes credited", totals.minutes_credited, t.minutes)?;
    totals.minutes_held = add("minutes held", totals.minutes_held, t.minutes)?;
    cx.changes.push(Change::Account(here, t.provider, provider));
    Ok(())
}

/// The served resident who signs a `TimeCredit` must be an active enrolled resident of the
/// community that sequences it: a throwaway key cannot confirm a service and mint minutes.
fn served_is_resident(cx: &Cx, served: &PublicKey) -> Result<(), Rejection> {
    let here = cx.community();
    let actual = match cx.state.account(here, served) {
        None => format!("not enrolled in {here}"),
        Some(a) if a.replaced_by.is_some() => format!("a replaced key of {here}"),
        Some(a) if a.role != Role::Resident => format!("a {:?} account of {here}", a.role),
        Some(_) => return Ok(()),
    };
    Err(Rejection::ServedNotResident { served: *served, expected: format!("an active resident of {here}"), actual })
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

#[cfg(test)]
mod tests {
    use crate::body::{Body, RegisterMerchant, TimeService};
    use crate::state::Rejection;
    use crate::testkit::{key, TestFederation};

    fn credit(f: &mut TestFederation, served: &str, nonce: u64) -> Result<(), Rejection> {
        let svc = TimeService {
            provider: key("provider").public(),
            served: key(served).public(),
            minutes: 45,
            service: "tutoring".into(),
            nonce,
        };
        let signed = f.sign(svc, &key(served));
        f.append("a", Body::TimeCredit(signed)).map(|_| ()).map_err(|e| e.rejection)
    }

    fn federation() -> TestFederation {
        let mut f = TestFederation::new(&["a", "b"]);
        f.enroll("a", &key("provider")).unwrap();
        f
    }

    #[test]
    fn an_enrolled_resident_of_the_community_confirms_a_service() {
        let mut f = federation();
        f.enroll("a", &key("neighbour")).unwrap();
        credit(&mut f, "neighbour", 1).unwrap();
        assert_eq!(f.state.account(&crate::testkit::cid("a"), &key("provider").public()).unwrap().minutes, 45);
    }

    #[test]
    fn a_throwaway_or_foreign_key_cannot_confirm_a_service() {
        let mut f = federation();
        // Never enrolled anywhere: the rejection names what was expected and what it is.
        let err = credit(&mut f, "throwaway", 1).unwrap_err();
        assert_eq!(
            err,
            Rejection::ServedNotResident {
                served: key("throwaway").public(),
                expected: "an active resident of a".into(),
                actual: "not enrolled in a".into(),
            }
        );
        assert_eq!(err.rule(), "served-not-resident");
        // A resident of another community does not count here.
        f.enroll("b", &key("visitor")).unwrap();
        let err = credit(&mut f, "visitor", 2).unwrap_err();
        assert!(matches!(&err, Rejection::ServedNotResident { actual, .. } if actual == "not enrolled in a"), "{err}");
        // Nor does a merchant account.
        let shop = RegisterMerchant { merchant: key("shop").public(), name: "shop".into(), category: "food".into() };
        f.append("a", Body::RegisterMerchant(shop)).unwrap();
        let err = credit(&mut f, "shop", 3).unwrap_err();
        assert!(matches!(&err, Rejection::ServedNotResident { actual, .. } if actual.contains("Merchant")), "{err}");
        assert_eq!(f.state.account(&crate::testkit::cid("a"), &key("provider").public()).unwrap().minutes, 0);
    }
}
