//! The merchant light node against real community nodes on 127.0.0.1: settlements made outside
//! the till are found on the home ledger (proven against a cosigned checkpoint) and reconciled;
//! a sale waits, and says why, while the witnesses are down, and is accepted once they cosign.
#![allow(clippy::unwrap_used)]

mod merchant_common;

use linli_protocol::body::{SettlementRequest, Signed};
use linli_protocol::testkit::key;
use linli_protocol::FEN_PER_POINT;
use merchant_common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_made_outside_the_till_is_found_on_the_ledger() {
    let mut rig = three_communities("c0-hua").await;
    let mut m = c1_merchant_for_c0_points(&rig, "m-outside", &[1]).await;
    rig.start_merchant(&mut m).await;
    let (s, v) = sale(&rig, &m, "c0", &payment(&rig, "c0-hua", &m, 40, 400, 1)).await;
    assert_eq!(s, 200, "{v}");
    reconcile_until_credited(&rig, &m, 1).await;

    // The merchant settles 15 points at the node's API, with its key, not through the till.
    let outside = SettlementRequest {
        merchant: key("m-outside").public(),
        issuer: linli_protocol::testkit::cid("c0"),
        points: 15,
        fen: 15 * FEN_PER_POINT,
        nonce: 7,
    };
    let (s, v) = rig.post(1, "/v1/settle", json!(Signed::sign(outside, &key("m-outside"), &rig.genesis_hash))).await;
    assert_eq!(s, 200, "{v}");
    let outside_seq = v["seq"].as_u64().unwrap();
    // And 10 through the till: proven like a receipt (inclusion proof, cosigned checkpoint).
    let (s, settled) = rig.till_post(&m, "/v1/till/settlements", json!({"issuer": "c0", "points": 10})).await;
    assert_eq!(s, 200, "{settled}");
    assert_eq!(settled["origin"], "Till");
    assert!(settled["checkpoint_size"].as_u64().unwrap() > settled["at"]["seq"].as_u64().unwrap(), "{settled}");
    assert!(settled["proof"]["checkpoint"]["cosignatures"].as_array().unwrap().len() >= 2, "{settled}");

    let r = reconcile_until(&rig, &m, "both settlements", |r| r["settlements_proven"] == 2).await;
    assert_eq!(
        (r["settlements"].as_u64(), r["settlements_from_ledger"].as_u64(), r["settlements_unproven"].as_u64()),
        (Some(2), Some(1), Some(0)),
        "{r}"
    );
    let c0 = &r["issuers"][0];
    assert_eq!(c0["issuer"], "c0");
    assert_eq!(
        (c0["credited_points"].as_u64(), c0["settled_points"].as_u64(), c0["settled_fen"].as_u64()),
        (Some(40), Some(25), Some(250)),
        "{r}"
    );
    assert_eq!(c0["unsettled_points"], 15, "40 credited - 25 settled: {r}");
    // The till lists the outside settlement, proven, with its place on the ledger.
    let list = rig.till_get(&m, "/v1/till/settlements").await;
    let found = list.as_array().unwrap().iter().find(|s| s["origin"] == "Ledger").expect("found on the ledger");
    assert_eq!(
        (found["points"].as_u64(), found["fen"].as_u64(), found["nonce"].as_u64()),
        (Some(15), Some(150), Some(7))
    );
    assert_eq!((found["at"]["community"].as_str(), found["at"]["seq"].as_u64()), (Some("c1"), Some(outside_seq)));
    assert!(found["proof"].is_object(), "{found}");
    // Reconciling again finds nothing new and counts nothing twice.
    let (_, again) = rig.till_post(&m, "/v1/till/reconcile", Value::Null).await;
    assert_eq!((again["settlements_found_now"].as_u64(), again["settlements"].as_u64()), (Some(0), Some(2)));
    assert_eq!(again["issuers"][0]["settled_points"], 25);
    // What the ledger holds agrees: 15 points left with the merchant.
    let acc = rig.account(1, "c1", &key("m-outside").public().to_hex()).await;
    assert_eq!(acc["holdings"][0]["points"], 15, "{acc}");
    rig.stop_merchant(&mut m).await;
    stop_and_check(&mut rig, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_waits_while_the_witnesses_are_down() {
    let mut rig = three_communities("c0-ling").await;
    // A merchant of c0 (no exposure limit needed) connected to c0's node only; it needs both
    // other communities' cosignatures, and gives up on a sale after 3 s.
    let mut m = rig.merchant("m-wait", 0, &[0], 2);
    rig.register_merchant(&m).await;
    converge_all(&rig, 3).await;
    set_proof_timeout(&m, 3000);
    rig.start_merchant(&mut m).await;

    // The witnesses (c1's and c2's nodes) go down.
    rig.stop(1).await;
    rig.stop(2).await;
    let p = payment(&rig, "c0-ling", &m, 20, 200, 1);
    let (s, v) = sale(&rig, &m, "c0", &p).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (202, "unconfirmed"), "not accepted without witnesses: {v}");
    let reason = v["message"].as_str().unwrap();
    assert!(reason.contains("awaiting witnesses"), "{reason}");
    assert_eq!(rig.till_get(&m, "/v1/till/receipts").await, json!([]), "no receipt without a cosigned checkpoint");

    // They come back and catch up. c0's ledger does not move on: its checkpoint covering the
    // payment was made while they were down, so each asks a peer for the latest checkpoint,
    // cosigns it and gossips the cosignature; with both, the sale is accepted.
    rig.start(1).await;
    rig.start(2).await;
    converge_all(&rig, 3).await;
    let r = reconcile_until(&rig, &m, "the pending sale", |r| r["receipts"] == 1).await;
    assert_eq!(r["pending"], 0, "{r}");
    let receipts = rig.till_get(&m, "/v1/till/receipts").await;
    assert_eq!(receipts[0]["points"], 20);
    assert!(receipts[0]["witnesses"].as_u64().unwrap() >= 2, "{receipts}");
    // Presented again, the same payment is the same sale, now accepted at once.
    let (s, again) = sale(&rig, &m, "c0", &p).await;
    assert_eq!((s, &again["at"]), (200, &receipts[0]["at"]), "{again}");
    rig.stop_merchant(&mut m).await;
    stop_and_check(&mut rig, 3).await;
}
