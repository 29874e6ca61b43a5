//! The simulated network: every message between nodes goes through one queue ordered by
//! delivery time, and one seeded RNG decides its fate — lost, duplicated, delayed (so reordered)
//! or cut off by a partition. Payloads are the bytes the real network carries (gossip messages,
//! sync requests and responses in the canonical encoding), so every delivery also goes through
//! the real decoders.

use super::rng::Rng;
use linli_node::network::messages::SyncRequest;
use std::collections::{BTreeMap, BTreeSet};

/// Fault rates, in per-mille per message (or per step for partitions and crashes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    pub loss: u64,
    pub duplicate: u64,
    /// Largest delivery delay in ms (each message takes 1..=max_delay).
    pub max_delay_ms: u64,
    /// Chance per step that a partition starts (when none is active).
    pub partition: u64,
    /// Chance per step that a running node crashes.
    pub crash: u64,
}

impl Faults {
    /// A quiet network: every message arrives, in order of a small delay; no new faults.
    pub fn quiet() -> Self {
        Faults { loss: 0, duplicate: 0, max_delay_ms: 5, partition: 0, crash: 0 }
    }
}

#[derive(Debug, Clone)]
pub enum Payload {
    Gossip(Vec<u8>),
    Request(Vec<u8>),
    /// The request is kept beside its answer, as the real network's pending-request map does.
    Response {
        request: SyncRequest,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
pub struct Message {
    pub from: usize,
    pub to: usize,
    pub payload: Payload,
}

#[derive(Default)]
pub struct Stats {
    pub sent: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub cut: u64,
}

pub struct Net {
    queue: BTreeMap<(u64, u64), Message>,
    order: u64,
    /// Nodes on one side of the active partition, and when it heals.
    partition: Option<(BTreeSet<usize>, u64)>,
    pub stats: Stats,
}

impl Net {
    pub fn new() -> Self {
        Net { queue: BTreeMap::new(), order: 0, partition: None, stats: Stats::default() }
    }

    fn separated(&self, a: usize, b: usize) -> bool {
        self.partition.as_ref().is_some_and(|(side, _)| side.contains(&a) != side.contains(&b))
    }

    pub fn send(&mut self, rng: &mut Rng, faults: &Faults, now: u64, msg: Message) {
        self.stats.sent += 1;
        if self.separated(msg.from, msg.to) {
            self.stats.cut += 1;
            return;
        }
        if rng.chance(faults.loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if rng.chance(faults.duplicate) { 2 } else { 1 };
        self.stats.duplicated += copies - 1;
        for _ in 0..copies {
            let at = now + 1 + rng.below(faults.max_delay_ms.max(1));
            self.order += 1;
            self.queue.insert((at, self.order), msg.clone());
        }
    }

    /// Send without loss or duplication (a partition still cuts it): the equivocator makes
    /// sure each half gets its version.
    pub fn send_reliable(&mut self, now: u64, msg: Message) {
        self.stats.sent += 1;
        self.order += 1;
        self.queue.insert((now + 1, self.order), msg);
    }

    /// Messages due by `now`, in delivery order (a partition also cuts messages in flight).
    pub fn due(&mut self, now: u64) -> Vec<Message> {
        let later = self.queue.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut self.queue, later);
        let mut out = Vec::new();
        for (_, m) in due {
            if self.separated(m.from, m.to) {
                self.stats.cut += 1;
            } else {
                out.push(m);
            }
        }
        out
    }

    /// Drop everything in flight to or from `node` (its sockets died with it).
    pub fn crash(&mut self, node: usize) {
        self.queue.retain(|_, m| m.from != node && m.to != node);
    }

    pub fn partition(&mut self, side: BTreeSet<usize>, heal_at: u64) {
        self.partition = Some((side, heal_at));
    }

    pub fn partitioned(&self) -> bool {
        self.partition.is_some()
    }

    /// Heal the partition if its time has come (or `force`).
    pub fn heal(&mut self, now: u64, force: bool) {
        if self.partition.as_ref().is_some_and(|(_, at)| force || *at <= now) {
            self.partition = None;
        }
    }

    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

impl Default for Net {
    fn default() -> Self {
        Self::new()
    }
}
