//! A raw libp2p peer that speaks the sync protocol (and gossip): it sends requests to a node and
//! checks the answers itself, serves entry ranges from a ledger it holds, can announce any
//! identify protocol version (a peer of another federation), and can send arbitrary bytes on
//! the sync protocol (garbage: bad length prefixes, junk, truncated frames).

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use linli_node::network::codec::{SyncCodec, SYNC_PROTOCOL};
use linli_node::network::gossip;
use linli_node::network::messages::{SyncRequest, SyncResponse};
use linli_protocol::{Hash, SignedEntry};
use std::time::{Duration, Instant};

#[derive(NetworkBehaviour)]
pub struct PeerBehaviour {
    pub gossipsub: gossipsub::Behaviour,
    pub sync: request_response::Behaviour<SyncCodec>,
    /// The sync protocol with no framing of its own: outbound only, for garbage.
    pub raw: request_response::Behaviour<RawCodec>,
    pub identify: libp2p::swarm::behaviour::toggle::Toggle<identify::Behaviour>,
}

/// Writes a request's bytes as they are (the test makes the frame, or breaks it) and reads the
/// whole answer back as bytes.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

#[async_trait::async_trait]
impl request_response::Codec for RawCodec {
    type Protocol = libp2p::StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &libp2p::StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::other("the raw codec only sends"))
    }
    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &libp2p::StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        use futures::AsyncReadExt;
        let mut out = Vec::new();
        io.take(4 << 20).read_to_end(&mut out).await?;
        Ok(out)
    }
    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &libp2p::StreamProtocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> std::io::Result<()> {
        use futures::AsyncWriteExt;
        io.write_all(&bytes).await?;
        io.close().await
    }
    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &libp2p::StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> std::io::Result<()> {
        Err(std::io::Error::other("the raw codec only sends"))
    }
}

pub struct SyncPeer {
    pub swarm: Swarm<PeerBehaviour>,
    /// Entries of one ledger this peer serves to range requests (from seq 0).
    pub ledger: Vec<SignedEntry>,
    /// Range requests it answered.
    pub ranges_served: Vec<SyncRequest>,
    /// How many times a node identified itself to this peer (one per connection it accepted).
    pub identified: usize,
    entries_topic: IdentTopic,
    answers: Vec<(OutboundRequestId, Result<SyncResponse, String>)>,
    raw_answers: Vec<(OutboundRequestId, Result<Vec<u8>, String>)>,
}

/// The identify protocol version of the federation with genesis hash `genesis_hash`.
pub fn protocol_version(genesis_hash: &Hash) -> String {
    format!("/linli/1/{genesis_hash}")
}

impl SyncPeer {
    /// A peer announcing identify `protocol_version`, subscribed to the entries topic of the
    /// federation `genesis_hash`.
    pub fn new(protocol_version: String, genesis_hash: &Hash) -> SyncPeer {
        SyncPeer::build(Some(protocol_version), genesis_hash)
    }

    /// A peer that never identifies itself (no identify protocol at all).
    pub fn without_identify(genesis_hash: &Hash) -> SyncPeer {
        SyncPeer::build(None, genesis_hash)
    }

    fn build(protocol_version: Option<String>, genesis_hash: &Hash) -> SyncPeer {
        let config = gossip::config_builder().heartbeat_interval(Duration::from_millis(200)).build().unwrap();
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|key| PeerBehaviour {
                gossipsub: gossipsub::Behaviour::new(gossip::authenticity(), config).unwrap(),
                sync: request_response::Behaviour::with_codec(
                    SyncCodec,
                    [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
                ),
                raw: request_response::Behaviour::with_codec(
                    RawCodec,
                    [(SYNC_PROTOCOL, ProtocolSupport::Outbound)],
                    request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
                ),
                identify: protocol_version
                    .map(|pv| {
                        identify::Behaviour::new(
                            identify::Config::new(pv, key.public()).with_agent_version("linli-test-peer".into()),
                        )
                    })
                    .into(),
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let entries_topic = IdentTopic::new(format!("/linli/{genesis_hash}/{}", crate::ENTRIES_TOPIC));
        swarm.behaviour_mut().gossipsub.subscribe(&entries_topic).unwrap();
        SyncPeer {
            swarm,
            ledger: Vec::new(),
            ranges_served: Vec::new(),
            identified: 0,
            entries_topic,
            answers: vec![],
            raw_answers: vec![],
        }
    }

    pub fn dial(&mut self, addr: &str) {
        let addr: Multiaddr = addr.parse().unwrap();
        self.swarm.dial(addr).unwrap();
    }

    /// Dial `addr`, where node `peer` listens, and wait until connected (up to 10 s); whether it
    /// connected.
    pub async fn connect(&mut self, addr: &str, peer: PeerId) -> bool {
        self.dial(addr);
        self.drive_until(Duration::from_secs(10), |p| p.connected_to(&peer)).await
    }

    pub fn connected_to(&self, peer: &PeerId) -> bool {
        self.swarm.is_connected(peer)
    }

    /// Run the swarm until `until` holds or `limit` passes; whether it held.
    pub async fn drive_until(&mut self, limit: Duration, until: impl Fn(&SyncPeer) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if until(self) {
                return true;
            }
            if let Ok(ev) = tokio::time::timeout(Duration::from_millis(20), self.swarm.select_next_some()).await {
                self.on_event(ev);
            }
        }
        until(self)
    }

    /// Run the swarm for `d`.
    pub async fn drive(&mut self, d: Duration) {
        self.drive_until(d, |_| false).await;
    }

    /// Send `request` to `peer` and wait for the answer (or the failure) up to 15 s.
    pub async fn request(&mut self, peer: PeerId, request: SyncRequest) -> Result<SyncResponse, String> {
        self.request_within(peer, request, Duration::from_secs(15)).await
    }

    /// Send `request` to `peer` and wait for the answer (or the failure) up to `limit`.
    pub async fn request_within(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        limit: Duration,
    ) -> Result<SyncResponse, String> {
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.drive_until(limit, |p| p.answers.iter().any(|(a, _)| *a == id)).await;
        match self.answers.iter().position(|(a, _)| *a == id) {
            Some(i) => self.answers.swap_remove(i).1,
            None => Err(format!("no answer within {limit:?}")),
        }
    }

    /// Send `bytes` as they are on the sync protocol to `peer` and wait up to `limit` for what
    /// comes back: the answer's bytes, or the failure.
    pub async fn raw_request(&mut self, peer: PeerId, bytes: Vec<u8>, limit: Duration) -> Result<Vec<u8>, String> {
        let id = self.swarm.behaviour_mut().raw.send_request(&peer, bytes);
        self.drive_until(limit, |p| p.raw_answers.iter().any(|(a, _)| *a == id)).await;
        match self.raw_answers.iter().position(|(a, _)| *a == id) {
            Some(i) => self.raw_answers.swap_remove(i).1,
            None => Err(format!("no answer within {limit:?}")),
        }
    }

    /// Gossip `entry` on the entries topic, retrying while gossipsub has no peer yet (10 s).
    pub async fn publish_entry(&mut self, entry: &SignedEntry) {
        let bytes = linli_node::network::messages::GossipMessage::Entry(Box::new(entry.clone())).to_bytes();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let topic = self.entries_topic.clone();
            if self.swarm.behaviour_mut().gossipsub.publish(topic, bytes.clone()).is_ok() {
                return;
            }
            assert!(Instant::now() < end, "gossipsub never had a peer to publish to");
            self.drive(Duration::from_millis(50)).await;
        }
    }

    fn on_event(&mut self, ev: SwarmEvent<PeerBehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(PeerBehaviourEvent::Identify(identify::Event::Received { .. })) => {
                self.identified += 1;
            }
            SwarmEvent::Behaviour(PeerBehaviourEvent::Sync(request_response::Event::Message { message, .. })) => {
                match message {
                    request_response::Message::Request { request, channel, .. } => {
                        let response = match &request {
                            SyncRequest::Range { from, limit, .. } => {
                                let from = (*from as usize).min(self.ledger.len());
                                let to = from.saturating_add(*limit as usize).min(self.ledger.len());
                                self.ranges_served.push(request.clone());
                                SyncResponse::Entries(self.ledger[from..to].to_vec())
                            }
                            _ => SyncResponse::Error("a test peer answers ranges only".into()),
                        };
                        let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
                    }
                    request_response::Message::Response { request_id, response } => {
                        self.answers.push((request_id, Ok(response)));
                    }
                }
            }
            SwarmEvent::Behaviour(PeerBehaviourEvent::Sync(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            })) => self.answers.push((request_id, Err(error.to_string()))),
            SwarmEvent::Behaviour(PeerBehaviourEvent::Raw(request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            })) => self.raw_answers.push((request_id, Ok(response))),
            SwarmEvent::Behaviour(PeerBehaviourEvent::Raw(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            })) => self.raw_answers.push((request_id, Err(error.to_string()))),
            _ => {}
        }
    }
}
