//! A peer that floods malformed, oversized, wrongly signed and replayed gossip: no node panics,
//! none of it is stored, honest traffic still converges, and the attacker's gossipsub score
//! drops below zero on the node it talks to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use linli_node::network::messages::GossipMessage;
use linli_node::network::Control;
use linli_protocol::body::{Body, Enroll};
use linli_protocol::testkit::key;
use linli_protocol::{CommunityId, Entry, Hash, SignedEntry};
use linli_tests::{GossipPeer, Rig};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_a_peer_is_refused_and_penalised() {
    let mut rig = Rig::new(3);
    for i in 0..3 {
        rig.start(i).await;
    }
    let mut attacker = GossipPeer::connect(&rig, 0, linli_tests::ENTRIES_TOPIC).await;
    let attacker_id = attacker.peer_id();

    // The attack: garbage bytes, an oversized message, entries signed by the wrong key, replays.
    let wrong = key("mallory");
    let forged = |n: u64| {
        let body = Body::Enroll(Enroll { resident: key(&format!("ghost{n}")).public(), profile_hash: Hash::ZERO });
        let e = Entry { community: CommunityId::new("c1").unwrap(), seq: 0, prev_hash: Hash::ZERO, time_ms: 1, body };
        GossipMessage::Entry(Box::new(SignedEntry::sign(e, &wrong, &rig.genesis_hash))).to_bytes()
    };
    let mut sent = 0;
    for n in 0..60u64 {
        // Oversized frames (over the node's 64 KiB limit) are dropped by the node's codec
        // before validation, with whatever shares their frame: send them last.
        let msg = match n {
            0..=39 if n % 2 == 0 => vec![0xff; 100 + n as usize],
            0..=39 => forged(n),
            _ => vec![7u8; 100_000],
        };
        if attacker.publish(msg) {
            sent += 1;
        }
        // Drive the attacker's swarm a little between messages.
        attacker.drive(Duration::from_millis(5)).await;
    }
    assert!(sent > 30, "the attacker could not publish ({sent})");

    // The node penalised the attacker (validation results arrive asynchronously: poll).
    let net = rig.members[0].node.as_ref().unwrap().network.clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let score = loop {
        attacker.drive(Duration::from_millis(50)).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        net.control(Control::Score(attacker_id, tx)).await;
        let score = rx.await.unwrap();
        if score.is_some_and(|s| s < 0.0) || !attacker.connected() || Instant::now() > deadline {
            break score;
        }
    };
    eprintln!("attacker's score on the node it flooded: {score:?} after {sent} bad messages (None: banned)");
    assert!(score.is_some_and(|s| s < 0.0) || !attacker.connected(), "the attacker was not penalised: {score:?}");

    // Honest traffic still converges, and nothing of the attack was stored (sizes are exact).
    let attack = tokio::spawn(async move {
        attacker.drive(Duration::from_secs(3)).await;
        attacker
    });
    for i in 0..3 {
        rig.enroll_many(i, 0, 10).await;
    }
    rig.converge(&[0, 1, 2], Duration::from_secs(60), |h| h.iter().all(|(_, size, _)| *size == 10)).await;
    let mut attacker = attack.await.unwrap();

    // Replays: valid entries the node already holds, re-published as new messages, are dropped.
    let listed = rig.get(0, "/v1/ledgers/c1/entries?from=0&limit=3").await;
    for e in listed.as_array().unwrap() {
        let entry: SignedEntry = serde_json::from_value(e.clone()).unwrap();
        for _ in 0..5 {
            attacker.publish(GossipMessage::Entry(Box::new(entry.clone())).to_bytes());
            attacker.drive(Duration::from_millis(5)).await;
        }
    }
    attacker.drive(Duration::from_millis(1500)).await;
    rig.converge(&[0, 1, 2], Duration::from_secs(30), |h| h.iter().all(|(_, size, _)| *size == 10)).await;
    for i in 0..3 {
        rig.stop(i).await;
    }
}
