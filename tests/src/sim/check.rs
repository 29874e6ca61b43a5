//! The invariants, checked on every running node after every step (DESIGN.md's list where a
//! simulation can see it): conservation of points and minutes per issuer; no honest community
//! ever accused; honest nodes never disagree on a prefix of an honest ledger; every resident's
//! balance on its home node equals what the oracle counted from accepted receipts (so accepted
//! spending never exceeded what was earned). At the end: convergence (same heads and, without
//! an equivocator, the same state everywhere), the equivocator proven faulty on every honest
//! node, and each store equal to a replay of its log.

use super::Sim;
use anyhow::{bail, Result};
use linli_protocol::merkle::LeafSource;
use linli_protocol::{CommunityId, State};

fn honest(sim: &Sim) -> Vec<CommunityId> {
    let e = sim.equivocator.map(|e| e.0);
    sim.nodes.iter().enumerate().filter(|(i, _)| Some(*i) != e).map(|(_, n)| n.id.clone()).collect()
}

/// After every step.
pub fn step(sim: &Sim) -> Result<()> {
    let honest = honest(sim);
    for node in &sim.nodes {
        let Some(core) = &node.core else { continue };
        if core.state().record_count() > 0 {
            bail!("node {}: per-entry records stay in memory after a group", node.id);
        }
        let state = core.state_with_records()?;
        if let Some(c) = state.conservation_violation() {
            bail!("node {}: conservation violated for issuer {c}", node.id);
        }
        for c in &honest {
            if state.ledgers.get(c).is_some_and(|l| l.faulty) {
                bail!("node {}: honest community {c} marked faulty", node.id);
            }
        }
    }
    for c in &honest {
        let mut heads = Vec::new();
        for node in &sim.nodes {
            if let Some(core) = &node.core {
                heads.push((node.id.clone(), core.store().head(c)?.0, core.store()));
            }
        }
        for (a, na, sa) in &heads {
            for (b, nb, sb) in &heads {
                let n = (*na).min(*nb);
                if a < b && n > 0 && sa.leaves(c).leaf(n - 1) != sb.leaves(c).leaf(n - 1) {
                    bail!("nodes {a} and {b} disagree on ledger {c} at seq {}", n - 1);
                }
            }
        }
    }
    for (i, r) in sim.work.residents.iter().enumerate().filter(|(_, r)| r.enrolled) {
        let Some(core) = &sim.nodes[r.home].core else { continue };
        let account = core.state().account(&sim.nodes[r.home].id, &r.key.public());
        let (points, minutes) = account.map(|a| (a.points, a.minutes)).unwrap_or_default();
        if (points, minutes) != (r.points, r.minutes) {
            bail!(
                "resident {i} of {}: home node holds {points} points / {minutes} min, receipts give {} / {}",
                sim.nodes[r.home].id,
                r.points,
                r.minutes
            );
        }
    }
    Ok(())
}

/// Every node runs, holds the same head of every honest ledger, and knows the equivocator is
/// faulty; without an equivocator, every node holds the same state.
pub fn converged(sim: &Sim) -> Result<bool> {
    let states: Vec<&State> = sim.nodes.iter().filter_map(|n| n.core.as_ref().map(|c| c.state())).collect();
    if states.len() != sim.nodes.len() {
        return Ok(false);
    }
    let honest = honest(sim);
    for c in &honest {
        let first = states.first().and_then(|s| s.ledgers.get(c)).map(|l| (l.next_seq, l.head));
        if states.iter().any(|s| s.ledgers.get(c).map(|l| (l.next_seq, l.head)) != first) {
            return Ok(false);
        }
    }
    match sim.equivocator {
        Some(_) if !sim.fork_seen => Ok(true),
        Some((e, _)) => {
            let id = &sim.nodes[e].id;
            let caught = sim
                .nodes
                .iter()
                .filter(|n| n.id != *id)
                .filter_map(|n| n.core.as_ref())
                .all(|c| c.state().ledgers.get(id).is_some_and(|l| l.faulty));
            Ok(caught)
        }
        None => Ok(states.windows(2).all(|w| w[0] == w[1])),
    }
}

/// After convergence: every store equals a replay of its log; alerts name only the equivocator.
pub fn finished(sim: &Sim) -> Result<()> {
    let e = sim.equivocator.map(|e| sim.nodes[e.0].id.clone());
    for node in &sim.nodes {
        let Some(core) = &node.core else { bail!("node {} is down at the end", node.id) };
        linli_node::node::full_check(core.store(), &sim.genesis, &core.state_with_records()?)?;
        for proof in core.store().alerts()? {
            if Some(proof.community()) != e.as_ref() {
                bail!("node {} holds an equivocation proof against honest {}", node.id, proof.community());
            }
        }
    }
    Ok(())
}

/// What still differs (for the failure message).
pub fn divergence(sim: &Sim) -> String {
    let mut out = Vec::new();
    for node in &sim.nodes {
        let Some(core) = &node.core else {
            out.push(format!("{}: down", node.id));
            continue;
        };
        let heads: Vec<String> = core
            .state()
            .ledgers
            .iter()
            .map(|(c, l)| format!("{c}={}{}", l.next_seq, if l.faulty { "(faulty)" } else { "" }))
            .collect();
        out.push(format!("{}: {}", node.id, heads.join(" ")));
    }
    out.extend(waits(sim));
    out.join("; ")
}

/// For each node behind on an honest ledger: the entry it lacks (from a node that holds it) and,
/// when that entry cites another ledger, how far the lagging node holds that one.
fn waits(sim: &Sim) -> Vec<String> {
    use linli_protocol::body::Body;
    let mut out = Vec::new();
    let up: Vec<_> = sim.nodes.iter().filter_map(|n| n.core.as_ref().map(|c| (n, c))).collect();
    for c in honest(sim) {
        for (node, core) in &up {
            let Some(next) = core.state().ledgers.get(&c).map(|l| l.next_seq) else { continue };
            let held = up.iter().find_map(|(_, other)| other.store().entry(&c, next).ok().flatten());
            let Some(entry) = held else { continue };
            let cited = match &entry.entry.body {
                Body::Credit(cr) => Some(&cr.source),
                Body::TimeFulfil(f) => Some(&f.source),
                _ => None,
            };
            let view = cited.map(|src| match core.state().ledgers.get(&src.community) {
                Some(l) if l.faulty => format!(
                    ", citing {}#{} (held here to {}, faulty from {})",
                    src.community, src.seq, l.next_seq, l.faulty_from
                ),
                Some(l) => format!(", citing {}#{} (held here to {})", src.community, src.seq, l.next_seq),
                None => format!(", citing {}#{}", src.community, src.seq),
            });
            out.push(format!("{} lacks {c}#{next} ({}{})", node.id, entry.entry.body.kind(), view.unwrap_or_default()));
        }
    }
    out
}

/// Whether an honest node holds the equivocator's forked entry.
pub fn fork_stored(sim: &Sim) -> Result<bool> {
    let Some(fork) = &sim.fork else { return Ok(false) };
    for node in &sim.nodes {
        let Some(core) = &node.core else { continue };
        if node.id != fork.entry.community
            && core.store().entry(&fork.entry.community, fork.entry.seq)?.as_ref() == Some(fork)
        {
            return Ok(true);
        }
    }
    Ok(false)
}
