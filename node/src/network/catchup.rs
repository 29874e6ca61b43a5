//! Catch-up sync of one ledger from one peer as a pipeline: the next range is asked for as soon
//! as an answer arrives, while the sequencer still validates the previous one, with at most
//! [`MAX_QUEUED`] answers waiting in the sequencer (bounded memory). One chain per ledger at a
//! time: heads from other peers and gossip gaps do not start a second download of the same
//! entries while one is running (a chain nobody advanced for [`STALE_AFTER`] is replaced).
//! A chain runs until the peer's advertised size is reached or an answer is empty: an answer cut
//! short by the response byte cap is continued from where it stopped.
//! Time comes in as an argument; the event loop sends the requests this returns.

use super::messages::{SyncRequest, MAX_RANGE_ENTRIES};
use libp2p::PeerId;
use linli_protocol::CommunityId;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Answers handed to the sequencer and not yet validated, per chain.
pub const MAX_QUEUED: usize = 2;
/// A chain not advanced for this long is considered dead and may be replaced.
pub const STALE_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Chain {
    peer: PeerId,
    /// The position the chain asks for next (or has asked for and waits on).
    next: u64,
    /// The size the peer advertised (its head), when known: the chain ends there.
    until: Option<u64>,
    /// Answers handed to the sequencer, not yet validated.
    queued: usize,
    /// The next request waits for the sequencer to make room.
    held: bool,
    touched: Instant,
}

/// The running catch-up chains, one per ledger.
#[derive(Debug, Default)]
pub struct SyncChains {
    chains: BTreeMap<CommunityId, Chain>,
}

fn range(community: &CommunityId, from: u64) -> SyncRequest {
    SyncRequest::Range { community: community.clone(), from, limit: MAX_RANGE_ENTRIES }
}

impl SyncChains {
    /// Catch up `community` from `from` with `peer` (up to `until`, the size it advertised, if
    /// known), unless a live chain already does: the request to send, if any.
    pub fn start(
        &mut self,
        community: &CommunityId,
        peer: PeerId,
        from: u64,
        until: Option<u64>,
        now: Instant,
    ) -> Option<SyncRequest> {
        if self.chains.get(community).is_some_and(|c| now.saturating_duration_since(c.touched) < STALE_AFTER) {
            return None;
        }
        let chain = Chain { peer, next: from, until, queued: 0, held: false, touched: now };
        self.chains.insert(community.clone(), chain);
        Some(range(community, from))
    }

    /// `peer` answered the range of `community` from `from` with `n` entries, now handed to
    /// the sequencer: whether the answer belongs to the chain (then report its validation with
    /// [`SyncChains::ingested`]) and the next request to send, if any. An answer short of the
    /// count asked (the byte cap cut it) continues the chain like a full one; an empty answer,
    /// or reaching the peer's advertised size, ends it. An answer that is not this chain's
    /// latest (another peer's, an old one) continues nothing.
    pub fn answered(
        &mut self,
        community: &CommunityId,
        peer: PeerId,
        from: u64,
        n: u64,
        now: Instant,
    ) -> (bool, Option<SyncRequest>) {
        let Some(chain) = self.chains.get_mut(community) else { return (false, None) };
        if chain.peer != peer || chain.next != from {
            return (false, None);
        }
        let next = from.saturating_add(n);
        if n == 0 || chain.until.is_some_and(|until| next >= until) {
            // The peer has no more, or this answer reaches the size it advertised: caught up.
            self.chains.remove(community);
            return (false, None);
        }
        chain.touched = now;
        chain.queued = chain.queued.saturating_add(1);
        chain.next = next;
        if chain.queued < MAX_QUEUED {
            (true, Some(range(community, chain.next)))
        } else {
            chain.held = true;
            (true, None)
        }
    }

    /// The sequencer validated a chunk of `peer`'s chain for `community` (`progressed`: it
    /// applied entries and refused none): the request held for room, if any. A chunk that made
    /// no progress (refused, a gap, already known, waiting on another ledger) ends the chain.
    pub fn ingested(
        &mut self,
        community: &CommunityId,
        peer: PeerId,
        progressed: bool,
        now: Instant,
    ) -> Option<SyncRequest> {
        let chain = self.chains.get_mut(community)?;
        if chain.peer != peer {
            return None;
        }
        chain.queued = chain.queued.saturating_sub(1);
        if !progressed {
            self.chains.remove(community);
            return None;
        }
        chain.touched = now;
        if chain.held {
            chain.held = false;
            Some(range(community, chain.next))
        } else {
            None
        }
    }

    /// A request of `peer`'s chain for `community` failed (timeout, connection closed).
    pub fn failed(&mut self, community: &CommunityId, peer: PeerId) {
        if self.chains.get(community).is_some_and(|c| c.peer == peer) {
            self.chains.remove(community);
        }
    }

    /// Whether a chain is running for `community`.
    #[cfg(test)]
    pub fn is_running(&self, community: &CommunityId) -> bool {
        self.chains.contains_key(community)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c() -> CommunityId {
        linli_protocol::testkit::cid("far")
    }

    fn next(r: (bool, Option<SyncRequest>)) -> Option<u64> {
        assert!(r.0 || r.1.is_none(), "only a chained answer continues the chain");
        at(r.1)
    }

    fn at(r: Option<SyncRequest>) -> Option<u64> {
        match r {
            Some(SyncRequest::Range { from, .. }) => Some(from),
            _ => None,
        }
    }

    const L: u64 = MAX_RANGE_ENTRIES;

    #[test]
    fn the_next_range_is_asked_before_the_previous_one_is_validated() {
        let (mut s, p, t) = (SyncChains::default(), PeerId::random(), Instant::now());
        assert_eq!(at(s.start(&c(), p, 10, None, t)), Some(10));
        // The first answer goes to the sequencer and the second request leaves at once.
        assert_eq!(next(s.answered(&c(), p, 10, L, t)), Some(10 + L));
        // The second answer fills the queue: the third request waits for room.
        assert_eq!(next(s.answered(&c(), p, 10 + L, L, t)), None);
        assert_eq!(at(s.ingested(&c(), p, true, t)), Some(10 + 2 * L));
        // Nothing held now: the next validation releases nothing.
        assert_eq!(at(s.ingested(&c(), p, true, t)), None);
    }

    #[test]
    fn one_chain_per_ledger_until_it_goes_stale() {
        let (mut s, p, q, t) = (SyncChains::default(), PeerId::random(), PeerId::random(), Instant::now());
        assert!(s.start(&c(), p, 0, None, t).is_some());
        assert!(s.start(&c(), q, 0, None, t + Duration::from_secs(1)).is_none(), "a live chain is not doubled");
        assert_eq!(at(s.start(&c(), q, 7, None, t + STALE_AFTER)), Some(7), "a stale chain is replaced");
        // Answers from the replaced chain's peer continue nothing.
        assert_eq!(s.answered(&c(), p, 0, L, t + STALE_AFTER), (false, None));
    }

    #[test]
    fn an_answer_cut_short_by_the_byte_cap_is_continued_where_it_stopped() {
        let (mut s, p, t) = (SyncChains::default(), PeerId::random(), Instant::now());
        // The peer advertised 5,000 entries; the byte cap cut its first answer to 700.
        s.start(&c(), p, 0, Some(5000), t);
        assert_eq!(next(s.answered(&c(), p, 0, 700, t)), Some(700));
        assert_eq!(at(s.ingested(&c(), p, true, t)), None);
        assert_eq!(next(s.answered(&c(), p, 700, 900, t)), Some(1600));
        // The answer that reaches the advertised size ends the chain.
        assert_eq!(s.answered(&c(), p, 1600, 3400, t), (false, None));
        assert!(!s.is_running(&c()));
        // Without a known size (a gap seen in gossip) a short answer continues too, and an
        // empty one ends the chain.
        s.start(&c(), p, 0, None, t);
        assert_eq!(next(s.answered(&c(), p, 0, 5, t)), Some(5));
        assert_eq!(s.answered(&c(), p, 5, 0, t), (false, None));
        assert!(!s.is_running(&c()));
    }

    #[test]
    fn a_chunk_that_makes_no_progress_ends_the_chain() {
        let (mut s, p, t) = (SyncChains::default(), PeerId::random(), Instant::now());
        s.start(&c(), p, 0, None, t);
        assert_eq!(next(s.answered(&c(), p, 0, L, t)), Some(L));
        assert!(s.ingested(&c(), p, false, t).is_none());
        assert!(!s.is_running(&c()));
        // A failed request of another peer leaves a running chain alone.
        s.start(&c(), p, 0, None, t);
        s.failed(&c(), PeerId::random());
        assert!(s.is_running(&c()));
        s.failed(&c(), p);
        assert!(!s.is_running(&c()));
    }
}
