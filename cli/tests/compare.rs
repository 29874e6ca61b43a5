//! `linli compare` against two real nodes serving two copies of one community's directory:
//! they agree while one copy is a prefix of the other, and when each copy sequences a different
//! entry at the same seq, compare reports the fork and prints equivocation proofs that verify.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use linli_protocol::checkpoint::EquivocationProof;
use serde_json::Value;

fn compare_args(json: bool, a: &Api, b: &Api, genesis: &str) -> Vec<String> {
    let mut args: Vec<String> = if json { vec!["--json".into()] } else { vec![] };
    args.extend(["compare", "--url", &a.base, "--url", &b.base, "--genesis", genesis].map(String::from));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_detects_a_fork_between_two_copies() {
    // A common prefix of two entries and a checkpoint, then a copy of the directory.
    let files_a = NodeFiles::new();
    let node = linli_node::node::start(&files_a.config(), false).await.unwrap();
    let api = Api::new(node.http_addr, files_a.genesis_hash);
    api.enroll(&key("r1")).await;
    api.enroll(&key("r2")).await;
    api.checkpoint().await;
    stop(node, files_a.data_dir()).await;
    let files_b = files_a.copy();
    let g = files_a.genesis_arg();

    let node_a = linli_node::node::start(&files_a.config(), false).await.unwrap();
    let node_b = linli_node::node::start(&files_b.config(), false).await.unwrap();
    let (a, b) = (Api::new(node_a.http_addr, files_a.genesis_hash), Api::new(node_b.http_addr, files_b.genesis_hash));

    let (code, out, err) = run_async(compare_args(false, &a, &b, &g)).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("lianhua: agree (sizes 2, 2)") && out.contains("shatou: agree (sizes 0, 0)"), "{out}");

    // A grows: B's ledger and checkpoint are a consistent prefix of A's.
    assert_eq!(a.enroll(&key("r3")).await["seq"], 2);
    a.checkpoint().await;
    let (code, out, err) = run_async(compare_args(true, &a, &b, &g)).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["agree"], true, "{v}");
    assert_eq!(
        (v["ledgers"][0]["nodes"][0]["size"].as_u64(), v["ledgers"][0]["nodes"][1]["size"].as_u64()),
        (Some(3), Some(2))
    );

    // B sequences a different entry at seq 2 and signs its own checkpoint of size 3: a fork.
    assert_eq!(b.enroll(&key("r4")).await["seq"], 2);
    b.checkpoint().await;
    let (code, out, err) = run_async(compare_args(true, &a, &b, &g)).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("disagree") && err.contains("lianhua"), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let l = &v["ledgers"][0];
    assert_eq!((l["community"].as_str(), l["agree"].as_bool()), (Some("lianhua"), Some(false)), "{v}");
    assert_eq!(v["ledgers"][1]["agree"], true, "shatou's empty ledger agrees: {v}");
    let proofs = l["equivocations"].as_array().unwrap();
    let lianhua_key = key("lianhua/signing").public();
    let entries = proofs.iter().find(|p| p["proof"]["Entries"].is_array()).expect("an entries equivocation proof");
    assert_eq!((entries["type"].as_str(), entries["position"].as_u64()), (Some("equivocation"), Some(2)), "{entries}");
    let proof: EquivocationProof = serde_json::from_value(entries["proof"].clone()).unwrap();
    proof.verify(&files_a.genesis_hash, &lianhua_key).unwrap();
    assert_eq!(proof.position(), 2);
    let checkpoints =
        proofs.iter().find(|p| p["proof"]["Checkpoints"].is_array()).expect("a checkpoint equivocation proof");
    let proof: EquivocationProof = serde_json::from_value(checkpoints["proof"].clone()).unwrap();
    proof.verify(&files_a.genesis_hash, &lianhua_key).unwrap();
    assert_eq!(proof.position(), 3);

    // The printed proof is a proof file: `linli proof check` verifies it offline.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fork.json");
    std::fs::write(&path, serde_json::to_string_pretty(entries).unwrap()).unwrap();
    let (code, out, err) = run(&["proof", "check", "--file", path.to_str().unwrap(), "--genesis", &g]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("two different entries at seq 2"), "{out}");
    // Tampered, it no longer verifies.
    let mut forged = entries.clone();
    forged["proof"]["Entries"][1]["entry"]["time_ms"] = Value::from(1u64);
    std::fs::write(&path, serde_json::to_string(&forged).unwrap()).unwrap();
    let (code, _, err) = run(&["proof", "check", "--file", path.to_str().unwrap(), "--genesis", &g]);
    assert_eq!(code, 1, "{err}");

    // The human report names the fork.
    let head = |api: &Api| {
        let base = api.base.clone();
        async move {
            let st: Value = reqwest::get(format!("{base}/v1/status")).await.unwrap().json().await.unwrap();
            st["ledgers"][0]["head"].as_str().unwrap().to_string()
        }
    };
    let (a_head, b_head) = (head(&a).await, head(&b).await);
    assert_ne!(a_head, b_head);
    let (code, out, _) = run_async(compare_args(false, &a, &b, &g)).await;
    assert_eq!(code, 1);
    assert!(out.contains("lianhua: DISAGREE") && out.contains("fork at seq 2"), "{out}");
    // A row per node (URL, size, short head, checkpoint size) and the proof to check.
    for (api, head) in [(&a, &a_head), (&b, &b_head)] {
        let row = out.lines().find(|l| l.trim_start().starts_with(&api.base)).unwrap_or_else(|| panic!("{out}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[1..4], ["3", &head[..8], "3"], "{out}");
    }
    assert!(out.contains("equivocation proof (check it with `linli proof check"), "{out}");
    assert!(out.contains("shatou: agree"), "{out}");
    node_a.stop().await;
    node_b.stop().await;
}
