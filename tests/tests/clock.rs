//! Clock skew: an entry timed far in the future, or before its predecessor, is refused by
//! every node; ordering comes from seq, never wall time (an entry timed like its predecessor
//! is fine). The entries come over gossip from a peer of community c3, whose node is not run.
#![allow(clippy::unwrap_used)]

use linli_node::network::messages::GossipMessage;
use linli_protocol::body::{Body, Enroll};
use linli_protocol::testkit::{cid, key};
use linli_protocol::{Entry, Hash, SignedEntry};
use linli_tests::{GossipPeer, Rig};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn entry(rig: &Rig, seq: u64, prev_hash: Hash, time_ms: u64) -> SignedEntry {
    let body = Body::Enroll(Enroll { resident: key(&format!("r{seq}-{time_ms}")).public(), profile_hash: Hash::ZERO });
    let e = Entry { community: cid("c3"), seq, prev_hash, time_ms, body };
    SignedEntry::sign(e, &key("c3/signing"), &rig.genesis_hash)
}

async fn size_of_c3(rig: &Rig, i: usize) -> u64 {
    rig.heads(i).await[3].1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_far_ahead_or_behind_the_chain_are_refused() {
    let mut rig = Rig::new(4);
    for i in 0..3 {
        rig.start(i).await;
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    // Each message from a fresh peer: a peer that sent an invalid entry is rightly graylisted.
    let gossip = |e: SignedEntry| {
        let rig = &rig;
        async move {
            let mut peer = GossipPeer::connect(rig, 0, linli_tests::ENTRIES_TOPIC).await;
            peer.publish_when_ready(GossipMessage::Entry(Box::new(e)).to_bytes()).await;
            peer.drive(Duration::from_millis(800)).await;
        }
    };

    // A day ahead of every node's clock: refused. Timed now: accepted.
    gossip(entry(&rig, 0, Hash::ZERO, now + 86_400_000)).await;
    for i in 0..3 {
        assert_eq!(size_of_c3(&rig, i).await, 0, "node {i} took an entry timed a day ahead");
    }
    let first = entry(&rig, 0, Hash::ZERO, now);
    let first_hash = first.hash(&rig.genesis_hash);
    gossip(first).await;
    for i in 0..3 {
        assert_eq!(size_of_c3(&rig, i).await, 1, "node {i}");
    }

    // Behind its predecessor: refused. Timed exactly like it: fine (seq orders, not time).
    gossip(entry(&rig, 1, first_hash, now - 60_000)).await;
    for i in 0..3 {
        assert_eq!(size_of_c3(&rig, i).await, 1, "node {i} took an entry timed before its predecessor");
    }
    gossip(entry(&rig, 1, first_hash, now)).await;
    for i in 0..3 {
        assert_eq!(size_of_c3(&rig, i).await, 2, "node {i}");
    }
    for i in 0..3 {
        rig.stop(i).await;
    }
}
