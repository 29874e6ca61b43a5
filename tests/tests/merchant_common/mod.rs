//! Helpers shared by the tests of spending across communities (`payments`, `till`, `keys`): signed
//! payments, sales at a till, exposure limits, convergence and the final replay of every store.
#![allow(clippy::unwrap_used, dead_code)]

use linli_protocol::body::{Payment, Signed};
use linli_protocol::testkit::{cid, key};
use linli_tests::{MerchantRig, Rig};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A resident-signed payment (valid for ten minutes).
pub fn payment(rig: &Rig, payer: &str, m: &MerchantRig, points: u64, price_fen: u64, nonce: u64) -> Signed<Payment> {
    let p = Payment {
        payer: key(payer).public(),
        merchant: key(&m.label).public(),
        merchant_community: cid(&rig.members[m.home].id),
        points,
        price_fen,
        nonce,
        expiry_ms: now_ms() + 600_000,
        genesis: rig.genesis_hash,
    };
    Signed::sign(p, &key(payer), &rig.genesis_hash)
}

pub async fn sale(rig: &Rig, m: &MerchantRig, payer_community: &str, p: &Signed<Payment>) -> (u16, Value) {
    rig.till_post(m, "/v1/till/sales", json!({"payer_community": payer_community, "payment": p})).await
}

/// Let `creditor` carry up to `limit_fen` of `issuer`'s points.
pub async fn exposure_limit(rig: &Rig, creditor: usize, issuer: &str, limit_fen: u64) {
    let (s, v) =
        rig.post(creditor, "/v1/operator/exposure-limits", json!({"issuer": issuer, "limit_fen": limit_fen})).await;
    assert_eq!(s, 200, "{v}");
}

pub async fn converge_all(rig: &Rig, n: usize) {
    let all: Vec<usize> = (0..n).collect();
    rig.converge(&all, Duration::from_secs(60), |_| true).await;
}

/// Stop every node and replay every store from genesis (all invariants, conservation).
pub async fn stop_and_check(rig: &mut Rig, n: usize) {
    for i in 0..n {
        rig.stop(i).await;
        let config = linli_node::config::Config::load(&rig.members[i].config_path).unwrap();
        let store = linli_node::store::Store::open(&config.data_dir, &rig.genesis).unwrap();
        let state = store.load_state(&rig.genesis).unwrap();
        linli_node::node::full_check(&store, &rig.genesis, &state).unwrap();
        assert_eq!(state.conservation_violation(), None, "conservation on node {i}");
    }
}

/// Reconcile until `done` holds for the report (30 s at most).
pub async fn reconcile_until(rig: &Rig, m: &MerchantRig, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (s, r) = rig.till_post(m, "/v1/till/reconcile", Value::Null).await;
        assert_eq!(s, 200, "{r}");
        if done(&r) {
            return r;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{what} never reconciled: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn reconcile_until_credited(rig: &Rig, m: &MerchantRig, credited: u64) -> Value {
    reconcile_until(rig, m, "credits", |r| r["credited"].as_u64() == Some(credited)).await
}

/// Three community nodes (c0, c1, c2) started, the default rules published on c0, and `payer`
/// a resident of c0 with 100 points.
pub async fn three_communities(payer: &str) -> Rig {
    let mut rig = Rig::new(3);
    for i in 0..3 {
        rig.start(i).await;
    }
    rig.publish_default_rules(0).await;
    rig.resident_with_100_points(0, payer, 1).await;
    rig
}

/// A merchant of c1 taking c0's points (c1 carries up to 100,000 fen of them) whose till,
/// connected to the nodes `via`, needs 2 witnesses: registered and converged, not started.
pub async fn c1_merchant_for_c0_points(rig: &Rig, label: &str, via: &[usize]) -> MerchantRig {
    exposure_limit(rig, 1, "c0", 100_000).await;
    let m = rig.merchant(label, 1, via, 2);
    rig.register_merchant(&m).await;
    converge_all(rig, 3).await;
    m
}

/// Rewrite the till's configured proof timeout (takes effect at its next start).
pub fn set_proof_timeout(m: &MerchantRig, ms: u64) {
    use linli_node::merchant::config::MerchantConfigFile;
    let mut cfg: MerchantConfigFile = toml::from_str(&std::fs::read_to_string(&m.config_path).unwrap()).unwrap();
    cfg.proof_timeout_ms = ms;
    std::fs::write(&m.config_path, toml::to_string(&cfg).unwrap()).unwrap();
}
