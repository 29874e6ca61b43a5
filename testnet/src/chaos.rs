//! Chaos while load runs, faults in a fixed cycle with random targets and durations:
//! - link cut: two running nodes block each other (`POST /v1/operator/peers/{id}/block` on
//!   both), both must keep acknowledging writes while cut, then unblock and reconnect;
//! - SIGKILL and restart of one node, or of two nodes at once;
//! - SIGSTOP freeze and SIGCONT thaw of one node (nothing read or answered meanwhile);
//! - SIGKILL and restart of a till (merchant light node), with a sale before and after.
//!
//! Afterwards every node must converge and hold every acknowledged entry, every till must
//! reconcile every receipt, and the verdict checks the invariants.

use crate::federation::Federation;
use crate::load::Plan;
use crate::scenario::random_hash;
use anyhow::{bail, Context, Result};
use linli_protocol::{Keypair, PublicKey};
use rand_core::RngCore;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Default, Debug)]
pub struct ChaosLog {
    pub kills: u64,
    /// Kills of two nodes at once (each also counted in `kills`).
    pub doubles: u64,
    pub freezes: u64,
    pub cuts: u64,
    pub heals: u64,
    /// Cuts during which both cut nodes' connected-peer counts fell.
    pub peer_drops: u64,
    /// (node, peers before, peers during the cut) of each cut node.
    pub drops: Vec<(String, u64, u64)>,
    /// Longest time from unblocking to both nodes being reconnected.
    pub slowest_heal: Duration,
    /// Enrolments acknowledged by a cut node while cut: (community, seq, hash).
    pub cut_writes: Vec<(String, u64, String)>,
    pub till_restarts: u64,
    /// Sales acknowledged by each till during the chaos.
    pub till_sales: Vec<u64>,
    pub events: Vec<String>,
}

impl ChaosLog {
    /// One machine-readable line (the testnet's tests parse it).
    pub fn counts(&self) -> String {
        format!(
            "chaos counts: cuts={} heals={} peer_drops={} cut_writes={} kills={} doubles={} freezes={} till_restarts={} till_sales={}",
            self.cuts,
            self.heals,
            self.peer_drops,
            self.cut_writes.len(),
            self.kills,
            self.doubles,
            self.freezes,
            self.till_restarts,
            self.till_sales.iter().sum::<u64>()
        )
    }
}

fn between(lo_ms: u64, hi_ms: u64) -> Duration {
    Duration::from_millis(lo_ms + rand_core::OsRng.next_u64() % (hi_ms - lo_ms).max(1))
}

fn pick(n: usize) -> usize {
    (rand_core::OsRng.next_u64() % n.max(1) as u64) as usize
}

/// Two different indices below `n`.
fn pair(n: usize) -> (usize, usize) {
    let a = pick(n);
    (a, (a + 1 + pick(n - 1)) % n)
}

#[derive(Clone, Copy)]
enum Fault {
    Cut,
    Kill,
    Till,
    Freeze,
    Double,
}

/// The first fault is a cut, so even a short run cuts a link.
const CYCLE: [Fault; 6] = [Fault::Cut, Fault::Kill, Fault::Till, Fault::Cut, Fault::Freeze, Fault::Double];

/// Disrupt the federation until `duration` has passed; every node and till is running again at
/// the end and every cut link is healed.
pub async fn run(f: &mut Federation, plan: &Plan, duration: Duration, say: impl Fn(String)) -> Result<ChaosLog> {
    let mut log = ChaosLog { till_sales: vec![0; f.tills.len()], ..Default::default() };
    let start = Instant::now();
    let n = f.nodes.len();
    let mut k = 0;
    while start.elapsed() + Duration::from_secs(3) < duration {
        tokio::time::sleep(between(300, 1000)).await;
        f.check_alive()?;
        let at = format!("{:>5.1}s", start.elapsed().as_secs_f64());
        let mut note = |line: String| {
            let line = format!("{at} {line}");
            say(line.clone());
            log.events.push(line);
        };
        match CYCLE[k % CYCLE.len()] {
            Fault::Cut => {
                let (a, b) = pair(n);
                note(format!("cut link {} <-> {}", f.nodes[a].id, f.nodes[b].id));
                cut(f, a, b, &mut log, &say).await?;
            }
            Fault::Kill => {
                let i = pick(n);
                let down = between(500, 2500);
                note(format!("SIGKILL node {}; restart after {} ms", f.nodes[i].id, down.as_millis()));
                kill_and_restart(f, &[i], down).await?;
                log.kills += 1;
            }
            Fault::Double => {
                let (a, b) = pair(n);
                let down = between(500, 2000);
                note(format!(
                    "SIGKILL nodes {} and {} at once; restart after {} ms",
                    f.nodes[a].id,
                    f.nodes[b].id,
                    down.as_millis()
                ));
                kill_and_restart(f, &[a, b], down).await?;
                log.kills += 2;
                log.doubles += 1;
            }
            Fault::Freeze => {
                let i = pick(n);
                let cut = between(1000, 3000);
                note(format!("SIGSTOP node {} (nothing read or answered) for {} ms", f.nodes[i].id, cut.as_millis()));
                f.nodes[i].proc.pause()?;
                tokio::time::sleep(cut).await;
                f.nodes[i].proc.cont();
                log.freezes += 1;
            }
            Fault::Till if !f.tills.is_empty() => {
                let t = pick(f.tills.len());
                let down = between(500, 2000);
                note(format!("SIGKILL till {t}; restart after {} ms", down.as_millis()));
                till_restart(f, plan, t, down, &mut log, &say).await?;
            }
            Fault::Till => {}
        }
        k += 1;
    }
    for n in &mut f.nodes {
        n.proc.cont();
    }
    f.check_alive()?;
    Ok(log)
}

/// SIGKILL the nodes `which` at once, start them again after `down`, and wait until each
/// answers (60 s at most).
async fn kill_and_restart(f: &mut Federation, which: &[usize], down: Duration) -> Result<()> {
    for &i in which {
        f.nodes[i].proc.kill()?;
    }
    tokio::time::sleep(down).await;
    for &i in which {
        f.nodes[i].proc.start()?;
    }
    for &i in which {
        f.wait_node(i, Duration::from_secs(60)).await?;
    }
    Ok(())
}

async fn peers(f: &Federation, i: usize) -> Result<(String, u64)> {
    let st = f.get(i, "/v1/status").await?;
    let id = st["peer_id"].as_str().with_context(|| format!("node {} has no peer id: {st}", f.nodes[i].id))?;
    Ok((id.to_string(), st["connected_peers"].as_u64().unwrap_or(0)))
}

/// Cut the link between nodes `a` and `b` in both directions, write on both sides while cut,
/// then heal it and wait until both are reconnected.
async fn cut(f: &Federation, a: usize, b: usize, log: &mut ChaosLog, say: &impl Fn(String)) -> Result<()> {
    let ((pa, before_a), (pb, before_b)) = (peers(f, a).await?, peers(f, b).await?);
    f.op(a, &format!("/v1/operator/peers/{pb}/block"), Value::Null).await?;
    f.op(b, &format!("/v1/operator/peers/{pa}/block"), Value::Null).await?;
    log.cuts += 1;
    let hold = between(1500, 4000);
    let started = Instant::now();
    // Both sides keep acknowledging writes while cut off from each other.
    for i in [a, b] {
        let r = json!({"resident": Keypair::generate().public(), "profile_hash": random_hash()});
        let v = f.op(i, "/v1/operator/residents", r).await.context("a cut node refused a write")?;
        let (c, seq, h) = (v["community"].as_str(), v["seq"].as_u64(), v["hash"].as_str());
        if let (Some(c), Some(seq), Some(h)) = (c, seq, h) {
            log.cut_writes.push((c.to_string(), seq, h.to_string()));
        }
    }
    let (mut low_a, mut low_b) = (before_a, before_b);
    while started.elapsed() < hold {
        low_a = low_a.min(peers(f, a).await?.1);
        low_b = low_b.min(peers(f, b).await?.1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if low_a < before_a && low_b < before_b {
        log.peer_drops += 1;
    }
    log.drops.push((f.nodes[a].id.clone(), before_a, low_a));
    log.drops.push((f.nodes[b].id.clone(), before_b, low_b));
    f.op(a, &format!("/v1/operator/peers/{pb}/unblock"), Value::Null).await?;
    f.op(b, &format!("/v1/operator/peers/{pa}/unblock"), Value::Null).await?;
    let healing = Instant::now();
    loop {
        let (now_a, now_b) = (peers(f, a).await?.1, peers(f, b).await?.1);
        if now_a >= before_a && now_b >= before_b {
            break;
        }
        if healing.elapsed() > Duration::from_secs(45) {
            bail!(
                "link {} <-> {} not healed 45 s after unblocking: peers {now_a} (was {before_a}) and {now_b} (was {before_b})",
                f.nodes[a].id,
                f.nodes[b].id
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    log.heals += 1;
    log.slowest_heal = log.slowest_heal.max(healing.elapsed());
    say(format!(
        "        healed after {:.1} s cut: peers of {} {before_a} -> {low_a} (back to {before_a}), of {} {before_b} -> {low_b} (back to {before_b}) {:.1} s after unblocking",
        started.elapsed().as_secs_f64(),
        f.nodes[a].id,
        f.nodes[b].id,
        healing.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// One sale at till `t`; true if the till acknowledged it.
async fn sale(f: &Federation, plan: &Plan, t: usize) -> Result<bool> {
    let merchant = PublicKey::from_hex(&f.tills[t].merchant).map_err(|e| anyhow::anyhow!("{e}"))?;
    let body = plan.till_sale(&merchant, f.tills[t].home)?;
    Ok(matches!(f.till(t, "/v1/till/sales", body).await, Ok((200, _))))
}

/// A sale, SIGKILL, restart after `down`, wait until the till reaches a node, another sale.
async fn till_restart(
    f: &mut Federation,
    plan: &Plan,
    t: usize,
    down: Duration,
    log: &mut ChaosLog,
    say: &impl Fn(String),
) -> Result<()> {
    let before = sale(f, plan, t).await?;
    f.tills[t].proc.kill()?;
    tokio::time::sleep(down).await;
    f.tills[t].proc.start()?;
    if !f.till_connected(t, Duration::from_secs(60)).await {
        bail!("till {t} did not reach a community node within 60 s of its restart");
    }
    let after = sale(f, plan, t).await?;
    log.till_sales[t] += u64::from(before) + u64::from(after);
    log.till_restarts += 1;
    say(format!("        till {t} back; sales before/after the restart acknowledged: {before}/{after}"));
    Ok(())
}

/// Every till reconciles: each receipt it holds is credited on its home ledger, none pending,
/// and it holds at least the sales acknowledged during the chaos. Returns (receipts, credited).
pub async fn reconcile_tills(f: &Federation, log: &ChaosLog) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for t in 0..f.tills.len() {
        let start = Instant::now();
        loop {
            let (s, r) = f.till(t, "/v1/till/reconcile", json!(null)).await?;
            let (receipts, credited) = (r["receipts"].as_u64().unwrap_or(0), r["credited"].as_u64().unwrap_or(0));
            let done = s == 200
                && receipts == credited
                && r["pending"].as_u64() == Some(0)
                && receipts >= log.till_sales.get(t).copied().unwrap_or(0);
            if done {
                out.push((receipts, credited));
                break;
            }
            if start.elapsed() > Duration::from_secs(90) {
                bail!("till {t} does not reconcile after the chaos: {s} {r}");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(out)
}
