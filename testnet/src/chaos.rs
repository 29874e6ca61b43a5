//! Chaos while load runs: one node at a time is either killed with SIGKILL and restarted, or
//! frozen with SIGSTOP (its links to every peer and client are cut: nothing is read or
//! answered) and thawed with SIGCONT. Afterwards every node must converge and hold every
//! acknowledged entry; the verdict then checks the invariants.

use crate::federation::Federation;
use anyhow::Result;
use rand_core::RngCore;
use std::time::{Duration, Instant};

#[derive(Default, Debug)]
pub struct ChaosLog {
    pub kills: u64,
    pub freezes: u64,
    pub events: Vec<String>,
}

fn between(lo_ms: u64, hi_ms: u64) -> Duration {
    Duration::from_millis(lo_ms + rand_core::OsRng.next_u64() % (hi_ms - lo_ms).max(1))
}

/// Disrupt random nodes until `duration` has passed; every node is running again at the end.
pub async fn run(f: &mut Federation, duration: Duration, say: impl Fn(String)) -> Result<ChaosLog> {
    let mut log = ChaosLog::default();
    let start = Instant::now();
    let t0 = |s: &Instant| format!("{:>5.1}s", s.elapsed().as_secs_f64());
    while start.elapsed() + Duration::from_secs(3) < duration {
        tokio::time::sleep(between(500, 1500)).await;
        f.check_alive()?;
        let i = (rand_core::OsRng.next_u64() % f.nodes.len() as u64) as usize;
        let id = f.nodes[i].id.clone();
        if rand_core::OsRng.next_u64().is_multiple_of(2) {
            f.nodes[i].proc.kill()?;
            let down = between(500, 2500);
            let line = format!("{} SIGKILL node {id}; restart after {} ms", t0(&start), down.as_millis());
            say(line.clone());
            log.events.push(line);
            tokio::time::sleep(down).await;
            f.nodes[i].proc.start()?;
            f.wait_node(i, Duration::from_secs(60)).await?;
            log.kills += 1;
        } else {
            f.nodes[i].proc.pause()?;
            let cut = between(1000, 4000);
            let line = format!("{} SIGSTOP node {id} (cut off from every peer) for {} ms", t0(&start), cut.as_millis());
            say(line.clone());
            log.events.push(line);
            tokio::time::sleep(cut).await;
            f.nodes[i].proc.cont();
            log.freezes += 1;
        }
    }
    for n in &mut f.nodes {
        n.proc.cont();
    }
    f.check_alive()?;
    Ok(log)
}
