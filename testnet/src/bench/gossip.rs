//! Gossip: 5 community nodes on 127.0.0.1 (real libp2p, in one process), each sequencing
//! operator entries at an even share of a fixed total rate (volunteer awards, then, on a fresh
//! federation, new residents' enrolments); the time from an entry's commit on
//! its own node until it is stored on all four others. Commit and arrival are both observed by
//! polling every node's store every millisecond for the next position of each ledger (so figures
//! are ±1 ms).

use crate::report::{percentile, Report};
use anyhow::{anyhow, bail, Result};
use linli_node::store::Store;
use linli_protocol::testkit::key;
use linli_protocol::{CommunityId, Hash};
use linli_tests::Rig;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Sizes {
    pub rate: u64,
    pub seconds: u64,
    /// Quiet time after the warm-up, for the gossipsub mesh to form.
    pub settle_ms: u64,
}

const NODES: usize = 5;

/// seen[node][community][k] = when node first held entry base[community] + k.
type Seen = Vec<Vec<Vec<Instant>>>;

fn poll(stores: Vec<Store>, ids: Vec<CommunityId>, base: Vec<u64>, stop: Arc<AtomicBool>) -> Seen {
    let mut seen: Seen = vec![vec![Vec::new(); ids.len()]; stores.len()];
    loop {
        // Read the flag before the pass: the pass that follows a stop sees every head the
        // waiter saw, so no entry is left unrecorded.
        let stopping = stop.load(Ordering::Relaxed);
        let now = Instant::now();
        for (i, s) in stores.iter().enumerate() {
            for (c, id) in ids.iter().enumerate() {
                // A point lookup of the next position (a head read opens an iterator, which
                // costs several times more at 25,000 reads a second).
                while s.entry(id, base[c] + seen[i][c].len() as u64).ok().flatten().is_some() {
                    seen[i][c].push(now);
                }
            }
        }
        if stopping {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// What the nodes sequence during the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Volunteer awards to enrolled residents (the bulk of a community's ledger).
    Awards,
    /// New residents: each entry brings a key every node screens (a decompression and a full
    /// scalar multiplication), the costliest entry to take from a peer.
    Enrolments,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Awards => "awards",
            Kind::Enrolments => "new residents",
        }
    }
}

/// Residents enrolled per node before an awards measurement.
const AWARDED: usize = 50;

/// Both workloads, each on a fresh 5-node federation.
pub async fn run(report: &mut Report, sizes: &Sizes) -> Result<()> {
    run_kind(report, sizes, Kind::Awards).await?;
    run_kind(report, sizes, Kind::Enrolments).await
}

async fn run_kind(report: &mut Report, sizes: &Sizes, kind: Kind) -> Result<()> {
    let mut rig = Rig::new(NODES);
    for i in 0..NODES {
        rig.start(i).await;
    }
    // Warm up: entries everywhere (for awards, the rule table and the residents to award),
    // converge, let the gossipsub mesh form.
    let warm = match kind {
        Kind::Awards => {
            for i in 0..NODES {
                rig.publish_default_rules(i).await;
                rig.enroll_many(i, 0, AWARDED).await;
            }
            AWARDED as u64 + 1
        }
        Kind::Enrolments => {
            for i in 0..NODES {
                rig.enroll_many(i, 0, 3).await;
            }
            3
        }
    };
    rig.converge(&(0..NODES).collect::<Vec<_>>(), Duration::from_secs(60), |h| h.iter().all(|(_, s, _)| *s == warm))
        .await;
    tokio::time::sleep(Duration::from_millis(sizes.settle_ms)).await;

    let ids: Vec<CommunityId> = (0..NODES).map(|i| CommunityId::new(format!("c{i}"))).collect::<Result<_, _>>()?;
    let stores: Vec<Store> = rig
        .members
        .iter()
        .map(|m| m.node.as_ref().map(|n| n.store.clone()).ok_or_else(|| anyhow!("node not running")))
        .collect::<Result<_>>()?;
    let base: Vec<u64> = ids.iter().map(|id| stores[0].head(id).map(|(n, _)| n)).collect::<Result<_, _>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stores, ids, base, stop) = (stores.clone(), ids.clone(), base.clone(), stop.clone());
        std::thread::spawn(move || poll(stores, ids, base, stop))
    };

    let total = sizes.rate * sizes.seconds;
    let requests: Vec<(String, serde_json::Value)> = (0..total as usize)
        .map(|k| {
            let i = k % NODES;
            match kind {
                Kind::Awards => {
                    let resident = key(&format!("{}-r{}", rig.members[i].id, (k / NODES) % AWARDED)).public();
                    let award = json!({"resident": resident, "activity": "cleanup", "minutes": 60, "rating": 5,
                        "request_id": k});
                    (format!("{}/v1/operator/awards", rig.members[i].base()), award)
                }
                Kind::Enrolments => {
                    let resident = key(&format!("gossip-r{k}")).public();
                    (
                        format!("{}/v1/operator/residents", rig.members[i].base()),
                        json!({"resident": resident, "profile_hash": Hash::ZERO}),
                    )
                }
            }
        })
        .collect();
    let cpu_before = crate::machine::cpu_seconds();
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for (k, (url, body)) in requests.into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 / sizes.rate as f64)).await;
        let req = rig.http.post(url).bearer_auth(linli_tests::TOKEN).json(&body);
        tasks.push(tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) }));
    }
    let sent = start.elapsed().as_secs_f64();
    for t in tasks {
        let status = t.await??;
        if status != 200 {
            bail!("gossip bench: a request for {} was refused: {status}", kind.label());
        }
    }
    let want: Vec<u64> =
        (0..NODES).map(|c| base[c] + (total / NODES as u64) + u64::from((c as u64) < total % NODES as u64)).collect();
    let waited = Instant::now();
    'wait: loop {
        for s in &stores {
            for (c, id) in ids.iter().enumerate() {
                if s.head(id)?.0 < want[c] {
                    if waited.elapsed() > Duration::from_secs(60) {
                        bail!("gossip: entries did not reach every node within 60 s");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue 'wait;
                }
            }
        }
        break;
    }
    let cpu = crate::machine::cpu_seconds() - cpu_before;
    let wall = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let seen = poller.join().map_err(|_| anyhow!("poller failed"))?;
    // How the copies arrived: applied straight from their gossip message (the gossip latency
    // histogram counts those), or otherwise (fetched by sync, or held back behind a gap).
    let (mut by_gossip, mut received) = (0.0, 0.0);
    for m in &rig.members {
        let text = rig.http.get(format!("{}/metrics", m.base())).send().await?.text().await?;
        for line in text.lines() {
            let value = || line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            if line.starts_with("linli_gossip_latency_seconds_count") {
                by_gossip += value();
            } else if line.starts_with("linli_entries_received_total") {
                received += value();
            }
        }
    }
    for i in 0..NODES {
        rig.stop(i).await;
    }
    let mut lat = Vec::new();
    for c in 0..NODES {
        let n = (want[c] - base[c]) as usize;
        for (k, &t0) in seen[c][c].iter().enumerate().take(n) {
            let arrivals: Option<Vec<Instant>> =
                (0..NODES).filter(|&j| j != c).map(|j| seen[j][c].get(k).copied()).collect();
            let arrivals = arrivals.ok_or_else(|| anyhow!("gossip: the poller missed entry {k} of c{c}"))?;
            let all = arrivals.into_iter().max().unwrap_or(t0);
            lat.push(all.saturating_duration_since(t0).as_secs_f64() * 1000.0);
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let label = kind.label();
    let note = format!(
        "{total} entries ({label}) at {} entries/s over {NODES} nodes ({:.0} entries/s achieved), commit → stored on all 4 peers; {:.0}% of copies applied straight from their gossip message (the rest came by sync or were held back behind a missing predecessor)",
        sizes.rate,
        total as f64 / sent,
        100.0 * by_gossip / received.max(1.0)
    );
    report.latency_ms(
        "Gossip",
        &format!("{label}: propagation to all nodes p50"),
        percentile(&lat, 50.0),
        None,
        note.clone(),
    );
    report.latency_ms(
        "Gossip",
        &format!("{label}: propagation to all nodes p99"),
        percentile(&lat, 99.0),
        Some(50.0),
        note,
    );
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    report.latency_ms(
        "Gossip",
        &format!("{label}: CPU time per entry (5 nodes, load, poller)"),
        cpu * 1000.0 / total.max(1) as f64,
        None,
        format!(
            "process CPU time (all threads) from the first request until every entry was on every node: {cpu:.1} s in {wall:.1} s of wall time, {:.0} % of {cores} cores",
            100.0 * cpu / (wall * cores).max(f64::MIN_POSITIVE)
        ),
    );
    Ok(())
}
