//! Gossip: 5 community nodes on 127.0.0.1 (real libp2p, in one process), each sequencing
//! operator enrolments at an even share of a fixed total rate; the time from an entry's commit on
//! its own node until it is stored on all four others. Commit and arrival are both observed by
//! polling every node's store head every millisecond (so figures are ±1 ms).

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
                let size = s.head(id).map(|(n, _)| n).unwrap_or(0);
                let have = base[c] + seen[i][c].len() as u64;
                for _ in have..size {
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

pub async fn run(report: &mut Report, sizes: &Sizes) -> Result<()> {
    let mut rig = Rig::new(NODES);
    for i in 0..NODES {
        rig.start(i).await;
    }
    // Warm up: a few entries everywhere, converge, let the gossipsub mesh form.
    for i in 0..NODES {
        rig.enroll_many(i, 0, 3).await;
    }
    rig.converge(&(0..NODES).collect::<Vec<_>>(), Duration::from_secs(60), |h| h.iter().all(|(_, s, _)| *s == 3)).await;
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
    let residents: Vec<_> = (0..total).map(|k| key(&format!("gossip-r{k}")).public()).collect();
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for (k, resident) in residents.into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 / sizes.rate as f64)).await;
        let i = k % NODES;
        let req = rig
            .http
            .post(format!("{}/v1/operator/residents", rig.members[i].base()))
            .bearer_auth(linli_tests::TOKEN)
            .json(&json!({"resident": resident, "profile_hash": Hash::ZERO}));
        tasks.push(tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) }));
    }
    let sent = start.elapsed().as_secs_f64();
    for t in tasks {
        let status = t.await??;
        if status != 200 {
            bail!("enrolment refused: {status}");
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
    let note = format!(
        "{total} enrolments at {} entries/s over {NODES} nodes ({:.0} entries/s achieved), commit → stored on all 4 peers; {:.0}% of copies applied straight from their gossip message (the rest came by sync or were held back behind a missing predecessor)",
        sizes.rate,
        total as f64 / sent,
        100.0 * by_gossip / received.max(1.0)
    );
    report.latency_ms("Gossip", "propagation to all nodes p50", percentile(&lat, 50.0), None, note.clone());
    report.latency_ms("Gossip", "propagation to all nodes p99", percentile(&lat, 99.0), Some(50.0), note);
    Ok(())
}
