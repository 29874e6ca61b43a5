//! `linli verify` on the store of a node that took an equivocator's branch without the payment
//! an honest ledger's credit cites: the store holds that payment as evidence, and the audit
//! checks it as the node did; without the evidence the audit names the entry it cannot check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{run, run_json, Raw};
use linli_node::sequencer::{Clock, Input, Output, Sequencer};
use linli_node::store::{Column, Store};
use linli_protocol::testkit::{cid, key, ForkedPayment, TestFederation};
use linli_protocol::State;
use std::sync::Arc;

/// A node of `c` on the other branch, which took `b`'s credit on evidence; returns the
/// directory (with `genesis.toml` and `data`) and the evidence's hash.
fn store_with_evidence() -> (tempfile::TempDir, linli_protocol::Hash) {
    let fed = TestFederation::new(&["a", "b", "c"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("genesis.toml"), fed.genesis.to_toml()).unwrap();
    let fork = ForkedPayment::new(&fed);
    let store = Store::open(&dir.path().join("data"), &fed.genesis).unwrap();
    let clock: Clock = Arc::new(|| u64::MAX / 4);
    let state = State::new(&fed.genesis);
    let mut node = Sequencer::new(cid("c"), fed.genesis.clone(), key("c/signing"), store, state, None, clock);
    let credit = fork.b_entries[2].clone();
    let inputs = [
        Input::Ingest([fork.a_prefix.clone(), vec![fork.other.clone()]].concat()),
        Input::Ingest(fork.b_entries[..2].to_vec()),
        Input::Alert(fork.proof()),
        Input::Ingest(vec![credit.clone()]),
        Input::Ingest(vec![fork.pay.clone()]),
        Input::Ingest(vec![credit]),
    ];
    for input in inputs {
        node.step(vec![input]);
    }
    match node.step(vec![Input::Ingest(vec![fork.b_entries[2].clone()])]).pop() {
        Some(Output::Ingest(o)) => assert_eq!(o.known, 1, "the credit was not taken: {o:?}"),
        other => panic!("{other:?}"),
    }
    drop(node);
    (dir, fork.pay.hash(&fed.genesis_hash))
}

#[test]
fn verify_checks_the_evidence_a_store_holds() {
    let (dir, evidence) = store_with_evidence();
    let data = dir.path().join("data");
    let genesis = dir.path().join("genesis.toml");
    let args = ["verify", "--db", data.to_str().unwrap(), "--genesis", genesis.to_str().unwrap(), "--quiet"];
    let (code, v, err) = run_json(&args);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["evidence"], 1, "{v}");
    assert_eq!(v["stored_state_checked"], true, "{v}");
    let (code, out, _) = run(&args[..5]);
    assert_eq!(code, 0);
    assert!(out.contains("1 entries of proven equivocators, past their fork, checked as evidence"), "{out}");

    // Without the evidence the credit cites an entry no ledger read holds.
    {
        let raw = Raw::open(&data);
        raw.delete_raw(Column::Evidence, &evidence.0);
    }
    let (code, v, err) = run_json(&args);
    assert_ne!(code, 0, "{v} {err}");
    assert_eq!(v["failure"]["rule"], "missing-dependency", "{v}");
    assert_eq!(v["failure"]["community"], "b", "{v}");
}
