//! `linli export`: a community's entries or balances as JSON lines or CSV, for the public
//! disclosure (公示) a community posts.
//!
//! Exported entries are the signed entries themselves (the node API's shape, with informational
//! `hash` and `kind`): `linli verify --from-export FILE` re-verifies them from genesis. Balances
//! are computed by replaying and verifying the ledgers, never copied from a node's state.

use crate::audit::{self, Options};
use crate::fail::Located;
use crate::out::{self, EntryView};
use crate::source::{self, SourceArgs};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use linli_protocol::state::Role;
use linli_protocol::{CommunityId, Genesis, PublicKey, State, FEN_PER_POINT};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum What {
    Entries,
    Balances,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Export only this community (repeatable). Default: every community in the genesis.
    #[arg(long, value_name = "C")]
    pub community: Vec<String>,
    /// JSON lines (one object per row) or CSV (RFC 4180, with a header row).
    #[arg(long, value_enum)]
    pub format: Format,
    /// The signed entries themselves (re-verifiable with `linli verify --from-export`), or every
    /// account's balances computed by a verified replay.
    #[arg(long, value_enum)]
    pub what: What,
    /// Write to FILE instead of stdout, then print a summary (JSON with `--json`: rows, file,
    /// format, what). Without --out, stdout is the export itself, with or without `--json`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: &ExportArgs, json_out: bool) -> Result<()> {
    let (genesis, src) = args.source.open()?;
    let selected: Option<Vec<CommunityId>> = if args.community.is_empty() {
        None
    } else {
        Some(args.community.iter().map(|c| source::community(&genesis, c)).collect::<Result<_>>()?)
    };
    let ids = selected.clone().unwrap_or_else(|| genesis.communities.iter().map(|c| c.id.clone()).collect());
    let mut w: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let rows = match args.what {
        What::Entries => entries(&genesis, &src, &ids, args.format, &mut w)?,
        What::Balances => {
            let opts = Options { communities: selected, progress: args.out.is_some() };
            let report = audit::run(&genesis, &src, &opts, None)?;
            if let Some(f) = report.failure {
                let context = "not exporting balances of a ledger that does not verify".into();
                return Err(Located { context, failure: f }.into());
            }
            balances(&report.state, &ids, args.format, &mut w)?
        }
    };
    w.flush()?;
    drop(w);
    if let Some(path) = &args.out {
        if json_out {
            out::json(&serde_json::json!({"rows": rows, "file": path, "format": args.format, "what": args.what}))?;
        } else {
            out::line(&format!("exported {rows} rows to {}", path.display()))?;
        }
    }
    Ok(())
}

fn entries(
    genesis: &Genesis,
    src: &source::Source,
    ids: &[CommunityId],
    format: Format,
    w: &mut dyn Write,
) -> Result<u64> {
    let gh = genesis.hash();
    let mut rows = 0u64;
    if let Format::Csv = format {
        writeln!(
            w,
            "community,seq,time_ms,time_utc,kind,hash,prev_hash,accounts,points,fen,minutes,summary,body_json,signature"
        )?;
    }
    for id in ids {
        let mut from = 0u64;
        loop {
            let chunk = src.read(id, from, audit::CHUNK)?;
            if chunk.is_empty() {
                break;
            }
            for e in &chunk {
                let view = EntryView::new(e, &gh);
                match format {
                    Format::Jsonl => writeln!(w, "{}", serde_json::to_string(&view)?)?,
                    Format::Csv => {
                        let b = &e.entry.body;
                        let (points, fen, minutes) = out::figures(b);
                        let opt = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
                        let accounts: Vec<String> = b.accounts().iter().map(PublicKey::to_hex).collect();
                        writeln!(
                            w,
                            "{}",
                            out::csv_record(&[
                                e.entry.community.to_string(),
                                e.entry.seq.to_string(),
                                e.entry.time_ms.to_string(),
                                out::time(e.entry.time_ms),
                                view.kind.to_string(),
                                view.hash.to_hex(),
                                e.entry.prev_hash.to_hex(),
                                accounts.join(" "),
                                opt(points),
                                opt(fen),
                                opt(minutes),
                                out::describe(b),
                                serde_json::to_string(b)?,
                                e.signature.to_hex(),
                            ])
                        )?;
                    }
                }
                rows = rows.saturating_add(1);
            }
            from = from.saturating_add(chunk.len() as u64);
        }
    }
    Ok(rows)
}

#[derive(Serialize)]
struct Holding {
    issuer: CommunityId,
    points: u64,
    value_fen: u64,
}

#[derive(Serialize)]
struct BalanceRow {
    community: CommunityId,
    account: PublicKey,
    role: &'static str,
    points: u64,
    points_value_fen: u64,
    minutes: u64,
    served_minutes: u64,
    lifetime_points: u64,
    awards: u64,
    star_level: usize,
    replaced_by: Option<PublicKey>,
    holdings: Vec<Holding>,
}

/// Every account of the selected communities, as the replay left it.
fn balance_rows(state: &State, ids: &[CommunityId]) -> Vec<BalanceRow> {
    let mut rows = Vec::new();
    for ((c, key), a) in &state.accounts {
        if !ids.contains(c) {
            continue;
        }
        let holdings = state
            .holdings
            .iter()
            .filter(|((hc, m, _), p)| hc == c && m == key && **p > 0)
            .map(|((_, _, issuer), p)| Holding {
                issuer: issuer.clone(),
                points: *p,
                value_fen: p.saturating_mul(FEN_PER_POINT),
            })
            .collect();
        let rules = state.ledgers.get(c).and_then(|l| l.rules.as_ref());
        rows.push(BalanceRow {
            community: c.clone(),
            account: *key,
            role: match a.role {
                Role::Resident => "resident",
                Role::Merchant => "merchant",
            },
            points: a.points,
            points_value_fen: a.points.saturating_mul(FEN_PER_POINT),
            minutes: a.minutes,
            served_minutes: a.served_minutes,
            lifetime_points: a.lifetime_points,
            awards: a.awards,
            star_level: rules.map(|r| r.star_level(a.lifetime_points)).unwrap_or(0),
            replaced_by: a.replaced_by,
            holdings,
        });
    }
    rows
}

fn balances(state: &State, ids: &[CommunityId], format: Format, w: &mut dyn Write) -> Result<u64> {
    let rows = balance_rows(state, ids);
    if let Format::Csv = format {
        writeln!(
            w,
            "community,account,role,points,points_value_fen,minutes,served_minutes,lifetime_points,awards,star_level,replaced_by,holdings"
        )?;
    }
    for r in &rows {
        match format {
            Format::Jsonl => writeln!(w, "{}", serde_json::to_string(r)?)?,
            Format::Csv => {
                let holdings: Vec<String> = r.holdings.iter().map(|h| format!("{}:{}", h.issuer, h.points)).collect();
                writeln!(
                    w,
                    "{}",
                    out::csv_record(&[
                        r.community.to_string(),
                        r.account.to_hex(),
                        r.role.to_string(),
                        r.points.to_string(),
                        r.points_value_fen.to_string(),
                        r.minutes.to_string(),
                        r.served_minutes.to_string(),
                        r.lifetime_points.to_string(),
                        r.awards.to_string(),
                        r.star_level.to_string(),
                        r.replaced_by.map(|k| k.to_hex()).unwrap_or_default(),
                        holdings.join(";"),
                    ])
                )?;
            }
        }
    }
    Ok(rows.len() as u64)
}
