//! Deterministic simulation of a federation (see `linli_tests::sim`): many seeds, each a whole
//! run with faults, checked after every step. A failing seed prints itself; replay it with
//! `LINLI_SIM_SEED=<seed> cargo test -p linli-tests --test simulation -- --nocapture`.
//!
//! Environment: `LINLI_SIM_SEEDS` (how many, default 200), `LINLI_SIM_FIRST_SEED` (default 0),
//! `LINLI_SIM_STEPS` (faulty steps per seed, default 150: CI's short form), `LINLI_SIM_THREADS` (default: cores).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use linli_protocol::Hash;
use linli_tests::sim::{self, check, Report, Sim, SimConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// RocksDB directories on tmpfs when there is one (synced writes cost nothing there).
fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let b = tempfile::Builder::new().prefix("linli-sim-").tempdir_in(shm);
    b.unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

fn run_seed(seed: u64, steps: u64) -> Result<Report, String> {
    let dir = scratch();
    let mut cfg = SimConfig::for_seed(seed, steps);
    if std::env::var("LINLI_SIM_ALWAYS_EQUIVOCATE").is_ok_and(|v| v == "1") {
        cfg.equivocate = true;
    }
    if std::env::var("LINLI_SIM_SHIELD_EQUIVOCATOR").is_ok_and(|v| v == "1") {
        cfg.cite_equivocator = false;
    }
    let sim = Sim::new(seed, cfg.clone(), dir.path()).map_err(|e| format!("{e:#}"))?;
    sim.run().map_err(|e| format!("{e:#}\n  config: {cfg:?}"))
}

#[test]
fn seeds() {
    let steps = env("LINLI_SIM_STEPS", 150);
    let seeds: Vec<u64> = match std::env::var("LINLI_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("LINLI_SIM_SEED is a u64")],
        Err(_) => {
            let first = env("LINLI_SIM_FIRST_SEED", 0);
            (first..first + env("LINLI_SIM_SEEDS", 200)).collect()
        }
    };
    let threads = env("LINLI_SIM_THREADS", std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1));
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let results: Mutex<Vec<(u64, Result<Report, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst) as usize;
                let Some(&seed) = seeds.get(k) else { break };
                let r = run_seed(seed, steps);
                if let Err(e) = &r {
                    eprintln!("SIMULATION FAILED: LINLI_SIM_SEED={seed} (steps {steps}): {e}");
                }
                results.lock().unwrap().push((seed, r));
            });
        }
    });
    let results = results.into_inner().unwrap();
    let failed: Vec<u64> = results.iter().filter(|(_, r)| r.is_err()).map(|(s, _)| *s).collect();
    let ok: Vec<&Report> = results.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    let sum = |f: fn(&Report) -> u64| ok.iter().map(|r| f(r)).sum::<u64>();
    println!(
        "simulation: {} of {} seeds passed in {:.1} s ({steps} faulty steps each); {} entries, {} requests \
         accepted, {} refused; {} messages ({} lost, {} duplicated, {} cut by {} partitions); {} crashes; \
         {} seeds with an equivocator ({} forks seen by an honest node, all proven everywhere; {} with its two \
         checkpoints of one size proven; {} entries past a fork taken as evidence for honest ledgers' \
         citations); {} key rotations and {} \
         revocations followed; {} sales verified by merchant tills ({} refused or given up); slowest convergence \
         {} quiet steps",
        ok.len(),
        results.len(),
        started.elapsed().as_secs_f64(),
        sum(|r| r.entries),
        sum(|r| r.accepted),
        sum(|r| r.refused),
        sum(|r| r.messages),
        sum(|r| r.lost),
        sum(|r| r.duplicated),
        sum(|r| r.cut),
        sum(|r| r.partitions),
        sum(|r| r.crashes),
        ok.iter().filter(|r| r.equivocated).count(),
        ok.iter().filter(|r| r.equivocation_proven).count(),
        ok.iter().filter(|r| r.checkpoint_equivocation_proven).count(),
        sum(|r| r.evidence_taken),
        sum(|r| r.rotations),
        sum(|r| r.revocations),
        sum(|r| r.sales_verified),
        sum(|r| r.sales_refused),
        ok.iter().map(|r| r.quiet_steps_to_converge).max().unwrap_or(0),
    );
    assert!(failed.is_empty(), "failing seeds (replay with LINLI_SIM_SEED=...): {failed:?}");
}

/// One seed, twice: the same run to the message.
#[test]
fn a_seed_replays_exactly() {
    let a = run_seed(7, 120).unwrap();
    let b = run_seed(7, 120).unwrap();
    assert_eq!(a, b);
    assert!(a.entries > 0 && a.messages > 0);
}

/// The checks can fail: a resident's balance that differs from the receipts, and a ledger
/// entry one node holds differently, are both reported.
#[test]
fn the_invariants_can_fail() {
    let dir = scratch();
    let mut sim = Sim::new(3, SimConfig::for_seed(3, 10), dir.path()).unwrap();
    sim.bootstrap().unwrap();
    check::step(&sim).unwrap();
    sim.work.residents[0].points += 1;
    let err = check::step(&sim).unwrap_err().to_string();
    assert!(err.contains("receipts give 1"), "{err}");
    // A till that sold against an entry no honest node holds.
    let forged = linli_protocol::EntryRef { community: sim.nodes[0].id.clone(), seq: 0, hash: Hash([1; 32]) };
    sim::tills::check(&sim, false).unwrap();
    sim.tills.as_mut().unwrap().sold.push(forged);
    let err = sim::tills::check(&sim, false).unwrap_err().to_string();
    assert!(err.contains("where a till sold"), "{err}");
}
