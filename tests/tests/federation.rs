//! Multi-node scenarios with real libp2p sockets on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use linli_protocol::body::{Payment, Signed};
use linli_protocol::testkit::key;
use linli_protocol::CommunityId;
use linli_tests::Rig;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_converge() {
    let mut rig = Rig::new(5);
    for i in 0..5 {
        rig.start(i).await;
    }
    for i in 0..5 {
        rig.enroll_many(i, 0, 20 + i).await;
    }
    let took = rig
        .converge(&[0, 1, 2, 3, 4], Duration::from_secs(60), |heads| {
            heads.iter().enumerate().all(|(i, (_, size, _))| *size == 20 + i as u64)
        })
        .await;
    eprintln!("5 nodes converged on 5 ledgers in {took:?}");
    // Checkpoints: every node holds the same latest checkpoint of every ledger, covering the
    // whole ledger, cosigned by the 4 other communities.
    let took = rig
        .converge_checkpoints(&[0, 1, 2, 3, 4], Duration::from_secs(60), "checkpoints did not converge", |views| {
            views.iter().enumerate().all(|(i, (_, size, root, cosigners))| {
                *size == Some(20 + i as u64) && root.is_some() && *cosigners == 4
            })
        })
        .await;
    eprintln!("checkpoints cosigned by all 4 witnesses on every node after {took:?} more");
    for i in 0..5 {
        rig.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_node_catches_up_10000_entries() {
    let mut rig = Rig::new(2);
    rig.start(0).await;
    rig.enroll_many(0, 0, 10_000).await;
    rig.start(1).await;
    let took = rig.converge(&[0, 1], Duration::from_secs(180), |heads| heads[0].1 == 10_000).await;
    eprintln!("caught up 10,000 entries in {took:?}");
    // The replicated ledger verifies from genesis on the node that caught up.
    rig.stop(1).await;
    let config = linli_node::config::Config::load(&rig.members[1].config_path).unwrap();
    let store = linli_node::store::Store::open(&config.data_dir, &rig.genesis).unwrap();
    let state = store.load_state(&rig.genesis).unwrap();
    linli_node::node::full_check(&store, &rig.genesis, &state).unwrap();
    rig.stop(0).await;
}

/// A split-brain operator: community c3's node runs twice from the same signing key (two
/// instances with their own stores and libp2p identities), instance A linked only to c0 and
/// instance B only to c1 and c2. Each sequences a different enrolment at seq 0 through the real
/// API and sequencer and gossips it over its own links. Every honest node ends up holding a
/// verifiable equivocation proof, shows c3 faulty and quarantined (A's next entry is not taken),
/// accuses no honest community, and the honest ledgers still converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocation_is_proven_on_every_honest_node() {
    use linli_node::network::messages::GossipMessage;
    use linli_protocol::body::{Body, Enroll};
    use linli_protocol::testkit::key;
    use linli_protocol::{CommunityId, Entry, SignedEntry};
    use linli_tests::status::{faulty, proofs, size};

    let mut rig = Rig::new(4);
    let (a, b) = (3, rig.twin(3));
    for i in [0, 1, 2, a, b] {
        rig.start(i).await;
    }
    // A talks only to c0; B only to c1 and c2; the two instances never to each other.
    for (x, y) in [(a, 1), (a, 2), (b, 0), (a, b)] {
        rig.cut(x, y).await;
    }
    let evil = key("c3/signing");
    let c3 = CommunityId::new("c3").unwrap();
    let enrol = |label: &str| json!({"resident": key(label).public(), "profile_hash": linli_protocol::Hash::ZERO});
    let (s, left) = rig.post(a, "/v1/operator/residents", enrol("left")).await;
    assert_eq!(s, 200, "{left}");
    let (s, right) = rig.post(b, "/v1/operator/residents", enrol("right")).await;
    assert_eq!(s, 200, "{right}");
    assert_eq!((left["seq"].as_u64(), right["seq"].as_u64()), (Some(0), Some(0)), "both at seq 0");
    assert_ne!(left["hash"], right["hash"], "two different entries");

    let start = std::time::Instant::now();
    for i in 0..3 {
        rig.wait_status(i, "c3's equivocation proven", Duration::from_secs(60), |st| {
            let ps = proofs(st);
            // Honest communities are never accused.
            assert!(ps.iter().all(|p| p.community() == &c3), "an honest community was accused: {st}");
            let proven = ps.iter().any(|p| p.position() == 0 && p.verify(&rig.genesis_hash, &evil.public()).is_ok());
            faulty(st, "c3") && proven
        })
        .await;
    }
    eprintln!("equivocation proven on all 3 honest nodes in {:?}", start.elapsed());

    // Each instance knows it is proven: it refuses to sequence more.
    let (s, v) = rig.post(a, "/v1/operator/residents", enrol("later")).await;
    assert_eq!((s, v["error"].as_str()), (422, Some("community-faulty")), "{v}");
    // Quarantined: a validly signed seq 1 chained on A's entry, gossiped to c0 (which holds
    // A's branch), is not taken.
    let ours: SignedEntry = serde_json::from_value(left["entry"].clone()).unwrap();
    let next = Entry {
        community: c3.clone(),
        seq: 1,
        prev_hash: ours.hash(&rig.genesis_hash),
        time_ms: ours.entry.time_ms + 1,
        body: Body::Enroll(Enroll { resident: key("later").public(), profile_hash: linli_protocol::Hash::ZERO }),
    };
    let mut late = linli_tests::GossipPeer::connect(&rig, 0, linli_tests::ENTRIES_TOPIC).await;
    late.publish_when_ready(
        GossipMessage::Entry(Box::new(SignedEntry::sign(next, &evil, &rig.genesis_hash))).to_bytes(),
    )
    .await;
    let late = tokio::spawn(async move { late.drive(Duration::from_secs(30)).await });
    // Honest traffic meanwhile: every honest ledger converges on the honest nodes.
    for i in 0..3 {
        rig.enroll_many(i, 0, 5).await;
    }
    let honest = |h: &[(String, u64, String)]| h[..3].to_vec();
    let start = std::time::Instant::now();
    loop {
        let views = [honest(&rig.heads(0).await), honest(&rig.heads(1).await), honest(&rig.heads(2).await)];
        if views.windows(2).all(|w| w[0] == w[1]) && views[0].iter().all(|(_, n, _)| *n == 5) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "honest ledgers did not converge: {views:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..3 {
        let st = rig.get(i, "/v1/status").await;
        assert_eq!(size(&st, "c3"), 1, "node {i} took a quarantined entry: {st}");
    }
    late.abort();
    for i in [0, 1, 2, a, b] {
        rig.stop(i).await;
    }
}

/// Split 2 | 3 by cutting every link across, write on both sides, heal: all converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_and_heal() {
    let mut rig = Rig::new(5);
    for i in 0..5 {
        rig.start(i).await;
    }
    for i in 0..5 {
        rig.enroll_many(i, 0, 5).await;
    }
    rig.converge(&[0, 1, 2, 3, 4], Duration::from_secs(60), |h| h.iter().all(|(_, size, _)| *size == 5)).await;

    let (left, right) = ([0usize, 1], [2usize, 3, 4]);
    for &a in &left {
        for &b in &right {
            rig.cut(a, b).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        rig.enroll_many(i, 5, 10).await;
    }
    // Each side converges on its own; neither sees the other side's new entries.
    rig.converge(&left, Duration::from_secs(60), |h| h[0].1 == 15 && h[1].1 == 15).await;
    rig.converge(&right, Duration::from_secs(60), |h| h[2].1 == 15 && h[3].1 == 15 && h[4].1 == 15).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let l = rig.heads(0).await;
    let r = rig.heads(2).await;
    assert_eq!((l[2].1, l[3].1, l[4].1), (5, 5, 5), "the left side saw across the cut: {l:?}");
    assert_eq!((r[0].1, r[1].1), (5, 5), "the right side saw across the cut: {r:?}");

    for &a in &left {
        for &b in &right {
            rig.heal(a, b).await;
        }
    }
    let took =
        rig.converge(&[0, 1, 2, 3, 4], Duration::from_secs(60), |h| h.iter().all(|(_, size, _)| *size == 15)).await;
    eprintln!("healed federation converged in {took:?}");
    // And identical checkpoints: every node holds the same latest checkpoint of every ledger,
    // covering all 15 entries and cosigned by the 4 other communities.
    let took = rig
        .converge_checkpoints(
            &[0, 1, 2, 3, 4],
            Duration::from_secs(60),
            "checkpoints did not converge after heal",
            |v| v.iter().all(|(_, size, root, cosigners)| *size == Some(15) && root.is_some() && *cosigners == 4),
        )
        .await;
    eprintln!("identical cosigned checkpoints on every node {took:?} after the heads");
    for i in 0..5 {
        rig.stop(i).await;
    }
}

/// City scale is a configuration: a node that follows only some ledgers replicates those and
/// ignores the others' gossip and heads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_following_its_district_subscribes_only_to_its_districts_entries() {
    // c0 and c2 are in "east", c1 in "west"; node 2 follows its district.
    let mut rig = Rig::in_districts(&["east", "west", "east"]);
    rig.set_follow(2, &["district:east"]);
    rig.start(2).await;
    let mut watcher = linli_tests::GossipPeer::connect(&rig, 2, "alerts").await;
    let genesis_hash = rig.genesis_hash;
    let topic = |name: &str| libp2p::gossipsub::IdentTopic::new(format!("/linli/{genesis_hash}/{name}")).hash();
    let start = std::time::Instant::now();
    let node_topics = loop {
        watcher.drive(Duration::from_millis(200)).await;
        let topics: Vec<_> = watcher.swarm.behaviour().all_peers().flat_map(|(_, t)| t.into_iter().cloned()).collect();
        if topics.contains(&topic("checkpoints")) || start.elapsed() > Duration::from_secs(10) {
            break topics;
        }
    };
    for expected in ["alerts", "checkpoints", "entries/east"] {
        assert!(node_topics.contains(&topic(expected)), "node 2 is not on {expected}: {node_topics:?}");
    }
    assert!(!node_topics.contains(&topic("entries/west")), "node 2 follows east only but is on west's entries");

    // A node following everything (the default) is on both districts' entries.
    rig.start(0).await;
    let mut watcher = linli_tests::GossipPeer::connect(&rig, 0, "alerts").await;
    let start = std::time::Instant::now();
    loop {
        watcher.drive(Duration::from_millis(200)).await;
        let topics: Vec<_> = watcher.swarm.behaviour().all_peers().flat_map(|(_, t)| t.into_iter().cloned()).collect();
        if topics.contains(&topic("entries/east")) && topics.contains(&topic("entries/west")) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "node 0 is not on both districts' entries: {topics:?}");
    }
    for i in [0, 2] {
        rig.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_replicates_only_the_ledgers_it_follows() {
    let mut rig = Rig::new(3);
    rig.set_follow(2, &["c0"]);
    for i in 0..3 {
        rig.start(i).await;
    }
    rig.enroll_many(0, 0, 5).await;
    rig.enroll_many(1, 0, 7).await;
    rig.enroll_many(2, 0, 3).await;
    rig.converge(&[0, 1], Duration::from_secs(60), |h| (h[0].1, h[1].1, h[2].1) == (5, 7, 3)).await;
    let start = std::time::Instant::now();
    while rig.heads(2).await[0].1 != 5 {
        assert!(start.elapsed() < Duration::from_secs(30), "the followed ledger was not replicated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let h = rig.heads(2).await;
    assert_eq!((h[0].1, h[1].1, h[2].1), (5, 0, 3), "node 2 replicated a ledger it does not follow: {h:?}");

    // A followed ledger (c0) cites an entry of an unfollowed one (a payment at a merchant of c1
    // cites c1's exposure limit): node 2 fetches c1's ledger on demand and stays in step.
    rig.publish_default_rules(0).await;
    rig.resident_with_100_points(0, "c0-hana", 1).await;
    let merchant = key("c1-shop");
    let (s, v) = rig
        .post(1, "/v1/operator/merchants", json!({"merchant": merchant.public(), "name": "shop", "category": "food"}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = rig.post(1, "/v1/operator/exposure-limits", json!({"issuer": "c0", "limit_fen": 10_000})).await;
    assert_eq!(s, 200, "{v}");
    rig.converge(&[0, 1], Duration::from_secs(30), |h| h[1].1 == 9).await;
    let pay = Payment {
        payer: key("c0-hana").public(),
        merchant: merchant.public(),
        merchant_community: CommunityId::new("c1").unwrap(),
        points: 10,
        price_fen: 100,
        nonce: 1,
        expiry_ms: u64::MAX,
        genesis: rig.genesis_hash,
    };
    let (s, v) = rig.post(0, "/v1/pay", json!(Signed::sign(pay, &key("c0-hana"), &rig.genesis_hash))).await;
    assert_eq!(s, 200, "{v}");
    let start = std::time::Instant::now();
    loop {
        let (h0, h2) = (rig.heads(0).await, rig.heads(2).await);
        if h2[0] == h0[0] && h2[1].1 > 0 {
            eprintln!("cited ledger fetched on demand; followed ledger in step after {:?}", start.elapsed());
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "node 2 stalled on a cited entry: {h0:?} vs {h2:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..3 {
        rig.stop(i).await;
    }
}
