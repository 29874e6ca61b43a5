//! `linli-bench`: Linli's benchmark. Prints one table (every figure also as a ratio to the raw
//! ed25519 batch-verification rate measured first in the same run), with the CPU model and core
//! count, and writes the same table as JSON so two runs can be compared (`--compare`).
//!
//! Rows: Ceiling (raw signature and hash rates, the protocol's verification), Light client,
//! Append (resident payments over HTTP), Gossip (5 nodes), Ingest, Footprint, Verify
//! (`linli verify` of the big ledger) and Catch-up. Sizes are flags; `--smoke` makes them tiny
//! so CI runs the command in seconds. Build in release mode for real figures
//! (`scripts/bench.sh`).

/// mimalloc, as in the node: the nodes measured here run in this process.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod append;
mod big;
mod ceiling;
mod gossip;
mod lightclient;
mod machine;
mod report;
mod workload;

use anyhow::{bail, Context, Result};
use clap::Parser;
use report::Report;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(name = "linli-bench", version, about = "Linli benchmark: one table of figures, also written as JSON")]
struct Args {
    /// Tiny sizes (seconds, for CI); figures are then meaningless.
    #[arg(long)]
    smoke: bool,
    /// Entries of the big ledger (Ingest, Footprint, Verify, Catch-up). Default 1,000,000.
    #[arg(long)]
    entries: Option<u64>,
    /// Repetitions of the cheap measurements (medians are reported). Default 5.
    #[arg(long)]
    reps: Option<usize>,
    /// Signatures per repetition of the ceiling measurements. Default 8192.
    #[arg(long)]
    signatures: Option<usize>,
    /// Resident payments in the Append row. Default 20,000.
    #[arg(long)]
    payments: Option<usize>,
    /// Concurrent HTTP clients in the Append row.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Total entries per second across the 5 nodes in the Gossip row. Default 1000.
    #[arg(long)]
    gossip_rate: Option<u64>,
    /// Seconds of gossip load. Default 10.
    #[arg(long)]
    gossip_seconds: Option<u64>,
    /// Runs of `linli verify` over the big ledger. Default 1.
    #[arg(long)]
    verify_reps: Option<usize>,
    /// The `linli` binary (default: next to this one).
    #[arg(long)]
    linli: Option<PathBuf>,
    /// Where to write the JSON copy of the table.
    #[arg(long, default_value = "linli-bench.json")]
    json: PathBuf,
    /// Run only these groups (comma-separated: light, append, gossip, big); the ceiling always
    /// runs (it is the reference). Default: all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// A previous run's JSON: add a column comparing each figure with it.
    #[arg(long)]
    compare: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let s = args.smoke;
    let pick = |v: Option<u64>, smoke: u64, full: u64| v.unwrap_or(if s { smoke } else { full });
    let reps = args.reps.unwrap_or(if s { 3 } else { 5 });
    let linli = match &args.linli {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("linli"),
    };
    if !linli.is_file() {
        bail!("{}: no linli binary (build the workspace, or pass --linli PATH)", linli.display());
    }
    let previous: Option<Report> = match &args.compare {
        Some(p) => Some(
            serde_json::from_slice(&std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
                .with_context(|| format!("{}: not a linli-bench JSON file", p.display()))?,
        ),
        None => None,
    };
    let started = Instant::now();
    let mut report = Report {
        machine: machine::machine(),
        profile: if cfg!(debug_assertions) { "debug".into() } else { "release".into() },
        smoke: s,
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        seconds: 0.0,
        reference_name: String::new(),
        reference_rate: 0.0,
        rows: Vec::new(),
    };
    eprintln!(
        "linli-bench: {} ({} cores), {} build{}",
        report.machine.cpu_model,
        report.machine.cores,
        report.profile,
        if s { ", smoke sizes" } else { "" }
    );
    let genesis = linli_protocol::testkit::genesis(&["c0", "c1", "c2", "c3", "c4"]);
    let signatures = args.signatures.unwrap_or(if s { 512 } else { 8192 });
    ceiling::run(&mut report, &genesis, &ceiling::Sizes { signatures, reps });
    let want = |g: &str| args.only.is_empty() || args.only.iter().any(|o| o == g);
    if want("light") {
        lightclient::run(
            &mut report,
            &genesis,
            &lightclient::Sizes { tree: pick(None, 1024, 65_536) as usize, proofs: pick(None, 32, 256) as usize, reps },
        );
    }
    let payments = args.payments.unwrap_or(if s { 256 } else { 20_000 });
    if want("append") {
        append::run(&mut report, &append::Sizes { payments, clients: args.clients.min(payments).max(1) }).await?;
    }
    if want("gossip") {
        gossip::run(
            &mut report,
            &gossip::Sizes {
                rate: args.gossip_rate.unwrap_or(if s { 200 } else { 1000 }).max(1),
                seconds: pick(args.gossip_seconds, 1, 10),
                settle_ms: if s { 500 } else { 3000 },
            },
        )
        .await?;
    }
    if want("big") {
        big::run(
            &mut report,
            &big::Sizes {
                entries: pick(args.entries, 2000, 1_000_000).max(200),
                residents: if s { 20 } else { 1000 },
                verify_reps: args.verify_reps.unwrap_or(if s { 2 } else { 1 }).max(1),
            },
            &linli,
        )
        .await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    let table = report.table(previous.as_ref());
    println!("{table}");
    println!("(run took {:.0} s; JSON written to {})", report.seconds, args.json.display());
    std::fs::write(&args.json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", args.json.display()))?;
    Ok(())
}
