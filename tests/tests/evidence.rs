//! An honest ledger cites an equivocator's entry past its fork, on the branch only one node
//! took: the other nodes fetch that entry by hash from a peer, check it as evidence, and take the
//! honest ledger whole (real nodes, real libp2p sockets on 127.0.0.1).
#![allow(clippy::unwrap_used)]

use linli_node::network::messages::GossipMessage;
use linli_protocol::body::EntryRef;
use linli_protocol::testkit::{fork_with_payment, key, TestFederation};
use linli_protocol::{CommunityId, Hash, SignedEntry};
use linli_tests::status::{faulty, ledger, size};
use linli_tests::{GossipPeer, Rig};
use serde_json::json;
use std::time::Duration;

/// How long each wait may take.
const LIMIT: Duration = Duration::from_secs(40);

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn publish(rig: &Rig, i: usize, entries: &[SignedEntry]) -> tokio::task::JoinHandle<()> {
    let mut peer = GossipPeer::connect(rig, i, linli_tests::ENTRIES_TOPIC).await;
    for e in entries {
        peer.publish_when_ready(GossipMessage::Entry(Box::new(e.clone())).to_bytes()).await;
    }
    tokio::spawn(async move { peer.drive(Duration::from_secs(60)).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credit_citing_the_other_branch_is_checked_on_evidence() {
    let mut rig = Rig::new(4);
    for i in 0..3 {
        rig.start(i).await; // c3, the equivocator, runs no honest node
    }
    // c0: a merchant, and 1,000 fen of credit for c3's points.
    let m = key("evidence/merchant");
    let body = json!({"merchant": m.public(), "name": "Tea", "category": "food"});
    let (s, v) = rig.post(0, "/v1/operator/merchants", body).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = rig.post(0, "/v1/operator/exposure-limits", json!({"issuer": "c3", "limit_fen": 1000})).await;
    assert_eq!(s, 200, "{v}");
    let limit: EntryRef = EntryRef {
        community: CommunityId::new("c0").unwrap(),
        seq: v["seq"].as_u64().unwrap(),
        hash: Hash::from_hex(v["hash"].as_str().unwrap()).unwrap(),
    };
    for i in 0..3 {
        rig.wait_status(i, "c0's two entries arrive", LIMIT, |st| size(st, "c0") == 2).await;
    }

    // c3's common prefix (rules, a resident with 100 points), then the fork at seq 3: a payment
    // at c0's merchant, or an enrolment.
    let gh = rig.genesis_hash;
    let mut c3 = TestFederation::with_genesis(rig.genesis.clone());
    c3.time_ms = now_ms();
    let (prefix, pay, enroll) = fork_with_payment(&c3, "c3", "c0", &m, limit);
    assert_eq!((pay.entry.seq, enroll.entry.seq), (3, 3));

    // Cut c0's node off; it alone takes the branch with the payment and credits its merchant.
    for b in [1, 2] {
        rig.cut(0, b).await;
    }
    let left = publish(&rig, 0, &[prefix.clone(), vec![pay.clone()]].concat()).await;
    rig.wait_status(0, "the credit of the payment", LIMIT, |st| size(st, "c0") == 3 && size(st, "c3") == 4).await;
    // The other two take the other branch.
    let right = publish(&rig, 2, &[prefix, vec![enroll.clone()]].concat()).await;
    for i in [1, 2] {
        rig.wait_status(i, "the other branch", LIMIT, |st| size(st, "c3") == 4).await;
    }

    // Heal: the fork is proven everywhere, and c0's ledger, credit included, reaches 1 and 2,
    // which hold the payment only as evidence.
    for b in [1, 2] {
        rig.heal(0, b).await;
    }
    let head0 = ledger(&rig.get(0, "/v1/status").await, "c0")["head"].clone();
    for i in 0..3 {
        rig.wait_status(i, "the fork proven and c0's ledger whole", LIMIT, |st| {
            faulty(st, "c3") && size(st, "c0") == 3 && ledger(st, "c0")["head"] == head0
        })
        .await;
    }
    for i in 0..3 {
        let account = rig.account(i, "c0", &m.public().to_string()).await;
        let held = account["holdings"].as_array().unwrap().iter().find(|h| h["issuer"] == "c3").map(|h| &h["points"]);
        assert_eq!(held, Some(&json!(30)), "node {i}: {account}");
    }
    left.abort();
    right.abort();

    // Node 2's store: the payment is evidence, and a replay from genesis with it agrees.
    rig.stop(2).await;
    let config = linli_node::config::Config::load(&rig.members[2].config_path).unwrap();
    let store = linli_node::store::Store::open(&config.data_dir, &rig.genesis).unwrap();
    assert!(store.evidence_entry(&pay.hash(&gh)).unwrap().is_some(), "node 2 holds no evidence");
    let c3_at_fork = store.entry(&CommunityId::new("c3").unwrap(), 3).unwrap().map(|e| e.hash(&gh));
    assert_eq!(c3_at_fork, Some(enroll.hash(&gh)), "node 2 should hold the other branch");
    let state = store.load_state(&rig.genesis).unwrap();
    linli_node::node::full_check(&store, &rig.genesis, &state).unwrap();
    drop(store);
    for i in 0..2 {
        rig.stop(i).await;
    }
}
