//! The federation's network edges over real libp2p sockets on 127.0.0.1: a peer of another
//! federation is refused and not served; an entry received over gossip before its predecessors
//! makes the node sync them from the sender; a consistency proof is served over the sync
//! protocol; two checkpoints of one size with different roots become a proof everywhere;
//! malformed bytes on the sync protocol are refused and the node keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use linli_node::network::messages::{GossipMessage, SyncRequest, SyncResponse};
use linli_protocol::body::{Body, Enroll};
use linli_protocol::checkpoint::{Checkpoint, CosignedCheckpoint, EquivocationProof, SignedCheckpoint};
use linli_protocol::testkit::{key, TestFederation};
use linli_protocol::{CommunityId, Hash};
use linli_tests::peer::{protocol_version, SyncPeer};
use linli_tests::status::{faulty, proofs, size};
use linli_tests::{GossipPeer, Rig};
use std::time::Duration;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

const LIMIT: Duration = Duration::from_secs(40);

/// Two running nodes, c0's ledger holding 3 entries; c0's node's peer id and p2p address.
async fn two_nodes_c0_with_3_entries() -> (Rig, libp2p::PeerId, String) {
    let mut rig = Rig::new(2);
    for i in 0..2 {
        rig.start(i).await;
    }
    rig.enroll_many(0, 0, 3).await;
    let node = rig.net(0).peer_id;
    let addr = rig.genesis.communities[0].p2p_addresses[0].clone();
    (rig, node, addr)
}

/// A peer announcing another genesis: what it asks before its identify arrives is not answered,
/// it is disconnected, its redials are refused (the node does not identify itself to it again),
/// and the federation carries on. A peer that never identifies itself is not served either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_federation_is_refused_and_not_served() {
    let (mut rig, node, addr) = two_nodes_c0_with_3_entries().await;
    let mut foreign = SyncPeer::new(protocol_version(&Hash([9; 32])), &rig.genesis_hash);
    assert!(foreign.connect(&addr, node).await, "the foreign peer could not even connect");
    // Asked at once, before the node has its identify: held, then dropped when it arrives.
    let range = SyncRequest::Range { community: CommunityId::new("c0").unwrap(), from: 0, limit: 10 };
    let answer = foreign.request(node, range.clone()).await;
    assert!(answer.is_err(), "a peer of another federation was served: {answer:?}");
    // It redials every 300 ms for 6 s: every attempt is refused before identify runs.
    for _ in 0..20 {
        if !foreign.connected_to(&node) {
            let _ = foreign.swarm.dial(addr.parse::<libp2p::Multiaddr>().unwrap());
        }
        foreign.drive(Duration::from_millis(300)).await;
    }
    assert!(foreign.identified <= 1, "the node accepted {} connections from the foreign peer", foreign.identified);
    assert!(!foreign.connected_to(&node), "the foreign peer is still connected");
    let later = foreign.request(node, SyncRequest::Head(CommunityId::new("c0").unwrap())).await;
    assert!(later.is_err(), "a banned peer was served: {later:?}");
    eprintln!("foreign peer: first request {answer:?}, identified {} time(s), later {later:?}", foreign.identified);

    // A peer that never identifies itself is not served either (its requests wait for an
    // identify that does not come).
    let mut silent = SyncPeer::without_identify(&rig.genesis_hash);
    assert!(silent.connect(&addr, node).await);
    let unidentified = silent.request_within(node, range.clone(), Duration::from_secs(3)).await;
    assert!(unidentified.is_err(), "a peer that never identified itself was served: {unidentified:?}");
    // A peer of this federation asking the same is served.
    let mut ours = SyncPeer::new(protocol_version(&rig.genesis_hash), &rig.genesis_hash);
    assert!(ours.connect(&addr, node).await);
    match ours.request(node, range).await {
        Ok(SyncResponse::Entries(list)) => assert_eq!(list.len(), 3),
        other => panic!("a peer of this federation was not served: {other:?}"),
    }
    // The federation still works.
    rig.enroll_many(1, 0, 4).await;
    rig.converge(&[0, 1], LIMIT, |h| (h[0].1, h[1].1) == (3, 4)).await;
    for i in 0..2 {
        rig.stop(i).await;
    }
}

/// A peer publishes seq 5 of a ledger the node has nothing of: the node holds it back, syncs
/// 0..5 from that peer (the only one holding them), and ends with the whole chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_ahead_of_its_predecessors_makes_the_node_sync_them() {
    let mut rig = Rig::new(3);
    for i in 0..2 {
        rig.start(i).await; // c2 runs no node: its ledger is only on the test peer
    }
    let mut fed = TestFederation::with_genesis(rig.genesis.clone());
    fed.time_ms = now_ms();
    let mut w = fed.chain("c2");
    let ledger: Vec<_> = (0..6)
        .map(|k| w.next(Body::Enroll(Enroll { resident: key(&format!("gap{k}")).public(), profile_hash: Hash::ZERO })))
        .collect();
    let mut peer = SyncPeer::new(protocol_version(&rig.genesis_hash), &rig.genesis_hash);
    peer.ledger = ledger.clone();
    peer.dial(&rig.genesis.communities[0].p2p_addresses[0]);
    peer.publish_entry(&ledger[5]).await;
    let served = peer.drive_until(LIMIT, |p| !p.ranges_served.is_empty()).await;
    assert!(served, "the node never asked the sender for the missing entries");
    assert!(
        matches!(peer.ranges_served[0], SyncRequest::Range { from: 0, .. }),
        "the first request should start at the node's head: {:?}",
        peer.ranges_served
    );
    let drive = tokio::spawn(async move {
        peer.drive(Duration::from_secs(30)).await;
        peer
    });
    // Node 0 holds the whole chain (the held-back seq 5 included); node 1 gets it from node 0.
    for i in 0..2 {
        rig.wait_status(i, "c2's six entries", LIMIT, |st| size(st, "c2") == 6).await;
    }
    let head = ledger[5].hash(&rig.genesis_hash).to_string();
    rig.converge(&[0, 1], LIMIT, |h| h[2].1 == 6 && h[2].2 == head).await;
    drive.abort();
    for i in 0..2 {
        rig.stop(i).await;
    }
}

/// A consistency proof asked over the sync protocol proves that the ledger at one checkpoint
/// extends the ledger at an earlier one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consistency_proof_over_the_sync_protocol_links_two_checkpoints() {
    let mut rig = Rig::new(2);
    for i in 0..2 {
        rig.start(i).await;
    }
    let checkpoint_at = |rig: &Rig, n: u64| {
        let (http, base) = (rig.http.clone(), rig.members[1].base());
        async move {
            let start = std::time::Instant::now();
            loop {
                let r = http.get(format!("{base}/v1/ledgers/c0/checkpoint")).send().await.unwrap();
                if r.status() == 200 {
                    let cp: CosignedCheckpoint = r.json().await.unwrap();
                    if cp.signed.checkpoint.size == n {
                        return cp;
                    }
                }
                assert!(start.elapsed() < LIMIT, "no checkpoint of size {n}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    rig.enroll_many(0, 0, 4).await;
    let old = checkpoint_at(&rig, 4).await;
    rig.enroll_many(0, 4, 7).await;
    let new = checkpoint_at(&rig, 11).await;
    let c0 = CommunityId::new("c0").unwrap();
    let signer = key("c0/signing").public();
    for cp in [&old, &new] {
        cp.signed.verify(&rig.genesis_hash, &signer).unwrap();
    }
    // Asked of node 1 (a witness holding c0's ledger), over a real libp2p stream.
    let mut peer = SyncPeer::new(protocol_version(&rig.genesis_hash), &rig.genesis_hash);
    let node = rig.net(1).peer_id;
    assert!(peer.connect(&rig.genesis.communities[1].p2p_addresses[0], node).await);
    let ask = SyncRequest::Consistency { community: c0.clone(), old_size: 4, new_size: 11 };
    let proof = match peer.request(node, ask).await {
        Ok(SyncResponse::Consistency(p)) => p,
        other => panic!("expected a consistency proof, got {other:?}"),
    };
    let (old_root, new_root) = (old.signed.checkpoint.root, new.signed.checkpoint.root);
    proof.verify(&old_root, &new_root).unwrap();
    // The proof is specific: it does not link the new root to another old one.
    assert!(proof.verify(&Hash([1; 32]), &new_root).is_err());
    assert!(proof.verify(&new_root, &old_root).is_err());
    // Sizes the node cannot prove get an error answer, not a proof.
    let ask = SyncRequest::Consistency { community: c0, old_size: 4, new_size: 99 };
    let answer = peer.request(node, ask).await;
    assert!(matches!(answer, Ok(SyncResponse::Error(_))), "{answer:?}");
    for i in 0..2 {
        rig.stop(i).await;
    }
}

/// Two validly signed checkpoints of c3 with one size and different roots, gossiped to two
/// different nodes: every honest node holds the proof and quarantines c3, the proof is gossiped
/// on the alerts topic, and it survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_checkpoints_of_one_size_become_a_proof_everywhere() {
    let mut rig = Rig::new(4);
    for i in 0..3 {
        rig.start(i).await; // c3, the equivocator, runs no honest node
    }
    let c3 = CommunityId::new("c3").unwrap();
    let evil = key("c3/signing");
    let checkpoint = |root: Hash| CosignedCheckpoint {
        signed: SignedCheckpoint::sign(
            Checkpoint { community: c3.clone(), size: 3, root, time_ms: now_ms() },
            &evil,
            &rig.genesis_hash,
        ),
        cosignatures: vec![],
    };
    let (a, b) = (checkpoint(Hash([1; 32])), checkpoint(Hash([2; 32])));
    let mut watcher = GossipPeer::connect(&rig, 1, "alerts").await;
    let mut left = GossipPeer::connect(&rig, 0, "checkpoints").await;
    let mut right = GossipPeer::connect(&rig, 2, "checkpoints").await;
    left.publish_when_ready(GossipMessage::Checkpoint(a).to_bytes()).await;
    right.publish_when_ready(GossipMessage::Checkpoint(b).to_bytes()).await;
    let drive = tokio::spawn(async move {
        tokio::join!(left.drive(Duration::from_secs(20)), right.drive(Duration::from_secs(20)));
    });
    let gh = rig.genesis_hash;
    let proven = |st: &serde_json::Value| {
        let ps = proofs(st);
        assert!(ps.iter().all(|p| p.community() == &c3), "an honest community was accused: {st}");
        faulty(st, "c3")
            && ps
                .iter()
                .any(|p| matches!(p, EquivocationProof::Checkpoints(..)) && p.verify(&gh, &evil.public()).is_ok())
    };
    let start = std::time::Instant::now();
    for i in 0..3 {
        rig.wait_status(i, "the checkpoint equivocation proven", LIMIT, proven).await;
    }
    eprintln!("checkpoint equivocation proven on all 3 nodes in {:?}", start.elapsed());
    // Gossiped on the alerts topic.
    let heard = |w: &GossipPeer| {
        w.received.iter().any(|m| {
            matches!(GossipMessage::from_bytes(m), Ok(GossipMessage::Alert(p))
                if matches!(p, EquivocationProof::Checkpoints(..)) && p.community() == &c3)
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !heard(&watcher) && std::time::Instant::now() < deadline {
        watcher.drive(Duration::from_millis(100)).await;
    }
    assert!(heard(&watcher), "no alert on the alerts topic ({} messages)", watcher.received.len());
    drive.abort();
    // Persisted: after a restart the node still shows the proof and the quarantine.
    rig.stop(1).await;
    rig.start(1).await;
    let st = rig.get(1, "/v1/status").await;
    assert!(proven(&st), "the proof did not survive a restart: {st}");
    // Honest ledgers carry on.
    for i in 0..3 {
        rig.enroll_many(i, 0, 3).await;
    }
    rig.converge(&[0, 1, 2], LIMIT, |h| h[..3].iter().all(|(_, n, _)| *n == 3)).await;
    for i in 0..3 {
        rig.stop(i).await;
    }
}

/// Malformed bytes on the sync protocol (request-response), from a peer of this federation: a
/// length prefix over the limit, junk behind a valid prefix, an unknown request kind, a request
/// with a trailing byte, a truncated frame, nothing at all. None is answered as if it were a
/// request (the stream fails or closes empty); the node does not panic and still serves the
/// same peer's well-formed requests, over the same raw path and the normal one, and the
/// federation still converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sync_requests_are_refused_and_the_node_keeps_serving() {
    let (mut rig, node, addr) = two_nodes_c0_with_3_entries().await;
    let mut peer = SyncPeer::new(protocol_version(&rig.genesis_hash), &rig.genesis_hash);
    assert!(peer.connect(&addr, node).await, "the peer could not connect");
    let head = SyncRequest::Head(CommunityId::new("c0").unwrap());
    let served_head = |answer: Result<SyncResponse, String>| match answer {
        Ok(SyncResponse::Head { size, .. }) => size,
        other => panic!("a well-formed head request was not served: {other:?}"),
    };
    assert_eq!(served_head(peer.request(node, head.clone()).await), 3);

    let frame = |body: &[u8]| {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    };
    let good = linli_protocol::encoding::encode(&head);
    // The raw path itself works: a well-formed frame sent raw gets the head back.
    let answer = peer.raw_request(node, frame(&good), Duration::from_secs(10)).await.unwrap();
    let (len, body) = answer.split_at(4);
    assert_eq!(u32::from_be_bytes(len.try_into().unwrap()) as usize, body.len());
    assert_eq!(served_head(SyncResponse::from_bytes(body).map_err(|e| e.to_string())), 3);

    let mut trailing = good.clone();
    trailing.push(0);
    let mut truncated = frame(&good);
    truncated.truncate(truncated.len() - 2);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a length prefix over the limit", u32::MAX.to_be_bytes().to_vec()),
        ("junk behind a valid prefix", frame(&[0xff; 64])),
        ("an unknown request kind", frame(&[0x7f])),
        ("a request with a trailing byte", frame(&trailing)),
        ("a truncated frame", truncated),
        ("nothing at all", vec![]),
    ];
    for (what, bytes) in cases {
        match peer.raw_request(node, bytes, Duration::from_secs(10)).await {
            Ok(answer) => assert!(answer.is_empty(), "{what} was answered with {} bytes", answer.len()),
            Err(e) => assert!(!e.contains("no answer within"), "{what}: the node neither answered nor closed: {e}"),
        }
        // Still served after each.
        assert!(peer.connected_to(&node), "the node dropped the peer after {what}");
        assert_eq!(served_head(peer.request(node, head.clone()).await), 3, "after {what}");
    }
    rig.enroll_many(1, 0, 2).await;
    rig.converge(&[0, 1], LIMIT, |h| (h[0].1, h[1].1) == (3, 2)).await;
    for i in 0..2 {
        rig.stop(i).await;
    }
}
