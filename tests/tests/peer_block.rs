//! The operator's link cut: `POST /v1/operator/peers/{peer_id}/block` closes and refuses every
//! connection with a peer, both nodes keep accepting writes while cut off, and `/unblock`
//! heals the link so they converge again. Two real nodes on 127.0.0.1 sockets.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use linli_tests::Rig;
use std::time::Duration;

async fn status(rig: &Rig, i: usize) -> serde_json::Value {
    rig.get(i, "/v1/status").await
}

/// Poll node `i`'s connected peer count until `want(count)` (deadline `limit`).
async fn wait_peers(rig: &Rig, i: usize, limit: Duration, what: &str, want: impl Fn(u64) -> bool) {
    rig.wait_status(i, what, limit, |st| want(st["connected_peers"].as_u64().unwrap())).await;
}

/// Own-ledger size of community `c` as node `i` holds it.
async fn size(rig: &Rig, i: usize, c: usize) -> u64 {
    status(rig, i).await["ledgers"][c]["size"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_cuts_and_heals_a_link() {
    let mut rig = Rig::new(2);
    rig.start(0).await;
    rig.start(1).await;
    for i in 0..2 {
        wait_peers(&rig, i, Duration::from_secs(60), "one peer", |n| n == 1).await;
    }
    let p1 = status(&rig, 1).await["peer_id"].as_str().unwrap().to_string();
    let p0 = status(&rig, 0).await["peer_id"].as_str().unwrap().to_string();
    assert_ne!(p0, p1);
    let block = format!("/v1/operator/peers/{p1}/block");

    // Refusals: no token, a bad peer id, the node's own id.
    let r = rig.http.post(format!("{}{block}", rig.members[0].base())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (s, v) = rig.post(0, "/v1/operator/peers/not-a-peer/block", serde_json::Value::Null).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("bad-peer-id")), "{v}");
    let (s, v) = rig.post(0, &format!("/v1/operator/peers/{p0}/block"), serde_json::Value::Null).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("own-peer-id")), "{v}");
    wait_peers(&rig, 0, Duration::from_secs(5), "still one peer", |n| n == 1).await;

    // Cut: node 0 refuses node 1 (node 1 keeps redialling every second and is refused).
    let (s, v) = rig.post(0, &block, serde_json::Value::Null).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["blocked"], true);
    for i in 0..2 {
        wait_peers(&rig, i, Duration::from_secs(30), "no peer", |n| n == 0).await;
    }
    // Both sides keep accepting writes; neither sees the other's while cut.
    rig.enroll_many(0, 0, 5).await;
    rig.enroll_many(1, 0, 3).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!((size(&rig, 0, 0).await, size(&rig, 0, 1).await), (5, 0), "node 0 during the cut");
    assert_eq!((size(&rig, 1, 0).await, size(&rig, 1, 1).await), (0, 3), "node 1 during the cut");
    wait_peers(&rig, 1, Duration::from_secs(1), "still cut", |n| n == 0).await;

    // Heal: both reconnect and converge.
    let (s, v) = rig.post(0, &format!("/v1/operator/peers/{p1}/unblock"), serde_json::Value::Null).await;
    assert_eq!((s, v["blocked"].as_bool()), (200, Some(false)), "{v}");
    for i in 0..2 {
        wait_peers(&rig, i, Duration::from_secs(30), "the peer back", |n| n == 1).await;
    }
    rig.converge(&[0, 1], Duration::from_secs(60), |h| h[0].1 == 5 && h[1].1 == 3).await;

    // The OpenAPI document lists both calls.
    let doc = rig.get(0, "/openapi.json").await;
    for p in ["/v1/operator/peers/{peer_id}/block", "/v1/operator/peers/{peer_id}/unblock"] {
        assert!(doc["paths"][p]["post"].is_object(), "{p} missing from the OpenAPI document");
    }
    for i in 0..2 {
        rig.stop(i).await;
    }
}
