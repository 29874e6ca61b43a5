//! A peer's `Clearing` entry whose fen figure does not follow from the ledgers is refused by a
//! real node that receives it over gossip: counted as a peer refusal under the rule
//! `clearing-figure`, and the peer's ledger is not advanced past it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use linli_node::network::messages::GossipMessage;
use linli_protocol::body::{Body, Clearing};
use linli_protocol::testkit::{cid, key};
use linli_protocol::{Entry, Hash, SignedEntry};
use linli_tests::{GossipPeer, Rig};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

async fn head_of(rig: &Rig, i: usize, community: &str) -> (u64, String) {
    let heads = rig.heads(i).await;
    let (_, size, head) = heads.into_iter().find(|(c, _, _)| c == community).unwrap();
    (size, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_clearing_with_a_wrong_figure_is_refused() {
    let mut rig = Rig::new(2);
    for i in 0..2 {
        rig.start(i).await;
    }
    rig.enroll_many(1, 0, 3).await;
    rig.converge(&[0, 1], Duration::from_secs(60), |h| h.iter().any(|(c, size, _)| c == "c1" && *size == 3)).await;
    let (size, head) = head_of(&rig, 0, "c1").await;
    assert_eq!(size, 3);

    // c1's next entry, signed with c1's key: a clearing with c0 claiming 500 fen receivable,
    // although no merchant of c1 ever settled a point of c0 (the figure must be 0).
    let body = Body::Clearing(Clearing {
        counterparty: cid("c0"),
        settled_here_total: 0,
        settled_there_total: 0,
        settled_there_ref: None,
        receivable_fen: 500,
        payable_fen: 0,
    });
    let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let entry = Entry { community: cid("c1"), seq: size, prev_hash: Hash::from_hex(&head).unwrap(), time_ms, body };
    let signed = SignedEntry::sign(entry, &key("c1/signing"), &rig.genesis_hash);
    let mut peer = GossipPeer::connect(&rig, 0, linli_tests::ENTRIES_TOPIC).await;
    peer.publish_when_ready(GossipMessage::Entry(Box::new(signed)).to_bytes()).await;

    let line = "linli_validation_failures_total{rule=\"clearing-figure\",origin=\"peer\"} 1";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        peer.drive(Duration::from_millis(100)).await;
        let text = rig.metrics(0).await;
        if text.contains(line) {
            break;
        }
        assert!(Instant::now() < deadline, "no `{line}` in:\n{text}");
    }
    // Not appended: node 0's copy of c1 is where it was, and the entry is not served.
    assert_eq!(head_of(&rig, 0, "c1").await, (size, head));
    let listed = rig.get(0, &format!("/v1/ledgers/c1/entries?from={size}")).await;
    assert_eq!(listed, serde_json::json!([]), "{listed}");
    for i in 0..2 {
        rig.stop(i).await;
    }
}
