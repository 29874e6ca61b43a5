//! `verify` and `proof` across a community key rotation (online, `POST /v1/operator/rotate-key`)
//! and a revocation (offline, with the recovery key) on a real node's ledger: the honest ledger
//! verifies and its proofs check under the rotated keys; an entry after the rotation signed with
//! the retired key, or after the revocation with the revoked one (written into RocksDB
//! directly, as an attacker holding the old key file would), fails at its seq with `signature`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use linli_node::store::Column;
use linli_protocol::rules::RuleTable;
use linli_protocol::{Keypair, SignedEntry};
use serde_json::{json, Value};
use std::path::Path;

/// Re-sign the stored entry at `seq` of lianhua with `signer`. The entry's hash does not cover
/// the signature, so the chain and the leaves stay intact: only the signature is wrong.
fn resign_with(data: &Path, seq: u64, signer: &Keypair, ledger: &Ledger) {
    let raw = Raw::open(data);
    let e = SignedEntry::from_bytes(&raw.get(Column::Entries, "lianhua", seq)).unwrap();
    let forged = SignedEntry::sign(e.entry.clone(), signer, &ledger.files.genesis_hash);
    assert_ne!(forged.signature, e.signature);
    assert_eq!(forged.hash(&ledger.files.genesis_hash), e.hash(&ledger.files.genesis_hash));
    raw.put(Column::Entries, "lianhua", seq, &forged.to_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_prove_across_rotation_and_revocation() {
    let files = NodeFiles::new();
    let config = files.config();
    let node = linli_node::node::start(&config, false).await.unwrap();
    let api = Api::new(node.http_addr, files.genesis_hash);
    let mut seqs = Seqs::new();
    api.enroll(&key("r1")).await;
    api.op("/v1/operator/rules", serde_json::to_value(RuleTable::default_table(1)).unwrap()).await;
    api.op("/v1/operator/awards", json!({"resident": key("r1").public(), "activity": "cleanup", "minutes": 60, "rating": 5, "bonuses": [], "request_id": 1})).await;
    let mut checkpoints = vec![api.checkpoint().await["signed"]["checkpoint"]["size"].as_u64().unwrap()];
    let r = api.op("/v1/operator/rotate-key", json!({})).await;
    assert_eq!(r["kind"], "rotate-key", "{r}");
    seqs.insert("rotate", r["seq"].as_u64().unwrap());
    seqs.insert("after-rotation", api.enroll(&key("r2")).await["seq"].as_u64().unwrap());
    checkpoints.push(api.checkpoint().await["signed"]["checkpoint"]["size"].as_u64().unwrap());
    stop(node, files.data_dir()).await;
    // The key in force now (the rotated one), about to be revoked.
    let rotated = linli_node::keyfile::read_key(&config.signing_key_file).unwrap();
    assert_ne!(rotated.public(), key("lianhua/signing").public());
    let recovery = files.dir.path().join("keys/recovery.key");
    linli_node::keyfile::write_key(&recovery, &key("lianhua/recovery")).unwrap();
    let r = linli_node::rotation::revoke(&config, &recovery).await.unwrap();
    assert_eq!(r.kind, "revoke-key");
    seqs.insert("revoke", r.seq);
    wait_closed(&files.data_dir());
    let node = linli_node::node::start(&config, false).await.unwrap();
    let api = Api::new(node.http_addr, files.genesis_hash);
    seqs.insert("after-revocation", api.enroll(&key("r3")).await["seq"].as_u64().unwrap());
    checkpoints.push(api.checkpoint().await["signed"]["checkpoint"]["size"].as_u64().unwrap());
    stop(node, files.data_dir()).await;
    let ledger = Ledger { files, seqs, checkpoints };
    let (g, data) = (ledger.files.genesis_arg(), ledger.files.data());

    // The honest ledger verifies from genesis through both key changes, all three checkpoints.
    let (code, v, err) = run_json(&["verify", "--db", &data, "--genesis", &g, "--quiet"]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(
        (v["entries"].as_u64(), v["ledgers"][0]["checkpoints_verified"].as_u64()),
        (Some(ledger.size()), Some(3)),
        "{v}"
    );
    let (code, out, _) = run(&["inspect", "entries", "--db", &data, "--genesis", &g, "--community", "lianhua"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("community key rotated to {}", rotated.public().short())), "{out}");
    assert!(out.contains(&format!("community key {} revoked", rotated.public().short())), "{out}");

    // Inclusion proofs of entries signed by the rotated and by the replacement key, saved and
    // re-checked offline: the notes say which key, and that it is not the genesis key.
    let dir = tempfile::tempdir().unwrap();
    for name in ["after-rotation", "after-revocation"] {
        let file = dir.path().join(format!("{name}.json")).display().to_string();
        let seq = ledger.seq(name).to_string();
        let (code, p, err) = run_json(&[
            "proof",
            "inclusion",
            "--db",
            &data,
            "--genesis",
            &g,
            "--community",
            "lianhua",
            "--seq",
            &seq,
            "--out",
            &file,
        ]);
        assert_eq!(code, 0, "{name}: {p}\n{err}");
        assert_eq!(p["tree_size"].as_u64(), Some(ledger.size()), "{p}");
        let (code, out, err) = run(&["proof", "check", "--file", &file, "--genesis", &g]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(
            out.contains("the entry signature verifies under") && out.contains("a rotated key of lianhua"),
            "{name}: {out}"
        );
    }
    let signer = |name: &str| {
        let p: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(format!("{name}.json"))).unwrap()).unwrap();
        p["entry_signer"].as_str().unwrap().to_string()
    };
    assert_eq!(signer("after-rotation"), rotated.public().to_hex());
    let replacement = linli_node::keyfile::read_key(&ledger.files.config().signing_key_file).unwrap();
    assert_eq!(signer("after-revocation"), replacement.public().to_hex());

    // After the rotation, an entry signed with the retired (genesis) key.
    let k = ledger.seq("after-rotation");
    let (_t, bad) = copy_data(&ledger);
    resign_with(&bad, k, &key("lianhua/signing"), &ledger);
    let bad = bad.display().to_string();
    let (code, v, err) = run_json(&["verify", "--db", &bad, "--genesis", &g, "--quiet"]);
    assert_eq!(code, 1, "{v}\n{err}");
    assert_eq!(
        (v["failure"]["community"].as_str(), v["failure"]["seq"].as_u64(), v["failure"]["rule"].as_str()),
        (Some("lianhua"), Some(k), Some("signature")),
        "{v}"
    );
    assert!(err.contains(&format!("community lianhua seq {k} (enroll): rule signature")), "{err}");
    let (code, _, err) =
        run(&["proof", "inclusion", "--db", &bad, "--genesis", &g, "--community", "lianhua", "--seq", &k.to_string()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not verify"), "{err}");

    // After the revocation, an entry signed with the revoked key.
    let k = ledger.seq("after-revocation");
    let (_t2, bad) = copy_data(&ledger);
    resign_with(&bad, k, &rotated, &ledger);
    let (code, v, err) = run_json(&["verify", "--db", bad.to_str().unwrap(), "--genesis", &g, "--quiet"]);
    assert_eq!(code, 1, "{v}\n{err}");
    assert_eq!((v["failure"]["seq"].as_u64(), v["failure"]["rule"].as_str()), (Some(k), Some("signature")), "{v}");
}
