//! API tests over real HTTP against a node with a real RocksDB directory: each endpoint's happy
//! path and its main refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{node_files, resident, TOKEN};
use linli_protocol::body::{Payment, Redemption, Signed, TimeDraw, TimeService};
use linli_protocol::merkle::{ConsistencyProof, InclusionProof};
use linli_protocol::rules::RuleTable;
use linli_protocol::{CommunityId, Hash, Keypair};
use serde_json::{json, Value};

struct Api {
    base: String,
    http: reqwest::Client,
    genesis_hash: Hash,
}

impl Api {
    async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
    async fn op(&self, path: &str, body: Value) -> (u16, Value) {
        self.post(path, body, Some(TOKEN)).await
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
    fn payment(
        &self,
        payer: &Keypair,
        merchant: &Keypair,
        community: &str,
        points: u64,
        price_fen: u64,
        nonce: u64,
    ) -> Value {
        let p = Payment {
            payer: payer.public(),
            merchant: merchant.public(),
            merchant_community: CommunityId::new(community).unwrap(),
            points,
            price_fen,
            nonce,
            expiry_ms: u64::MAX,
            genesis: self.genesis_hash,
        };
        serde_json::to_value(Signed::sign(p, payer, &self.genesis_hash)).unwrap()
    }
}

fn err(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_happy_paths_and_refusals() {
    let files = node_files(&["lianhua", "shatou"], "lianhua", "127.0.0.1:0");
    let node = linli_node::node::start(&files.config(), false).await.unwrap();
    let api = Api {
        base: format!("http://{}", node.http_addr),
        http: reqwest::Client::new(),
        genesis_hash: files.genesis_hash,
    };
    let r1 = resident("r1");
    let shop = resident("shop");

    // Operator calls need the token.
    let enroll = json!({"resident": r1.public(), "profile_hash": Hash([1; 32])});
    let (s, v) = api.post("/v1/operator/residents", enroll.clone(), None).await;
    assert_eq!((s, err(&v)), (401, "unauthorized"));
    let (s, v) = api.post("/v1/operator/residents", enroll.clone(), Some("wrong")).await;
    assert_eq!((s, err(&v)), (401, "unauthorized"));
    let (s, v) = api.op("/v1/operator/residents", enroll.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["seq"], 0);
    assert_eq!(v["duplicate"], false);
    // Idempotent: the same enrolment returns the original entry.
    let (s, v2) = api.op("/v1/operator/residents", enroll.clone()).await;
    assert_eq!((s, v2["duplicate"].as_bool(), &v2["hash"]), (200, Some(true), &v["hash"]));

    // Malformed JSON, wrong field types, unknown fields, oversized bodies.
    let resp = api
        .http
        .post(format!("{}/v1/operator/residents", api.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(err(&resp.json::<Value>().await.unwrap()), "malformed-json");
    let (s, v) = api.op("/v1/operator/residents", json!({"resident": "zz", "profile_hash": Hash::ZERO})).await;
    assert!(s == 422 || s == 400, "{s} {v}");
    assert!(v["message"].as_str().unwrap().contains("resident"), "{v}");
    let big = "x".repeat(100_000);
    let (s, v) =
        api.op("/v1/operator/merchants", json!({"merchant": shop.public(), "name": big, "category": "food"})).await;
    assert_eq!((s, err(&v)), (413, "body-too-large"));

    let (s, v) = api
        .op("/v1/operator/merchants", json!({"merchant": shop.public(), "name": "Tea shop", "category": "food"}))
        .await;
    assert_eq!(s, 200, "{v}");

    // Rules and awards: the node computes the points.
    let (s, v) = api
        .op(
            "/v1/operator/awards",
            json!({"resident": r1.public(), "activity": "cleanup", "minutes": 60, "rating": 5, "request_id": 1}),
        )
        .await;
    assert_eq!((s, err(&v)), (422, "rules-missing"));
    let (s, v) = api.op("/v1/operator/rules", serde_json::to_value(RuleTable::default_table(1)).unwrap()).await;
    assert_eq!(s, 200, "{v}");
    let award = json!({"resident": r1.public(), "activity": "mediation", "minutes": 180, "rating": 5, "bonuses": ["complex"], "request_id": 2, "points": 150});
    let (s, v) = api.op("/v1/operator/awards", award).await;
    assert_eq!((s, err(&v)), (422, "award-points"), "{v}");
    assert!(v["message"].as_str().unwrap().contains("gives 200"), "{v}");
    let award = json!({"resident": r1.public(), "activity": "mediation", "minutes": 180, "rating": 5, "bonuses": ["complex"], "request_id": 2});
    let (s, v) = api.op("/v1/operator/awards", award.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["entry"]["entry"]["body"]["Award"]["points"], 200);
    let (_, again) = api.op("/v1/operator/awards", award).await;
    assert_eq!(again["duplicate"], true);

    let (s, acct) = api.get(&format!("/v1/accounts/lianhua/{}", r1.public())).await;
    assert_eq!(s, 200);
    assert_eq!((acct["points"].as_u64(), acct["points_value_fen"].as_u64()), (Some(200), Some(2000)));

    // Payments at a merchant of the same community.
    let (s, v) = api.post("/v1/pay", api.payment(&r1, &shop, "lianhua", 30, 299, 1), None).await;
    assert_eq!((s, err(&v)), (422, "exchange-rate"), "{v}");
    let (s, v) = api.post("/v1/pay", api.payment(&r1, &shop, "lianhua", 300, 3000, 1), None).await;
    assert_eq!((s, err(&v)), (422, "insufficient-points"), "{v}");
    let mut forged = api.payment(&r1, &shop, "lianhua", 30, 300, 1);
    forged["payload"]["points"] = json!(31);
    let (s, v) = api.post("/v1/pay", forged, None).await;
    assert_eq!((s, err(&v)), (401, "signature"), "{v}");
    let pay = api.payment(&r1, &shop, "lianhua", 30, 300, 1);
    let (s, v) = api.post("/v1/pay", pay.clone(), None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v2) = api.post("/v1/pay", pay, None).await;
    assert_eq!((s, v2["duplicate"].as_bool(), &v2["hash"]), (200, Some(true), &v["hash"]));
    let (s, v) = api.post("/v1/pay", api.payment(&r1, &shop, "lianhua", 5, 50, 1), None).await;
    assert_eq!((s, err(&v)), (409, "nonce-reused"), "{v}");

    // The merchant was credited; settle at exactly 10 fen a point.
    let (_, m) = api.get(&format!("/v1/accounts/lianhua/{}", shop.public())).await;
    assert_eq!(m["holdings"][0]["points"], 30, "{m}");
    let settle = |points: u64, fen: u64, nonce: u64| {
        let req = linli_protocol::body::SettlementRequest {
            merchant: shop.public(),
            issuer: CommunityId::new("lianhua").unwrap(),
            points,
            fen,
            nonce,
        };
        serde_json::to_value(Signed::sign(req, &shop, &files.genesis_hash)).unwrap()
    };
    let (s, v) = api.post("/v1/settle", settle(30, 301, 1), None).await;
    assert_eq!((s, err(&v)), (422, "exchange-rate"), "{v}");
    let (s, v) = api.post("/v1/settle", settle(30, 300, 1), None).await;
    assert_eq!(s, 200, "{v}");

    // Redeem and the time bank.
    let red = Signed::sign(
        Redemption { resident: r1.public(), points: 20, item: "rice".into(), nonce: 2 },
        &r1,
        &files.genesis_hash,
    );
    let (s, v) = api.post("/v1/redeem", serde_json::to_value(&red).unwrap(), None).await;
    assert_eq!(s, 200, "{v}");
    let r2 = resident("r2");
    api.op("/v1/operator/residents", json!({"resident": r2.public(), "profile_hash": Hash([2; 32])})).await;
    let svc = Signed::sign(
        TimeService { provider: r1.public(), served: r2.public(), minutes: 90, service: "tutoring".into(), nonce: 1 },
        &r2,
        &files.genesis_hash,
    );
    let (s, v) = api.post("/v1/time/credit", serde_json::to_value(&svc).unwrap(), None).await;
    assert_eq!(s, 200, "{v}");
    let draw = Signed::sign(
        TimeDraw {
            resident: r1.public(),
            minutes: 100,
            serving_community: CommunityId::new("shatou").unwrap(),
            service: "repair".into(),
            nonce: 3,
        },
        &r1,
        &files.genesis_hash,
    );
    let (s, v) = api.post("/v1/time/spend", serde_json::to_value(&draw).unwrap(), None).await;
    assert_eq!((s, err(&v)), (422, "insufficient-minutes"), "{v}");
    let draw = Signed::sign(
        TimeDraw {
            resident: r1.public(),
            minutes: 60,
            serving_community: CommunityId::new("shatou").unwrap(),
            service: "repair".into(),
            nonce: 3,
        },
        &r1,
        &files.genesis_hash,
    );
    let (s, v) = api.post("/v1/time/spend", serde_json::to_value(&draw).unwrap(), None).await;
    assert_eq!(s, 200, "{v}");
    let (_, acct) = api.get(&format!("/v1/accounts/lianhua/{}", r1.public())).await;
    assert_eq!((acct["points"].as_u64(), acct["minutes"].as_u64()), (Some(150), Some(30)), "{acct}");

    // Public reads: ranges, by hash, checkpoint, proofs, status, OpenAPI.
    let (s, list) = api.get("/v1/ledgers/lianhua/entries?from=1&limit=3").await;
    assert_eq!(s, 200);
    assert_eq!(
        list.as_array().unwrap().iter().map(|e| e["entry"]["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let h = list[1]["hash"].as_str().unwrap().to_string();
    let (s, e) = api.get(&format!("/v1/entries/{h}")).await;
    assert_eq!((s, e["entry"]["seq"].as_u64()), (200, Some(2)));
    let (s, v) = api.get("/v1/entries/00").await;
    assert_eq!((s, err(&v)), (400, "bad-hash"));
    let (s, _) = api.get("/v1/ledgers/nowhere/entries").await;
    assert_eq!(s, 404);
    let (s, v) = api.get("/v1/ledgers/lianhua/entries?from=abc").await;
    assert_eq!((s, err(&v)), (400, "bad-query"));

    let (s, v) = api.get("/v1/ledgers/lianhua/checkpoint").await;
    assert_eq!(s, 404, "{v}");
    let (s, cp) = api.op("/v1/operator/checkpoints", json!({})).await;
    assert_eq!(s, 200, "{cp}");
    let size = cp["signed"]["checkpoint"]["size"].as_u64().unwrap();
    let root: Hash = serde_json::from_value(cp["signed"]["checkpoint"]["root"].clone()).unwrap();
    let (_, got) = api.get("/v1/ledgers/lianhua/checkpoint").await;
    assert_eq!(got, cp);
    let (s, inc) = api.get(&format!("/v1/ledgers/lianhua/proofs/inclusion?seq=2&size={size}")).await;
    assert_eq!(s, 200, "{inc}");
    let proof: InclusionProof = serde_json::from_value(inc["proof"].clone()).unwrap();
    let leaf: Hash = serde_json::from_value(inc["entry_hash"].clone()).unwrap();
    assert_eq!(leaf.to_hex(), h);
    proof.verify(&leaf, &root).unwrap();
    let (s, con) = api.get(&format!("/v1/ledgers/lianhua/proofs/consistency?old=3&new={size}")).await;
    assert_eq!(s, 200, "{con}");
    let proof: ConsistencyProof = serde_json::from_value(con["proof"].clone()).unwrap();
    let old_root: Hash = serde_json::from_value(con["old_root"].clone()).unwrap();
    proof.verify(&old_root, &root).unwrap();
    let (s, v) = api.get(&format!("/v1/ledgers/lianhua/proofs/inclusion?seq={}", size + 5)).await;
    assert_eq!((s, err(&v)), (400, "bad-proof-request"));

    let (s, st) = api.get("/v1/status").await;
    assert_eq!(s, 200);
    assert_eq!(st["fen_per_point"], 10);
    assert_eq!(st["ledgers"][0]["size"].as_u64(), Some(size));
    let (s, doc) = api.get("/openapi.json").await;
    assert_eq!(s, 200);
    assert!(doc["paths"]["/v1/pay"].is_object(), "{doc}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_payments_from_one_resident() {
    let files = node_files(&["lianhua"], "lianhua", "127.0.0.1:0");
    let node = linli_node::node::start(&files.config(), false).await.unwrap();
    let api = Api {
        base: format!("http://{}", node.http_addr),
        http: reqwest::Client::new(),
        genesis_hash: files.genesis_hash,
    };
    let r1 = resident("r1");
    let shop = resident("shop");
    api.op("/v1/operator/residents", json!({"resident": r1.public(), "profile_hash": Hash::ZERO})).await;
    api.op("/v1/operator/merchants", json!({"merchant": shop.public(), "name": "Shop", "category": "food"})).await;
    api.op("/v1/operator/rules", serde_json::to_value(RuleTable::default_table(1)).unwrap()).await;
    // Two newcomer mediations: 2 x 200 (cap) = 400 points: covers 40 payments of 10.
    for id in 0..2 {
        let (s, v) = api.op("/v1/operator/awards", json!({"resident": r1.public(), "activity": "mediation", "minutes": 60, "rating": 5, "bonuses": ["complex"], "request_id": id})).await;
        assert_eq!(s, 200, "{v}");
    }
    let payments: Vec<Value> = (0..1000).map(|n| api.payment(&r1, &shop, "lianhua", 10, 100, n)).collect();
    let api = std::sync::Arc::new(api);
    let mut tasks = Vec::new();
    for p in payments {
        let api = api.clone();
        tasks.push(tokio::spawn(async move { api.post("/v1/pay", p, None).await }));
    }
    let (mut ok, mut overdraft, mut other) = (0, 0, Vec::new());
    for t in tasks {
        let (s, v) = t.await.unwrap();
        match (s, err(&v)) {
            (200, _) => ok += 1,
            (422, "insufficient-points") => overdraft += 1,
            _ => other.push(format!("{s} {v}")),
        }
    }
    assert!(other.is_empty(), "unexpected answers: {:?}", &other[..other.len().min(3)]);
    assert_eq!((ok, overdraft), (40, 960));
    let (_, acct) = api.get(&format!("/v1/accounts/lianhua/{}", r1.public())).await;
    assert_eq!(acct["points"], 0);
    node.stop().await;
}
