//! The light node's link to the federation: a small libp2p swarm (TCP + Noise + Yamux, identify,
//! ping) that dials community nodes, sends them requests over the sync protocol (the light node
//! only asks; it serves nothing), and listens on the alerts topic so it learns at once of any
//! equivocation. One event loop owns the swarm; the till talks to it through [`LinkHandle`].

use crate::network::codec::{SyncCodec, SYNC_PROTOCOL};
use crate::network::messages::{GossipMessage, SyncRequest, SyncResponse};
use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, tcp, yamux, Multiaddr, PeerId, Swarm};
use linli_protocol::checkpoint::EquivocationProof;
use linli_protocol::{CommunityId, Genesis};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Why a request got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("not connected to any community node")]
    NotConnected,
    #[error("the community node did not answer: {0}")]
    Failed(String),
    #[error("the light node is shutting down")]
    Closed,
    #[error("libp2p: {0}")]
    Libp2p(String),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

enum Ask {
    Request { request: SyncRequest, reply: oneshot::Sender<Result<SyncResponse, LinkError>> },
    Connected(oneshot::Sender<usize>),
}

/// Cloneable handle to the link's event loop.
#[derive(Clone, Debug)]
pub struct LinkHandle {
    tx: mpsc::Sender<Ask>,
}

impl LinkHandle {
    /// Ask a connected community node.
    pub async fn request(&self, request: SyncRequest) -> Result<SyncResponse, LinkError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Ask::Request { request, reply }).await.map_err(|_| LinkError::Closed)?;
        rx.await.map_err(|_| LinkError::Closed)?
    }

    /// How many community nodes the link is connected to (and has identified).
    pub async fn connected(&self) -> usize {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Ask::Connected(reply)).await.is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }
}

struct Link {
    swarm: Swarm<Behaviour>,
    genesis: Genesis,
    dial: Vec<Multiaddr>,
    connected_addresses: BTreeSet<Multiaddr>,
    /// Identified community nodes of this federation.
    nodes: Vec<PeerId>,
    next: usize,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<SyncResponse, LinkError>>>,
    protocol_version: String,
    /// Verified equivocation proofs, for the till to record.
    alerts: mpsc::Sender<EquivocationProof>,
}

/// Start the link: dial `dial` (community nodes' libp2p addresses); verified equivocation
/// proofs heard on the alerts topic go to `alerts`.
pub async fn spawn(
    genesis: Genesis,
    home: &CommunityId,
    dial: Vec<Multiaddr>,
    alerts: mpsc::Sender<EquivocationProof>,
    shutdown: CancellationToken,
) -> Result<(LinkHandle, tokio::task::JoinHandle<()>), LinkError> {
    let protocol_version = format!("/linli/1/{}", genesis.hash());
    let pv = protocol_version.clone();
    let agent = format!("linli-merchant/{home}");
    let gossip_config = crate::network::gossip::config_builder()
        .validate_messages()
        .build()
        .map_err(|e| LinkError::Libp2p(e.to_string()))?;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| LinkError::Libp2p(e.to_string()))?
        .with_behaviour(|key| {
            Ok(Behaviour {
                gossipsub: gossipsub::Behaviour::new(crate::network::gossip::authenticity(), gossip_config)?,
                sync: request_response::Behaviour::with_codec(
                    SyncCodec,
                    [(SYNC_PROTOCOL, ProtocolSupport::Outbound)],
                    request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
                ),
                identify: identify::Behaviour::new(identify::Config::new(pv, key.public()).with_agent_version(agent)),
                ping: ping::Behaviour::new(ping::Config::new()),
            })
        })
        .map_err(|e| LinkError::Libp2p(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&crate::network::topic(&genesis, "alerts"))
        .map_err(|e| LinkError::Libp2p(e.to_string()))?;
    let (tx, rx) = mpsc::channel(256);
    let link = Link {
        swarm,
        genesis,
        dial,
        connected_addresses: BTreeSet::new(),
        nodes: Vec::new(),
        next: 0,
        pending: HashMap::new(),
        protocol_version,
        alerts,
    };
    Ok((LinkHandle { tx }, tokio::spawn(link.run(rx, shutdown))))
}

impl Link {
    async fn run(mut self, mut asks: mpsc::Receiver<Ask>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                event = self.swarm.select_next_some() => self.on_event(event),
                Some(ask) = asks.recv() => self.ask(ask),
                _ = tick.tick() => self.dial_missing(),
            }
        }
    }

    fn dial_missing(&mut self) {
        for addr in self.dial.clone() {
            if !self.connected_addresses.contains(&addr) {
                let _ = self.swarm.dial(addr);
            }
        }
    }

    /// Send to the identified community nodes in turn.
    fn ask(&mut self, ask: Ask) {
        let (request, reply) = match ask {
            Ask::Connected(reply) => {
                let _ = reply.send(self.nodes.len());
                return;
            }
            Ask::Request { request, reply } => (request, reply),
        };
        if self.nodes.is_empty() {
            let _ = reply.send(Err(LinkError::NotConnected));
            return;
        }
        self.next = self.next.wrapping_add(1) % self.nodes.len();
        let Some(peer) = self.nodes.get(self.next).copied() else { return };
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.pending.insert(id, reply);
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { endpoint, .. } if endpoint.is_dialer() => {
                self.connected_addresses.insert(endpoint.get_remote_address().clone());
            }
            SwarmEvent::ConnectionClosed { peer_id, endpoint, num_established, .. } => {
                if endpoint.is_dialer() {
                    self.connected_addresses.remove(endpoint.get_remote_address());
                }
                if num_established == 0 {
                    self.nodes.retain(|p| *p != peer_id);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                if info.protocol_version != self.protocol_version {
                    tracing::warn!(%peer_id, "peer of another federation; disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                } else if info.agent_version.starts_with("linli-node/") && !self.nodes.contains(&peer_id) {
                    self.nodes.push(peer_id);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            })) => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            })) => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(LinkError::Failed(error.to_string())));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let acceptance = match self.alert(&message.data) {
                    Some((proof, by_genesis_keys)) => {
                        let _ = self.alerts.try_send(proof);
                        // Proofs by keys later than the genesis ones are checked by the till
                        // (which follows key changes); they are not relayed from here.
                        if by_genesis_keys {
                            MessageAcceptance::Accept
                        } else {
                            MessageAcceptance::Ignore
                        }
                    }
                    None => MessageAcceptance::Reject,
                };
                self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    acceptance,
                );
            }
            _ => {}
        }
    }

    /// An equivocation proof of a genesis community, and whether it verifies against that
    /// community's genesis keys (the till checks every proof again with the keys it follows).
    fn alert(&self, data: &[u8]) -> Option<(EquivocationProof, bool)> {
        let GossipMessage::Alert(proof) = GossipMessage::from_bytes(data).ok()? else { return None };
        let info = self.genesis.community(proof.community())?;
        let gh = self.genesis.hash();
        let by_genesis_keys = [info.signing_key, info.recovery_key].iter().any(|k| proof.verify(&gh, k).is_ok());
        Some((proof, by_genesis_keys))
    }
}

/// A link whose only "community node" is `answer`, in-process (tests: a node that lies).
#[cfg(test)]
pub(crate) fn scripted(answer: impl Fn(SyncRequest) -> SyncResponse + Send + 'static) -> LinkHandle {
    let (tx, mut rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(ask) = rx.recv().await {
            match ask {
                Ask::Request { request, reply } => {
                    let _ = reply.send(Ok(answer(request)));
                }
                Ask::Connected(reply) => {
                    let _ = reply.send(1);
                }
            }
        }
    });
    LinkHandle { tx }
}

/// The community nodes to dial: the configured list, or the home community's genesis addresses.
pub fn dial_list(
    genesis: &Genesis,
    home: &CommunityId,
    configured: Option<&[String]>,
) -> Result<Vec<Multiaddr>, String> {
    let list: Vec<String> = match configured {
        Some(l) => l.to_vec(),
        None => genesis.community(home).map(|c| c.p2p_addresses.clone()).unwrap_or_default(),
    };
    if list.is_empty() {
        return Err(format!(
            "no community node to connect to: set full_nodes, or give {home} an address in the genesis"
        ));
    }
    list.iter().map(|a| a.parse().map_err(|e| format!("full node address {a:?}: {e}"))).collect()
}
