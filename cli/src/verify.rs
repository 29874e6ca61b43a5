//! `linli verify`: replay ledgers from genesis and check every invariant (see [`crate::audit`]);
//! exit 1 on the first failure, naming community, seq and rule; a summary table at the end.

use crate::audit::{self, Options, Report};
use crate::fail::{Located, Reported};
use crate::out::{self, Table};
use crate::source::{self, Source, SourceArgs};
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Verify entries exported with `linli export --what entries --format jsonl` instead of a
    /// node's ledger.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["db", "url"])]
    pub from_export: Option<PathBuf>,
    /// Verify only this community's ledger (repeatable); ledgers it cites are verified too.
    /// Default: every community in the genesis.
    #[arg(long, value_name = "C")]
    pub community: Vec<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: &VerifyArgs, json_out: bool) -> Result<()> {
    let genesis = source::load_genesis(&args.source.genesis)?;
    let src = match &args.from_export {
        Some(file) => Source::open_export(file, &genesis)?,
        None => match (&args.source.db, &args.source.url) {
            (None, None) => bail!("say what to verify: --db DIR, --url http://HOST:PORT or --from-export FILE"),
            _ => args.source.open()?.1,
        },
    };
    let communities = if args.community.is_empty() {
        None
    } else {
        Some(args.community.iter().map(|c| source::community(&genesis, c)).collect::<Result<Vec<_>>>()?)
    };
    let opts = Options { communities, progress: !args.quiet && !json_out };
    let report = audit::run(&genesis, &src, &opts, None)?;
    let failure = report.failure.clone().map(|failure| Located { context: "verification failed".into(), failure });
    match (json_out, failure) {
        (true, None) => out::json(&json_report(&report, &src)),
        // `main` prints the report with the error added.
        (true, Some(f)) => Err(Reported { report: json_report(&report, &src), finding: f.into() }.into()),
        (false, f) => {
            print_human(&report, &src)?;
            f.map_or(Ok(()), |f| Err(f.into()))
        }
    }
}

fn rate(report: &Report) -> f64 {
    let secs = report.elapsed.as_secs_f64();
    if secs > 0.0 {
        report.entries as f64 / secs
    } else {
        0.0
    }
}

fn json_report(report: &Report, src: &Source) -> serde_json::Value {
    json!({
        "ok": report.failure.is_none(),
        "source": src.describe(),
        "entries": report.entries,
        "seconds": report.elapsed.as_secs_f64(),
        "entries_per_second": rate(report),
        "stored_state_checked": report.stored_state_checked,
        "evidence": report.evidence,
        "ledgers": report.ledgers,
        "failure": report.failure,
    })
}

fn print_human(report: &Report, src: &Source) -> Result<()> {
    let mut t = Table::new(&[
        "community",
        "entries",
        "checkpoints",
        "cosignatures",
        "points issued",
        "redeemed",
        "settled",
        "minutes credited",
        "minutes spent",
    ]);
    for l in &report.ledgers {
        let name = if l.dependency { format!("{} (cited)", l.community) } else { l.community.to_string() };
        t.row(vec![
            name,
            l.entries.to_string(),
            l.checkpoints_verified.to_string(),
            l.cosignatures.to_string(),
            l.points_issued.to_string(),
            l.points_redeemed.to_string(),
            l.points_settled.to_string(),
            l.minutes_credited.to_string(),
            l.minutes_spent.to_string(),
        ]);
    }
    let when = if report.failure.is_some() { " before the failure" } else { "" };
    out::line(&format!("verified from genesis{when} ({}):", src.describe()))?;
    t.print()?;
    if report.failure.is_none() {
        let checkpoints: u64 = report.ledgers.iter().map(|l| l.checkpoints_verified).sum();
        let mut checked = vec![
            "signatures".to_string(),
            "seq and hash chain".into(),
            "rules (awards, exchange figures, nonces, credits, balances)".into(),
            "conservation".into(),
            format!("{checkpoints} checkpoint roots"),
        ];
        if matches!(src, Source::Db { .. }) {
            checked.push("the store's leaves".into());
        }
        if report.stored_state_checked {
            checked.push("the stored derived state".into());
        }
        if report.evidence > 0 {
            checked.push(format!(
                "{} entries of proven equivocators, past their fork, checked as evidence for citations",
                report.evidence
            ));
        }
        out::line(&format!(
            "OK: {} entries in {} ledgers ({}) in {:.2} s, {:.0} entries/s",
            report.entries,
            report.ledgers.len(),
            checked.join(", "),
            report.elapsed.as_secs_f64(),
            rate(report)
        ))?;
    }
    Ok(())
}
