//! Key rotation, revocation and replacement across real nodes: a community rotates its key
//! online and revokes a compromised one with its offline recovery key; every node follows,
//! refuses what the retired or revoked key signs afterwards, and every store replays from
//! genesis. A resident who lost a key moves the account to a new one through the community.
//! A merchant's till follows the key changes of the payer's and of its own community.
#![allow(clippy::unwrap_used)]

mod merchant_common;

use linli_node::network::messages::GossipMessage;
use linli_protocol::body::{Body, Enroll, Redemption, Signed};
use linli_protocol::testkit::{cid, key};
use linli_protocol::{Entry, Hash, Keypair, SignedEntry};
use linli_tests::{GossipPeer, Rig};
use merchant_common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// An entry of c0 at `seq` after `prev`, signed by `signer` (a thief's forgery), timed now.
fn forged(rig: &Rig, signer: &Keypair, seq: u64, prev: Hash) -> SignedEntry {
    let body = Body::Enroll(Enroll { resident: key(&format!("thief-{seq}")).public(), profile_hash: Hash::ZERO });
    let e = Entry { community: cid("c0"), seq, prev_hash: prev, time_ms: now_ms(), body };
    SignedEntry::sign(e, signer, &rig.genesis_hash)
}

/// Gossip `entry` to member `to` and check, after a while, that no node took it.
async fn gossip_is_refused(rig: &Rig, to: usize, entry: SignedEntry, size_before: u64) {
    let mut peer = GossipPeer::connect(rig, to, linli_tests::ENTRIES_TOPIC).await;
    peer.publish_when_ready(GossipMessage::Entry(Box::new(entry)).to_bytes()).await;
    peer.drive(Duration::from_millis(1500)).await;
    // The node received it and judged it invalid: the sender is penalised.
    let net = rig.members[to].node.as_ref().unwrap().network.clone().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    net.control(linli_node::network::Control::Score(peer.peer_id(), tx)).await;
    let score = rx.await.unwrap();
    assert!(score.is_some_and(|s| s < 0.0) || !peer.connected(), "the forgery was not judged invalid: score {score:?}");
    for i in 0..3 {
        let h = rig.heads(i).await;
        assert_eq!(h[0].1, size_before, "node {i} took an entry signed by a retired key: {h:?}");
    }
}

async fn head_of_c0(rig: &Rig) -> (u64, Hash) {
    let h = rig.heads(0).await;
    (h[0].1, Hash::from_hex(&h[0].2).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn community_key_rotation_and_revocation_are_followed_everywhere() {
    let mut rig = Rig::new(3);
    for i in 0..3 {
        rig.start(i).await;
    }
    rig.enroll_many(0, 0, 3).await;
    // Online rotation: signed by the old and the new key.
    let (s, v) = rig.post(0, "/v1/operator/rotate-key", json!({})).await;
    assert_eq!((s, v["kind"].as_str()), (200, Some("rotate-key")), "{v}");
    assert_eq!(v["seq"], 3);
    rig.enroll_many(0, 3, 2).await;
    rig.converge(&[0, 1, 2], Duration::from_secs(30), |h| h[0].1 == 6).await;

    // A thief holding the retired key cannot extend the ledger.
    let (size, head) = head_of_c0(&rig).await;
    gossip_is_refused(&rig, 1, forged(&rig, &key("c0/signing"), size, head), size).await;

    // The key file followed the ledger: the node restarts with the new key.
    rig.stop(0).await;
    rig.start(0).await;
    rig.enroll_many(0, 5, 1).await;
    rig.converge(&[0, 1, 2], Duration::from_secs(30), |h| h[0].1 == 7).await;

    // Revocation with the offline recovery key, node stopped.
    let dir = rig.members[0].dir.clone();
    let compromised = linli_node::keyfile::read_key(&dir.join("signing.key")).unwrap();
    rig.stop(0).await;
    let recovery_file = dir.join("recovery.key");
    linli_node::keyfile::write_key(&recovery_file, &key("c0/recovery")).unwrap();
    let config = linli_node::config::Config::load(&rig.members[0].config_path).unwrap();
    let r = linli_node::rotation::revoke(&config, &recovery_file).await.unwrap();
    assert_eq!((r.seq, r.kind.as_str()), (7, "revoke-key"));
    rig.start(0).await;
    rig.enroll_many(0, 6, 1).await;
    rig.converge(&[0, 1, 2], Duration::from_secs(30), |h| h[0].1 == 9).await;

    // Nothing signed by the revoked key after the revocation is accepted.
    let (size, head) = head_of_c0(&rig).await;
    gossip_is_refused(&rig, 2, forged(&rig, &compromised, size, head), size).await;

    // Every store replays from genesis, following the rotation and the revocation.
    for i in 0..3 {
        rig.stop(i).await;
        let config = linli_node::config::Config::load(&rig.members[i].config_path).unwrap();
        let store = linli_node::store::Store::open(&config.data_dir, &rig.genesis).unwrap();
        let state = store.load_state(&rig.genesis).unwrap();
        linli_node::node::full_check(&store, &rig.genesis, &state).unwrap();
        assert_ne!(state.ledgers[&cid("c0")].key, compromised.public());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_replaces_a_lost_key() {
    let mut rig = Rig::new(1);
    rig.start(0).await;
    rig.publish_default_rules(0).await;
    rig.resident_with_100_points(0, "c0-lost", 1).await;
    let (old, new) = (key("c0-lost"), key("c0-found"));
    let redeem = |k: &Keypair, nonce: u64| {
        let r = Redemption { resident: k.public(), points: 30, item: "粮油 rice and oil".into(), nonce };
        json!(Signed::sign(r, k, &rig.genesis_hash))
    };
    let (s, v) =
        rig.post(0, "/v1/operator/replace-key", json!({"old_key": old.public(), "new_key": new.public()})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = rig.post(0, "/v1/redeem", redeem(&old, 1)).await;
    assert_eq!((s, v["error"].as_str()), (422, Some("account-replaced")), "{v}");
    let (s, v) = rig.post(0, "/v1/redeem", redeem(&new, 1)).await;
    assert_eq!(s, 200, "{v}");
    let acc = rig.account(0, "c0", &new.public().to_hex()).await;
    assert_eq!(acc["points"], 70, "the points moved with the account: {acc}");
    let (s, _) =
        rig.post(0, "/v1/operator/replace-key", json!({"old_key": old.public(), "new_key": key("x").public()})).await;
    assert_eq!(s, 422, "a replaced key cannot be replaced again");
    rig.stop(0).await;
}

/// The till's view of a community's keys (`keys_followed` in its status), if it followed any.
async fn keys_followed(rig: &Rig, m: &linli_tests::MerchantRig, community: &str) -> Option<Value> {
    let v: Value = rig.http.get(format!("{}/v1/till/status", m.base())).send().await.unwrap().json().await.unwrap();
    v["keys_followed"].as_array().unwrap().iter().find(|k| k["community"] == community).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_till_follows_key_rotations_of_the_payer_and_of_its_home() {
    let mut rig = three_communities("c0-rot").await;
    let mut m = c1_merchant_for_c0_points(&rig, "m-rot", &[1]).await;
    rig.start_merchant(&mut m).await;
    assert_eq!(keys_followed(&rig, &m, "c0").await, None, "nothing rotated yet");

    // The payer's community rotates its key after the till started (it knows only the genesis).
    let (s, v) = rig.post(0, "/v1/operator/rotate-key", json!({})).await;
    assert_eq!((s, v["kind"].as_str()), (200, Some("rotate-key")), "{v}");
    let rotated_at = v["seq"].as_u64().unwrap();
    let p = payment(&rig, "c0-rot", &m, 20, 200, 1);
    let (s, receipt) = sale(&rig, &m, "c0", &p).await;
    assert_eq!(s, 200, "the sale verifies against c0's new key: {receipt}");
    assert!(receipt["at"]["seq"].as_u64().unwrap() > rotated_at);
    let followed = keys_followed(&rig, &m, "c0").await.expect("the till followed c0's rotation");
    assert_eq!(followed["keys"], 2, "{followed}");

    // Its own community rotates too: the credit's proof and the settlement entry are signed by
    // c1's new key.
    let (s, v) = rig.post(1, "/v1/operator/rotate-key", json!({})).await;
    assert_eq!(s, 200, "{v}");
    reconcile_until(&rig, &m, "the credit", |r| r["credited"] == 1).await;
    let (s, settled) = rig.till_post(&m, "/v1/till/settlements", json!({"issuer": "c0", "points": 20})).await;
    assert_eq!((s, settled["fen"].as_u64()), (200, Some(200)), "{settled}");
    assert_eq!(keys_followed(&rig, &m, "c1").await.expect("the till followed c1's rotation")["keys"], 2);

    // The histories are kept in the till's store: after a restart the receipt still verifies.
    rig.stop_merchant(&mut m).await;
    rig.start_merchant(&mut m).await;
    let body = json!({"payment": p, "proof": receipt["proof"]});
    let (s, v) = rig.till_post(&m, "/v1/till/receipts/verify", body).await;
    assert_eq!(s, 200, "{v}");
    rig.stop_merchant(&mut m).await;
    for i in 0..3 {
        rig.stop(i).await;
    }
}
