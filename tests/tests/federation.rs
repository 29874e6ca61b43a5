//! Multi-node scenarios with real libp2p sockets on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use linli_tests::Rig;
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
