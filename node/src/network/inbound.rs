//! What the event loop does with what peers send: gossip is validated by the sequencer thread
//! off the loop and the verdict reported to gossipsub (accept, ignore and sync a gap, or reject
//! so the sender is penalised); sync answers (heads, entry ranges, alerts, checkpoints) are turned
//! into the next request or handed to the sequencer.

use super::messages::{GossipMessage, SyncRequest, SyncResponse};
use super::{EventLoop, Internal};
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::PeerId;
use linli_protocol::{CommunityId, SignedEntry};

/// How often one ledger's latest checkpoint may be asked of a peer.
const CHECKPOINT_FETCH_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

impl EventLoop {
    pub(super) fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, data: Vec<u8>) {
        let tx = self.internal_tx.clone();
        let msg = match GossipMessage::from_bytes(&data) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(%source, error = %e, "malformed gossip");
                self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &id,
                    &source,
                    MessageAcceptance::Reject,
                );
                return;
            }
        };
        let sequencer = self.sequencer.clone();
        let entry = match msg {
            GossipMessage::Entry(entry) if !self.followed.contains(&entry.entry.community) => {
                // Not a ledger this node replicates (city scale: it follows its district).
                self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &id,
                    &source,
                    MessageAcceptance::Ignore,
                );
                return;
            }
            GossipMessage::Entry(entry) => entry,
            GossipMessage::Alert(proof) => {
                tokio::spawn(async move {
                    let acceptance = match sequencer.alert(proof).await {
                        Ok(true) => MessageAcceptance::Accept,
                        Ok(false) => MessageAcceptance::Reject,
                        Err(_) => MessageAcceptance::Ignore,
                    };
                    let _ = tx.send(Internal::Report { id, source, acceptance }).await;
                });
                return;
            }
            GossipMessage::Checkpoint(cp) => {
                tokio::spawn(async move {
                    let acceptance = match sequencer.peer_checkpoint(cp).await {
                        Ok(crate::sequencer::CheckpointVerdict::Valid) => MessageAcceptance::Accept,
                        Ok(crate::sequencer::CheckpointVerdict::Invalid) => MessageAcceptance::Reject,
                        Err(_) => MessageAcceptance::Ignore,
                    };
                    let _ = tx.send(Internal::Report { id, source, acceptance }).await;
                });
                return;
            }
        };
        let (metrics, sequenced_ms) = (self.metrics.clone(), entry.entry.time_ms);
        // Handed over here, in arrival order; only the wait for the verdict runs off the loop.
        let Ok(verdict) = self.sequencer.ingest_in_order(vec![*entry]) else {
            // The sequencer's queue is full: not relayed, not penalised; sync brings it later.
            self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                &id,
                &source,
                MessageAcceptance::Ignore,
            );
            return;
        };
        tokio::spawn(async move {
            let acceptance = match verdict.await {
                Ok(o) if o.rejected.is_some() => MessageAcceptance::Reject,
                Ok(o) => {
                    if let Some(c) = o.waiting_on.clone() {
                        let _ = tx.send(Internal::Follow(c)).await;
                    }
                    if let Some(reference) = o.evidence_wanted.clone() {
                        let _ = tx
                            .send(Internal::Request { peer: source, request: SyncRequest::Evidence(reference) })
                            .await;
                    }
                    if let Some((community, from)) = o.gap {
                        // Held back until its predecessors come; sync them from the sender.
                        let _ = tx.send(Internal::SyncFrom { peer: source, community, from, until: None }).await;
                        MessageAcceptance::Ignore
                    } else if o.waiting || o.applied == 0 {
                        // Held back, or already known (a replay): not relayed, not penalised.
                        MessageAcceptance::Ignore
                    } else {
                        metrics.gossip_accepted(crate::sequencer::now_ms().saturating_sub(sequenced_ms));
                        MessageAcceptance::Accept
                    }
                }
                Err(_) => MessageAcceptance::Ignore,
            };
            let _ = tx.send(Internal::Report { id, source, acceptance }).await;
        });
    }

    /// Entries a peer sent in answer to a range request: handed to the sequencer in order
    /// here; a catch-up chain asks for the next range at once (see `catchup.rs`).
    fn on_entries(&mut self, peer: PeerId, request: Option<SyncRequest>, list: Vec<SignedEntry>) {
        let n = list.len() as u64;
        let now = std::time::Instant::now();
        let (community, chained, next) = match &request {
            Some(SyncRequest::Range { community, from, .. }) => {
                let (chained, next) = self.chains.answered(community, peer, *from, n, now);
                (Some(community.clone()), chained, next)
            }
            _ => (None, false, None),
        };
        let (sequencer, tx) = (self.sequencer.clone(), self.internal_tx.clone());
        let verdict = self.sequencer.ingest_in_order(list);
        if let Some(next) = next {
            self.request(peer, next);
        }
        tokio::spawn(async move {
            let outcome = match verdict {
                Ok(rx) => rx.await.ok(),
                // The queue is full: wait for room (order no longer guaranteed; a gap is
                // held back or synced again).
                Err(list) => sequencer.ingest(list).await.ok(),
            };
            let Some(outcome) = outcome else { return };
            if let Some(c) = outcome.waiting_on.clone() {
                let _ = tx.send(Internal::Follow(c)).await;
            }
            if let Some(reference) = outcome.evidence_wanted.clone() {
                let _ = tx.send(Internal::Request { peer, request: SyncRequest::Evidence(reference) }).await;
            }
            if let Some(reason) = &outcome.rejected {
                tracing::warn!(%peer, %reason, "peer served an invalid entry");
            }
            if let (Some(community), true) = (community, chained) {
                let progressed = outcome.applied > 0 && outcome.rejected.is_none();
                let _ = tx.send(Internal::Ingested { peer, community, progressed }).await;
            }
        });
    }

    /// Ask `peer` for its latest checkpoint of `community`, at most once per
    /// [`CHECKPOINT_FETCH_EVERY`] per ledger (while a ledger grows, its newest entries always run
    /// ahead of its checkpoints; gossip brings those, this only repairs what gossip missed).
    pub(super) fn fetch_checkpoint(&mut self, peer: PeerId, community: CommunityId) {
        let now = std::time::Instant::now();
        let due =
            self.checkpoint_asked.get(&community).is_none_or(|t| now.duration_since(*t) >= CHECKPOINT_FETCH_EVERY);
        if due {
            self.checkpoint_asked.insert(community.clone(), now);
            self.request(peer, SyncRequest::LatestCheckpoint(community));
        }
    }

    pub(super) fn on_response(&mut self, peer: PeerId, request: Option<SyncRequest>, response: SyncResponse) {
        let response = match response {
            SyncResponse::Entries(list) => return self.on_entries(peer, request, list),
            other => other,
        };
        let (store, sequencer, tx) = (self.store.clone(), self.sequencer.clone(), self.internal_tx.clone());
        tokio::spawn(async move {
            match response {
                SyncResponse::Head { community, size, head } => {
                    let c = community.clone();
                    // Our size, our hash at the peer's last position (to spot a fork), and the
                    // size of the latest checkpoint we hold.
                    let (ours, ours_at, checkpointed) = tokio::task::spawn_blocking(move || {
                        let ours = store.head(&c).map(|(n, _)| n).unwrap_or(0);
                        let at = if size > 0 && size <= ours {
                            linli_protocol::merkle::LeafSource::leaf(&store.leaves(&c), size - 1)
                        } else {
                            None
                        };
                        let checkpointed =
                            store.latest_checkpoint(&c).ok().flatten().map(|cp| cp.signed.checkpoint.size);
                        (ours, at, checkpointed)
                    })
                    .await
                    .unwrap_or((0, None, None));
                    if size > ours {
                        let _ = tx.send(Internal::SyncFrom { peer, community, from: ours, until: Some(size) }).await;
                    } else if size > 0 && ours_at.is_some_and(|h| h != head) {
                        // Same position, another entry: fetch it; the sequencer proves the fork.
                        let request = SyncRequest::Range { community, from: size - 1, limit: 1 };
                        let _ = tx.send(Internal::Request { peer, request }).await;
                    } else if size == ours && size > 0 && checkpointed.is_none_or(|n| n < size) {
                        // In step, but no checkpoint of the whole ledger here (its gossip was
                        // missed, e.g. while cut off): ask this peer for the latest it holds.
                        let _ = tx.send(Internal::FetchCheckpoint { peer, community }).await;
                    }
                }
                SyncResponse::Alerts(proofs) => {
                    for proof in proofs {
                        // The sequencer verifies each and records the ones it did not hold.
                        let _ = sequencer.alert(proof).await;
                    }
                }
                SyncResponse::Checkpoint(cp) => {
                    // Verified, merged, cosigned (and gossiped) like one received over gossip.
                    if let Ok(crate::sequencer::CheckpointVerdict::Invalid) = sequencer.peer_checkpoint(*cp).await {
                        tracing::warn!(%peer, "peer served a checkpoint its community did not sign");
                    }
                }
                SyncResponse::Error(e) => tracing::debug!(%peer, error = %e, "sync error"),
                _ => tracing::debug!(%peer, "unexpected answer to a sync request"),
            }
        });
    }
}
