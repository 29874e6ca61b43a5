//! The big-ledger rows, on one ledger of `entries` entries (default 1,000,000) written once per
//! run: community c0's ledger, produced by the test federation, is streamed into community c1's
//! node through its real sequencer thread and RocksDB store (Ingest, and Footprint on the way);
//! `linli verify` then replays c1's directory (Verify); finally c1 serves it over libp2p to a
//! fresh node c2 (Catch-up). c0 itself runs no node.

use crate::machine::rss_bytes;
use crate::report::Report;
use crate::workload::Workload;
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use linli_node::config::Config;
use linli_node::store::Store;
use linli_protocol::testkit::key;
use linli_tests::Rig;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Sizes {
    pub entries: u64,
    pub residents: usize,
    pub verify_reps: usize,
}

/// Entries per ingest call: a sync response's worth (the network's `MAX_RANGE_ENTRIES`).
const CHUNK: usize = 2048;
/// Chunks signed per round before they are fed (about 40 MB).
const GENERATED: usize = 48;

/// The entries a chunk's ingest applied; an error if it refused any or found a gap.
fn check_ingest(
    outcome: Result<linli_node::sequencer::IngestOutcome, tokio::sync::oneshot::error::RecvError>,
    at: u64,
) -> Result<u64> {
    let outcome = outcome.map_err(|_| anyhow!("the sequencer stopped"))?;
    if outcome.rejected.is_some() || outcome.gap.is_some() || outcome.applied == 0 {
        bail!("ingest of c0 near seq {at} refused: {outcome:?}");
    }
    Ok(outcome.applied as u64)
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "  {what} [{{bar:30}}] {{human_pos}}/{{human_len}} entries, {{per_sec}}, eta {{eta}}"
    )) {
        b.set_style(style.progress_chars("=> "));
    }
    b
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

pub async fn run(report: &mut Report, sizes: &Sizes, linli: &Path) -> Result<()> {
    let mut rig = Rig::new(3);
    let n = sizes.entries;
    let c0 = crate::workload::community("c0");
    let config = Config::load(&rig.members[1].config_path).map_err(|e| anyhow!("{e}"))?;
    let data_dir = config.data_dir.clone();

    // Ingest: the sequencer thread of c1 over its store, fed chunks from a generator thread.
    let store = Store::open(&data_dir, &rig.genesis)?;
    let state = store.load_state(&rig.genesis)?;
    let (handle, thread) = linli_node::sequencer::spawn(
        config.community.clone(),
        rig.genesis.clone(),
        key("c1/signing"),
        store.clone(),
        state,
        None,
        linli_node::metrics::Metrics::new(),
    )?;
    // Entries are made (signed) in rounds of GENERATED chunks while the node waits, then fed
    // with two chunks in flight, as a catch-up chain does: only feeding is timed, so signing
    // does not compete with the node for the cores.
    let mut workload = Workload::new(rig.genesis.clone(), "c0", sizes.residents, n + 3_600_000);
    let progress = bar(n, "ingest");
    let mut busy = Duration::ZERO;
    let mut done = 0u64;
    // (entries, VmRSS, RocksDB's bounded caches) a quarter of the way in.
    let mut rss_early: Option<(u64, u64, u64)> = None;
    let rss_start = rss_bytes();
    while done < n {
        let round: Vec<Vec<linli_protocol::SignedEntry>> = tokio::task::block_in_place(|| {
            let mut left = n - done;
            let mut chunks = Vec::new();
            while left > 0 && chunks.len() < GENERATED {
                let take = left.min(CHUNK as u64);
                chunks.push(workload.take(take as usize));
                left -= take;
            }
            chunks
        });
        let t = Instant::now();
        let mut in_flight = std::collections::VecDeque::new();
        for chunk in round {
            // Handed over in order (as the network does); an entry that overtakes its
            // predecessor would be held back and counted with the chunk that releases it.
            let verdict = handle.ingest_in_order(chunk).map_err(|_| anyhow!("the sequencer's queue is full"))?;
            in_flight.push_back(verdict);
            // Keep two in flight: wait for the oldest before sending a third.
            while in_flight.len() > 2 {
                if let Some(v) = in_flight.pop_front() {
                    done += check_ingest(v.await, done)?;
                }
            }
            progress.set_position(done);
        }
        while let Some(v) = in_flight.pop_front() {
            done += check_ingest(v.await, done)?;
        }
        busy += t.elapsed();
        progress.set_position(done);
        if rss_early.is_none() && done >= n / 4 {
            rss_early = Some((done, rss_bytes(), store.cache_bytes()));
        }
    }
    progress.finish_and_clear();
    let (rss_end, cache_end) = (rss_bytes(), store.cache_bytes());
    drop(handle);
    thread.join().map_err(|_| anyhow!("the sequencer thread failed"))?;
    if done != n {
        bail!("only {done} of {n} entries were generated");
    }
    let rate = n as f64 / busy.as_secs_f64();
    report.rate(
        "Ingest",
        "peer entries validated and stored (synced WAL, group commit)",
        rate,
        "entry/s",
        Some((0.5, "≥ 0.5 × ref")),
        format!(
            "{n} entries of c0 into c1's sequencer + RocksDB in calls of {CHUNK} (one synced batch each, two in flight); 1 run; {:.1} s",
            busy.as_secs_f64()
        ),
    );
    let (early_n, early_rss, early_cache) = rss_early.unwrap_or((0, rss_start, 0));
    let per_million = |bytes: f64| bytes / (n - early_n).max(1) as f64; // B/entry = MB per million
    let beyond_caches = rss_end.saturating_sub(cache_end) as f64 - early_rss.saturating_sub(early_cache) as f64;
    report.size(
        "Footprint",
        "resident memory growth per million entries, beyond fixed caches",
        // Negative when the caches grew into memory the process already held (freed
        // generator rounds): nothing grew beyond them.
        per_million(beyond_caches).max(0.0),
        "MB",
        Some(16.0),
        format!(
            "VmRSS of the node process minus RocksDB's bounded caches (memtables ≤ 64 MB, block cache ≤ 32 MB): after \
             {early_n} entries {:.0} − {:.0} MB, after {n} {:.0} − {:.0} MB (at start {:.0} MB; VmRSS alone grows {:.1} MB per million)",
            early_rss as f64 / 1e6,
            early_cache as f64 / 1e6,
            rss_end as f64 / 1e6,
            cache_end as f64 / 1e6,
            rss_start as f64 / 1e6,
            per_million(rss_end as f64 - early_rss as f64),
        ),
    );

    store.compact();
    let sst: u64 = store.sizes().iter().map(|(_, b)| b).sum();
    drop(store);
    let total = dir_bytes(&data_dir);
    report.size(
        "Footprint",
        "disk bytes per entry after compaction",
        total as f64 / n as f64,
        "B",
        Some(400.0),
        format!(
            "whole RocksDB directory {:.1} MB for {n} entries (SST files alone {:.0} B/entry); entries, leaves, by-hash, state",
            total as f64 / 1e6,
            sst as f64 / n as f64
        ),
    );

    verify(report, &rig, &data_dir, n, sizes.verify_reps, linli)?;

    // Catch-up: c1 serves; a fresh c2 syncs c0's ledger from it.
    rig.start(1).await;
    rig.start(2).await;
    let t = Instant::now();
    let progress = bar(n, "catch-up");
    let limit = Duration::from_secs(60 + n / 1000);
    loop {
        let held = {
            let node = rig.members[2].node.as_ref().context("c2 running")?;
            node.store.head(&c0)?.0
        };
        progress.set_position(held);
        if held >= n {
            break;
        }
        if t.elapsed() > limit {
            bail!("catch-up stalled at {held} of {n} entries after {:?}", t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t.elapsed();
    progress.finish_and_clear();
    rig.stop(2).await;
    rig.stop(1).await;
    report.rate(
        "Catch-up",
        "a fresh node syncing a ledger from a peer (libp2p)",
        n as f64 / took.as_secs_f64(),
        "entry/s",
        Some((0.5, "≥ 0.5 × ref")),
        format!(
            "{n} entries over request-response on 127.0.0.1, from start to the last entry stored; {:.1} s",
            took.as_secs_f64()
        ),
    );
    Ok(())
}

fn verify(report: &mut Report, rig: &Rig, data_dir: &Path, n: u64, reps: usize, linli: &Path) -> Result<()> {
    let genesis_file: PathBuf = rig.members[1].dir.join("genesis.toml");
    let mut rates = Vec::new();
    let mut secs = Vec::new();
    for _ in 0..reps {
        let out = std::process::Command::new(linli)
            .args(["--json", "verify", "--quiet", "--db"])
            .arg(data_dir)
            .arg("--genesis")
            .arg(&genesis_file)
            .output()
            .with_context(|| format!("running {}", linli.display()))?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("linli verify printed no JSON: {}", String::from_utf8_lossy(&out.stderr)))?;
        if !out.status.success() || v["ok"] != true {
            bail!("linli verify failed on the benchmark ledger: {v}");
        }
        let entries = v["entries"].as_u64().unwrap_or(0);
        if entries != n {
            bail!("linli verify replayed {entries} entries, expected {n}");
        }
        rates.push(v["entries_per_second"].as_f64().unwrap_or(0.0));
        secs.push(v["seconds"].as_f64().unwrap_or(0.0));
    }
    let rate = crate::report::median(&mut rates);
    report.rate(
        "Verify",
        "linli verify --db (replay from genesis, every check)",
        rate,
        "entry/s",
        Some((0.5, "≥ 0.5 × ref")),
        format!(
            "{n} entries ({} signatures each), median of {reps} run(s) of the linli binary, {:.1} s each",
            crate::workload::SIGNATURES_PER_ENTRY,
            crate::report::median(&mut secs)
        ),
    );
    Ok(())
}
