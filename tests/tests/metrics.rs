//! `/metrics` of federated nodes over real HTTP: entries appended and received from a peer,
//! connected peers, sync round trips and gossip latency.
#![allow(clippy::unwrap_used)]

use linli_tests::Rig;
use std::time::{Duration, Instant};

/// The value of the sample `name{labels}` (exactly as written) in a scrape; None if absent.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn scrape(rig: &Rig, i: usize) -> String {
    let resp = rig.http.get(format!("{}/metrics", rig.members[i].base())).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_replication() {
    let mut rig = Rig::new(2);
    rig.start(0).await;
    // Written before node 1 runs: it must fetch them by range sync (gossip is not replayed).
    rig.enroll_many(0, 0, 25).await;
    rig.start(1).await;
    rig.converge(&[0, 1], Duration::from_secs(60), |h| h[0].1 == 25).await;
    // Once the gossip mesh has formed, new entries also arrive by gossip.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut k = 25;
    let text = loop {
        rig.enroll_many(0, k, 1).await;
        k += 1;
        rig.converge(&[0, 1], Duration::from_secs(30), |h| h[0].1 == k as u64).await;
        let text = scrape(&rig, 1).await;
        // Entries by gossip, and sync round trips: heads are asked every second, and the first
        // entries (made before node 1 started) came by range.
        let measured = |name: &str| sample(&text, name).unwrap_or(0.0) > 0.0;
        if measured("linli_gossip_latency_seconds_count")
            && measured("linli_sync_latency_seconds_count{kind=\"head\"}")
            && measured("linli_sync_latency_seconds_count{kind=\"range\"}")
        {
            break text;
        }
        assert!(Instant::now() < deadline, "no gossip latency or sync round trips measured:\n{text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let c0 = &rig.members[0].id;
    assert_eq!(sample(&text, &format!("linli_entries_received_total{{community=\"{c0}\"}}")), Some(k as f64), "{text}");
    assert_eq!(sample(&text, "linli_entries_appended_total"), Some(0.0));
    assert_eq!(sample(&text, "linli_connected_peers"), Some(1.0));
    let sender = scrape(&rig, 0).await;
    assert_eq!(sample(&sender, "linli_entries_appended_total"), Some(k as f64), "{sender}");
    let entries = sample(&text, "linli_rocksdb_estimate_num_keys{cf=\"entries\"}").unwrap_or(0.0);
    assert!(entries >= k as f64, "{text}");
    eprintln!(
        "node 1 received {k} entries; gossip latency sum {:?} s over {:?} entries",
        sample(&text, "linli_gossip_latency_seconds_sum"),
        sample(&text, "linli_gossip_latency_seconds_count")
    );
    for i in 0..2 {
        rig.stop(i).await;
    }
}
