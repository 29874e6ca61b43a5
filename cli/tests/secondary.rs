//! `verify --db DIR --secondary SCRATCH` while the node is appending: a writer loop enrols
//! residents and makes checkpoints over HTTP while `linli verify` runs as a RocksDB secondary
//! instance, several times; every run must pass (each sees a consistent prefix of the ledger).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_as_secondary_while_the_node_appends() {
    let files = NodeFiles::new();
    let node = linli_node::node::start(&files.config(), false).await.unwrap();
    let api = Arc::new(Api::new(node.http_addr, files.genesis_hash));
    api.checkpoint().await;
    let (stop_writing, written) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let writer = {
        let (api, stop_writing, written) = (api.clone(), stop_writing.clone(), written.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop_writing.load(Ordering::Relaxed) {
                let who = key(&format!("writer-{n}")).public();
                api.op("/v1/operator/residents", json!({"resident": who, "profile_hash": linli_protocol::Hash::ZERO}))
                    .await;
                n += 1;
                if n.is_multiple_of(25) {
                    api.checkpoint().await;
                }
                written.store(n, Ordering::Relaxed);
            }
        })
    };
    let (g, data) = (files.genesis_arg(), files.data());
    let mut seen = Vec::new();
    for run in 0..4 {
        let before = written.load(Ordering::Relaxed);
        let scratch = tempfile::tempdir().unwrap();
        let a = args(&[
            "--json",
            "verify",
            "--db",
            &data,
            "--secondary",
            scratch.path().to_str().unwrap(),
            "--genesis",
            &g,
            "--quiet",
        ]);
        let (code, out, err) = run_async(a).await;
        assert_eq!(code, 0, "run {run}: {out}\n{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        let entries = v["entries"].as_u64().unwrap();
        let after = written.load(Ordering::Relaxed);
        assert!(after > before, "run {run}: the writer appended during the run ({before} -> {after})");
        assert!(
            entries >= before,
            "run {run}: the run saw at least what was acknowledged before it ({entries} < {before})"
        );
        seen.push(entries);
    }
    stop_writing.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(seen[0] < seen[3], "later runs saw a longer ledger: {seen:?}");
    eprintln!("entries seen by the four runs: {seen:?}");
    stop(node, files.data_dir()).await;
    let (code, v, err) = run_json(&["verify", "--db", &data, "--genesis", &g, "--quiet"]);
    assert_eq!(code, 0, "{v}\n{err}");
}
