//! Disk corruption: bytes flipped in a stopped node's RocksDB directory (as an attacker or a
//! failing disk would) are detected and named (community, seq); the node refuses to start from
//! a damaged store; `repair` cuts a damaged peer ledger back and the node restores it from its
//! peers; a damaged own ledger is refused, never re-signed.
#![allow(clippy::unwrap_used)]

use linli_node::config::Config;
use linli_node::store::{position_key, Column};
use linli_protocol::testkit::cid;
use linli_tests::Rig;
use std::time::Duration;

/// Flip one byte in the stored entry `seq` of `community` in a stopped node's directory.
fn flip_entry_byte(dir: &std::path::Path, community: &str, seq: u64) {
    let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir, names).unwrap();
    let cf = db.cf_handle(Column::Entries.name()).unwrap();
    let key = position_key(&cid(community), seq);
    let mut v = db.get_cf(cf, &key).unwrap().unwrap();
    let i = v.len() / 2;
    v[i] ^= 0x5a;
    db.put_cf(cf, &key, v).unwrap();
    db.flush_cf(cf).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_entries_are_detected_and_peer_ledgers_restored_from_peers() {
    let mut rig = Rig::new(3);
    for i in 0..3 {
        rig.start(i).await;
        rig.enroll_many(i, 0, 10).await;
    }
    rig.converge(&[0, 1, 2], Duration::from_secs(30), |h| h.iter().all(|(_, n, _)| *n == 10)).await;
    rig.stop(0).await;
    let config = Config::load(&rig.members[0].config_path).unwrap();

    // A peer ledger's entry is damaged: a checked start refuses and names it.
    flip_entry_byte(&config.data_dir, "c1", 4);
    let err = linli_node::node::start(&config, true).await.err().expect("a damaged store must not start");
    let msg = err.to_string();
    assert!(msg.contains("c1") && msg.contains("seq 4"), "the damage is not named: {msg}");

    // Repair cuts c1 back to its 4 good entries; the node re-fetches the rest from its peers.
    let store = linli_node::store::Store::open(&config.data_dir, &rig.genesis).unwrap();
    let report = linli_node::repair::repair(&store, &rig.genesis, &cid("c0")).unwrap();
    drop(store);
    assert_eq!(report.cut.len(), 1, "{report:?}");
    assert_eq!((report.cut[0].0.as_str(), report.cut[0].1, report.cut[0].2), ("c1", 4, 10), "{report:?}");
    rig.members[0].node = Some(linli_node::node::start(&config, true).await.unwrap());
    rig.converge(&[0, 1, 2], Duration::from_secs(30), |h| h.iter().all(|(_, n, _)| *n == 10)).await;
    rig.stop(0).await;
    let store = linli_node::store::Store::open(&config.data_dir, &rig.genesis).unwrap();
    let state = store.load_state(&rig.genesis).unwrap();
    linli_node::node::full_check(&store, &rig.genesis, &state).unwrap();
    drop(store);

    // The community's own ledger damaged: refused, never cut or re-signed.
    flip_entry_byte(&config.data_dir, "c0", 3);
    let store = linli_node::store::Store::open(&config.data_dir, &rig.genesis).unwrap();
    let err = linli_node::repair::repair(&store, &rig.genesis, &cid("c0")).unwrap_err();
    assert!(matches!(err, linli_node::repair::RepairError::OwnLedger { seq: 3, .. }), "{err}");
    drop(store);
    assert!(linli_node::node::start(&config, true).await.is_err());
    for i in 1..3 {
        rig.stop(i).await;
    }
}
