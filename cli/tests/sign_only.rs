//! `linli submit pay --print`: the resident signs a payment without submitting it; what is
//! printed is the sale request a merchant's till takes, and the node's ledger is unchanged
//! until someone (the till) submits it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use linli_protocol::body::{Payment, Signed};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_print_signs_without_submitting() {
    let files = NodeFiles::new();
    let node = linli_node::node::start(&files.config(), false).await.unwrap();
    let api = Api::new(node.http_addr, files.genesis_hash);
    scenario(&api).await;
    let keys = tempfile::tempdir().unwrap();
    let r1 = keys.path().join("r1.key");
    linli_node::keyfile::write_key(&r1, &key("r1")).unwrap();
    let size = |status: Value| status["ledgers"][0]["size"].as_u64().unwrap();
    let http = reqwest::Client::new();
    let status = || async { http.get(format!("{}/v1/status", api.base)).send().await.unwrap().json::<Value>().await };
    let before = size(status().await.unwrap());

    let shop = key("shop").public().to_hex();
    let args = [
        "submit",
        "pay",
        "--key",
        r1.to_str().unwrap(),
        "--url",
        &api.base,
        "--genesis",
        &files.genesis_arg(),
        "--merchant",
        &shop,
        "--merchant-community",
        "lianhua",
        "--points",
        "12",
        "--price-fen",
        "150",
        "--nonce",
        "41",
        "--print",
    ];
    let (code, out, err) = run_async(common::args(&args)).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let sale: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sale["payer_community"], "lianhua", "{sale}");
    let payment: Signed<Payment> = serde_json::from_value(sale["payment"].clone()).unwrap();
    payment.verify(&files.genesis_hash).unwrap();
    assert_eq!((payment.payload.payer, payment.payload.points, payment.payload.nonce), (key("r1").public(), 12, 41));
    assert_eq!(size(status().await.unwrap()), before, "--print submits nothing");

    // The printed payment is a valid one: submitted (as a till would), it is sequenced.
    let (s, v) = api.post("/v1/pay", json!(payment), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["kind"].as_str(), v["seq"].as_u64()), (Some("pay"), Some(before)), "{v}");
    stop(node, files.data_dir()).await;
}
