//! `linli-testnet`: starts a Linli federation on 127.0.0.1 — community nodes and merchant
//! light nodes as separate `linli-node` processes with generated keys, a generated genesis and
//! fresh data directories — and drives it over HTTP: the community-practice `scenario`
//! (default), sustained `load`, or `chaos` (link cuts, SIGKILL/SIGSTOP of nodes and tills, under
//! load).
//! Exits non-zero on any failure; child processes never outlive it unless `--keep`.

mod chaos;
mod client;
mod federation;
mod load;
mod market;
mod procs;
mod scenario;
mod summary;

use anyhow::{ensure, Result};
use clap::{Parser, Subcommand};
use federation::{Federation, Size};
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Community nodes to start (at least 4).
    #[arg(long, global = true, default_value_t = 4)]
    communities: usize,
    /// Merchant light nodes (tills) to start (at least 3).
    #[arg(long, global = true, default_value_t = 3)]
    tills: usize,
    /// Directory for keys, genesis, data and logs (must be empty); default: a temp dir.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    /// Leave the nodes and tills running at the end and print their URLs.
    #[arg(long, global = true)]
    keep: bool,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// The community-practice scenario (the default).
    Scenario {
        /// Residents per community (at least 2).
        #[arg(long, default_value_t = 3)]
        residents: usize,
    },
    /// Sustained signed traffic (payments and awards) across every node.
    Load {
        /// Requests offered per second.
        #[arg(long, default_value_t = 50)]
        rate: u64,
        /// Seconds.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Funded residents per community.
        #[arg(long, default_value_t = 8)]
        residents: usize,
    },
    /// Load while links between nodes are cut and healed, nodes and tills are SIGKILLed and
    /// restarted, and nodes are frozen (SIGSTOP) and thawed.
    Chaos {
        #[arg(long, default_value_t = 30)]
        duration: u64,
        #[arg(long, default_value_t = 20)]
        rate: u64,
    },
}

async fn start(args: &Args) -> Result<Federation> {
    ensure!(args.communities >= 4, "a testnet needs at least 4 communities");
    ensure!(args.tills >= 3, "a testnet needs at least 3 tills");
    let size = Size { communities: args.communities, tills: args.tills };
    let bins = procs::Bins::locate()?;
    let pb = ProgressBar::new_spinner().with_message("starting community nodes");
    pb.enable_steady_tick(Duration::from_millis(120));
    let mut f = Federation::start(bins, args.dir.clone(), &size, args.keep).await?;
    pb.set_message("starting merchant light nodes");
    f.start_tills(size.tills, args.keep).await?;
    pb.set_message("waiting for every node to replicate every ledger");
    let took = f.converge(Duration::from_secs(60), false).await?;
    pb.finish_and_clear();
    println!(
        "Started {} community nodes and {} merchant light nodes (separate processes) on 127.0.0.1; genesis {}",
        f.nodes.len(),
        f.tills.len(),
        f.genesis_hash
    );
    println!(
        "  keys, data and logs in {}; every node holds every other's ledger ({:.1} s after the tills registered)",
        f.root.display(),
        took.as_secs_f64()
    );
    Ok(f)
}

async fn finish(
    mut f: Federation,
    figs: std::collections::BTreeMap<String, summary::Figures>,
    keep: bool,
) -> Result<()> {
    let order: Vec<String> = f.nodes.iter().map(|n| n.id.clone()).collect();
    summary::print_table(&order, &figs);
    summary::verdict(&mut f, &figs, keep).await?;
    println!("\nVerdict: OK — the federation agrees and every ledger verifies from genesis.");
    if keep {
        f.keep();
    }
    Ok(())
}

async fn main_mode(args: Args) -> Result<()> {
    let mode = args.mode.as_ref().unwrap_or(&Mode::Scenario { residents: 3 });
    match mode {
        Mode::Scenario { residents } => {
            ensure!(*residents >= 2, "at least 2 residents per community");
            let f = start(&args).await?;
            let expected = scenario::run_scenario(&f, *residents).await?;
            f.converge(Duration::from_secs(60), false).await?;
            let figs = summary::figures(&summary::fetch_ledgers(&f, 0).await?);
            scenario::check_expected(&expected, &figs)?;
            println!("Every figure the nodes computed matches what the scenario expects.");
            finish(f, figs, args.keep).await
        }
        Mode::Load { rate, duration, residents } => {
            ensure!(*rate > 0 && *duration > 0, "rate and duration must be positive");
            let f = start(&args).await?;
            let plan = Arc::new(load::prepare(&f, (*residents).max(1)).await?);
            let pb = ProgressBar::new(*duration).with_message(format!("load at {rate}/s"));
            pb.set_style(summary::bar_style());
            let out = load::run(plan, *rate, Duration::from_secs(*duration), Some(pb.clone())).await;
            pb.finish_and_clear();
            println!("Load: {}", out.report(*rate));
            ensure!(out.ok > 0, "no request was acknowledged");
            let took = f.converge(Duration::from_secs(120), false).await?;
            println!("every node held every entry {:.1} s after the load stopped", took.as_secs_f64());
            let ledgers = summary::fetch_ledgers(&f, 0).await?;
            load::check_acked(&out.acked, &ledgers)?;
            ensure!(
                out.errors == 0 && out.refused == 0,
                "{} refused and {} failed requests without any fault injected",
                out.refused,
                out.errors
            );
            finish(f, summary::figures(&ledgers), args.keep).await
        }
        Mode::Chaos { duration, rate } => {
            let mut f = start(&args).await?;
            let plan = Arc::new(load::prepare(&f, 6).await?);
            let d = Duration::from_secs(*duration);
            let loader = tokio::spawn(load::run(plan.clone(), *rate, d, None));
            let pb = ProgressBar::new_spinner().with_message(format!("chaos for {duration} s under load at {rate}/s"));
            pb.enable_steady_tick(Duration::from_millis(120));
            let log = chaos::run(&mut f, &plan, d, |s| pb.suspend(|| println!("  {s}"))).await?;
            let out = loader.await?;
            pb.finish_and_clear();
            println!(
                "Chaos: {} link cuts (both directions, while load ran) and {} heals; {} SIGKILL+restart ({} times two nodes at once); {} SIGSTOP/SIGCONT freezes; {} till SIGKILL+restart",
                log.cuts, log.heals, log.kills, log.doubles, log.freezes, log.till_restarts
            );
            if log.cuts > 0 {
                let drops: Vec<String> = log.drops.iter().map(|(id, b, l)| format!("{id} {b}->{l}")).collect();
                println!(
                    "  during the cuts both nodes' peer counts fell in {} of {} ({}); the cut nodes acknowledged {} writes while cut; the slowest heal reconnected in {:.1} s",
                    log.peer_drops,
                    log.cuts,
                    drops.join(", "),
                    log.cut_writes.len(),
                    log.slowest_heal.as_secs_f64()
                );
            }
            println!("{}", log.counts());
            println!("Load during chaos: {}", out.report(*rate));
            let took = f.converge(Duration::from_secs(180), false).await?;
            println!("every node converged {:.1} s after the chaos ended", took.as_secs_f64());
            let ledgers = summary::fetch_ledgers(&f, 0).await?;
            load::check_acked(&out.acked, &ledgers)?;
            load::check_acked(&log.cut_writes, &ledgers)?;
            println!(
                "all {} acknowledged entries (and the {} written during cuts) are on every node",
                out.acked.len(),
                log.cut_writes.len()
            );
            let tills = chaos::reconcile_tills(&f, &log).await?;
            let receipts: Vec<String> = tills.iter().map(|(r, c)| format!("{c}/{r}")).collect();
            println!("every till reconciles: receipts credited on the home ledger {}", receipts.join(", "));
            finish(f, summary::figures(&ledgers), args.keep).await
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // On Ctrl-C or SIGTERM the run is dropped, and with it every child process.
    let r = tokio::select! {
        r = main_mode(args) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        _ = term.recv() => Err(anyhow::anyhow!("terminated")),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("FAILED: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
