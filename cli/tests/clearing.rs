//! `linli verify` recomputes every `Clearing` entry's figures from the ledgers: on a real
//! node's RocksDB directory holding a clearing whose fen figure was changed (and the entry
//! re-signed with the community key, as a dishonest operator could), it exits non-zero naming
//! the community, the seq and the rule `clearing-figure`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use linli_node::store::Column;
use linli_protocol::body::Body;
use linli_protocol::SignedEntry;
use serde_json::json;

/// A stopped node's directory: the common scenario, then a clearing of lianhua with shatou.
fn ledger_with_a_clearing() -> (NodeFiles, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let files = NodeFiles::new();
    let seq = rt.block_on(async {
        let node = linli_node::node::start(&files.config(), false).await.unwrap();
        let api = Api::new(node.http_addr, files.genesis_hash);
        scenario(&api).await;
        let c = api.op("/v1/operator/clearings", json!({"counterparty": "shatou"})).await;
        assert_eq!(c["kind"], "clearing", "{c}");
        stop(node, files.data_dir()).await;
        c["seq"].as_u64().unwrap()
    });
    (files, seq)
}

fn verify(files: &NodeFiles) -> (i32, serde_json::Value, String) {
    run_json(&["verify", "--db", &files.data(), "--genesis", &files.genesis_arg(), "--quiet"])
}

#[test]
fn a_clearing_with_a_wrong_fen_figure_is_flagged() {
    let (files, seq) = ledger_with_a_clearing();
    let (code, v, err) = verify(&files);
    assert_eq!((code, v["ok"].as_bool()), (0, Some(true)), "the honest ledger verifies: {v}\n{err}");

    // Nothing was settled between the two: the clearing's receivable must be 0 fen. Claim 300.
    let raw = Raw::open(&files.data_dir());
    let mut e = SignedEntry::from_bytes(&raw.get(Column::Entries, "lianhua", seq)).unwrap().entry;
    let Body::Clearing(c) = &mut e.body else { panic!("seq {seq} is not a clearing") };
    assert_eq!((c.counterparty.as_str(), c.receivable_fen), ("shatou", 0));
    c.receivable_fen = 300;
    let resigned = SignedEntry::sign(e, &key("lianhua/signing"), &files.genesis_hash);
    raw.put(Column::Entries, "lianhua", seq, &resigned.to_bytes());
    drop(raw);

    let (code, v, err) = verify(&files);
    assert_eq!(code, 1, "{v}\n{err}");
    let f = &v["failure"];
    assert_eq!(
        (f["community"].as_str(), f["seq"].as_u64(), f["rule"].as_str(), f["kind"].as_str()),
        (Some("lianhua"), Some(seq), Some("clearing-figure"), Some("clearing")),
        "{v}"
    );
    assert!(f["message"].as_str().unwrap().contains("receivable_fen must be 0, got 300"), "{f}");
    // The human-readable form names them too.
    let (code, _, err) = run(&["verify", "--db", &files.data(), "--genesis", &files.genesis_arg()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("community lianhua")
            && err.contains(&format!("seq {seq}"))
            && err.contains("rule clearing-figure"),
        "{err}"
    );
}
