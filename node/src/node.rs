//! Starting and stopping a community node: read the configuration, genesis, key and token;
//! open the store and check it agrees with itself (and, with `--check`, with a full replay from
//! genesis); start the sequencer thread, the periodic checkpoint task and the HTTP API. Shutdown
//! is a cancellation token.

use crate::api::{self, AppState};
use crate::config::Config;
use crate::keyfile;
use crate::metrics::Metrics;
use crate::sequencer::{self, SequencerHandle};
use crate::store::{Store, StoreError};
use linli_protocol::replay::{replay_with_evidence, ReplayError};
use linli_protocol::{CommunityId, Genesis, State};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("reading {what} {path}: {reason}")]
    File { what: &'static str, path: String, reason: String },
    #[error("community {0} is not in the genesis file")]
    NotInGenesis(CommunityId),
    #[error("the signing key file holds {actual}, but the key in force for {community} is {expected}")]
    WrongKey { community: CommunityId, expected: String, actual: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("upgrading the store: {0}")]
    Upgrade(#[from] crate::repair::RepairError),
    #[error("store disagrees with a replay from genesis: {0}")]
    Replay(#[from] ReplayError),
    #[error("store state differs from a replay of its log (first difference: {0})")]
    StateMismatch(String),
    #[error("merchant light node configuration: {0}")]
    MerchantConfig(#[from] crate::merchant::config::MerchantConfigError),
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Read and check the genesis file.
pub fn read_genesis(path: &std::path::Path) -> Result<Genesis, NodeError> {
    let text = std::fs::read_to_string(path).map_err(|e| NodeError::File {
        what: "genesis",
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Genesis::from_toml(&text).map_err(|e| NodeError::File {
        what: "genesis",
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Replay every stored ledger from genesis and compare with the stored state.
pub fn full_check(store: &Store, genesis: &Genesis, stored: &State) -> Result<(), NodeError> {
    let mut ledgers = BTreeMap::new();
    for c in &genesis.communities {
        ledgers.insert(c.id.clone(), store.all_entries(&c.id)?);
    }
    let evidence = store.evidence()?;
    let mut replayed = replay_with_evidence(genesis, ledgers, &evidence, None)?;
    // Quarantine flags come from equivocation proofs, not from the log.
    for (id, l) in &stored.ledgers {
        if l.faulty {
            replayed.mark_faulty(id, l.faulty_from);
        }
    }
    if &replayed != stored {
        return Err(NodeError::StateMismatch(first_difference(&replayed, stored)));
    }
    for c in &genesis.communities {
        store.check_subtrees(&c.id)?;
    }
    Ok(())
}

fn first_difference(a: &State, b: &State) -> String {
    for (id, l) in &a.ledgers {
        if b.ledgers.get(id) != Some(l) {
            return format!("ledger head of {id}");
        }
    }
    for (k, v) in &a.accounts {
        if b.accounts.get(k) != Some(v) {
            return format!("account {} of {}", k.1, k.0);
        }
    }
    if a.accounts.len() != b.accounts.len() {
        return "number of accounts".into();
    }
    for (id, t) in &a.totals {
        if b.totals.get(id) != Some(t) {
            return format!("totals of {id}");
        }
    }
    "derived records (nonces, payments, holdings)".into()
}

/// A running node.
pub struct RunningNode {
    pub http_addr: SocketAddr,
    /// The libp2p listen address, when networking is configured.
    pub p2p_addr: Option<libp2p::Multiaddr>,
    /// Control of the network (cut and heal links), when networking is configured.
    pub network: Option<crate::network::NetworkHandle>,
    pub sequencer: SequencerHandle,
    pub store: Store,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    sequencer_thread: std::thread::JoinHandle<()>,
}

impl RunningNode {
    /// Stop the HTTP server, the network and background tasks, then the sequencer thread (after
    /// its last group is written); the store is closed when this returns.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        for t in self.tasks {
            let _ = t.await;
        }
        drop(self.sequencer);
        drop(self.store);
        let thread = self.sequencer_thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// Open the store, check it, and start serving.
pub async fn start(config: &Config, check: bool) -> Result<RunningNode, NodeError> {
    let genesis = read_genesis(&config.genesis_file)?;
    if genesis.community(&config.community).is_none() {
        return Err(NodeError::NotInGenesis(config.community.clone()));
    }
    let token = keyfile::read_secret(&config.operator_token_file).map_err(|e| NodeError::File {
        what: "operator token",
        path: config.operator_token_file.display().to_string(),
        reason: e.to_string(),
    })?;
    std::fs::create_dir_all(&config.data_dir)?;
    let (store, state) = {
        let (dir, g, community) = (config.data_dir.clone(), genesis.clone(), config.community.clone());
        tokio::task::spawn_blocking(move || -> Result<(Store, State), NodeError> {
            let (store, upgraded) = crate::repair::open_upgrading(&dir, &g, &community)?;
            if let Some((from, report)) = upgraded {
                tracing::warn!(
                    from,
                    to = crate::store::SCHEMA_VERSION,
                    entries = report.entries_kept,
                    "store upgraded: the derived state was rebuilt from the ledgers"
                );
            }
            if check {
                let full = store.load_state(&g)?;
                store.check_heads(&g, &full)?;
                full_check(&store, &g, &full)?;
            }
            // The node keeps no per-entry records in memory (the sequencer reads them on demand).
            let state = store.load_state_without_records(&g)?;
            store.check_heads(&g, &state)?;
            Ok((store, state))
        })
        .await
        .map_err(|e| NodeError::Io(std::io::Error::other(e)))??
    };
    let (in_force, size) = state.ledgers.get(&config.community).map(|l| (l.key, l.next_seq)).unwrap_or_default();
    let key_error = |e: crate::keyfile::KeyFileError| NodeError::File {
        what: "signing key",
        path: config.signing_key_file.display().to_string(),
        reason: e.to_string(),
    };
    let key = match crate::rotation::key_in_force(&config.signing_key_file, &in_force, size.saturating_sub(1))
        .map_err(key_error)?
    {
        Some(k) => k,
        None => {
            let actual = keyfile::read_key(&config.signing_key_file).map_err(key_error)?.public();
            return Err(NodeError::WrongKey {
                community: config.community.clone(),
                expected: in_force.to_hex(),
                actual: actual.to_hex(),
            });
        }
    };
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    let (outbox_tx, outbox_rx) = tokio::sync::mpsc::channel(sequencer::QUEUE_DEPTH);
    let outbox = config.p2p_listen.as_ref().map(|_| outbox_tx);
    let (sequencer, sequencer_thread) = sequencer::spawn(
        config.community.clone(),
        genesis.clone(),
        key,
        store.clone(),
        state,
        outbox,
        metrics.clone(),
    )?;
    let mut tasks = Vec::new();
    let mut network = None;
    let (checkpoint_soon, checkpoint_requests) = tokio::sync::mpsc::channel(1);
    let p2p_addr = match &config.p2p_listen {
        Some(listen) => Some(
            crate::network::spawn(
                crate::network::NetworkConfig {
                    listen: listen.clone(),
                    genesis: genesis.clone(),
                    community: config.community.clone(),
                    followed: config.followed(&genesis).map_err(|reason| NodeError::File {
                        what: "configuration",
                        path: "follow".into(),
                        reason,
                    })?,
                    mdns: config.mdns,
                },
                sequencer.clone(),
                store.clone(),
                outbox_rx,
                checkpoint_soon.clone(),
                shutdown.clone(),
                metrics.clone(),
            )
            .await
            .map(|(addr, handle, task)| {
                tasks.push(task);
                network = Some(handle);
                addr
            })
            .map_err(|e| NodeError::Io(std::io::Error::other(e.to_string())))?,
        ),
        None => None,
    };
    spawn_checkpoints(
        sequencer.clone(),
        store.clone(),
        config.community.clone(),
        config.checkpoint_interval_ms,
        checkpoint_requests,
        shutdown.clone(),
    );

    let app_state = AppState {
        community: config.community.clone(),
        genesis_hash: genesis.hash(),
        genesis: Arc::new(genesis),
        store: store.clone(),
        sequencer: sequencer.clone(),
        operator_token: Arc::new(token),
        signing_key_file: Arc::new(config.signing_key_file.clone()),
        metrics: metrics.clone(),
        disclosure: Arc::default(),
        network: network.clone(),
    };
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .map_err(|source| NodeError::Bind { addr: config.http_listen, source })?;
    let http_addr = listener.local_addr()?;
    let app = api::router(app_state);
    let token = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async move { token.cancelled().await }).await
    });
    tracing::info!(community = %config.community, %http_addr, "community node serving");
    Ok(RunningNode {
        http_addr,
        p2p_addr,
        network,
        sequencer,
        store,
        metrics,
        shutdown,
        server,
        tasks,
        sequencer_thread,
    })
}

/// How long an on-demand checkpoint waits for more entries to cover (light nodes waiting on
/// payments made at the same moment share one checkpoint).
const ON_DEMAND_DELAY: Duration = Duration::from_millis(10);

/// Sign a checkpoint whenever the ledger has grown since the last one: every interval, and
/// soon after a light node asks for one (requests coalesce).
fn spawn_checkpoints(
    seq: SequencerHandle,
    store: Store,
    community: CommunityId,
    every_ms: u64,
    mut requests: tokio::sync::mpsc::Receiver<()>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        // The first checkpoint comes one interval after start, not at once.
        let period = Duration::from_millis(every_ms);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            let on_demand = tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => false,
                Some(()) = requests.recv() => true,
            };
            if on_demand {
                tokio::time::sleep(ON_DEMAND_DELAY).await;
                while requests.try_recv().is_ok() {}
            }
            let (s, c) = (store.clone(), community.clone());
            let grown = tokio::task::spawn_blocking(move || {
                let size = s.head(&c).map(|(n, _)| n).unwrap_or(0);
                let last = s.latest_checkpoint(&c).ok().flatten().map(|cp| cp.signed.checkpoint.size);
                size > 0 && last != Some(size)
            })
            .await
            .unwrap_or(false);
            if grown {
                if let Err(e) = seq.checkpoint().await {
                    tracing::warn!(error = %e, "checkpoint failed");
                }
            }
        }
    });
}
