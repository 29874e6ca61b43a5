//! How simulated nodes talk: requests go to the home node's core as one group per node and
//! step; gossip the cores emit is broadcast over the simulated network; each node asks every
//! peer for every ledger's head every 100 ms and fetches what it lacks (a head of the same size
//! but another hash fetches that entry), answers from its store, and signs a checkpoint every
//! 300 ms when its ledger grew — the same rules as `linli_node::network`. Delivered messages for
//! one node are handled as one group commit.

use super::net::{Message, Payload};
use super::workload::Op;
use super::Sim;
use anyhow::{bail, Context, Result};
use linli_node::network::messages::{GossipMessage, SyncRequest, SyncResponse, MAX_RANGE_ENTRIES, MAX_RESPONSE_BYTES};
use linli_node::network::serve::cited_entry;
use linli_node::sequencer::{Draft, Input, Output};
use linli_node::store::Store;
use linli_protocol::body::{Body, Enroll};
use linli_protocol::checkpoint::{Checkpoint, CosignedCheckpoint, SignedCheckpoint};
use linli_protocol::merkle::LeafSource;
use linli_protocol::{encoding, CommunityId, Hash, Keypair, SignedEntry};
use std::collections::BTreeMap;

/// Why an input was given to a core (what to do with its output).
enum Why {
    Gossip { from: usize },
    Range { from: usize, request: SyncRequest, n: u64 },
    Other,
}

fn answer(store: &Store, request: &SyncRequest) -> SyncResponse {
    let result = match request.clone() {
        SyncRequest::Head(community) => {
            store.head(&community).map(|(size, head)| SyncResponse::Head { community, size, head })
        }
        SyncRequest::Range { community, from, limit } => {
            let limit = limit.clamp(1, MAX_RANGE_ENTRIES) as usize;
            store.entries(&community, from, limit, MAX_RESPONSE_BYTES / 2).map(SyncResponse::Entries)
        }
        SyncRequest::Alerts => store.alerts().map(SyncResponse::Alerts),
        SyncRequest::Evidence(reference) => cited_entry(store, &reference),
        _ => Ok(SyncResponse::Error("not simulated".into())),
    };
    result.unwrap_or_else(|e| SyncResponse::Error(e.to_string()))
}

/// What to fetch after a peer's head: the network's rule.
fn after_head(store: &Store, community: CommunityId, size: u64, head: Hash) -> Option<SyncRequest> {
    let ours = store.head(&community).map(|(n, _)| n).unwrap_or(0);
    let ours_at = if size > 0 && size <= ours { store.leaves(&community).leaf(size - 1) } else { None };
    if size > ours {
        Some(SyncRequest::Range { community, from: ours, limit: MAX_RANGE_ENTRIES })
    } else if size > 0 && ours_at.is_some_and(|h| h != head) {
        Some(SyncRequest::Range { community, from: size - 1, limit: 1 })
    } else {
        None
    }
}

impl Sim {
    fn send(&mut self, from: usize, to: usize, payload: Payload) {
        let now = self.now();
        self.net.send(&mut self.rng, &self.faults, now, Message { from, to, payload });
    }

    fn request(&mut self, from: usize, to: usize, request: &SyncRequest) {
        self.send(from, to, Payload::Request(encoding::encode(request)));
    }

    /// Submit `ops` to their home nodes (one group per node) and check every answer.
    pub(super) fn submit(&mut self, ops: Vec<Op>) -> Result<()> {
        let mut by_node: BTreeMap<usize, Vec<Op>> = BTreeMap::new();
        for op in ops {
            by_node.entry(op.node).or_default().push(op);
        }
        for (i, ops) in by_node {
            let Some(core) = self.nodes[i].core.as_mut() else {
                self.work.refused += ops.len() as u64; // the node is down: unavailable
                continue;
            };
            let outputs = core.step(ops.iter().map(|o| Input::Submit(o.draft.clone())).collect());
            let honest = self.equivocator.map(|e| e.0) != Some(i);
            for (op, out) in ops.iter().zip(outputs) {
                let Output::Submit(result) = out else { bail!("a submission answered with another output") };
                self.work.answered(op, &result, honest).with_context(|| format!("node {i}: {:?}", op.draft))?;
                // An acknowledged key change is durable: the node restarts with the new key.
                match (&op.draft, &result) {
                    (Draft::RotateKey { new }, Ok(_)) => {
                        self.nodes[i].key = (**new).clone();
                        self.report.rotations += 1;
                    }
                    (Draft::RevokeKey { new, .. }, Ok(_)) => {
                        self.nodes[i].key = (**new).clone();
                        self.report.revocations += 1;
                    }
                    _ => {}
                }
            }
        }
        self.route_outboxes();
        Ok(())
    }

    /// Broadcast the gossip every core emitted.
    pub(super) fn route_outboxes(&mut self) {
        for i in 0..self.nodes.len() {
            let mut out = Vec::new();
            if let Some(rx) = self.nodes[i].outbox.as_mut() {
                while let Ok(m) = rx.try_recv() {
                    out.push(m.to_bytes());
                }
            }
            for bytes in out {
                for j in (0..self.nodes.len()).filter(|j| *j != i) {
                    self.send(i, j, Payload::Gossip(bytes.clone()));
                }
            }
        }
    }

    /// Periodic work (sync, checkpoints), then every message due.
    pub(super) fn tick(&mut self) -> Result<()> {
        let now = self.now();
        let ids: Vec<CommunityId> = self.nodes.iter().map(|n| n.id.clone()).collect();
        for i in 0..self.nodes.len() {
            if self.nodes[i].core.is_none() {
                continue;
            }
            if now >= self.nodes[i].next_sync {
                self.nodes[i].next_sync = now + 100;
                self.nodes[i].sync_rounds += 1;
                let alerts = self.nodes[i].sync_rounds.is_multiple_of(10);
                for j in (0..self.nodes.len()).filter(|j| *j != i) {
                    for c in &ids {
                        self.request(i, j, &SyncRequest::Head(c.clone()));
                    }
                    if alerts {
                        self.request(i, j, &SyncRequest::Alerts);
                    }
                }
            }
            if now >= self.nodes[i].next_checkpoint {
                self.nodes[i].next_checkpoint = now + 300;
                let Some(core) = self.nodes[i].core.as_mut() else { continue };
                let id = core.community().clone();
                let size = core.store().head(&id).map(|(n, _)| n)?;
                let last = core.store().latest_checkpoint(&id)?.map(|cp| cp.signed.checkpoint.size);
                if size > 0 && last != Some(size) {
                    if let Some(Output::Checkpoint(Err(e))) = core.step(vec![Input::Checkpoint]).pop() {
                        bail!("node {i}: checkpoint failed: {e}");
                    }
                }
            }
        }
        self.route_outboxes();
        let mut by_node: BTreeMap<usize, Vec<Message>> = BTreeMap::new();
        for m in self.net.due(now) {
            by_node.entry(m.to).or_default().push(m);
        }
        for (to, msgs) in by_node {
            if self.nodes[to].core.is_some() {
                self.deliver(to, msgs).with_context(|| format!("delivering to node {to}"))?;
            }
        }
        self.route_outboxes();
        Ok(())
    }

    /// Handle the messages that reached node `to` in this step (one group for its core).
    fn deliver(&mut self, to: usize, msgs: Vec<Message>) -> Result<()> {
        let Some(core) = self.nodes[to].core.as_mut() else { return Ok(()) };
        let (mut inputs, mut why, mut requests) = (Vec::new(), Vec::new(), Vec::new());
        let mut replies = Vec::new();
        for m in msgs {
            match m.payload {
                Payload::Gossip(bytes) => {
                    let msg = GossipMessage::from_bytes(&bytes).context("gossip does not decode")?;
                    let (input, w) = match msg {
                        GossipMessage::Entry(e) => (Input::Ingest(vec![*e]), Why::Gossip { from: m.from }),
                        GossipMessage::Checkpoint(cp) => (Input::PeerCheckpoint(cp), Why::Other),
                        GossipMessage::Alert(p) => (Input::Alert(p), Why::Other),
                    };
                    inputs.push(input);
                    why.push(w);
                }
                Payload::Request(bytes) => {
                    let request = SyncRequest::from_bytes(&bytes).context("sync request does not decode")?;
                    let bytes = encoding::encode(&answer(core.store(), &request));
                    if bytes.len() > MAX_RESPONSE_BYTES {
                        bail!("a sync response of {} bytes exceeds the limit", bytes.len());
                    }
                    replies.push((m.from, Payload::Response { request, bytes }));
                }
                Payload::Response { request, bytes } => {
                    match SyncResponse::from_bytes(&bytes).context("sync response does not decode")? {
                        SyncResponse::Head { community, size, head } => {
                            if let Some(r) = after_head(core.store(), community, size, head) {
                                requests.push((m.from, r));
                            }
                        }
                        SyncResponse::Entries(list) => {
                            let n = list.len() as u64;
                            inputs.push(Input::Ingest(list));
                            why.push(Why::Range { from: m.from, request, n });
                        }
                        SyncResponse::Alerts(proofs) => {
                            for p in proofs {
                                inputs.push(Input::Alert(p));
                                why.push(Why::Other);
                            }
                        }
                        SyncResponse::NotYet(_) => {}
                        other => bail!("unexpected sync response {other:?}"),
                    }
                }
            }
        }
        if !inputs.is_empty() {
            for (w, out) in why.into_iter().zip(core.step(inputs)) {
                // A held-back entry cites an equivocator's entry past its conflict: ask the
                // peer that sent it for that entry by hash.
                if let (Why::Gossip { from } | Why::Range { from, .. }, Output::Ingest(o)) = (&w, &out) {
                    if let Some(reference) = o.evidence_wanted.clone() {
                        requests.push((*from, SyncRequest::Evidence(reference)));
                    }
                }
                match (w, out) {
                    (Why::Gossip { from }, Output::Ingest(o)) => {
                        if let Some((community, seq)) = o.gap {
                            requests
                                .push((from, SyncRequest::Range { community, from: seq, limit: MAX_RANGE_ENTRIES }));
                        }
                    }
                    (
                        Why::Range { from, request: SyncRequest::Range { community, from: start, limit }, n },
                        Output::Ingest(o),
                    ) if o.rejected.is_none() && o.applied > 0 && n >= limit.min(MAX_RANGE_ENTRIES) => {
                        requests.push((from, SyncRequest::Range { community, from: start + n, limit }));
                    }
                    _ => {}
                }
            }
        }
        for (peer, payload) in replies {
            self.send(to, peer, payload);
        }
        for (peer, r) in requests {
            self.request(to, peer, &r);
        }
        Ok(())
    }

    /// Community `e` signs two entries at one seq: one it keeps (and shows to half the other
    /// nodes), another shown to the other half — each as the answer to a sync request, so the
    /// peer takes it from wherever its copy of the ledger stands.
    pub(super) fn equivocate(&mut self, e: usize) -> Result<()> {
        self.route_outboxes();
        let seed = self.seed;
        let enroll = |label: &str| {
            let resident = Keypair::from_label(&format!("sim/{seed}/fork/{label}")).public();
            Body::Enroll(Enroll { resident, profile_hash: Hash([1; 32]) })
        };
        let Some(core) = self.nodes[e].core.as_mut() else { return Ok(()) };
        let kept = match core.step(vec![Input::Submit(Draft::Body(enroll("a")))]).pop() {
            Some(Output::Submit(Ok(r))) => r.entry,
            other => bail!("the equivocator could not sequence its entry: {other:?}"),
        };
        if let Some(rx) = self.nodes[e].outbox.as_mut() {
            while rx.try_recv().is_ok() {}
        }
        let mut other = kept.entry.clone();
        other.body = enroll("b");
        let forged = SignedEntry::sign(other, &self.nodes[e].key, &self.genesis_hash);
        let peers: Vec<usize> = (0..self.nodes.len()).filter(|j| *j != e).collect();
        let now = self.now();
        let c = kept.entry.community.clone();
        for (k, j) in peers.into_iter().enumerate() {
            let Some(peer) = self.nodes[j].core.as_ref() else { continue };
            // Each peer gets its branch from where it stands, as the answer to a sync request.
            let from = peer.store().head(&c)?.0.min(kept.entry.seq);
            let Some(e_core) = self.nodes[e].core.as_ref() else { continue };
            let mut run = e_core.store().entries(&c, from, MAX_RANGE_ENTRIES as usize, usize::MAX)?;
            run.truncate((kept.entry.seq - from) as usize);
            run.push(if k % 2 == 0 { kept.clone() } else { forged.clone() });
            let request = SyncRequest::Range { community: c.clone(), from, limit: run.len() as u64 + 1 };
            let bytes = encoding::encode(&SyncResponse::Entries(run));
            self.net.send_reliable(now, Message { from: e, to: j, payload: Payload::Response { request, bytes } });
        }
        // It also signs a checkpoint of each branch at the fork's size and gossips each to the
        // half that took that branch: two checkpoints of one size with different roots, which
        // honest nodes must turn into a proof when their gossip meets.
        let Some(e_core) = self.nodes[e].core.as_ref() else { return Ok(()) };
        let size = kept.entry.seq + 1;
        let mut leaves: Vec<Hash> =
            e_core.store().leaf_range(&c, 0, kept.entry.seq as usize)?.into_iter().flatten().collect();
        let kept_root = e_core.store().root(&c, size)?;
        leaves.push(forged.hash(&self.genesis_hash));
        let forged_root = linli_protocol::merkle::root(&leaves);
        let checkpoint = |root: Hash| {
            let cp = Checkpoint { community: c.clone(), size, root, time_ms: now };
            let signed = SignedCheckpoint::sign(cp, &self.nodes[e].key, &self.genesis_hash);
            GossipMessage::Checkpoint(CosignedCheckpoint { signed, cosignatures: vec![] }).to_bytes()
        };
        let (kept_cp, forged_cp) = (checkpoint(kept_root), checkpoint(forged_root));
        for (k, j) in (0..self.nodes.len()).filter(|j| *j != e).enumerate() {
            let bytes = if k % 2 == 0 { kept_cp.clone() } else { forged_cp.clone() };
            self.send(e, j, Payload::Gossip(bytes));
        }
        self.fork = Some(forged);
        Ok(())
    }
}
