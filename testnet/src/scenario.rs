//! The community-practice scenario, entirely over the nodes' and tills' HTTP APIs: rules,
//! enrolment, awards (figures checked against what the rule tables give), redemptions, sales at
//! tills of other communities, the time bank across communities, settlement and clearing.
//! Every figure the nodes compute is compared with what the scenario expects.

use crate::federation::Federation;
use crate::procs::run;
use crate::summary::{Expected, Figures};
use anyhow::{bail, ensure, Context, Result};
use indicatif::ProgressBar;
use linli_protocol::body::{Redemption, Signed, TimeDraw, TimeService};
use linli_protocol::rules::{ActivityRule, BonusRule, RuleTable, Unit};
use linli_protocol::{CommunityId, Hash, Keypair};
use rand_core::RngCore;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn random_hash() -> Hash {
    let mut b = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut b);
    Hash(b)
}

pub fn cid(id: &str) -> Result<CommunityId> {
    CommunityId::new(id).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Community `i` uses the default rule table when even, the council-style table when odd.
pub fn council(i: usize) -> bool {
    i % 2 == 1
}

/// The council communities' own table: `linli-node default-rules --council` (council
/// meetings, volunteering, skill sharing) extended with their own prices for clean-ups,
/// mediation, elder care and patrols, and a newcomer's first 2 awards tripled.
pub fn council_rules(mut t: RuleTable) -> RuleTable {
    let bonus = |id: &str, label: &str, points| BonusRule { id: id.into(), label: label.into(), points };
    let act = |id: &str, label: &str, unit, base_points, bonuses| ActivityRule {
        id: id.into(),
        label: label.into(),
        unit,
        base_points,
        bonuses,
    };
    t.activities.extend([
        act(
            "cleanup",
            "环境整治 neighbourhood clean-up",
            Unit::PerHour,
            8,
            vec![bonus("bad-weather", "雨雪天气 rain or snow", 5)],
        ),
        act(
            "mediation",
            "邻里调解 neighbour mediation",
            Unit::PerEvent,
            40,
            vec![bonus("complex", "多方纠纷 multi-party dispute", 20)],
        ),
        act("elder-care", "助老服务 elder care", Unit::PerHour, 12, vec![]),
        act(
            "patrol",
            "平安巡逻 safety patrol",
            Unit::PerHour,
            6,
            vec![bonus("major-hazard", "发现重大隐患 major hazard found", 20)],
        ),
    ]);
    t.newcomer_awards = 2;
    t.newcomer_multiplier = 3;
    t
}

/// Publish each community's rule table: the default table as `linli-node default-rules`
/// prints it, or the council table extended by [`council_rules`].
pub async fn publish_rules(f: &Federation) -> Result<()> {
    for i in 0..f.nodes.len() {
        let table: Value = if council(i) {
            let base: RuleTable = serde_json::from_str(&run(&f.bins.node, &["default-rules", "--council"]).await?)?;
            let t = council_rules(base);
            t.validate().map_err(|e| anyhow::anyhow!("council table: {e}"))?;
            serde_json::to_value(t)?
        } else {
            serde_json::from_str(&run(&f.bins.node, &["default-rules"]).await?)?
        };
        f.op(i, "/v1/operator/rules", table).await?;
    }
    Ok(())
}

/// Enrol a resident with a fresh key; returns the key.
pub async fn enrol(f: &Federation, i: usize) -> Result<Keypair> {
    let k = Keypair::generate();
    f.op(i, "/v1/operator/residents", json!({"resident": k.public(), "profile_hash": random_hash()})).await?;
    Ok(k)
}

/// Award through the operator API and check the points the node computed.
pub async fn award(
    f: &Federation,
    i: usize,
    who: &Keypair,
    what: (&str, u64, u8, &[&str]),
    id: u64,
    expect: u64,
) -> Result<u64> {
    let (activity, minutes, rating, bonuses) = what;
    let body = json!({"resident": who.public(), "activity": activity, "minutes": minutes, "rating": rating,
        "bonuses": bonuses, "request_id": id});
    let v = f.op(i, "/v1/operator/awards", body).await?;
    let got = v["entry"]["entry"]["body"]["Award"]["points"].as_u64().context("award without points")?;
    if got != expect {
        bail!("{}: {activity} ({minutes} min, rating {rating}, {bonuses:?}) earned {got} points; the rule table gives {expect}", f.nodes[i].id);
    }
    Ok(got)
}

pub async fn run_scenario(f: &Federation, residents: usize) -> Result<Expected> {
    let n = f.nodes.len();
    let gh = f.genesis_hash;
    let ids: Vec<String> = f.nodes.iter().map(|x| x.id.clone()).collect();
    let mut exp = Expected::new(&ids);
    let pb = ProgressBar::new(9).with_message("publishing rules");
    pb.set_style(crate::summary::bar_style());
    // Printed even when stdout is not a terminal (the bar is then hidden, and its println too).
    let say = |s: String| pb.suspend(|| println!("  {s}"));

    publish_rules(f).await?;
    say(format!(
        "rules published: default table in {}, council table (with its own clean-up, mediation, elder-care and patrol prices) in {}",
        ids.iter().step_by(2).cloned().collect::<Vec<_>>().join(", "),
        ids.iter().skip(1).step_by(2).cloned().collect::<Vec<_>>().join(", ")
    ));
    pb.inc(1);

    pb.set_message("enrolling residents");
    let mut people: Vec<Vec<Keypair>> = Vec::new();
    for i in 0..n {
        let mut v = Vec::new();
        for _ in 0..residents.max(2) {
            v.push(enrol(f, i).await?);
        }
        people.push(v);
    }
    say(format!("{} residents enrolled in {n} communities", n * residents.max(2)));
    pb.inc(1);

    pb.set_message("awarding points");
    for i in 0..n {
        let e = exp.get(&ids[i]);
        let mut id = 0;
        let mut next = || {
            id += 1;
            id
        };
        let r0 = &people[i][0];
        // (resident, (activity, minutes, rating, bonuses), points the table gives).
        type Award<'a> = (&'a Keypair, (&'a str, u64, u8, &'a [&'a str]), u64);
        let mut plan: Vec<Award> = Vec::new();
        if !council(i) {
            // Default table, newcomer (first 3 counted awards doubled), min rating 3.
            plan.push((r0, ("cleanup", 90, 5, &["bad-weather"]), 60)); // (20+10)x2
            plan.push((r0, ("mediation", 60, 5, &[]), 100)); // 50x2
            plan.push((r0, ("patrol", 60, 2, &[]), 0)); // rating too low
            plan.push((r0, ("elder-care", 60, 5, &[]), 60)); // 30x2, third counted
            plan.push((r0, ("patrol", 120, 4, &["major-hazard"]), 80)); // 50+30
            for r in &people[i][1..] {
                plan.push((r, ("elder-care", 60, 4, &["continuous-3m"]), 100)); // newcomer (30+20)x2
            }
        } else {
            // Council table (council_rules): clean-up 8/hour, mediation 40, elder care 12/hour,
            // patrol 6/hour, council 10 a meeting, volunteering 5/hour; a newcomer's first 2
            // awards tripled; min rating 2; cap 100.
            plan.push((r0, ("cleanup", 120, 4, &["bad-weather"]), 63)); // (8x2+5)x3
            plan.push((r0, ("mediation", 60, 5, &[]), 100)); // 40x3 = 120, capped at 100
            plan.push((r0, ("patrol", 90, 1, &[]), 0)); // rating too low
            plan.push((r0, ("elder-care", 150, 4, &[]), 24)); // 12x2 (full hours), no longer new
            plan.push((r0, ("patrol", 180, 3, &["major-hazard"]), 38)); // 6x3+20
            plan.push((r0, ("council", 60, 3, &[]), 10));
            plan.push((r0, ("volunteering", 1440, 5, &[]), 100)); // 24 h: 120, capped
            for r in &people[i][1..] {
                plan.push((r, ("elder-care", 60, 4, &[]), 36)); // newcomer 12x3
            }
        }
        for (r, what, expect) in plan {
            let p = award(f, i, r, what, next(), expect).await?;
            *e.by_activity.entry(what.0.to_string()).or_default() += p;
        }
        // A claim that disagrees with the rule table is refused.
        let body = json!({"resident": r0.public(), "activity": if council(i) { "council" } else { "cleanup" },
            "minutes": 60, "rating": 5, "request_id": 999, "points": 500});
        let (s, v) = f.op_raw(i, "/v1/operator/awards", body).await?;
        ensure!(s == 422 && v["error"] == "award-points", "an inflated award claim was not refused: {s} {v}");
    }
    say("awards for clean-ups, mediation, elder care and patrols in every community under its own table: newcomers' double (default) or triple (council) points, bad-weather bonus, low ratings earn 0, caps — all as the tables give; an inflated claim refused (award-points)".into());
    pb.inc(1);

    pb.set_message("exposure limits");
    for t in &f.tills {
        for (j, issuer) in ids.iter().enumerate() {
            if j != t.home {
                f.op(t.home, "/v1/operator/exposure-limits", json!({"issuer": issuer, "limit_fen": 50_000})).await?;
            }
        }
    }
    f.converge(Duration::from_secs(60), false).await?;
    say("each merchant community carries up to 500.00 yuan of every other community's points".into());
    pb.inc(1);

    pb.set_message("redeeming at home");
    for i in 0..n {
        let r0 = &people[i][0];
        let (points, item) = if council(i) { (10, "食用油 cooking oil") } else { (20, "大米 5kg rice") };
        let red = Signed::sign(Redemption { resident: r0.public(), points, item: item.into(), nonce: 1 }, r0, &gh);
        let (s, v) = f.post(i, "/v1/redeem", &json!(red)).await?;
        ensure!(s == 200, "redeem at {}: {s} {v}", ids[i]);
        exp.get(&ids[i]).redeemed += points;
        let over =
            Signed::sign(Redemption { resident: r0.public(), points: 100_000, item: "tv".into(), nonce: 2 }, r0, &gh);
        let (s, v) = f.post(i, "/v1/redeem", &json!(over)).await?;
        ensure!(s == 422 && v["error"] == "insufficient-points", "an overdraft redemption was not refused: {s} {v}");
    }
    say("redemptions at home; an overdraft refused (insufficient-points)".into());
    pb.inc(1);

    pb.set_message("spending at tills of other communities");
    let receipts = crate::market::sales(f, &people, &mut exp).await?;
    say(format!("{} sales verified by the tills (entry, inclusion proof, checkpoint cosigned by ≥2 witnesses); a reused nonce and an overspend refused", receipts.iter().sum::<u64>()));
    pb.inc(1);

    pb.set_message("time bank across communities");
    for i in 0..n {
        let (served, provider) = (&people[i][0], &people[i][1]);
        let svc = TimeService {
            provider: provider.public(),
            served: served.public(),
            minutes: 90,
            service: "陪诊 hospital escort".into(),
            nonce: 100,
        };
        let (s, v) = f.post(i, "/v1/time/credit", &json!(Signed::sign(svc, served, &gh))).await?;
        ensure!(s == 200, "time credit: {s} {v}");
        let serving = (i + 1) % n;
        let draw = TimeDraw {
            resident: provider.public(),
            minutes: 60,
            serving_community: cid(&ids[serving])?,
            service: "维修 home repair".into(),
            nonce: 101,
        };
        let (s, v) = f.post(i, "/v1/time/spend", &json!(Signed::sign(draw, provider, &gh))).await?;
        ensure!(s == 200, "time spend: {s} {v}");
        exp.get(&ids[i]).minutes_credited += 90;
        exp.get(&ids[i]).minutes_spent += 60;
        exp.get(&ids[serving]).minutes_fulfilled += 60;
    }
    say("time bank: 90 minutes earned in each community, 60 of them spent in the next one".into());
    pb.inc(1);

    pb.set_message("merchants settle through their tills");
    let pairs = crate::market::settle(f, &receipts, &mut exp).await?;
    say(format!(
        "tills settled {} points ({} yuan) at 10 fen a point",
        pairs.iter().map(|p| p.2).sum::<u64>(),
        crate::summary::yuan(pairs.iter().map(|p| p.2 * 10).sum())
    ));
    pb.inc(1);

    pb.set_message("communities clear with each other");
    f.converge(Duration::from_secs(60), false).await?;
    let cleared = crate::market::clear(f, &pairs, &mut exp).await?;
    say(format!("{cleared} pairs of communities cleared; each side's figures derived from both ledgers"));
    pb.inc(1);
    pb.finish_and_clear();
    Ok(exp)
}

/// Compare the figures computed from the ledgers with what the scenario expects.
pub fn check_expected(exp: &Expected, got: &std::collections::BTreeMap<String, Figures>) -> Result<()> {
    for (c, e) in &exp.0 {
        let g = got.get(c).cloned().unwrap_or_default();
        if g != *e {
            bail!("community {c}: the ledgers say {g:?}, the scenario expects {e:?}");
        }
    }
    Ok(())
}
