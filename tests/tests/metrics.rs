//! `/metrics` of federated nodes over real HTTP: entries appended and received from a peer,
//! connected peers, sync round trips, gossip latency, RocksDB sizes before any flush, and
//! validation failures of entries received from peers (by rule, `origin="peer"`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use linli_node::network::messages::GossipMessage;
use linli_protocol::body::{Body, Enroll};
use linli_protocol::testkit::key;
use linli_protocol::{CommunityId, Entry, Hash, SignedEntry};
use linli_tests::{GossipPeer, Rig};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The value of the sample `name{labels}` (exactly as written) in a scrape; None if absent.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_replication() {
    let mut rig = Rig::new(2);
    rig.start(0).await;
    let empty = rig.metrics(0).await;
    let memtable_of = |text: &str| sample(text, "linli_rocksdb_cur_size_all_mem_tables_bytes{cf=\"entries\"}");
    let empty_memtable = memtable_of(&empty).unwrap();
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
        let text = rig.metrics(1).await;
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
    let sender = rig.metrics(0).await;
    assert_eq!(sample(&sender, "linli_entries_appended_total"), Some(k as f64), "{sender}");
    let entries = sample(&text, "linli_rocksdb_estimate_num_keys{cf=\"entries\"}").unwrap_or(0.0);
    assert!(entries >= k as f64, "{text}");
    // Nothing was flushed yet (no SST file): the sizes come from the memtables.
    let memtable = memtable_of(&text).unwrap_or(0.0);
    let total = sample(&text, "linli_rocksdb_size_bytes").unwrap_or(0.0);
    let sst = sample(&text, "linli_rocksdb_total_sst_files_size_bytes{cf=\"entries\"}").unwrap_or(-1.0);
    assert!(
        memtable > empty_memtable && total >= memtable,
        "RocksDB sizes of a node holding {k} entries (entries memtable of an empty node: {empty_memtable}):\n{text}"
    );
    assert!(text.contains("linli_rocksdb_estimate_live_data_size_bytes{cf=\"entries\"}"), "{text}");
    eprintln!("RocksDB: entries memtable {memtable} bytes (empty: {empty_memtable}), entries SST {sst} bytes, total {total} bytes");
    eprintln!(
        "node 1 received {k} entries; gossip latency sum {:?} s over {:?} entries",
        sample(&text, "linli_gossip_latency_seconds_sum"),
        sample(&text, "linli_gossip_latency_seconds_count")
    );
    for i in 0..2 {
        rig.stop(i).await;
    }
}

/// Poll member `i`'s `/metrics` (driving the attacker's swarm meanwhile) until `name` is at
/// least 1; returns the scrape.
async fn wait_sample(rig: &Rig, i: usize, peer: &mut GossipPeer, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        peer.drive(Duration::from_millis(100)).await;
        let text = rig.metrics(i).await;
        if sample(&text, name).unwrap_or(0.0) >= 1.0 {
            return text;
        }
        assert!(Instant::now() < deadline, "{name} never counted:\n{text}");
    }
}

/// Entries received from a peer and refused are counted by rule with `origin="peer"`. Each
/// attacker is a fresh peer that sends one well-framed entry (nothing malformed that would get
/// it graylisted first): one signed by the wrong key, one signed by the ledger's own key but
/// dated an hour ahead (the clock-skew rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_entries_refused_by_a_rule_are_counted_by_rule() {
    let mut rig = Rig::new(2);
    // Only node 0 runs: c1's ledger stays empty, so each forged entry is the next one (seq 0).
    rig.start(0).await;
    let gh = rig.genesis_hash;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let entry = |time_ms: u64| Entry {
        community: CommunityId::new("c1").unwrap(),
        seq: 0,
        prev_hash: Hash::ZERO,
        time_ms,
        body: Body::Enroll(Enroll { resident: key("ghost").public(), profile_hash: Hash::ZERO }),
    };
    let before = rig.metrics(0).await;
    assert_eq!(sample(&before, "linli_validation_failures_total{rule=\"signature\",origin=\"peer\"}"), None);

    let mut forger = GossipPeer::connect(&rig, 0, linli_tests::ENTRIES_TOPIC).await;
    let forged = SignedEntry::sign(entry(now), &key("mallory"), &gh);
    forger.publish_when_ready(GossipMessage::Entry(Box::new(forged)).to_bytes()).await;
    let text =
        wait_sample(&rig, 0, &mut forger, "linli_validation_failures_total{rule=\"signature\",origin=\"peer\"}").await;
    assert_eq!(sample(&text, "linli_validation_failures_total{rule=\"signature\",origin=\"local\"}"), None, "{text}");

    let mut skewed = GossipPeer::connect(&rig, 0, linli_tests::ENTRIES_TOPIC).await;
    let ahead = SignedEntry::sign(entry(now + 3_600_000), &key("c1/signing"), &gh);
    skewed.publish_when_ready(GossipMessage::Entry(Box::new(ahead)).to_bytes()).await;
    let text =
        wait_sample(&rig, 0, &mut skewed, "linli_validation_failures_total{rule=\"clock-skew\",origin=\"peer\"}").await;
    eprintln!("{}", text.lines().filter(|l| l.starts_with("linli_validation_failures")).collect::<Vec<_>>().join("\n"));
    // Neither was stored.
    assert_eq!(rig.heads(0).await[1].1, 0, "a refused peer entry was stored");
    rig.stop(0).await;
}
