//! Flood: one attacker sends invalid entries, another replays valid ones, each at many times the
//! honest rate, while the communities keep writing. Honest entries reach every node, the
//! invalid-message attacker is scored down and disconnected, the replays are dropped unstored,
//! and the process's memory stays bounded.
#![allow(clippy::unwrap_used)]

use linli_node::network::messages::GossipMessage;
use linli_protocol::body::{Body, Enroll};
use linli_protocol::testkit::{cid, key};
use linli_protocol::{Entry, Hash, SignedEntry};
use linli_tests::{GossipPeer, Rig};
use std::time::{Duration, Instant};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_invalid_and_replayed_gossip_do_not_stop_honest_traffic() {
    let mut rig = Rig::new(3);
    for i in 0..3 {
        rig.start(i).await;
    }
    rig.enroll_many(1, 0, 5).await;
    rig.converge(&[0, 1, 2], Duration::from_secs(30), |h| h[1].1 == 5).await;
    let replayable: Vec<SignedEntry> = rig
        .get(0, "/v1/ledgers/c1/entries?from=0&limit=5")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_value(e.clone()).unwrap())
        .collect();
    let mut forger = GossipPeer::connect(&rig, 0, linli_tests::ENTRIES_TOPIC).await;
    let mut replayer = GossipPeer::connect(&rig, 2, linli_tests::ENTRIES_TOPIC).await;
    let rss_before = rss_kib();

    // Honest traffic: 3 x 30 enrolments over the flood, paced.
    let honest = {
        let rig = &rig;
        async move {
            let start = Instant::now();
            for k in 0..30 {
                for i in 0..3 {
                    rig.enroll_many(i, 100 + k, 1).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            start.elapsed()
        }
    };
    let attack = async {
        let (mut forged, mut replayed) = (0u64, 0u64);
        let start = Instant::now();
        let wrong = key("mallory");
        for n in 0..3000u64 {
            let body = Body::Enroll(Enroll { resident: key(&format!("ghost{n}")).public(), profile_hash: Hash::ZERO });
            let e = Entry { community: cid("c2"), seq: 0, prev_hash: Hash::ZERO, time_ms: 1, body };
            if forger
                .publish(GossipMessage::Entry(Box::new(SignedEntry::sign(e, &wrong, &rig.genesis_hash))).to_bytes())
            {
                forged += 1;
            }
            let r = &replayable[(n % 5) as usize];
            let bytes = GossipMessage::Entry(Box::new(r.clone())).to_bytes();
            if replayer.publish(bytes) {
                replayed += 1;
            }
            if n % 20 == 0 {
                tokio::join!(forger.drive(Duration::from_millis(1)), replayer.drive(Duration::from_millis(1)));
            }
        }
        tokio::join!(forger.drive(Duration::from_millis(1500)), replayer.drive(Duration::from_millis(1500)));
        (forged, replayed, start.elapsed())
    };
    let (honest_took, (forged, replayed, attack_took)) = tokio::join!(honest, attack);
    let attempted = 6000.0 / attack_took.as_secs_f64();
    let honest_rate = 90.0 / honest_took.as_secs_f64();
    eprintln!(
        "attack: 6000 messages attempted at {attempted:.0}/s ({forged} forged and {replayed} replays left the attackers), \
         honest: 90 entries at {honest_rate:.0}/s ({:.0}x)",
        attempted / honest_rate
    );
    assert!(attempted > 10.0 * honest_rate, "the flood was not many times the honest rate");

    rig.converge(&[0, 1, 2], Duration::from_secs(60), |h| (h[0].1, h[1].1, h[2].1) == (30, 35, 30)).await;
    assert!(!forger.connected(), "the attacker sending invalid entries is still connected");
    let rss_after = rss_kib();
    eprintln!("process RSS {} MiB before the flood, {} MiB after", rss_before / 1024, rss_after / 1024);
    assert!(rss_after < rss_before + 200 * 1024, "memory grew by {} MiB", (rss_after - rss_before) / 1024);
    for i in 0..3 {
        rig.stop(i).await;
    }
}
