//! The other commands end to end against a real node over HTTP: key files, signed resident and
//! merchant transactions (`submit`), inspection, and inclusion and consistency proofs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use linli_protocol::rules::RuleTable;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;

#[test]
fn keys_generate_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys/resident.key");
    let f = file.to_str().unwrap();
    let (code, out, err) = run(&["keys", "generate", "--role", "resident", "--out", f]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let secret = std::fs::read_to_string(&file).unwrap().trim().to_string();
    let (code, shown, _) = run(&["keys", "show", f]);
    assert_eq!(code, 0);
    let public = shown.trim().to_string();
    assert_eq!(public.len(), 64);
    assert!(out.contains(&public), "{out}");
    for text in [&out, &shown] {
        assert!(!text.contains(&secret), "the secret was printed");
    }
    let (code, v, _) = run_json(&["keys", "show", f]);
    assert_eq!((code, v["public_key"].as_str()), (0, Some(public.as_str())));
    // Merchant and community keys: 0600 too, and `keys show` reads them back.
    for role in ["merchant", "community"] {
        let path = dir.path().join(format!("{role}/{role}.key"));
        let (code, v, err) = run_json(&["keys", "generate", "--role", role, "--out", path.to_str().unwrap()]);
        assert_eq!((code, v["role"].as_str()), (0, Some(role)), "{err}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{role}");
        let (code, shown, _) = run(&["keys", "show", path.to_str().unwrap()]);
        assert_eq!((code, shown.trim()), (0, v["public_key"].as_str().unwrap()));
    }

    // Never overwrite a secret; refuse a key file others can read; refuse a bad role.
    let (code, _, err) = run(&["keys", "generate", "--role", "merchant", "--out", f]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run(&["keys", "show", f]);
    assert_eq!(code, 2);
    assert!(err.contains("chmod 600"), "{err}");
    let (code, _, _) = run(&["keys", "generate", "--role", "mayor", "--out", f]);
    assert_eq!(code, 2);
    let (code, _, err) = run(&["keys", "show", "/nonexistent/key"]);
    assert_eq!(code, 2, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_inspect_and_prove_over_http() {
    let files = NodeFiles::new();
    let node = linli_node::node::start(&files.config(), false).await.unwrap();
    let api = Api::new(node.http_addr, files.genesis_hash);
    let g = files.genesis_arg();
    let keys = tempfile::tempdir().unwrap();
    let key_file = |name: &str, label: &str| {
        let p = keys.path().join(name);
        linli_node::keyfile::write_key(&p, &key(label)).unwrap();
        p.display().to_string()
    };
    let (r1, r2, shop) = (key_file("r1.key", "r1"), key_file("r2.key", "r2"), key_file("shop.key", "shop"));
    let (r1_pub, shop_pub) = (key("r1").public().to_hex(), key("shop").public().to_hex());
    api.enroll(&key("r1")).await;
    api.enroll(&key("r2")).await;
    api.op("/v1/operator/merchants", json!({"merchant": shop_pub, "name": "Shop", "category": "food"})).await;
    api.op("/v1/operator/rules", serde_json::to_value(RuleTable::default_table(1)).unwrap()).await;
    api.op("/v1/operator/awards", json!({"resident": r1_pub, "activity": "mediation", "minutes": 180, "rating": 5, "bonuses": ["complex"], "request_id": 1})).await;
    let base = api.base.clone();
    let submit = |what: &str, key: &str, extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "submit".into(),
            what.into(),
            "--key".into(),
            key.into(),
            "--url".into(),
            base.clone(),
            "--genesis".into(),
            g.clone(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    let pay = submit(
        "pay",
        &r1,
        &[
            "--merchant",
            &shop_pub,
            "--merchant-community",
            "lianhua",
            "--points",
            "30",
            "--price-fen",
            "400",
            "--nonce",
            "7",
        ],
    );
    let (code, out, err) = run_async(pay.clone()).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("sequenced: community lianhua seq 5 (pay)"), "{out}");
    // The same nonce again, for another payload: refused by the node, exit 1.
    let (code, _, err) = run_async(pay).await;
    assert_eq!(code, 1);
    assert!(err.contains("nonce-reused"), "{err}");
    let (code, _, err) = run_async(submit(
        "pay",
        &r1,
        &["--merchant", &shop_pub, "--merchant-community", "lianhua", "--points", "50", "--price-fen", "400"],
    ))
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("more than the price"), "{err}");
    let mut redeem = vec!["--json".to_string()];
    redeem.extend(submit("redeem", &r1, &["--points", "20", "--item", "rice"]));
    let (code, out, err) = run_async(redeem).await;
    assert_eq!(code, 0, "{err}");
    let receipt: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (receipt["kind"].as_str(), receipt["entry"]["entry"]["body"]["Redeem"]["payload"]["points"].as_u64()),
        (Some("redeem"), Some(20))
    );
    let (code, _, err) =
        run_async(submit("time-credit", &r2, &["--provider", &r1_pub, "--minutes", "90", "--service", "tutoring"]))
            .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_async(submit(
        "time-spend",
        &r1,
        &["--minutes", "30", "--serving-community", "shatou", "--service", "repair"],
    ))
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_async(submit("settle", &shop, &["--issuer", "lianhua", "--points", "30"])).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_async(submit("redeem", &r1, &["--points", "100000", "--item", "car"])).await;
    assert_eq!(code, 1);
    assert!(err.contains("insufficient-points"), "{err}");
    let cp = api.checkpoint().await;
    let size = cp["signed"]["checkpoint"]["size"].as_u64().unwrap();
    assert_eq!(size, 11);

    // A genesis of another federation: the CLI refuses to sign for the node.
    let other = keys.path().join("other.toml");
    std::fs::write(&other, linli_protocol::testkit::genesis(&["lianhua"]).to_toml()).unwrap();
    let mut wrong = submit("redeem", &r1, &["--points", "1", "--item", "tea"]);
    wrong[7] = other.display().to_string();
    let (code, _, err) = run_async(wrong).await;
    assert_eq!(code, 2);
    assert!(err.contains("refusing to sign"), "{err}");

    // Inspect over HTTP.
    let src = |cmd: &[&str]| {
        let mut args: Vec<String> = vec!["--json".into()];
        args.extend(cmd.iter().map(|s| s.to_string()));
        args.extend([
            "--url".into(),
            base.clone(),
            "--genesis".into(),
            g.clone(),
            "--community".into(),
            "lianhua".into(),
        ]);
        args
    };
    let (code, out, err) = run_async(src(&["inspect", "entries", "--kind", "pay"])).await;
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["entry"]["seq"], 5);
    let mut by_account = src(&["inspect", "entries", "--from-seq", "2", "--to-seq", "8"]);
    by_account.extend(["--account".into(), r1_pub.clone()]);
    let (_, out, _) = run_async(by_account).await;
    let seqs: Vec<u64> = serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![4, 5, 7, 8]);
    let mut account = src(&["inspect", "account"]);
    account.extend(["--key".into(), r1_pub.clone()]);
    let (code, out, err) = run_async(account).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["account"]["points"].as_u64(), v["account"]["minutes"].as_u64()), (Some(150), Some(60)), "{v}");
    let changes: Vec<i64> =
        v["history"].as_array().unwrap().iter().map(|r| r["points_change"].as_i64().unwrap()).collect();
    assert_eq!(changes, vec![0, 200, -30, -20, 0, 0]);
    let mut entry = src(&["inspect", "entry"]);
    entry.extend(["--seq".into(), "4".into()]);
    let (code, out, _) = run_async(entry).await;
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["entry"]["body"]["Award"]["points"], 200);
    let (code, out, _) = run_async(src(&["inspect", "checkpoints"])).await;
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()[0]["signed"]["checkpoint"]["size"].as_u64(), Some(size));
    let (code, _, err) = run_async(src(&["inspect", "entries", "--kind", "gift"])).await;
    assert_eq!(code, 2);
    assert!(err.contains("not an entry kind"), "{err}");

    // Proofs over HTTP, checked locally and saved; `proof check` re-checks the file.
    let proof_file = keys.path().join("inclusion.json").display().to_string();
    let mut inclusion = src(&["proof", "inclusion", "--seq", "5"]);
    inclusion.extend(["--out".into(), proof_file.clone()]);
    let (code, out, err) = run_async(inclusion).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (p["type"].as_str(), p["tree_size"].as_u64(), p["checkpoint"].is_object()),
        (Some("inclusion"), Some(size), true),
        "{p}"
    );
    let (code, out, err) = run(&["proof", "check", "--file", &proof_file, "--genesis", &g]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("is in the tree of 11 entries") && out.contains("genesis key"), "{out}");
    let mut consistency = src(&["proof", "consistency", "--old", "3"]);
    consistency.remove(0);
    let (code, out, err) = run_async(consistency).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("of 3 entries") && out.contains("of 11 entries"), "{out}");
    // A tampered path does not verify.
    let mut bad: Value = serde_json::from_str(&std::fs::read_to_string(&proof_file).unwrap()).unwrap();
    bad["proof"]["path"][0] = Value::from("00".repeat(32));
    std::fs::write(&proof_file, bad.to_string()).unwrap();
    let (code, _, err) = run(&["proof", "check", "--file", &proof_file, "--genesis", &g]);
    assert_eq!(code, 1);
    assert!(err.contains("does not verify"), "{err}");

    // The whole ledger verifies over HTTP.
    let mut verify = src(&["verify"]);
    verify.remove(0);
    let (code, out, err) = run_async(verify).await;
    assert_eq!(code, 0, "{out}\n{err}");
    node.stop().await;

    // An unreachable node is an error (exit 2), not a panic.
    let (code, _, err) = run_async(vec!["verify".into(), "--url".into(), base, "--genesis".into(), g]).await;
    assert_eq!(code, 2);
    assert!(err.contains("cannot connect"), "{err}");
}
