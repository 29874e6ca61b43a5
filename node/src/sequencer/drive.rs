//! Driving the node's core without its thread, for a deterministic simulator (as FoundationDB's
//! and TigerBeetle's): [`Sequencer::step`] takes a group of inputs and handles them exactly as
//! the thread handles the requests waiting in its queue (one group commit), and returns one
//! output per input. Time comes from an injected [`Clock`]; the gossip the core emits goes to
//! its outbox channel, which the caller drains (`try_recv` needs no runtime). The thread of
//! [`super::spawn`] uses the same core with the system clock, so both paths share every line of
//! sequencing, ingest, witnessing and alert handling.

use super::{CheckpointVerdict, Command, Draft, IngestOutcome, Receipt, Sequencer, SubmitError};
use crate::network::messages::GossipMessage;
use crate::store::Store;
use linli_protocol::checkpoint::{CosignedCheckpoint, EquivocationProof};
use linli_protocol::{CommunityId, Genesis, Keypair, SignedEntry, State};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Where the core reads the time, in ms since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(super::now_ms)
}

/// One request to the core (what the thread's queue carries, without reply channels).
#[derive(Debug, Clone)]
pub enum Input {
    Submit(Draft),
    Ingest(Vec<SignedEntry>),
    PeerCheckpoint(CosignedCheckpoint),
    Alert(EquivocationProof),
    Checkpoint,
}

/// The answer to one [`Input`], in the same position.
#[allow(clippy::large_enum_variant)] // handed back once per input, never stored in bulk
#[derive(Debug, Clone)]
pub enum Output {
    Submit(Result<Receipt, SubmitError>),
    Ingest(IngestOutcome),
    /// `None` when the group's write failed before a verdict was sent.
    PeerCheckpoint(Option<CheckpointVerdict>),
    Alert(bool),
    Checkpoint(Result<CosignedCheckpoint, SubmitError>),
}

enum Pending {
    Submit(oneshot::Receiver<Result<Receipt, SubmitError>>),
    Ingest(oneshot::Receiver<IngestOutcome>),
    PeerCheckpoint(oneshot::Receiver<CheckpointVerdict>),
    Alert(oneshot::Receiver<bool>),
    Checkpoint(oneshot::Receiver<Result<CosignedCheckpoint, SubmitError>>),
}

impl Sequencer {
    /// A core over `store` (whose state has been loaded and checked), gossiping into `outbox`.
    pub fn new(
        community: CommunityId,
        genesis: Genesis,
        key: Keypair,
        store: Store,
        state: State,
        outbox: Option<mpsc::Sender<GossipMessage>>,
        clock: Clock,
    ) -> Self {
        let genesis_hash = genesis.hash();
        Sequencer {
            clock,
            previous_key: None,
            outbox,
            metrics: crate::metrics::Metrics::new(),
            community,
            genesis,
            genesis_hash,
            key,
            store,
            state,
            early: Default::default(),
            screened: Default::default(),
            preverified: Default::default(),
            wanted: Default::default(),
        }
    }

    pub(super) fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Handle `inputs` as one group (one synced write), as the thread does with the requests
    /// waiting in its queue; one output per input, in order.
    pub fn step(&mut self, inputs: Vec<Input>) -> Vec<Output> {
        let mut group = Vec::with_capacity(inputs.len());
        let mut pending = Vec::with_capacity(inputs.len());
        for input in inputs {
            match input {
                Input::Submit(draft) => {
                    let (reply, rx) = oneshot::channel();
                    group.push(Command::Submit { draft: Box::new(draft), reply });
                    pending.push(Pending::Submit(rx));
                }
                Input::Ingest(entries) => {
                    let (reply, rx) = oneshot::channel();
                    group.push(Command::Ingest { entries, reply });
                    pending.push(Pending::Ingest(rx));
                }
                Input::PeerCheckpoint(cp) => {
                    let (reply, rx) = oneshot::channel();
                    group.push(Command::PeerCheckpoint { checkpoint: Box::new(cp), reply });
                    pending.push(Pending::PeerCheckpoint(rx));
                }
                Input::Alert(proof) => {
                    let (reply, rx) = oneshot::channel();
                    group.push(Command::Alert { proof: Box::new(proof), reply });
                    pending.push(Pending::Alert(rx));
                }
                Input::Checkpoint => {
                    let (reply, rx) = oneshot::channel();
                    group.push(Command::Checkpoint { reply });
                    pending.push(Pending::Checkpoint(rx));
                }
            }
        }
        self.handle_group(group);
        pending
            .into_iter()
            .map(|p| match p {
                Pending::Submit(mut rx) => Output::Submit(rx.try_recv().unwrap_or(Err(SubmitError::Closed))),
                Pending::Ingest(mut rx) => Output::Ingest(rx.try_recv().unwrap_or_default()),
                Pending::PeerCheckpoint(mut rx) => Output::PeerCheckpoint(rx.try_recv().ok()),
                Pending::Alert(mut rx) => Output::Alert(rx.try_recv().unwrap_or(false)),
                Pending::Checkpoint(mut rx) => Output::Checkpoint(rx.try_recv().unwrap_or(Err(SubmitError::Closed))),
            })
            .collect()
    }

    /// The community this core sequences.
    pub fn community(&self) -> &CommunityId {
        &self.community
    }

    /// The state in memory as of the last group: everything but the per-entry records.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The whole state as of the last group: the state in memory with every per-entry record
    /// read from the store (for invariant checks that sum over records).
    pub fn state_with_records(&self) -> Result<State, crate::store::StoreError> {
        let mut full = self.state.clone();
        full.commit(self.store.all_records()?);
        Ok(full)
    }

    /// The store the core writes.
    pub fn store(&self) -> &Store {
        &self.store
    }
}
