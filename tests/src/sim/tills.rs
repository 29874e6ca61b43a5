//! Merchant tills in the simulation: one light client per community (the protocol's
//! [`LightTrust`], one witness required) verifies each accepted payment as a till does before it
//! hands over the goods: the `Pay` entry, its inclusion proof and a cosigned checkpoint, asked of
//! a random running node (the equivocator's too, which serves its own branch). Tills follow key
//! changes (key history proofs) and equivocation alerts, as the merchant node does.
//!
//! The invariant (CT-style: misbehaviour is not prevented by one witness, but caught): a sale a
//! till accepted is the entry at its position on every honest node that holds that position —
//! at once for honest ledgers (and every honest node holds it in the end), and in the end for
//! the equivocator's, unless that node has proven the ledger faulty at or before the sale.

use super::rng::Rng;
use super::workload::Sale;
use super::Sim;
use anyhow::{bail, Result};
use linli_node::network::messages::SyncResponse;
use linli_node::network::serve::{entry_proof, key_history};
use linli_node::store::Store;
use linli_protocol::light::{LightError, LightTrust};
use linli_protocol::merkle::LeafSource;
use linli_protocol::{EntryRef, Genesis};

/// Steps a sale may wait for a checkpoint that covers it before the till gives up.
const PATIENCE_STEPS: u64 = 600;
/// Sales a till tries per step.
const TRIES_PER_STEP: usize = 4;

pub struct Tills {
    trust: Vec<LightTrust>,
    pending: Vec<(Sale, u64)>,
    /// Sales the tills accepted.
    pub sold: Vec<EntryRef>,
    /// Sales refused for good (community proven faulty) or not verified in time.
    pub refused: u64,
    /// Apart from the simulation's other draws, so a seed's other choices stay as they were.
    rng: Rng,
}

impl Tills {
    pub fn new(genesis: &Genesis, seed: u64) -> Self {
        let trust = genesis.communities.iter().map(|_| LightTrust::new(genesis.clone(), 1)).collect();
        Tills { trust, pending: Vec::new(), sold: Vec::new(), refused: 0, rng: Rng::new(seed ^ 0x7111_5000) }
    }
}

/// A random running node's store.
fn any_store<'a>(sim: &'a Sim, rng: &mut Rng) -> Option<&'a Store> {
    let running: Vec<&Store> = sim.nodes.iter().filter_map(|n| n.core.as_ref().map(|c| c.store())).collect();
    if running.is_empty() {
        return None;
    }
    running.get(rng.index(running.len())).copied()
}

/// One step of every till: learn alerts, then try pending sales.
pub fn step(sim: &mut Sim) -> Result<()> {
    let sales: Vec<Sale> = sim.work.sales.drain(..).collect();
    let Some(mut tills) = sim.tills.take() else { return Ok(()) };
    let result = step_with(sim, &mut tills, sales);
    sim.tills = Some(tills);
    result
}

fn step_with(sim: &Sim, tills: &mut Tills, sales: Vec<Sale>) -> Result<()> {
    let now = sim.step;
    tills.pending.extend(sales.into_iter().map(|s| (s, now)));
    let gh = sim.genesis_hash;
    for trust in tills.trust.iter_mut() {
        let Some(store) = any_store(sim, &mut tills.rng) else { return Ok(()) };
        for proof in store.alerts()? {
            let c = proof.community().clone();
            let key = trust.history(&c).map(|h| h.key_at(proof.position()));
            if key.is_some_and(|k| proof.verify(&gh, &k).is_ok()) {
                trust.mark_faulty(c);
            }
        }
    }
    let mut keep = Vec::new();
    let mut tried = 0;
    for (sale, since) in std::mem::take(&mut tills.pending) {
        if tried >= TRIES_PER_STEP {
            keep.push((sale, since));
            continue;
        }
        tried += 1;
        let Some(till) = sim.work.ids.iter().position(|c| *c == sale.payment.payload.merchant_community) else {
            bail!("a sale at a merchant of unknown community {}", sale.payment.payload.merchant_community);
        };
        let Some(store) = any_store(sim, &mut tills.rng) else { return Ok(()) };
        let c = &sale.at.community;
        let Some(trust) = tills.trust.get_mut(till) else { bail!("no till for community {till}") };
        let verdict = match entry_proof(store, c, sale.at.seq)? {
            SyncResponse::Proof(proof) => {
                let mut verdict = trust.verify_payment(&proof, &sale.payment);
                if matches!(verdict, Err(LightError::Signature(_) | LightError::Checkpoint(_))) {
                    if let SyncResponse::KeyHistory(h) = key_history(store, c)? {
                        if trust.learn_keys(&h).is_ok() {
                            verdict = trust.verify_payment(&proof, &sale.payment);
                        }
                    }
                }
                Some(verdict)
            }
            _ => None, // not held there, or no checkpoint covers it yet
        };
        match verdict {
            Some(Ok(v)) if v.at == sale.at => tills.sold.push(v.at),
            Some(Ok(v)) => bail!("till accepted {:?} for the sale of {:?}", v.at, sale.at),
            Some(Err(LightError::Faulty { .. })) => tills.refused += 1,
            _ if now.saturating_sub(since) > PATIENCE_STEPS => tills.refused += 1,
            _ => keep.push((sale, since)),
        }
    }
    tills.pending = keep;
    Ok(())
}

/// A sold entry disagrees with an honest node's ledger. `at_end`: the equivocator's ledger too
/// (what an honest node holds there must be the sold entry, unless it proved the ledger faulty
/// at or before it), and every honest node must hold the sales of honest ledgers.
pub fn check(sim: &Sim, at_end: bool) -> Result<()> {
    let equivocator = sim.equivocator.map(|e| sim.nodes[e.0].id.clone());
    let Some(tills) = &sim.tills else { return Ok(()) };
    for sale in &tills.sold {
        let forked_ledger = Some(&sale.community) == equivocator.as_ref();
        if forked_ledger && !at_end {
            continue; // honest nodes may hold the other branch until the fork is proven
        }
        for node in sim.nodes.iter().filter(|n| Some(&n.id) != equivocator.as_ref()) {
            let Some(core) = &node.core else { continue };
            let ledger = core.state().ledgers.get(&sale.community);
            if ledger.is_some_and(|l| l.faulty && l.faulty_from <= sale.seq) {
                continue;
            }
            let held = core.store().leaves(&sale.community).leaf(sale.seq);
            match held {
                Some(h) if h == sale.hash => {}
                // An equivocator's ledger need not be fully replicated at the end (the quiet
                // phase waits for the honest ledgers); what an honest node holds must agree.
                None if !at_end || forked_ledger => {}
                other => bail!(
                    "node {} holds {other:?} at {} seq {}, where a till sold against {} (it holds {} entries of \
                     that ledger, faulty from {:?}; equivocator {:?} forked at {:?}, fork seen {})",
                    node.id,
                    sale.community,
                    sale.seq,
                    sale.hash,
                    core.store().head(&sale.community)?.0,
                    ledger.filter(|l| l.faulty).map(|l| l.faulty_from),
                    equivocator,
                    sim.fork.as_ref().map(|f| f.entry.seq),
                    sim.fork_seen
                ),
            }
        }
    }
    Ok(())
}
