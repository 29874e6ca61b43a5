//! Deterministic simulation of a federation in one process, from one `u64` seed (after
//! FoundationDB's and TigerBeetle's simulators). Each community node is the real core
//! ([`linli_node::sequencer::Sequencer`]) on a real RocksDB directory, driven without its thread
//! under a simulated clock; the network ([`net`]) loses, duplicates, delays and reorders
//! messages and partitions the nodes; nodes crash (the core is dropped with everything in flight)
//! and restart (the store is reopened, its state loaded and checked against a replay). A
//! workload ([`workload`]) submits transactions; in some seeds one community equivocates. After
//! every step the invariants ([`check`]) are checked on every node; at the end a quiet phase
//! without faults must bring every honest node to the same ledgers.

pub mod check;
mod drive;
pub mod net;
pub mod rng;
pub mod tills;
pub mod workload;

use anyhow::{Context, Result};
use linli_node::network::messages::GossipMessage;
use linli_node::sequencer::{Clock, Draft, Sequencer};
use linli_node::store::Store;
use linli_protocol::testkit::{self, cid};
use linli_protocol::{CommunityId, Genesis, Hash, Keypair, State};
use net::{Faults, Net};
use rng::Rng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use workload::Workload;

/// The shape of one run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub communities: usize,
    pub residents_per_community: usize,
    pub merchants_per_community: usize,
    /// Steps with workload and faults (about 10 ms of simulated time each).
    pub steps: u64,
    /// Most steps of the quiet phase before convergence is required.
    pub quiet_steps: u64,
    pub faults: Faults,
    /// Whether one community signs two entries at one seq and shows each to half the nodes.
    pub equivocate: bool,
    /// Whether other ledgers may cite the equivocator's entries (payments at other communities'
    /// merchants, time-bank service elsewhere). On in every seed: a `Credit` citing an entry past
    /// the fork is checked on evidence by the nodes that took the other branch
    /// (`linli_node::sequencer::evidence`); `LINLI_SIM_SHIELD_EQUIVOCATOR=1` turns it off.
    pub cite_equivocator: bool,
}

impl SimConfig {
    /// The configuration a seed picks (fault rates vary from seed to seed).
    pub fn for_seed(seed: u64, steps: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x5eed_c0f1_9000_0000);
        SimConfig {
            communities: rng.range(3, 5) as usize,
            residents_per_community: 3,
            merchants_per_community: 2,
            steps,
            quiet_steps: 1500,
            faults: Faults {
                loss: rng.range(0, 200),
                duplicate: rng.range(0, 100),
                max_delay_ms: rng.range(1, 200),
                partition: rng.range(0, 10),
                crash: rng.range(0, 6),
            },
            equivocate: rng.chance(300),
            cite_equivocator: true,
        }
    }
}

/// What a run did (for the report and the README's figures).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub seed: u64,
    pub entries: u64,
    pub accepted: u64,
    pub refused: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub messages: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub cut: u64,
    pub equivocated: bool,
    /// The forked entry reached an honest node, and every honest node proved the fork.
    pub equivocation_proven: bool,
    /// An honest node holds a proof made of the equivocator's two checkpoints of one size.
    pub checkpoint_equivocation_proven: bool,
    /// Community key rotations and revocations (with the recovery key) that were sequenced.
    pub rotations: u64,
    pub revocations: u64,
    /// Payments the merchants' tills verified (entry, inclusion proof, cosigned checkpoint),
    /// and those they refused or gave up on.
    pub sales_verified: u64,
    pub sales_refused: u64,
    pub quiet_steps_to_converge: u64,
    /// Entries of the equivocator past its fork that honest nodes took as evidence (summed over
    /// nodes): citations of the branch a node did not take.
    pub evidence_taken: u64,
}

/// A community node of the simulation.
pub struct Node {
    pub id: CommunityId,
    dir: PathBuf,
    key: Keypair,
    skew_ms: u64,
    pub core: Option<Sequencer>,
    outbox: Option<mpsc::Receiver<GossipMessage>>,
    down_until: u64,
    next_sync: u64,
    /// Sync rounds so far (every tenth also exchanges equivocation alerts, as the node does).
    sync_rounds: u64,
    next_checkpoint: u64,
}

pub struct Sim {
    pub seed: u64,
    pub cfg: SimConfig,
    pub genesis: Genesis,
    pub genesis_hash: Hash,
    pub nodes: Vec<Node>,
    pub net: Net,
    pub rng: Rng,
    pub work: Workload,
    pub faults: Faults,
    clock: Arc<AtomicU64>,
    pub step: u64,
    pub report: Report,
    /// The equivocating community and the step it forks at.
    pub equivocator: Option<(usize, u64)>,
    /// The entry the equivocator showed to the other half, once signed.
    pub fork: Option<linli_protocol::SignedEntry>,
    /// Draws for key changes, apart from `rng` so a seed's other choices stay as they were.
    key_rng: Rng,
    /// Whether an honest node stored the forked entry (then the fork must be proven).
    pub fork_seen: bool,
    /// The merchants' tills (light clients); `None` only while they take a step.
    pub tills: Option<tills::Tills>,
}

/// Simulated time at the start (ms since the Unix epoch).
const START_MS: u64 = 1_800_000_000_000;

impl Sim {
    pub fn new(seed: u64, cfg: SimConfig, root: &Path) -> Result<Self> {
        let mut rng = Rng::new(seed);
        let names: Vec<String> = (0..cfg.communities).map(|i| format!("c{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let genesis = testkit::genesis(&refs);
        let genesis_hash = genesis.hash();
        let ids: Vec<CommunityId> = names.iter().map(|n| cid(n)).collect();
        let equivocator = cfg.equivocate.then(|| (rng.index(ids.len()), rng.range(cfg.steps / 4, cfg.steps / 2)));
        let per = (cfg.residents_per_community, cfg.merchants_per_community);
        let shielded = if cfg.cite_equivocator { None } else { equivocator.map(|e| e.0) };
        let work = Workload::new(seed, ids.clone(), genesis_hash, per, shielded);
        let clock = Arc::new(AtomicU64::new(START_MS));
        let nodes = ids
            .iter()
            .map(|id| Node {
                id: id.clone(),
                dir: root.join(id.as_str()),
                key: testkit::key(&format!("{id}/signing")),
                skew_ms: rng.below(30_000),
                core: None,
                outbox: None,
                down_until: 0,
                next_sync: START_MS + rng.below(100),
                sync_rounds: 0,
                next_checkpoint: START_MS + rng.below(300),
            })
            .collect();
        let faults = cfg.faults;
        let report = Report { seed, equivocated: equivocator.is_some(), ..Report::default() };
        let mut sim = Sim {
            seed,
            cfg,
            genesis,
            genesis_hash,
            nodes,
            net: Net::new(),
            rng,
            work,
            faults,
            clock,
            step: 0,
            report,
            equivocator,
            fork: None,
            fork_seen: false,
            key_rng: Rng::new(seed ^ 0x6b65_7973_0000_0000),
            tills: None,
        };
        sim.tills = Some(tills::Tills::new(&sim.genesis, seed));
        for i in 0..sim.nodes.len() {
            sim.start(i, None)?;
        }
        Ok(sim)
    }

    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Open node `i`'s store, load and check its state (against a full replay and, after a
    /// crash, against the state it had: every acknowledged change was in a synced write).
    fn start(&mut self, i: usize, before_crash: Option<State>) -> Result<()> {
        let node = &mut self.nodes[i];
        let store = Store::open(&node.dir, &self.genesis).context("opening the store")?;
        let full = store.load_state(&self.genesis).context("loading the state")?;
        store.check_heads(&self.genesis, &full).context("store heads")?;
        linli_node::node::full_check(&store, &self.genesis, &full).context("replay after restart")?;
        // What a node keeps in memory: no per-entry records (read on demand).
        let state = store.load_state_without_records(&self.genesis).context("loading the state")?;
        if let Some(before) = before_crash {
            if before != state {
                anyhow::bail!("node {} restarted with another state than it acknowledged before the crash", node.id);
            }
        }
        let (tx, rx) = mpsc::channel(1 << 16);
        let (base, skew) = (self.clock.clone(), node.skew_ms);
        let clock: Clock = Arc::new(move || base.load(Ordering::SeqCst) + skew);
        let core =
            Sequencer::new(node.id.clone(), self.genesis.clone(), node.key.clone(), store, state, Some(tx), clock);
        node.core = Some(core);
        node.outbox = Some(rx);
        Ok(())
    }

    /// Crash node `i`: the core and the store handle are dropped; gossip not sent yet and
    /// messages in flight to or from it are lost.
    fn crash(&mut self, i: usize, until: u64) -> Option<State> {
        let node = &mut self.nodes[i];
        let state = node.core.take().map(|c| c.state().clone());
        node.outbox = None;
        node.down_until = until;
        self.net.crash(i);
        self.report.crashes += 1;
        state
    }

    /// Run the seed: bootstrap, the faulty phase, the quiet phase; every invariant after
    /// every step.
    pub fn run(mut self) -> Result<Report> {
        self.bootstrap()?;
        let mut crashed: Vec<(usize, Option<State>)> = Vec::new();
        for _ in 0..self.cfg.steps {
            self.step += 1;
            let dt = self.rng.range(1, 20);
            self.clock.fetch_add(dt, Ordering::SeqCst);
            self.faults_step(&mut crashed)?;
            let n_ops = self.rng.below(4);
            let mut ops = Vec::new();
            for _ in 0..n_ops {
                let now = self.now();
                let nodes = &self.nodes;
                let state_of = |i: usize| nodes.get(i).and_then(|n| n.core.as_ref()).map(|c| c.state());
                if let Some(op) = self.work.next(&mut self.rng, now, state_of) {
                    ops.push(op);
                }
            }
            ops.extend(self.key_change());
            self.submit(ops)?;
            if let Some((e, at)) = self.equivocator {
                if at == self.step && self.nodes[e].core.is_some() {
                    self.equivocate(e)?;
                }
            }
            self.tick()?;
            tills::step(&mut self)?;
            self.fork_seen = self.fork_seen || check::fork_stored(&self)?;
            check::step(&self).with_context(|| format!("after step {}", self.step))?;
            tills::check(&self, false).with_context(|| format!("tills after step {}", self.step))?;
        }
        // Quiet phase: heal, restart everyone, no faults, no workload; wait for convergence.
        self.faults = Faults::quiet();
        self.net.heal(0, true);
        for (i, before) in std::mem::take(&mut crashed) {
            self.start(i, before).with_context(|| format!("restarting node {i}"))?;
        }
        for q in 0..self.cfg.quiet_steps {
            self.step += 1;
            self.clock.fetch_add(10, Ordering::SeqCst);
            self.tick()?;
            tills::step(&mut self)?;
            self.fork_seen = self.fork_seen || check::fork_stored(&self)?;
            check::step(&self).with_context(|| format!("after quiet step {q}"))?;
            tills::check(&self, false).with_context(|| format!("tills after quiet step {q}"))?;
            if check::converged(&self)? {
                self.report.quiet_steps_to_converge = q + 1;
                check::finished(&self)?;
                tills::check(&self, true).context("tills at the end")?;
                return Ok(self.finish());
            }
        }
        check::converged(&self)?;
        anyhow::bail!("no convergence after {} quiet steps: {}", self.cfg.quiet_steps, check::divergence(&self))
    }

    /// Now and then (3 in 1,000 steps) an honest community rotates its key; 1 in 1,000 it revokes
    /// the key in force with its offline recovery key. The node signs with the new key from the
    /// next seq on; it restarts with the new key once the change is acknowledged (synced).
    fn key_change(&mut self) -> Option<workload::Op> {
        let roll = self.key_rng.below(1000);
        if roll >= 4 {
            return None;
        }
        let node = self.key_rng.index(self.nodes.len());
        if self.equivocator.map(|e| e.0) == Some(node) || self.nodes[node].core.is_none() {
            return None;
        }
        let id = self.nodes[node].id.clone();
        let new = Box::new(Keypair::from_label(&format!("sim/{}/{id}/key-at-step-{}", self.seed, self.step)));
        let draft = if roll == 3 {
            Draft::RevokeKey { recovery: Box::new(testkit::key(&format!("{id}/recovery"))), new }
        } else {
            Draft::RotateKey { new }
        };
        Some(workload::Op { node, draft, expect: workload::Expect::Anything, effect: workload::Effect::None })
    }

    /// Publish rules, register merchants, enrol residents, set credit limits; check.
    pub fn bootstrap(&mut self) -> Result<()> {
        let ops = self.work.bootstrap(&mut self.rng);
        self.submit(ops)?;
        check::step(self).context("after bootstrap")
    }

    fn finish(mut self) -> Report {
        let s = &self.net.stats;
        self.report.messages = s.sent;
        self.report.lost = s.lost;
        self.report.duplicated = s.duplicated;
        self.report.cut = s.cut;
        self.report.equivocation_proven = self.fork_seen;
        let equivocator = self.equivocator.map(|(e, _)| e);
        self.report.checkpoint_equivocation_proven = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != equivocator)
            .filter_map(|(_, n)| n.core.as_ref())
            .filter_map(|c| c.store().alerts().ok())
            .flatten()
            .any(|p| matches!(p, linli_protocol::checkpoint::EquivocationProof::Checkpoints(..)));
        self.report.evidence_taken = self
            .nodes
            .iter()
            .filter_map(|n| n.core.as_ref())
            .filter_map(|c| c.store().evidence().ok())
            .map(|e| e.entries.len() as u64)
            .sum();
        self.report.accepted = self.work.accepted;
        if let Some(t) = &self.tills {
            self.report.sales_verified = t.sold.len() as u64;
            self.report.sales_refused = t.refused;
        }
        self.report.refused = self.work.refused;
        self.report.entries = self
            .nodes
            .iter()
            .filter_map(|n| n.core.as_ref())
            .map(|c| c.state().ledgers.get(c.community()).map(|l| l.next_seq).unwrap_or(0))
            .sum();
        self.report
    }

    /// Partitions that start and heal, crashes and restarts.
    fn faults_step(&mut self, crashed: &mut Vec<(usize, Option<State>)>) -> Result<()> {
        let now = self.now();
        self.net.heal(now, false);
        if !self.net.partitioned() && self.rng.chance(self.faults.partition) {
            let n = self.nodes.len();
            let side = (0..n).filter(|_| self.rng.chance(500)).collect();
            let heal_at = now + self.rng.range(50, 2000);
            self.net.partition(side, heal_at);
            self.report.partitions += 1;
        }
        let mut still = Vec::new();
        for (i, before) in std::mem::take(crashed) {
            if self.nodes[i].down_until <= now {
                self.start(i, before).with_context(|| format!("restarting node {i}"))?;
            } else {
                still.push((i, before));
            }
        }
        *crashed = still;
        if self.rng.chance(self.faults.crash) {
            let i = self.rng.index(self.nodes.len());
            if self.nodes[i].core.is_some() {
                let until = now + self.rng.range(20, 1500);
                let before = self.crash(i, until);
                crashed.push((i, before));
            }
        }
        Ok(())
    }
}
