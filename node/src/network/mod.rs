//! Federation networking (libp2p): TCP + Noise + Yamux, identify and ping; gossipsub topics
//! named after the genesis hash for new entries (one topic per district: `topics.rs`),
//! checkpoints and alerts; and a request-response sync protocol for ledger heads and entry
//! ranges.
//!
//! One event loop owns the `Swarm` ([`EventLoop`]). Gossip is validated before it is relayed: an
//! entry is handed to the sequencer thread (which verifies it against the sender community's
//! chain) and the verdict is reported back to gossipsub — accepted, ignored (its predecessor is
//! missing: a sync is started), or rejected (gossipsub's peer scoring penalises the sender).
//! Every second the loop asks each peer for the heads of the ledgers it follows and fetches any
//! entries it lacks. A peer is served once its identify protocol version names this genesis; a
//! peer of another federation is disconnected and refused for a while (`admission.rs`).

mod admission;
mod catchup;
pub mod codec;
pub mod gossip;
mod inbound;
pub mod messages;
mod scoring;
pub mod serve;
pub mod topics;

use crate::metrics::Metrics;
use crate::sequencer::SequencerHandle;
use crate::store::Store;
use codec::{SyncCodec, SYNC_PROTOCOL};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, tcp, yamux, Multiaddr, PeerId, Swarm};
use linli_protocol::{CommunityId, Genesis};
use messages::{GossipMessage, SyncRequest, SyncResponse};
use serve::Server;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the network needs to know.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    pub listen: String,
    pub genesis: Genesis,
    pub community: CommunityId,
    /// Ledgers to replicate (others' gossip is ignored and never synced).
    pub followed: Vec<CommunityId>,
    /// Also find peers on the local network with mDNS (a peer of another federation found this
    /// way is refused like any other).
    pub mdns: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("listen address {0:?} is not a multiaddr: {1}")]
    BadAddress(String, String),
    #[error("libp2p: {0}")]
    Libp2p(String),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    blocked: libp2p::allow_block_list::Behaviour<libp2p::allow_block_list::BlockedPeers>,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mdns: libp2p::swarm::behaviour::toggle::Toggle<libp2p::mdns::tokio::Behaviour>,
}

/// Operator and test control of the network.
#[derive(Debug)]
pub enum Control {
    /// Refuse and close every connection with this peer (cut a link).
    Block(PeerId),
    /// Allow it again (heal the link).
    Unblock(PeerId),
    /// This node's gossipsub score of a peer (negative: penalised).
    Score(PeerId, tokio::sync::oneshot::Sender<Option<f64>>),
}

/// Cloneable handle to the network event loop.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    pub peer_id: PeerId,
    tx: mpsc::Sender<Control>,
}

impl NetworkHandle {
    pub async fn control(&self, c: Control) {
        let _ = self.tx.send(c).await;
    }
}

/// Every how many ticks (seconds) peers exchange the equivocation alerts they hold.
const ALERT_EXCHANGE_TICKS: u64 = 10;

/// Identify's agent version of a community node: `linli-node/<community>`.
const NODE_AGENT: &str = "linli-node/";

/// A request this node sent and waits on.
enum Pending {
    /// Sync of a ledger this node follows.
    Sync(SyncRequest),
    /// A submission forwarded to its home community: the answer goes back to the asker.
    Forward(ResponseChannel<SyncResponse>),
}

/// Work finished off the loop, to be applied to the swarm.
enum Internal {
    Report {
        id: gossipsub::MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    },
    Respond {
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    Request {
        peer: PeerId,
        request: SyncRequest,
    },
    /// A followed ledger cites an entry of this ledger: replicate it too (on demand).
    Follow(CommunityId),
    /// In step with `peer` on `community` but no checkpoint of the whole ledger here.
    FetchCheckpoint {
        peer: PeerId,
        community: CommunityId,
    },
    /// Catch up `community` from `from` with `peer` (unless a chain already does), up to
    /// `until`, the size the peer advertised, if known.
    SyncFrom {
        peer: PeerId,
        community: CommunityId,
        from: u64,
        until: Option<u64>,
    },
    /// The sequencer validated a chunk of a catch-up chain.
    Ingested {
        peer: PeerId,
        community: CommunityId,
        progressed: bool,
    },
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    sequencer: SequencerHandle,
    store: Store,
    server: Server,
    /// The entries topic of each community (its district's).
    entry_topics: topics::EntryTopics,
    checkpoints_topic: IdentTopic,
    alerts_topic: IdentTopic,
    followed: Vec<CommunityId>,
    dial_addresses: Vec<Multiaddr>,
    connected_addresses: BTreeSet<Multiaddr>,
    /// Community nodes of this federation (identified), asked for heads every tick.
    peers: BTreeSet<PeerId>,
    /// Which peer runs which community's node (from identify), for forwarding submissions.
    community_peers: BTreeMap<CommunityId, PeerId>,
    /// Peers banned (for invalid gossip, or of another federation), and until when.
    banned: HashMap<PeerId, std::time::Instant>,
    /// Peers whose identify matched (served), and requests held until a peer's identify.
    admission: admission::Admission,
    /// Ticks since start.
    ticks: u64,
    pending: HashMap<OutboundRequestId, Pending>,
    /// Running catch-up downloads, one per ledger.
    chains: catchup::SyncChains,
    /// When each ledger's latest checkpoint was last asked of a peer (rate limit).
    checkpoint_asked: HashMap<CommunityId, std::time::Instant>,
    /// When each of this node's own sync requests was sent (for the latency histogram).
    sent: HashMap<OutboundRequestId, std::time::Instant>,
    metrics: Metrics,
    internal_tx: mpsc::Sender<Internal>,
    protocol_version: String,
}

pub(crate) use topics::topic;

/// Start the network; returns the address it listens on and the event loop's task.
pub async fn spawn(
    config: NetworkConfig,
    sequencer: SequencerHandle,
    store: Store,
    outbox: mpsc::Receiver<GossipMessage>,
    checkpoint_soon: mpsc::Sender<()>,
    shutdown: CancellationToken,
    metrics: Metrics,
) -> Result<(Multiaddr, NetworkHandle, tokio::task::JoinHandle<()>), NetworkError> {
    let listen: Multiaddr = config
        .listen
        .parse()
        .map_err(|e: libp2p::multiaddr::Error| NetworkError::BadAddress(config.listen.clone(), e.to_string()))?;
    let protocol_version = format!("/linli/1/{}", config.genesis.hash());
    let pv = protocol_version.clone();
    let gossip_config = gossip::config_builder()
        .validate_messages()
        .heartbeat_interval(Duration::from_millis(500))
        .build()
        .map_err(|e| NetworkError::Libp2p(e.to_string()))?;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| NetworkError::Libp2p(e.to_string()))?
        .with_behaviour(|key| {
            let mut gossipsub = gossipsub::Behaviour::new(gossip::authenticity(), gossip_config)?;
            let (params, thresholds) = scoring::params(&config.genesis);
            gossipsub.with_peer_score(params, thresholds)?;
            Ok(Behaviour {
                blocked: Default::default(),
                gossipsub,
                sync: request_response::Behaviour::with_codec(
                    SyncCodec,
                    [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default().with_request_timeout(Duration::from_secs(20)),
                ),
                identify: identify::Behaviour::new(
                    identify::Config::new(pv, key.public())
                        .with_agent_version(format!("{NODE_AGENT}{}", config.community)),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
                mdns: if config.mdns {
                    Some(libp2p::mdns::tokio::Behaviour::new(
                        // Ask every 5 s (default: 5 min): nodes starting at the same moment
                        // can miss each other's first query.
                        libp2p::mdns::Config { query_interval: Duration::from_secs(5), ..Default::default() },
                        key.public().to_peer_id(),
                    )?)
                } else {
                    None
                }
                .into(),
            })
        })
        .map_err(|e| NetworkError::Libp2p(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    let entry_topics = topics::EntryTopics::new(&config.genesis);
    let subscriptions = entry_topics
        .subscriptions(&config.community, &config.followed)
        .into_iter()
        .chain(["checkpoints", "alerts"].map(|name| topic(&config.genesis, name)));
    for t in subscriptions {
        swarm.behaviour_mut().gossipsub.subscribe(&t).map_err(|e| NetworkError::Libp2p(e.to_string()))?;
    }
    swarm.listen_on(listen).map_err(|e| NetworkError::Libp2p(e.to_string()))?;
    let bound = loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => break address,
            SwarmEvent::ListenerError { error, .. } => return Err(NetworkError::Libp2p(error.to_string())),
            _ => {}
        }
    };
    let dial_addresses = config
        .genesis
        .communities
        .iter()
        .filter(|c| c.id != config.community)
        .flat_map(|c| c.p2p_addresses.iter().filter_map(|a| a.parse().ok()))
        .collect();
    let (internal_tx, internal_rx) = mpsc::channel(1024);
    let (control_tx, control_rx) = mpsc::channel(64);
    let handle = NetworkHandle { peer_id: *swarm.local_peer_id(), tx: control_tx };
    let server = Server {
        community: config.community.clone(),
        store: store.clone(),
        sequencer: sequencer.clone(),
        checkpoint_soon,
    };
    let ev = EventLoop {
        swarm,
        sequencer,
        store,
        server,
        entry_topics,
        checkpoints_topic: topic(&config.genesis, "checkpoints"),
        alerts_topic: topic(&config.genesis, "alerts"),
        followed: config.followed.iter().filter(|c| **c != config.community).cloned().collect(),
        dial_addresses,
        connected_addresses: BTreeSet::new(),
        peers: BTreeSet::new(),
        community_peers: BTreeMap::new(),
        banned: HashMap::new(),
        admission: Default::default(),
        ticks: 0,
        pending: HashMap::new(),
        chains: Default::default(),
        checkpoint_asked: HashMap::new(),
        sent: HashMap::new(),
        metrics,
        internal_tx,
        protocol_version,
    };
    let task = tokio::spawn(ev.run(internal_rx, control_rx, outbox, shutdown));
    Ok((bound, handle, task))
}

impl EventLoop {
    async fn run(
        mut self,
        mut internal_rx: mpsc::Receiver<Internal>,
        mut control_rx: mpsc::Receiver<Control>,
        mut outbox: mpsc::Receiver<GossipMessage>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(1000));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(work) = internal_rx.recv() => self.on_internal(work),
                Some(c) = control_rx.recv() => match c {
                    Control::Block(p) => {
                        self.swarm.behaviour_mut().blocked.block_peer(p);
                        self.peers.remove(&p);
                        self.metrics.set_peers(self.peers.len());
                    }
                    Control::Unblock(p) => {
                        self.swarm.behaviour_mut().blocked.unblock_peer(p);
                    }
                    Control::Score(p, reply) => {
                        let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&p));
                    }
                },
                Some(msg) = outbox.recv() => {
                    let topic = match &msg {
                        GossipMessage::Entry(e) => self.entry_topics.of(&e.entry.community).cloned(),
                        GossipMessage::Checkpoint(_) => Some(self.checkpoints_topic.clone()),
                        GossipMessage::Alert(_) => Some(self.alerts_topic.clone()),
                    };
                    let Some(topic) = topic else { continue };
                    if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic, msg.to_bytes()) {
                        tracing::debug!(error = %e, "gossip publish (peers will sync)");
                    }
                }
                _ = tick.tick() => self.on_tick(),
            }
        }
    }

    fn on_tick(&mut self) {
        self.ban_abusers();
        for addr in self.dial_addresses.clone() {
            if !self.connected_addresses.contains(&addr) {
                let _ = self.swarm.dial(addr);
            }
        }
        // mDNS reports a peer once; if that first dial failed (two nodes starting together can
        // dial before the other listens), try again while it is still on the LAN.
        // Dialling by peer id lets the mDNS behaviour supply the addresses it found.
        let unconnected: Vec<PeerId> = match self.swarm.behaviour().mdns.as_ref() {
            Some(mdns) => mdns.discovered_nodes().filter(|peer| !self.swarm.is_connected(peer)).copied().collect(),
            None => Vec::new(),
        };
        for peer in unconnected {
            tracing::debug!(%peer, "redialling a peer found by mDNS");
            let _ = self.swarm.dial(peer);
        }
        self.ticks = self.ticks.wrapping_add(1);
        let peers: Vec<PeerId> = self.peers.iter().copied().collect();
        for peer in peers {
            for c in self.followed.clone() {
                self.request(peer, SyncRequest::Head(c));
            }
            // An alert gossiped once may have been lost: exchange them now and then.
            if self.ticks.is_multiple_of(ALERT_EXCHANGE_TICKS) {
                self.request(peer, SyncRequest::Alerts);
            }
        }
    }

    fn request(&mut self, peer: PeerId, request: SyncRequest) {
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request.clone());
        self.pending.insert(id, Pending::Sync(request));
        self.sent.insert(id, std::time::Instant::now());
    }

    fn on_internal(&mut self, work: Internal) {
        match work {
            Internal::Report { id, source, acceptance } => {
                self.swarm.behaviour_mut().gossipsub.report_message_validation_result(&id, &source, acceptance);
            }
            Internal::Respond { channel, response } => {
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
            }
            Internal::Request { peer, request } => self.request(peer, request),
            Internal::FetchCheckpoint { peer, community } => self.fetch_checkpoint(peer, community),
            Internal::SyncFrom { peer, community, from, until } => {
                if let Some(request) = self.chains.start(&community, peer, from, until, std::time::Instant::now()) {
                    self.request(peer, request);
                }
            }
            Internal::Ingested { peer, community, progressed } => {
                if let Some(request) = self.chains.ingested(&community, peer, progressed, std::time::Instant::now()) {
                    self.request(peer, request);
                }
            }
            Internal::Follow(c) => {
                if c != self.server.community && !self.followed.contains(&c) {
                    tracing::info!(community = %c, "a followed ledger cites this ledger: replicating it on demand");
                    if let Some(t) = self.entry_topics.of(&c) {
                        if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(t) {
                            tracing::warn!(community = %c, error = %e, "could not subscribe to its district's entries");
                        }
                    }
                    self.followed.push(c);
                }
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { endpoint, .. } if endpoint.is_dialer() => {
                self.connected_addresses.insert(endpoint.get_remote_address().clone());
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed (retried on the next tick)");
            }
            SwarmEvent::ConnectionClosed { peer_id, endpoint, num_established, .. } => {
                if endpoint.is_dialer() {
                    self.connected_addresses.remove(endpoint.get_remote_address());
                }
                if num_established == 0 {
                    self.peers.remove(&peer_id);
                    self.community_peers.retain(|_, p| *p != peer_id);
                    self.admission.forget(&peer_id);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }))
                if info.protocol_version != self.protocol_version =>
            {
                self.on_foreign(peer_id, &info.protocol_version);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                // A community node (light nodes are not asked for heads and not forwarded to).
                if let Some(c) = info.agent_version.strip_prefix(NODE_AGENT).and_then(|c| CommunityId::new(c).ok()) {
                    self.peers.insert(peer_id);
                    self.community_peers.insert(c, peer_id);
                }
                self.on_identified(peer_id);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    if !self.peers.contains(&peer) && !self.connected_addresses.contains(&addr) {
                        tracing::info!(%peer, %addr, "peer found by mDNS; dialing");
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                self.on_gossip(propagation_source, message_id, message.data);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. })) => {
                match message {
                    request_response::Message::Request { request, channel, .. } => self.admit(peer, request, channel),
                    request_response::Message::Response { request_id, response } => {
                        let sent = self.sent.remove(&request_id);
                        match self.pending.remove(&request_id) {
                            Some(Pending::Forward(channel)) => {
                                let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
                            }
                            Some(Pending::Sync(request)) => {
                                if let Some(sent) = sent {
                                    let kind = match request {
                                        SyncRequest::Head(_) => "head",
                                        SyncRequest::Range { .. } => "range",
                                        _ => "other",
                                    };
                                    self.metrics.sync_answered(kind, sent.elapsed());
                                }
                                self.on_response(peer, Some(request), response)
                            }
                            None => self.on_response(peer, None, response),
                        }
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            })) => {
                self.sent.remove(&request_id);
                match self.pending.remove(&request_id) {
                    Some(Pending::Forward(channel)) => {
                        let response =
                            SyncResponse::Error(format!("the home community's node did not answer: {error}"));
                        let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
                    }
                    Some(Pending::Sync(SyncRequest::Range { community, .. })) => self.chains.failed(&community, peer),
                    _ => {}
                }
            }
            _ => {}
        }
        self.metrics.set_peers(self.peers.len());
    }
}
