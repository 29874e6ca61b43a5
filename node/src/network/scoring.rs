//! Peer scoring and bans: gossipsub's topic scores (an invalid message costs -100 x count^2,
//! positive credit is small and capped) and its thresholds; a peer that falls to the graylist
//! threshold is disconnected and refused for a while.

use super::topics::{all_entries_topics, topic};
use super::EventLoop;
use libp2p::{gossipsub, PeerId};
use linli_protocol::Genesis;
use std::time::Duration;

/// A peer scored below this is banned: the graylist threshold, which one invalid message
/// (-100) crosses. Gossipsub ignores a graylisted peer's messages, so its score would not fall
/// further: waiting for a lower one would let an attacker stay connected.
const BAN_SCORE: f64 = -80.0;
/// How long a ban lasts.
const BAN_DURATION: Duration = Duration::from_secs(300);

/// Peer scoring: an invalid message (a rejected entry, malformed bytes) is penalised on the
/// topic; below the graylist threshold a peer's messages are ignored.
pub(super) fn params(genesis: &Genesis) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let mut params = gossipsub::PeerScoreParams::default();
    let federation_wide = ["checkpoints", "alerts"].map(|name| topic(genesis, name));
    for t in all_entries_topics(genesis).into_iter().chain(federation_wide) {
        // Positive credit is small and capped (about +1 for time in the mesh, up to +100 for
        // first deliveries of valid messages); each invalid message costs -100 x count^2 and
        // decays by 1% a second, so a flooding peer stays penalised for minutes.
        let topic_params = gossipsub::TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 0.01,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 100.0,
            first_message_deliveries_weight: 1.0,
            first_message_deliveries_decay: 0.9,
            first_message_deliveries_cap: 100.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            invalid_message_deliveries_weight: -100.0,
            invalid_message_deliveries_decay: 0.99,
            ..Default::default()
        };
        params.topics.insert(t.hash(), topic_params);
    }
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 20.0,
    };
    (params, thresholds)
}

impl EventLoop {
    /// Disconnect and refuse, for [`BAN_DURATION`], peers whose gossip score fell below
    /// [`BAN_SCORE`] (they kept sending invalid messages); lift expired bans.
    pub(super) fn ban_abusers(&mut self) {
        let now = std::time::Instant::now();
        let expired: Vec<PeerId> = self.banned.iter().filter(|(_, until)| now >= **until).map(|(p, _)| *p).collect();
        for p in expired {
            self.banned.remove(&p);
            self.swarm.behaviour_mut().blocked.unblock_peer(p);
        }
        let abusers: Vec<(PeerId, f64)> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter_map(|(p, _)| Some((*p, self.swarm.behaviour().gossipsub.peer_score(p)?)))
            .filter(|(_, score)| *score < BAN_SCORE)
            .collect();
        for (p, score) in abusers {
            if let std::collections::hash_map::Entry::Vacant(e) = self.banned.entry(p) {
                e.insert(now + BAN_DURATION);
                tracing::warn!(peer = %p, score, "peer keeps sending invalid messages: disconnected and refused");
                self.swarm.behaviour_mut().blocked.block_peer(p);
                self.peers.remove(&p);
            }
        }
    }
}
