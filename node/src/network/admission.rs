//! Who is served: a peer is served only once its identify names this federation (protocol
//! version `/linli/1/<genesis hash>`). Requests that arrive before its identify are held (a few
//! per peer) and answered when it matches; a peer of another federation is disconnected and
//! refused for [`FOREIGN_BAN`] (it would otherwise redial every second), and what it asked is
//! dropped unanswered (its requests fail). An admitted request is answered off the loop, or
//! forwarded to its home community's node when it is a submission for another community.

use super::messages::{SyncRequest, SyncResponse};
use super::EventLoop;
use libp2p::request_response::ResponseChannel;
use libp2p::PeerId;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long a peer of another federation is refused.
pub const FOREIGN_BAN: Duration = Duration::from_secs(600);
/// Requests held per peer while its identify has not arrived; more are dropped.
pub const MAX_HELD_REQUESTS: usize = 16;

type Channel = ResponseChannel<SyncResponse>;
type Held = Vec<(SyncRequest, Channel)>;

/// Peers whose identify matched, and the requests of peers not identified yet.
#[derive(Default)]
pub(super) struct Admission {
    identified: HashSet<PeerId>,
    held: HashMap<PeerId, Held>,
}

/// What to do with a request from a peer.
pub(super) enum Verdict {
    Serve(SyncRequest, Channel),
    Held,
    Dropped,
}

impl Admission {
    /// A request arrived from `peer`: serve it, or hold it until the peer's identify arrives
    /// (at most [`MAX_HELD_REQUESTS`] per peer; beyond, it is dropped).
    pub fn request(&mut self, peer: PeerId, request: SyncRequest, channel: Channel) -> Verdict {
        if self.identified.contains(&peer) {
            return Verdict::Serve(request, channel);
        }
        let held = self.held.entry(peer).or_default();
        if held.len() >= MAX_HELD_REQUESTS {
            return Verdict::Dropped;
        }
        held.push((request, channel));
        Verdict::Held
    }

    /// `peer`'s identify names this federation: the requests it sent meanwhile, to serve now.
    pub fn matched(&mut self, peer: PeerId) -> Held {
        self.identified.insert(peer);
        self.held.remove(&peer).unwrap_or_default()
    }

    /// `peer` is of another federation, or gone: forget it and drop what it asked.
    pub fn forget(&mut self, peer: &PeerId) {
        self.identified.remove(peer);
        self.held.remove(peer);
    }
}

impl EventLoop {
    /// A request from `peer`: served at once if its identify matched, else held or dropped.
    pub(super) fn admit(&mut self, peer: PeerId, request: SyncRequest, channel: Channel) {
        match self.admission.request(peer, request, channel) {
            Verdict::Serve(request, channel) => self.serve(request, channel),
            Verdict::Held => {}
            Verdict::Dropped => {
                tracing::debug!(%peer, "request from a peer not identified yet dropped (too many held)")
            }
        }
    }

    /// `peer` identified itself as a node or light node of this federation.
    pub(super) fn on_identified(&mut self, peer: PeerId) {
        for (request, channel) in self.admission.matched(peer) {
            self.serve(request, channel);
        }
    }

    /// `peer` identified itself as a node of another federation (`version`): disconnect it,
    /// refuse it for [`FOREIGN_BAN`], and drop its held requests unanswered.
    pub(super) fn on_foreign(&mut self, peer: PeerId, version: &str) {
        tracing::warn!(%peer, %version, "peer of another federation; disconnected and refused");
        self.admission.forget(&peer);
        self.peers.remove(&peer);
        self.community_peers.retain(|_, p| *p != peer);
        self.banned.insert(peer, Instant::now() + FOREIGN_BAN);
        self.swarm.behaviour_mut().blocked.block_peer(peer);
    }

    /// Answer a request of an admitted peer: a submission for another community is forwarded
    /// to that community's node; anything else is answered off the loop.
    pub(super) fn serve(&mut self, request: SyncRequest, channel: ResponseChannel<SyncResponse>) {
        if let Some(home) = self.server.forward_to(&request) {
            match self.community_peers.get(&home).copied() {
                Some(peer) => {
                    let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                    self.pending.insert(id, super::Pending::Forward(channel));
                }
                None => {
                    let response = SyncResponse::Error(format!("no connection to community {home}'s node"));
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
                }
            }
            return;
        }
        let (server, tx) = (self.server.clone(), self.internal_tx.clone());
        tokio::spawn(async move {
            let response = server.answer(request).await;
            let _ = tx.send(super::Internal::Respond { channel, response }).await;
        });
    }
}
