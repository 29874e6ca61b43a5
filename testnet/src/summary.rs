//! The summary a person reads: per community, figures computed from the ledgers the nodes
//! serve (points issued, redeemed, spent elsewhere, settled, cleared; time-bank minutes; money
//! in integer fen, shown in yuan), and the federation's verdict: every node holds the same heads
//! and checkpoints, `linli verify` over HTTP passes on every node and agrees with the figures,
//! and (after stopping) `linli-node check` verifies every store from genesis.

use crate::federation::Federation;
use crate::procs::run;
use anyhow::{bail, ensure, Context, Result};
use indicatif::ProgressStyle;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// One community's figures (points, fen, minutes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub redeemed: u64,
    /// Points of this community's residents paid at merchants of other communities.
    pub spent_elsewhere: u64,
    /// Points (of any issuer) this community's merchants cashed out.
    pub settled_points: u64,
    /// Points this community issued that merchants (anywhere) cashed out.
    pub settled_issued: u64,
    pub receivable_fen: u64,
    pub payable_fen: u64,
    pub minutes_credited: u64,
    pub minutes_spent: u64,
    /// Minutes drawn by other communities' residents for services here.
    pub minutes_fulfilled: u64,
    /// Points issued per activity id (awards that earned nothing included, at 0).
    pub by_activity: BTreeMap<String, u64>,
}

impl Figures {
    /// Points issued (awards), the sum over [`Figures::by_activity`].
    pub fn issued(&self) -> u64 {
        self.by_activity.values().sum()
    }
}

/// The activities every community's table prices (each with its own figures).
pub const PRACTICE: [&str; 4] = ["cleanup", "mediation", "elder-care", "patrol"];

/// What a scenario expects, per community.
pub struct Expected(pub BTreeMap<String, Figures>);

impl Expected {
    pub fn new(ids: &[String]) -> Expected {
        Expected(ids.iter().map(|c| (c.clone(), Figures::default())).collect())
    }
    pub fn get(&mut self, id: &str) -> &mut Figures {
        self.0.entry(id.to_string()).or_default()
    }
}

pub fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

pub fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Every entry of every ledger as node `i` serves it (paged).
pub async fn fetch_ledgers(f: &Federation, i: usize) -> Result<BTreeMap<String, Vec<Value>>> {
    let mut out = BTreeMap::new();
    for n in &f.nodes {
        let mut all = Vec::new();
        loop {
            let page = f.get(i, &format!("/v1/ledgers/{}/entries?from={}&limit=1000", n.id, all.len())).await?;
            let page = page.as_array().context("entries: not a list")?.clone();
            if page.is_empty() {
                break;
            }
            all.extend(page);
        }
        out.insert(n.id.clone(), all);
    }
    Ok(out)
}

/// Each community's figures, summed from its own ledger's entries.
pub fn figures(ledgers: &BTreeMap<String, Vec<Value>>) -> BTreeMap<String, Figures> {
    let mut out = BTreeMap::new();
    let mut issued_settled: BTreeMap<String, u64> = BTreeMap::new();
    for (c, entries) in ledgers {
        let mut f = Figures::default();
        for e in entries {
            let b = &e["entry"]["body"];
            let n = |v: &Value| v.as_u64().unwrap_or(0);
            match e["kind"].as_str().unwrap_or("") {
                "award" => {
                    let activity = b["Award"]["activity"].as_str().unwrap_or("").to_string();
                    *f.by_activity.entry(activity).or_default() += n(&b["Award"]["points"]);
                }
                "redeem" => f.redeemed += n(&b["Redeem"]["payload"]["points"]),
                "pay" => {
                    let p = &b["Pay"]["payment"]["payload"];
                    if p["merchant_community"].as_str() != Some(c.as_str()) {
                        f.spent_elsewhere += n(&p["points"]);
                    }
                }
                "settle" => {
                    let r = &b["Settle"]["request"]["payload"];
                    f.settled_points += n(&r["points"]);
                    *issued_settled.entry(r["issuer"].as_str().unwrap_or("").to_string()).or_insert(0) +=
                        n(&r["points"]);
                }
                "clearing" => {
                    f.receivable_fen += n(&b["Clearing"]["receivable_fen"]);
                    f.payable_fen += n(&b["Clearing"]["payable_fen"]);
                }
                "time-credit" => f.minutes_credited += n(&b["TimeCredit"]["payload"]["minutes"]),
                "time-spend" => f.minutes_spent += n(&b["TimeSpend"]["payload"]["minutes"]),
                "time-fulfil" => f.minutes_fulfilled += n(&b["TimeFulfil"]["minutes"]),
                _ => {}
            }
        }
        out.insert(c.clone(), f);
    }
    for (c, f) in out.iter_mut() {
        f.settled_issued = issued_settled.get(c).copied().unwrap_or(0);
    }
    out
}

pub fn print_table(order: &[String], figs: &BTreeMap<String, Figures>) {
    let y = |p: u64| format!("{} yuan", yuan(p * 10));
    println!("\nPer community (points; money at 1 point = 0.1 yuan, computed in fen):");
    println!(
        "{:<10} {:>7} {:>9} {:>10} {:>16} {:>16} {:>14}   time bank (minutes)",
        "community", "issued", "redeemed", "spent", "its points", "its merchants", "clearing net"
    );
    println!(
        "{:<10} {:>7} {:>9} {:>10} {:>16} {:>16} {:>14}",
        "", "", "at home", "elsewhere", "settled", "settled", "(+ receives)"
    );
    for c in order {
        let f = figs.get(c).cloned().unwrap_or_default();
        let net = if f.receivable_fen >= f.payable_fen {
            format!("+{}", yuan(f.receivable_fen - f.payable_fen))
        } else {
            format!("-{}", yuan(f.payable_fen - f.receivable_fen))
        };
        println!(
            "{:<10} {:>7} {:>9} {:>10} {:>16} {:>16} {:>14}   {} earned, {} spent, {} served for others",
            c,
            f.issued(),
            f.redeemed,
            f.spent_elsewhere,
            y(f.settled_issued),
            y(f.settled_points),
            format!("{net} yuan"),
            f.minutes_credited,
            f.minutes_spent,
            f.minutes_fulfilled
        );
    }
    println!("\nPoints issued by activity, each community under its own published table:");
    println!(
        "{:<10} {:>9} {:>10} {:>11} {:>8} {:>8}",
        "community", "clean-up", "mediation", "elder care", "patrol", "other"
    );
    for c in order {
        let f = figs.get(c).cloned().unwrap_or_default();
        let of = |a: &str| f.by_activity.get(a).copied().unwrap_or(0);
        let other: u64 = f.by_activity.iter().filter(|(a, _)| !PRACTICE.contains(&a.as_str())).map(|(_, p)| p).sum();
        println!(
            "{:<10} {:>9} {:>10} {:>11} {:>8} {:>8}",
            c,
            of("cleanup"),
            of("mediation"),
            of("elder-care"),
            of("patrol"),
            other
        );
    }
}

/// The federation's verdict; errors on any disagreement. With `keep`, the nodes stay up and
/// only the checks over HTTP run.
pub async fn verdict(f: &mut Federation, figs: &BTreeMap<String, Figures>, keep: bool) -> Result<()> {
    f.check_alive()?;
    let took = f.converge(Duration::from_secs(90), true).await?;
    let st = f.get(0, "/v1/status").await?;
    println!("\nVerdict:");
    println!(
        "  every node ({}) holds the same head and the same latest checkpoint (covering it, cosigned by ≥ 2 witnesses) of every ledger (settled in {:.1} s):",
        f.nodes.len(),
        took.as_secs_f64()
    );
    for l in st["ledgers"].as_array().context("status")? {
        println!(
            "    {:<10} {:>6} entries  head {}…  checkpoint root {}…  cosigned by {} witnesses",
            l["community"].as_str().unwrap_or(""),
            l["size"],
            &l["head"].as_str().unwrap_or("").chars().take(12).collect::<String>(),
            &l["latest_checkpoint_root"].as_str().unwrap_or("").chars().take(12).collect::<String>(),
            l["latest_checkpoint_cosigners"]
        );
    }
    let gf = f.genesis_file.to_string_lossy().into_owned();
    for i in 0..f.nodes.len() {
        let url = f.base(i);
        let out = run(&f.bins.cli, &["--json", "verify", "--url", &url, "--genesis", &gf, "--quiet"]).await?;
        let v: Value = serde_json::from_str(&out).with_context(|| format!("linli verify output: {out}"))?;
        ensure!(v["ok"] == true, "linli verify against {}: {v}", f.nodes[i].id);
        for l in v["ledgers"].as_array().context("verify without ledgers")? {
            let c = l["community"].as_str().unwrap_or("");
            let g = figs.get(c).context("verify names an unknown ledger")?;
            let theirs = [
                &l["points_issued"],
                &l["points_redeemed"],
                &l["points_settled"],
                &l["minutes_credited"],
                &l["minutes_spent"],
            ]
            .map(|x| x.as_u64().unwrap_or(u64::MAX));
            let ours = [g.issued(), g.redeemed, g.settled_issued, g.minutes_credited, g.minutes_spent];
            if theirs != ours {
                bail!(
                    "linli verify on {} says {c} issued/redeemed/settled/minutes {theirs:?}, the entries say {ours:?}",
                    f.nodes[i].id
                );
            }
        }
        println!(
            "  linli verify --url {url}: every ledger replays from genesis ({} entries, {:.0} entries/s), figures agree",
            v["entries"],
            v["entries_per_second"].as_f64().unwrap_or(0.0)
        );
    }
    if keep {
        return Ok(());
    }
    f.stop_all().await;
    for n in &f.nodes {
        run(&f.bins.node, &["check", "--config", &n.config.to_string_lossy()]).await?;
    }
    println!("  nodes stopped; linli-node check verified every node's store from genesis (chain, signatures, rules, stored state)");
    Ok(())
}
