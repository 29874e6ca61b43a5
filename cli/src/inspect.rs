//! `linli inspect`: list a ledger's entries with filters, show one entry in full, an account's
//! balance history (computed by replaying and verifying the ledgers), and the checkpoints with
//! their cosigners.

use crate::audit::{self, Options};
use crate::fail::{Finding, Located};
use crate::out::{self, EntryView, Table};
use crate::source::{self, SourceArgs};
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use linli_protocol::body::Body;
use linli_protocol::verify::VerifiedEntry;
use linli_protocol::{CommunityId, Hash, PublicKey, State};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Subcommand, Debug)]
pub enum InspectCommand {
    /// List entries of a community, with filters.
    Entries(EntriesArgs),
    /// Show one entry in full (JSON).
    Entry(EntryArgs),
    /// An account's balance history: every entry touching it, with the balance after it.
    Account(AccountArgs),
    /// A community's checkpoints: size, root, time and cosigners.
    Checkpoints(CheckpointsArgs),
}

#[derive(Args, Debug)]
pub struct EntriesArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The community whose ledger to read.
    #[arg(long, value_name = "C")]
    pub community: String,
    /// Only entries of this kind (award, pay, settle, ...).
    #[arg(long, value_name = "K")]
    pub kind: Option<String>,
    /// Only entries touching this account (hex public key).
    #[arg(long, value_name = "KEY")]
    pub account: Option<String>,
    /// First seq (inclusive).
    #[arg(long, value_name = "N")]
    pub from_seq: Option<u64>,
    /// Last seq (inclusive).
    #[arg(long, value_name = "M")]
    pub to_seq: Option<u64>,
    /// Earliest entry time, in ms since the Unix epoch.
    #[arg(long, value_name = "MS")]
    pub from_time: Option<u64>,
    /// Latest entry time (inclusive), in ms since the Unix epoch.
    #[arg(long, value_name = "MS")]
    pub to_time: Option<u64>,
}

#[derive(Args, Debug)]
pub struct EntryArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The community whose ledger to read (with --seq).
    #[arg(long, value_name = "C")]
    pub community: Option<String>,
    /// The entry's seq (with --community).
    #[arg(long, value_name = "N", requires = "community", conflicts_with = "hash")]
    pub seq: Option<u64>,
    /// Look the entry up by its hash instead (64 hex digits; any ledger the source holds).
    #[arg(long, value_name = "HASH")]
    pub hash: Option<String>,
}

#[derive(Args, Debug)]
pub struct AccountArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The account's home community (its ledger is replayed, with the ledgers it cites).
    #[arg(long, value_name = "C")]
    pub community: String,
    /// The account's public key (hex).
    #[arg(long, value_name = "KEY")]
    pub key: String,
}

#[derive(Args, Debug)]
pub struct CheckpointsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The community whose ledger to read.
    #[arg(long, value_name = "C")]
    pub community: String,
}

pub fn run(cmd: &InspectCommand, json_out: bool) -> Result<()> {
    match cmd {
        InspectCommand::Entries(a) => entries(a, json_out),
        InspectCommand::Entry(a) => entry(a),
        InspectCommand::Account(a) => account(a, json_out),
        InspectCommand::Checkpoints(a) => checkpoints(a, json_out),
    }
}

pub fn parse_key(s: &str) -> Result<PublicKey> {
    PublicKey::from_hex(s).map_err(|e| anyhow!("{s:?} is not a public key (64 hex digits): {e}"))
}

fn entries(a: &EntriesArgs, json_out: bool) -> Result<()> {
    let (genesis, src) = a.source.open()?;
    let c = source::community(&genesis, &a.community)?;
    let gh = genesis.hash();
    if let Some(k) = &a.kind {
        if !Body::KINDS.contains(&k.as_str()) {
            bail!("--kind {k:?} is not an entry kind; kinds: {}", Body::KINDS.join(", "));
        }
    }
    let account = a.account.as_deref().map(parse_key).transpose()?;
    let to_seq = a.to_seq.unwrap_or(u64::MAX);
    let mut table = Table::new(&["seq", "time (UTC)", "kind", "hash", "what"]);
    let mut list = Vec::new();
    let mut from = a.from_seq.unwrap_or(0);
    'read: while from <= to_seq {
        let chunk = src.read(&c, from, audit::CHUNK)?;
        if chunk.is_empty() {
            break;
        }
        from = from.saturating_add(chunk.len() as u64);
        for e in chunk {
            let x = &e.entry;
            if x.seq > to_seq || a.to_time.is_some_and(|t| x.time_ms > t) {
                break 'read; // seq and time only grow along a ledger
            }
            let keep = a.kind.as_deref().is_none_or(|k| k == x.body.kind())
                && account.is_none_or(|k| x.body.accounts().contains(&k))
                && a.from_time.is_none_or(|t| x.time_ms >= t);
            if !keep {
                continue;
            }
            if json_out {
                list.push(serde_json::to_value(EntryView::new(&e, &gh))?);
            } else {
                table.row(vec![
                    x.seq.to_string(),
                    out::time(x.time_ms),
                    x.body.kind().to_string(),
                    out::short(&e.hash(&gh)),
                    out::describe(&x.body),
                ]);
            }
        }
    }
    if json_out {
        return out::json(&list);
    }
    if table.is_empty() {
        return out::line(&format!("no entries of {c} match"));
    }
    table.print()
}

fn entry(a: &EntryArgs) -> Result<()> {
    let (genesis, src) = a.source.open()?;
    let gh = genesis.hash();
    let e = match (&a.community, a.seq, &a.hash) {
        (Some(c), Some(seq), None) => {
            let c = source::community(&genesis, c)?;
            src.entry(&c, seq)?.ok_or_else(|| anyhow!("{} has no entry {seq} of {c}", src.describe()))?
        }
        (_, None, Some(h)) => {
            let h = Hash::from_hex(h).map_err(|e| anyhow!("--hash {h:?}: {e}"))?;
            let e = src.entry_by_hash(&gh, &h)?.ok_or_else(|| anyhow!("{} has no entry {h}", src.describe()))?;
            if e.hash(&gh) != h {
                return Err(Finding(format!(
                    "{} answered with an entry that hashes to {}, not {h}",
                    src.describe(),
                    e.hash(&gh)
                ))
                .into());
            }
            e
        }
        _ => bail!("say which entry: --community C --seq N, or --hash HASH"),
    };
    out::json(&EntryView::new(&e, &gh))
}

#[derive(Serialize)]
struct HistoryRow {
    community: CommunityId,
    seq: u64,
    time_ms: u64,
    kind: &'static str,
    hash: Hash,
    points: u64,
    points_change: i128,
    minutes: u64,
    minutes_change: i128,
    /// Merchants: points held per issuing community.
    holdings: BTreeMap<CommunityId, u64>,
}

#[derive(Default, Clone, PartialEq)]
struct Balance {
    points: u64,
    minutes: u64,
    holdings: BTreeMap<CommunityId, u64>,
}

fn balance(state: &State, c: &CommunityId, key: &PublicKey) -> Balance {
    let a = state.account(c, key);
    Balance {
        points: a.map(|a| a.points).unwrap_or(0),
        minutes: a.map(|a| a.minutes).unwrap_or(0),
        holdings: state
            .holdings
            .iter()
            .filter(|((hc, m, _), p)| hc == c && m == key && **p > 0)
            .map(|((_, _, i), p)| (i.clone(), *p))
            .collect(),
    }
}

fn account(a: &AccountArgs, json_out: bool) -> Result<()> {
    let (genesis, src) = a.source.open()?;
    let c = source::community(&genesis, &a.community)?;
    let key = parse_key(&a.key)?;
    let mut rows: Vec<HistoryRow> = Vec::new();
    let mut before = Balance::default();
    let mut hook = |v: &VerifiedEntry, state: &State| {
        let e = &v.signed().entry;
        if !e.body.accounts().contains(&key) {
            return;
        }
        let now = balance(state, &c, &key);
        rows.push(HistoryRow {
            community: e.community.clone(),
            seq: e.seq,
            time_ms: e.time_ms,
            kind: e.body.kind(),
            hash: v.hash(),
            points: now.points,
            points_change: i128::from(now.points) - i128::from(before.points),
            minutes: now.minutes,
            minutes_change: i128::from(now.minutes) - i128::from(before.minutes),
            holdings: now.holdings.clone(),
        });
        before = now;
    };
    let opts = Options { communities: Some(vec![c.clone()]), progress: !json_out };
    let report = audit::run(&genesis, &src, &opts, Some(&mut hook))?;
    if let Some(f) = report.failure {
        return Err(Located { context: "the ledger does not verify, so no balance is shown".into(), failure: f }.into());
    }
    let final_state = report.state.account(&c, &key).cloned();
    if final_state.is_none() {
        bail!("no account {key} in {c}");
    }
    if json_out {
        return out::json(&serde_json::json!({"community": c, "key": key, "account": final_state, "history": rows}));
    }
    let mut t =
        Table::new(&["community", "seq", "time (UTC)", "kind", "points", "change", "minutes", "change", "holdings"]);
    for r in &rows {
        let holdings: Vec<String> = r.holdings.iter().map(|(i, p)| format!("{i}:{p}")).collect();
        t.row(vec![
            r.community.to_string(),
            r.seq.to_string(),
            out::time(r.time_ms),
            r.kind.to_string(),
            r.points.to_string(),
            signed(r.points_change),
            r.minutes.to_string(),
            signed(r.minutes_change),
            holdings.join(" "),
        ]);
    }
    t.print()?;
    if let Some(acct) = final_state {
        out::line(&format!(
            "{:?} {key} of {c}: {} points ({} fen), {} minutes, {} minutes served, {} lifetime points{}",
            acct.role,
            acct.points,
            acct.points.saturating_mul(linli_protocol::FEN_PER_POINT),
            acct.minutes,
            acct.served_minutes,
            acct.lifetime_points,
            acct.replaced_by.map(|k| format!(", replaced by {k}")).unwrap_or_default()
        ))?;
    }
    Ok(())
}

fn signed(n: i128) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

fn checkpoints(a: &CheckpointsArgs, json_out: bool) -> Result<()> {
    let (genesis, src) = a.source.open()?;
    let c = source::community(&genesis, &a.community)?;
    let list = src.checkpoints(&c)?;
    if json_out {
        return out::json(&list);
    }
    if list.is_empty() {
        return out::line(&format!("no checkpoints of {c}"));
    }
    let mut t = Table::new(&["size", "root", "time (UTC)", "cosigners"]);
    for cp in &list {
        let k = &cp.signed.checkpoint;
        let cosigners: Vec<String> =
            cp.cosignatures.iter().map(|w| format!("{} ({})", w.witness, w.key.short())).collect();
        t.row(vec![
            k.size.to_string(),
            k.root.to_hex(),
            out::time(k.time_ms),
            if cosigners.is_empty() { "none".into() } else { cosigners.join(", ") },
        ]);
    }
    t.print()?;
    if matches!(src, source::Source::Http { .. }) {
        out::line("(a node's API serves only its newest checkpoint; `linli verify` checks signatures and roots)")?;
    } else {
        out::line("(`linli verify` checks each checkpoint's signature, root and cosignatures)")?;
    }
    Ok(())
}
