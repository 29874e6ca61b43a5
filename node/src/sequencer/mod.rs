//! The append path: the one place a community's own ledger grows.
//!
//! A dedicated thread owns the in-memory [`State`] and all writes to the store. Requests arrive
//! over a bounded channel through a cloneable [`SequencerHandle`]. The thread takes every request
//! waiting (up to [`MAX_GROUP`]), turns each into the next entry (seq, prev_hash, time, signed by
//! the community key), checks it with the protocol state machine, and writes the whole group —
//! entries and state changes — in one synced `WriteBatch` (group commit: many concurrent
//! requests share one sync). Only then are the callers answered. A resubmitted transaction is
//! answered with the original entry (idempotent), never a second effect.
//!
//! The state in memory holds no per-entry records (nonces, request ids, payments, draws)
//! between groups: before entries are checked, the records they read are loaded from the store
//! ([`linli_protocol::state::records_read`]), and after the group's write they are dropped, so
//! the node's memory does not grow with its ledgers.

mod drafts;
mod drive;
mod early;
mod evidence;
mod peers;
mod preverify;
pub use drive::{Clock, Input, Output};
pub use peers::CheckpointVerdict;

use crate::metrics::{Metrics, Origin};
use crate::network::messages::GossipMessage;
use crate::store::{Batch, Store, StoreError};
use linli_protocol::body::{Award, Body, Payment, SettlementRequest, Signed};
use linli_protocol::checkpoint::EquivocationProof;
use linli_protocol::checkpoint::{Checkpoint, CosignedCheckpoint, SignedCheckpoint};
use linli_protocol::verify::verify_entry_cached;
use linli_protocol::{
    ApplyContext, CommunityId, Entry, EntryRef, Genesis, Hash, Keypair, Rejection, SignedEntry, State, StateKey,
};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// Most requests committed in one group.
pub const MAX_GROUP: usize = 1024;
/// Depth of the request queue (back-pressure beyond it).
pub const QUEUE_DEPTH: usize = 4096;

/// What a client asks the community to sequence.
#[derive(Debug, Clone)]
pub enum Draft {
    /// A complete body (enrolment, rules, limits, redemptions, time bank, settlement, ...).
    Body(Body),
    /// An award whose points the node computes from the rule table in force; `points`, if
    /// given, must match.
    Award { award: Award, points: Option<u64> },
    /// A resident's payment; the node cites the newest exposure limit it knows.
    Pay(Signed<Payment>),
    /// A merchant's settlement request; the node fills in the cumulative settled total.
    Settle(Signed<SettlementRequest>),
    /// A clearing with `counterparty`: the node derives every figure from both ledgers.
    Clearing { counterparty: CommunityId },
    /// Rotate the community key: the entry is signed by the key in force, `new` signs
    /// (community, seq); from the next seq on the node signs with `new`.
    RotateKey { new: Box<Keypair> },
    /// Revoke the key in force (compromised): the entry is signed by the offline `recovery`
    /// key; from the next seq on the node signs with `new`.
    RevokeKey { recovery: Box<Keypair>, new: Box<Keypair> },
}

/// The answer to a sequenced request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub community: CommunityId,
    pub seq: u64,
    pub hash: Hash,
    pub kind: String,
    pub time_ms: u64,
    /// True when this request had already been sequenced: the original entry is returned.
    pub duplicate: bool,
    pub entry: SignedEntry,
}

/// Why a request was not sequenced.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Rejected(Box<linli_protocol::RejectedEntry>),
    #[error("storage failure, nothing was written: {0}")]
    Storage(String),
    #[error("the node is shutting down")]
    Closed,
}

/// What became of entries received from peers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Entries validated and durably stored.
    pub applied: usize,
    /// Entries this node already held.
    pub known: usize,
    /// A community whose entries start after this node's head: (community, the seq we need).
    pub gap: Option<(CommunityId, u64)>,
    /// Valid so far, but citing an entry of another ledger not held yet.
    pub waiting: bool,
    /// The ledger holding the cited entry this node waits for.
    pub waiting_on: Option<CommunityId>,
    /// The first entry refused, and why.
    pub rejected: Option<String>,
    /// Entries ahead of their ledger's head, held back until it reaches them.
    pub held: usize,
    /// An entry held back cites this quarantined entry of a proven equivocator (past its
    /// conflict, perhaps on the branch this node did not take): ask the sender for it by hash.
    pub evidence_wanted: Option<EntryRef>,
    /// Equivocators' entries taken as evidence for such citations.
    pub evidence: usize,
}

enum Command {
    PeerCheckpoint { checkpoint: Box<CosignedCheckpoint>, reply: oneshot::Sender<CheckpointVerdict> },
    Alert { proof: Box<EquivocationProof>, reply: oneshot::Sender<bool> },
    Ingest { entries: Vec<SignedEntry>, reply: oneshot::Sender<IngestOutcome> },
    Submit { draft: Box<Draft>, reply: oneshot::Sender<Result<Receipt, SubmitError>> },
    Checkpoint { reply: oneshot::Sender<Result<CosignedCheckpoint, SubmitError>> },
    Snapshot { reply: oneshot::Sender<Box<State>> },
}

/// Cloneable handle to the sequencer thread.
#[derive(Clone)]
pub struct SequencerHandle {
    tx: mpsc::Sender<Command>,
}

impl SequencerHandle {
    /// Sequence a request; resolves once it is durably written (or refused).
    pub async fn submit(&self, draft: Draft) -> Result<Receipt, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Submit { draft: Box::new(draft), reply }).await.map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)?
    }

    /// Validate and store entries of other communities' ledgers received from peers.
    pub async fn ingest(&self, entries: Vec<SignedEntry>) -> Result<IngestOutcome, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Ingest { entries, reply }).await.map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)
    }

    /// Queue entries of other ledgers for validation without waiting for room: calls made in
    /// order reach the sequencer in order (a spawned task per call would not). Gives the entries
    /// back if the queue is full or the node is shutting down.
    pub fn ingest_in_order(
        &self,
        entries: Vec<SignedEntry>,
    ) -> Result<oneshot::Receiver<IngestOutcome>, Vec<SignedEntry>> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Command::Ingest { entries, reply }) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(Command::Ingest { entries, .. }))
            | Err(mpsc::error::TrySendError::Closed(Command::Ingest { entries, .. })) => Err(entries),
            Err(_) => Err(Vec::new()),
        }
    }

    /// A checkpoint (with cosignatures) from a peer.
    pub async fn peer_checkpoint(&self, checkpoint: CosignedCheckpoint) -> Result<CheckpointVerdict, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::PeerCheckpoint { checkpoint: Box::new(checkpoint), reply })
            .await
            .map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)
    }

    /// An equivocation proof from a peer: true if it verified (and was recorded).
    pub async fn alert(&self, proof: EquivocationProof) -> Result<bool, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Alert { proof: Box::new(proof), reply }).await.map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)
    }

    /// Sign (and store) a checkpoint of the community's ledger as it is now.
    pub async fn checkpoint(&self) -> Result<CosignedCheckpoint, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Checkpoint { reply }).await.map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)?
    }

    /// A copy of the current state (for status pages and tests).
    pub async fn snapshot(&self) -> Result<Box<State>, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Snapshot { reply }).await.map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)
    }
}

/// Milliseconds since the Unix epoch (entries' clock).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The node's core: the community's state and store, the key that signs its entries, where its
/// gossip goes and where it reads the time. The thread of [`spawn`] drives it in a node; a
/// simulator drives many in one process (see `drive.rs`).
pub struct Sequencer {
    clock: Clock,
    /// The key in force before a rotation in the current group (restored if the write fails).
    previous_key: Option<Keypair>,
    outbox: Option<mpsc::Sender<GossipMessage>>,
    metrics: Metrics,
    community: CommunityId,
    genesis: Genesis,
    genesis_hash: Hash,
    key: Keypair,
    store: Store,
    state: State,
    /// Peer entries that arrived before their predecessor.
    early: early::EarlyEntries,
    /// Community and resident keys already screened (kept across runs: a gossiped entry is a
    /// run of one).
    screened: linli_protocol::verify::ScreenedKeys,
    /// Peer entries of the current group verified together ahead of their commands.
    preverified: preverify::Preverified,
    /// Quarantined entries of equivocators that held-back entries cite.
    wanted: evidence::Wanted,
}

/// Start the sequencer thread for `community` over `store` (whose state has been loaded and
/// checked). The thread ends when every handle is dropped.
pub fn spawn(
    community: CommunityId,
    genesis: Genesis,
    key: Keypair,
    store: Store,
    state: State,
    outbox: Option<mpsc::Sender<GossipMessage>>,
    metrics: Metrics,
) -> std::io::Result<(SequencerHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let mut seq = Sequencer::new(community, genesis, key, store, state, outbox, drive::system_clock());
    seq.metrics = metrics;
    let join = std::thread::Builder::new().name("linli-sequencer".into()).spawn(move || seq.run(rx))?;
    Ok((SequencerHandle { tx }, join))
}

type Reply = oneshot::Sender<Result<Receipt, SubmitError>>;

impl Sequencer {
    fn run(&mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(c) => group.push(c),
                    Err(_) => break,
                }
            }
            self.handle_group(group);
        }
    }

    fn handle_group(&mut self, group: Vec<Command>) {
        let mut batch = Batch::default();
        let mut waiting: Vec<(Reply, Result<Receipt, SubmitError>)> = Vec::new();
        let mut checkpoint_replies = Vec::new();
        let mut ingest_replies = Vec::new();
        let mut alert_replies = Vec::new();
        let mut checkpoint_verdicts = Vec::new();
        self.preverify(&group);
        for cmd in group {
            match cmd {
                Command::PeerCheckpoint { checkpoint, reply } => {
                    let verdict = self.take_checkpoint(*checkpoint, &mut batch);
                    checkpoint_verdicts.push((reply, verdict));
                }
                Command::Alert { proof, reply } => {
                    let ok = self.take_alert(*proof, &mut batch);
                    alert_replies.push((reply, ok));
                }
                Command::Ingest { entries, reply } => {
                    let outcome = self.ingest(entries, &mut batch);
                    ingest_replies.push((reply, outcome));
                }
                Command::Submit { draft, reply } => {
                    let result = self.sequence(*draft, &mut batch);
                    waiting.push((reply, result));
                }
                Command::Checkpoint { reply } => checkpoint_replies.push(reply),
                Command::Snapshot { reply } => {
                    let _ = reply.send(Box::new(self.state.clone()));
                }
            }
        }
        self.preverified.clear();
        for (_, result) in &waiting {
            if let Err(SubmitError::Rejected(r)) = result {
                self.metrics.rejected(r.rejection.rule(), Origin::Local);
            }
        }
        if !batch.entries.is_empty()
            || !batch.alerts.is_empty()
            || !batch.changes.is_empty()
            || !batch.checkpoints.is_empty()
        {
            if let Err(e) = self.store.commit(&batch) {
                self.fail_group(waiting, &e);
                for r in checkpoint_replies {
                    let _ = r.send(Err(SubmitError::Storage(e.to_string())));
                }
                for (r, mut outcome) in ingest_replies {
                    outcome.applied = 0;
                    outcome.rejected = Some(format!("storage failure: {e}"));
                    let _ = r.send(outcome);
                }
                return;
            }
            self.previous_key = None;
            for (e, _) in &batch.entries {
                match &e.entry.community {
                    c if *c == self.community => self.metrics.appended(1),
                    c => self.metrics.received(c.as_str(), 1),
                }
            }
            if let Some(outbox) = &self.outbox {
                for (e, _) in batch.entries.iter().filter(|(e, _)| e.entry.community == self.community) {
                    // A full outbox only delays gossip: peers catch up by sync.
                    let _ = outbox.try_send(GossipMessage::Entry(Box::new(e.clone())));
                }
                for proof in &batch.alerts {
                    let _ = outbox.try_send(GossipMessage::Alert(proof.clone()));
                }
            }
        }
        // The group is durable (or wrote nothing): its records are on disk, drop them.
        self.state.forget_records();
        for (reply, outcome) in ingest_replies {
            let _ = reply.send(outcome);
        }
        for (reply, ok) in alert_replies {
            let _ = reply.send(ok);
        }
        for (reply, verdict) in checkpoint_verdicts {
            let _ = reply.send(verdict);
        }
        let ingested: std::collections::BTreeSet<CommunityId> =
            batch.entries.iter().map(|(e, _)| e.entry.community.clone()).filter(|c| *c != self.community).collect();
        for c in ingested {
            self.cosign_pending(&c);
        }
        for (reply, result) in waiting {
            let _ = reply.send(result);
        }
        for reply in checkpoint_replies {
            let _ = reply.send(self.sign_checkpoint());
        }
    }

    /// A failed write: nothing of the group is durable. Answer with the error and reload the
    /// state from the store, which still holds the last durable group.
    fn fail_group(&mut self, waiting: Vec<(Reply, Result<Receipt, SubmitError>)>, e: &StoreError) {
        if let Some(key) = self.previous_key.take() {
            self.key = key; // the rotation was not written
        }
        tracing::error!(error = %e, "store write failed; reloading state from disk");
        for (reply, result) in waiting {
            let answer = match result {
                Ok(r) if r.duplicate => Ok(r),
                Ok(_) => Err(SubmitError::Storage(e.to_string())),
                Err(err) => Err(err),
            };
            let _ = reply.send(answer);
        }
        match self.store.load_state_without_records(&self.genesis) {
            Ok(s) => self.state = s,
            Err(e) => tracing::error!(error = %e, "reloading state failed"),
        }
    }

    fn reject(&self, seq: u64, kind: &'static str, rejection: Rejection) -> SubmitError {
        SubmitError::Rejected(Box::new(linli_protocol::RejectedEntry {
            community: self.community.clone(),
            seq,
            kind,
            rejection,
        }))
    }

    fn sequence(&mut self, draft: Draft, batch: &mut Batch) -> Result<Receipt, SubmitError> {
        let ledger = self.state.ledgers.get(&self.community).cloned().ok_or_else(|| {
            self.reject(0, "unknown", Rejection::UnknownCommunity { community: self.community.clone() })
        })?;
        let (draft, key_change) = match draft {
            Draft::RotateKey { new } => (Draft::Body(self.rotation(&new, ledger.next_seq, None)), Some((new, None))),
            Draft::RevokeKey { recovery, new } => {
                let body = self.rotation(&new, ledger.next_seq, Some(ledger.key));
                (Draft::Body(body), Some((new, Some(recovery))))
            }
            other => (other, None),
        };
        let body = self.complete(draft, ledger.next_seq)?;
        let entry =
            Entry { community: self.community.clone(), seq: ledger.next_seq, prev_hash: ledger.head, time_ms: 0, body };
        self.load_records(linli_protocol::state::records_read(&entry))
            .map_err(|e| SubmitError::Storage(e.to_string()))?;
        let body = entry.body;
        if let Some(original) = self.original_of(&body, batch)? {
            return Ok(original);
        }
        let time_ms = self.now().max(ledger.last_time_ms);
        let entry =
            Entry { community: self.community.clone(), seq: ledger.next_seq, prev_hash: ledger.head, time_ms, body };
        let kind = entry.body.kind();
        let signer = match &key_change {
            Some((_, Some(recovery))) => recovery.as_ref(),
            _ => &self.key,
        };
        let signed = SignedEntry::sign(entry, signer, &self.genesis_hash);
        let gh = self.genesis_hash;
        let verified = verify_entry_cached(&gh, signed, signer.public(), &mut self.screened)
            .map_err(|e| self.reject(ledger.next_seq, kind, Rejection::Signature(Box::new(e))))?;
        let changes = self
            .state
            .check(&verified, &ApplyContext { now_ms: Some(self.now()) })
            .map_err(|e| SubmitError::Rejected(Box::new(e)))?;
        self.state.commit(changes.clone());
        batch.changes.extend(changes);
        if let Some((new, _)) = key_change {
            // From the next seq on, only the new key signs.
            let old = std::mem::replace(&mut self.key, *new);
            self.previous_key.get_or_insert(old);
        }
        let hash = verified.hash();
        let signed = verified.into_signed();
        batch.entries.push((signed.clone(), hash));
        self.follow_up(&signed, hash, batch);
        Ok(Receipt {
            community: self.community.clone(),
            seq: signed.entry.seq,
            hash,
            kind: kind.to_string(),
            time_ms,
            duplicate: false,
            entry: signed,
        })
    }

    fn lookup(&self, at: &EntryRef, batch: Option<&Batch>) -> Option<SignedEntry> {
        if let Some(b) = batch {
            if let Some((e, _)) = b.entries.iter().find(|(_, h)| *h == at.hash) {
                return Some(e.clone());
            }
        }
        self.store.entry(&at.community, at.seq).ok().flatten()
    }

    /// If `body` was already sequenced, its original receipt (its records are loaded).
    fn original_of(&self, body: &Body, batch: &Batch) -> Result<Option<Receipt>, SubmitError> {
        let me = &self.community;
        let prior: Option<EntryRef> = match body {
            Body::Pay(p) => self.nonce_ref(&p.payment.payload.payer, p.payment.payload.nonce),
            Body::Redeem(s) => self.nonce_ref(&s.payload.resident, s.payload.nonce),
            Body::Settle(s) => self.nonce_ref(&s.request.payload.merchant, s.request.payload.nonce),
            Body::TimeCredit(s) => self.nonce_ref(&s.payload.served, s.payload.nonce),
            Body::TimeSpend(s) => self.nonce_ref(&s.payload.resident, s.payload.nonce),
            Body::Award(a) => self.state.request_ids.get(&(me.clone(), a.request_id)).cloned(),
            Body::Enroll(e) => self.account_origin(&e.resident),
            Body::RegisterMerchant(m) => self.account_origin(&m.merchant),
            _ => None,
        };
        let Some(at) = prior else { return Ok(None) };
        let Some(original) = self.lookup(&at, Some(batch)) else { return Ok(None) };
        let same = match (&original.entry.body, body) {
            (Body::Pay(a), Body::Pay(b)) => a.payment == b.payment,
            (a, b) => a == b,
        };
        if !same {
            return Ok(None); // the state machine will refuse it (nonce or id reused)
        }
        Ok(Some(Receipt {
            community: original.entry.community.clone(),
            seq: original.entry.seq,
            hash: at.hash,
            kind: original.entry.body.kind().to_string(),
            time_ms: original.entry.time_ms,
            duplicate: true,
            entry: original,
        }))
    }

    /// The entry that used `signer`'s `nonce` here (its record is loaded by `sequence`).
    fn nonce_ref(&self, signer: &linli_protocol::PublicKey, nonce: u64) -> Option<EntryRef> {
        self.state.nonces.get(&(self.community.clone(), *signer, nonce)).cloned()
    }

    /// Load from the store the records of `keys` that are not in memory (those that exist).
    fn load_records(&mut self, keys: Vec<StateKey>) -> Result<(), StoreError> {
        let missing: Vec<StateKey> = keys.into_iter().filter(|k| !self.state.holds_record(k)).collect();
        if !missing.is_empty() {
            let found = self.store.records(&missing)?;
            self.state.commit(found);
        }
        Ok(())
    }

    /// A record, from memory or else from the store (for a draft, before its entry exists). A
    /// read error counts as absent here: `sequence` then loads the entry's records and fails
    /// the request on the same error.
    fn record(&self, key: &StateKey) -> Option<linli_protocol::Change> {
        self.state.record(key).or_else(|| self.store.state_item(key).ok().flatten())
    }

    fn account_origin(&self, key: &linli_protocol::PublicKey) -> Option<EntryRef> {
        let a = self.state.account(&self.community, key)?;
        let e = self.store.entry(&self.community, a.enrolled_at).ok().flatten()?;
        Some(e.entry_ref(&self.genesis_hash))
    }

    fn sign_checkpoint(&mut self) -> Result<CosignedCheckpoint, SubmitError> {
        let ledger = self.state.ledgers.get(&self.community).cloned().ok_or(SubmitError::Closed)?;
        if let Ok(Some(existing)) = self.store.checkpoint(&self.community, ledger.next_seq) {
            return Ok(existing);
        }
        let root =
            self.store.root(&self.community, ledger.next_seq).map_err(|e| SubmitError::Storage(e.to_string()))?;
        let cp = Checkpoint { community: self.community.clone(), size: ledger.next_seq, root, time_ms: self.now() };
        let signed = SignedCheckpoint::sign(cp, &self.key, &self.genesis_hash);
        let cosigned = CosignedCheckpoint { signed, cosignatures: vec![] };
        let batch = Batch { checkpoints: vec![cosigned.clone()], ..Batch::default() };
        self.store.commit(&batch).map_err(|e| SubmitError::Storage(e.to_string()))?;
        self.gossip(GossipMessage::Checkpoint(cosigned.clone()));
        Ok(cosigned)
    }
}
