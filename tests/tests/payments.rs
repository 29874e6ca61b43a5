//! Spending across communities with real community nodes and merchant light nodes on
//! 127.0.0.1: a cross-community sale verified by the till, credit, settlement and clearing; a
//! double-spend race across three tills; forged receipts; the time bank across communities;
//! and a light node that reconciles after being offline.
#![allow(clippy::unwrap_used)]

mod merchant_common;

use linli_protocol::body::{Body, Enroll, Signed};
use linli_protocol::checkpoint::EquivocationProof;
use linli_protocol::testkit::{cid, key};
use linli_protocol::{Entry, Hash, SignedEntry};
use linli_tests::{MerchantRig, Rig};
use merchant_common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_community_sale_credit_settle_and_clear() {
    let mut rig = three_communities("c0-alice").await;
    // The merchant of c1 is connected only to c2's node: its payment is forwarded to c0.
    let mut m = c1_merchant_for_c0_points(&rig, "m-c1", &[2]).await;
    rig.start_merchant(&mut m).await;

    let p = payment(&rig, "c0-alice", &m, 30, 500, 1);
    let t = Instant::now();
    let (s, receipt) = sale(&rig, &m, "c0", &p).await;
    let took = t.elapsed();
    assert_eq!(s, 200, "{receipt}");
    eprintln!("cross-community sale accepted after proof verification in {took:?}");
    assert_eq!(receipt["points"], 30);
    assert_eq!(receipt["cash_fen"], 200, "500 fen price - 30 points x 10 fen");
    assert_eq!(receipt["at"]["community"], "c0");
    assert!(receipt["witnesses"].as_u64().unwrap() >= 2, "{receipt}");
    // The same signed payment presented again is the same sale, not a second one.
    let (s, again) = sale(&rig, &m, "c0", &p).await;
    assert_eq!((s, &again["at"]), (200, &receipt["at"]));

    // Refusals a cashier understands.
    let cases = [
        (payment(&rig, "c0-alice", &m, 200, 5000, 2), 422, "insufficient-points"),
        (payment(&rig, "c0-alice", &m, 60, 500, 3), 422, "wrong-amount"),
        (payment(&rig, "c0-alice", &m, 10, 100, 1), 409, "already-used"),
    ];
    for (p, status, code) in cases {
        let (s, v) = sale(&rig, &m, "c0", &p).await;
        assert_eq!((s, v["error"].as_str().unwrap()), (status, code), "{v}");
    }
    let mut expired = payment(&rig, "c0-alice", &m, 10, 100, 4);
    expired.payload.expiry_ms = now_ms() - 1;
    let expired = Signed::sign(expired.payload, &key("c0-alice"), &rig.genesis_hash);
    let (s, v) = sale(&rig, &m, "c0", &expired).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (422, "expired"));
    let mut forged = payment(&rig, "c0-alice", &m, 10, 100, 5);
    forged.payload.points = 5;
    let (s, v) = sale(&rig, &m, "c0", &forged).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (401, "bad-signature"));

    // c1 credits its merchant (per issuer); the till reconciles; the merchant settles.
    let r = reconcile_until_credited(&rig, &m, 1).await;
    assert_eq!(r["issuers"][0]["credited_points"], 30, "{r}");
    let (s, settled) = rig.till_post(&m, "/v1/till/settlements", json!({"issuer": "c0", "points": 30})).await;
    assert_eq!(s, 200, "{settled}");
    assert_eq!((settled["points"].as_u64(), settled["fen"].as_u64()), (Some(30), Some(300)));
    let (s, v) = rig.till_post(&m, "/v1/till/settlements", json!({"issuer": "c0", "points": 1})).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (422, "insufficient-holdings"), "nothing left to settle: {v}");
    let reason = v["message"].as_str().unwrap();
    assert!(reason.starts_with("the merchant does not hold that many points of this community"), "{reason}");
    let (_, r) = rig.till_post(&m, "/v1/till/reconcile", Value::Null).await;
    assert_eq!(
        (r["issuers"][0]["settled_fen"].as_u64(), r["issuers"][0]["unsettled_points"].as_u64()),
        (Some(300), Some(0))
    );

    // Clearing between c0 and c1 nets to what was settled: 300 fen from c0 to c1.
    converge_all(&rig, 3).await;
    let (s, v) = rig.post(1, "/v1/operator/clearings", json!({"counterparty": "c0"})).await;
    assert_eq!(s, 200, "{v}");
    let c = &v["entry"]["entry"]["body"]["Clearing"];
    assert_eq!((c["receivable_fen"].as_u64(), c["payable_fen"].as_u64()), (Some(300), Some(0)), "{v}");
    let (s, v) = rig.post(0, "/v1/operator/clearings", json!({"counterparty": "c1"})).await;
    assert_eq!(s, 200, "{v}");
    let c = &v["entry"]["entry"]["body"]["Clearing"];
    assert_eq!((c["receivable_fen"].as_u64(), c["payable_fen"].as_u64()), (Some(0), Some(300)), "{v}");
    converge_all(&rig, 3).await;
    // Every node holds the same figures for the merchant and the resident.
    for i in 0..3 {
        let alice = rig.account(i, "c0", &key("c0-alice").public().to_hex()).await;
        assert_eq!((alice["points"].as_u64(), alice["points_value_fen"].as_u64()), (Some(70), Some(700)));
        let merchant = rig.account(i, "c1", &key("m-c1").public().to_hex()).await;
        assert_eq!(merchant["holdings"], json!([]), "settled: nothing held on node {i}");
    }
    rig.stop_merchant(&mut m).await;
    stop_and_check(&mut rig, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_spend_race_across_three_tills() {
    let mut rig = three_communities("c0-bob").await;
    exposure_limit(&rig, 1, "c0", 1_000_000).await;
    exposure_limit(&rig, 2, "c0", 1_000_000).await;
    let mut tills: Vec<MerchantRig> = (0..3).map(|i| rig.merchant(&format!("m{i}"), i, &[i], 1)).collect();
    for m in &tills {
        rig.register_merchant(m).await;
    }
    converge_all(&rig, 3).await;
    for m in tills.iter_mut() {
        rig.start_merchant(m).await;
    }
    let rig_ref = &rig;
    let sales = (0..50u64).map(|k| {
        let m = &tills[(k % 3) as usize];
        let p = payment(rig_ref, "c0-bob", m, 10, 100, 100 + k);
        async move { sale(rig_ref, m, "c0", &p).await }
    });
    let results = futures::future::join_all(sales).await;
    let accepted = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<&Value> = results.iter().filter(|(s, _)| *s != 200).map(|(_, v)| v).collect();
    assert_eq!(accepted, 10, "exactly 100 points' worth accepted: {results:?}");
    assert!(refused.iter().all(|v| v["error"] == "insufficient-points"), "{refused:?}");
    converge_all(&rig, 3).await;
    // All nodes agree: bob has nothing left, the three merchants were credited 100 points.
    let start = Instant::now();
    loop {
        let mut agree = true;
        for i in 0..3 {
            let bob = rig.account(i, "c0", &key("c0-bob").public().to_hex()).await;
            agree &= bob["points"] == 0;
            let mut held = 0;
            for (j, m) in tills.iter().enumerate() {
                let acc = rig.account(i, &format!("c{j}"), &key(&m.label).public().to_hex()).await;
                held += acc["holdings"].as_array().unwrap().iter().map(|h| h["points"].as_u64().unwrap()).sum::<u64>();
            }
            agree &= held == 100;
        }
        if agree {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "nodes never agreed on the race's outcome");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut receipts = 0;
    for m in tills.iter_mut() {
        let (_, r) = rig.till_post(m, "/v1/till/reconcile", Value::Null).await;
        receipts += r["receipts"].as_u64().unwrap();
        rig.stop_merchant(m).await;
    }
    assert_eq!(receipts, 10);
    stop_and_check(&mut rig, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_receipts_are_refused() {
    let mut rig = three_communities("c0-carol").await;
    let mut m = c1_merchant_for_c0_points(&rig, "m-forged", &[1]).await;
    rig.start_merchant(&mut m).await;
    let p = payment(&rig, "c0-carol", &m, 20, 200, 1);
    let (s, receipt) = sale(&rig, &m, "c0", &p).await;
    assert_eq!(s, 200, "{receipt}");
    let proof = receipt["proof"].clone();
    let check = |proof: Value| {
        let body = json!({"payment": p, "proof": proof});
        let (rig, m) = (&rig, &m);
        async move { rig.till_post(m, "/v1/till/receipts/verify", body).await }
    };
    let (s, v) = check(proof.clone()).await;
    assert_eq!(s, 200, "the genuine receipt verifies: {v}");

    let flip = |hex: &str| {
        let mut b = hex.as_bytes().to_vec();
        b[0] = if b[0] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).unwrap()
    };
    let mut bad_sig = proof.clone();
    bad_sig["entry"]["signature"] = json!(flip(proof["entry"]["signature"].as_str().unwrap()));
    let mut bad_path = proof.clone();
    bad_path["inclusion"]["path"][0] = json!(Hash([7; 32]));
    let mut bad_root = proof.clone();
    bad_root["checkpoint"]["signed"]["checkpoint"]["root"] = json!(Hash([7; 32]));
    let mut few_witnesses = proof.clone();
    few_witnesses["checkpoint"]["cosignatures"] = json!([proof["checkpoint"]["cosignatures"][0]]);
    let mut other_payment = proof.clone();
    other_payment["entry"]["entry"]["body"]["Pay"]["payment"]["payload"]["points"] = json!(19);
    for (what, forged) in [
        ("bad entry signature", bad_sig),
        ("wrong inclusion path", bad_path),
        ("checkpoint root not signed", bad_root),
        ("too few cosignatures", few_witnesses),
        ("another payment", other_payment),
    ] {
        let (s, v) = check(forged).await;
        assert_eq!((s, v["error"].as_str().unwrap()), (422, "proof-invalid"), "{what}: {v}");
    }

    // c0 is caught equivocating: once the alert reaches the till, c0's proofs are refused.
    let c0 = key("c0/signing");
    let conflicting = |salt: u8| {
        let entry = Entry {
            community: cid("c0"),
            seq: 500,
            prev_hash: Hash::ZERO,
            time_ms: now_ms(),
            body: Body::Enroll(Enroll { resident: key("nobody").public(), profile_hash: Hash([salt; 32]) }),
        };
        Box::new(SignedEntry::sign(entry, &c0, &rig.genesis_hash))
    };
    let alert = EquivocationProof::Entries(conflicting(1), conflicting(2));
    assert!(rig.members[2].node.as_ref().unwrap().sequencer.alert(alert).await.unwrap());
    let start = Instant::now();
    loop {
        let (s, v) = check(proof.clone()).await;
        if s == 422 && v["error"] == "issuer-faulty" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the till never learned of the equivocation: {s} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rig.stop_merchant(&mut m).await;
    for i in 0..3 {
        rig.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_bank_minutes_earned_in_one_community_spent_in_another() {
    use linli_protocol::body::{TimeDraw, TimeService};
    let mut rig = Rig::new(3);
    for i in 0..3 {
        rig.start(i).await;
    }
    for label in ["c0-dora", "c0-eli"] {
        let (s, v) = rig
            .post(0, "/v1/operator/residents", json!({"resident": key(label).public(), "profile_hash": Hash::ZERO}))
            .await;
        assert_eq!(s, 200, "{v}");
    }
    // A throwaway key cannot confirm a service: the resident is told why.
    let fake = TimeService {
        provider: key("c0-dora").public(),
        served: key("throwaway").public(),
        minutes: 600,
        service: "nothing".into(),
        nonce: 1,
    };
    let (s, v) = rig.post(0, "/v1/time/credit", json!(Signed::sign(fake, &key("throwaway"), &rig.genesis_hash))).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (422, "served-not-resident"), "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(message.contains("must be an active resident of c0, but is not enrolled in c0"), "{message}");
    // Dora serves Eli for 90 minutes; Eli confirms with his signature.
    let service = TimeService {
        provider: key("c0-dora").public(),
        served: key("c0-eli").public(),
        minutes: 90,
        service: "陪诊 hospital escort".into(),
        nonce: 1,
    };
    let signed = Signed::sign(service, &key("c0-eli"), &rig.genesis_hash);
    let (s, v) = rig.post(0, "/v1/time/credit", json!(signed)).await;
    assert_eq!(s, 200, "{v}");
    // Dora draws 60 minutes for a service received in c2.
    let draw = TimeDraw {
        resident: key("c0-dora").public(),
        minutes: 60,
        serving_community: cid("c2"),
        service: "维修 home repair".into(),
        nonce: 2,
    };
    let signed = Signed::sign(draw, &key("c0-dora"), &rig.genesis_hash);
    let (s, v) = rig.post(0, "/v1/time/spend", json!(signed)).await;
    assert_eq!(s, 200, "{v}");
    let source = v["hash"].as_str().unwrap().to_string();
    // Overdrawing is refused.
    let over = TimeDraw {
        resident: key("c0-dora").public(),
        minutes: 31,
        serving_community: cid("c1"),
        service: "x".into(),
        nonce: 3,
    };
    let (s, v) = rig.post(0, "/v1/time/spend", json!(Signed::sign(over, &key("c0-dora"), &rig.genesis_hash))).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (422, "insufficient-minutes"));
    // c2 records the fulfilment; every node agrees on the balances.
    let start = Instant::now();
    loop {
        let entries = rig.get(2, "/v1/ledgers/c2/entries?from=0").await;
        let fulfilled = entries.as_array().unwrap().iter().any(|e| {
            e["kind"] == "time-fulfil" && e["entry"]["body"]["TimeFulfil"]["source"]["hash"] == source.as_str()
        });
        if fulfilled {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "c2 never recorded the fulfilment: {entries}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    converge_all(&rig, 3).await;
    for i in 0..3 {
        let dora = rig.account(i, "c0", &key("c0-dora").public().to_hex()).await;
        assert_eq!((dora["minutes"].as_u64(), dora["points"].as_u64()), (Some(30), Some(0)), "node {i}: {dora}");
        let eli = rig.account(i, "c0", &key("c0-eli").public().to_hex()).await;
        assert_eq!(eli["minutes"], 0, "minutes go to the provider, never to points");
    }
    stop_and_check(&mut rig, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_light_node_reconciles_when_back() {
    let mut rig = three_communities("c0-fay").await;
    let mut m = c1_merchant_for_c0_points(&rig, "m-offline", &[0, 1]).await;
    // A till that gives up at once: the sale is sequenced but its proof is not verified yet.
    set_proof_timeout(&m, 1);
    rig.start_merchant(&mut m).await;
    let (s, v) = sale(&rig, &m, "c0", &payment(&rig, "c0-fay", &m, 40, 400, 1)).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (202, "unconfirmed"), "{v}");
    rig.stop_merchant(&mut m).await;
    // While the till is offline the federation goes on.
    rig.resident_with_100_points(0, "c0-gus", 2).await;
    converge_all(&rig, 3).await;
    set_proof_timeout(&m, 10_000);
    rig.start_merchant(&mut m).await;
    let r = reconcile_until_credited(&rig, &m, 1).await;
    assert_eq!((r["receipts"].as_u64(), r["pending"].as_u64()), (Some(1), Some(0)), "{r}");
    assert_eq!(r["issuers"][0]["credited_points"], 40);
    let receipts = rig.till_get(&m, "/v1/till/receipts").await;
    assert_eq!(receipts[0]["points"], 40);
    assert!(receipts[0]["credit"]["community"] == "c1", "{receipts}");
    rig.stop_merchant(&mut m).await;
    stop_and_check(&mut rig, 3).await;
}
