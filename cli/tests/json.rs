//! `--json` everywhere: `export --out` prints a JSON summary, and a failed run prints one JSON
//! document on stdout with an `error` object (category, exit code, message and, for a ledger,
//! community, seq and rule) — added to `verify`'s report, whose `failure` it matches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use linli_node::store::Column;
use serde_json::Value;

#[test]
fn export_with_json_prints_a_summary() {
    let ledger = build_ledger();
    let (g, data) = (ledger.files.genesis_arg(), ledger.files.data());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("entries.jsonl").display().to_string();
    let (code, v, err) =
        run_json(&["export", "--db", &data, "--genesis", &g, "--format", "jsonl", "--what", "entries", "--out", &file]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (v["rows"].as_u64(), v["file"].as_str(), v["format"].as_str(), v["what"].as_str()),
        (Some(ledger.size()), Some(file.as_str()), Some("jsonl"), Some("entries")),
        "{v}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count() as u64, ledger.size());
    let csv = dir.path().join("balances.csv").display().to_string();
    let (code, v, err) =
        run_json(&["export", "--db", &data, "--genesis", &g, "--format", "csv", "--what", "balances", "--out", &csv]);
    assert_eq!(code, 0, "{err}");
    // Two residents and a merchant (the header is not a row).
    assert_eq!(
        (v["rows"].as_u64(), v["format"].as_str(), v["what"].as_str()),
        (Some(3), Some("csv"), Some("balances"))
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 4);
}

/// The error object of a failed `--json` run: exit code, and the object checked against it.
fn json_error(args: &[&str]) -> (i32, Value) {
    let (code, v, err) = run_json(args);
    assert_eq!(v["ok"], false, "{v}");
    let e = v["error"].clone();
    assert_eq!(e["exit_code"].as_i64(), Some(i64::from(code)), "{v}");
    assert!(!err.is_empty(), "the human line still goes to stderr");
    (code, v)
}

#[test]
fn errors_are_json_under_json() {
    let ledger = build_ledger();
    let g = ledger.files.genesis_arg();
    // No node at this address: exit 2, `unreachable`, with the URL.
    let (code, v) = json_error(&["verify", "--url", "http://127.0.0.1:1", "--genesis", &g]);
    assert_eq!((code, v["error"]["category"].as_str()), (2, Some("unreachable")), "{v}");
    assert!(v["error"]["url"].as_str().unwrap().starts_with("http://127.0.0.1:1/"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("cannot connect"), "{v}");
    // Not a URL at all.
    let (code, v) =
        json_error(&["inspect", "checkpoints", "--url", "ftp://x", "--genesis", &g, "--community", "lianhua"]);
    assert_eq!((code, v["error"]["category"].as_str()), (2, Some("error")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("expected http://HOST:PORT"), "{v}");
    // A junk proof file: an input error (exit 2), not a finding.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"type\": \"inclusion\", \"seq\": \"x\"}").unwrap();
    let (code, v) = json_error(&["proof", "check", "--file", junk.to_str().unwrap(), "--genesis", &g]);
    assert_eq!((code, v["error"]["category"].as_str()), (2, Some("error")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("not a linli proof file"), "{v}");
    assert_eq!(v["error"]["seq"], Value::Null);
    // A parse error is JSON too.
    let (code, v) = json_error(&["verify", "--genesis", &g, "--bogus"]);
    assert_eq!((code, v["error"]["category"].as_str()), (2, Some("usage")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("--bogus"), "{v}");

    // A ledger with two entries swapped: verify's report carries `failure`, and the `error`
    // object names the same community, seq and rule.
    let k = ledger.seq("settle");
    let (_t, bad) = copy_data(&ledger);
    let raw = Raw::open(&bad);
    let (a, b) = (raw.get(Column::Entries, "lianhua", k), raw.get(Column::Entries, "lianhua", k + 1));
    raw.put(Column::Entries, "lianhua", k, &b);
    raw.put(Column::Entries, "lianhua", k + 1, &a);
    drop(raw);
    let bad = bad.display().to_string();
    let (code, v) = json_error(&["verify", "--db", &bad, "--genesis", &g, "--quiet"]);
    assert_eq!(code, 1);
    let (f, e) = (&v["failure"], &v["error"]);
    assert_eq!(e["category"], "finding", "{v}");
    for field in ["community", "seq", "rule"] {
        assert_eq!(e[field], f[field], "{field}: {v}");
    }
    assert_eq!((e["seq"].as_u64(), e["rule"].as_str()), (Some(k), Some("misplaced-entry")), "{v}");
    assert!(v["entries"].as_u64().is_some(), "the report is still there: {v}");
    // The same bad record met by `inspect entries` and `inspect account`: a finding with its place.
    let (code, v) = json_error(&["inspect", "entries", "--db", &bad, "--genesis", &g, "--community", "lianhua"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(
        (v["error"]["community"].as_str(), v["error"]["seq"].as_u64(), v["error"]["rule"].as_str()),
        (Some("lianhua"), Some(k), Some("misplaced-entry")),
        "{v}"
    );
    let r1 = key("r1").public().to_hex();
    let (code, v) =
        json_error(&["inspect", "account", "--db", &bad, "--genesis", &g, "--community", "lianhua", "--key", &r1]);
    assert_eq!((code, v["error"]["seq"].as_u64(), v["error"]["rule"].as_str()), (1, Some(k), Some("misplaced-entry")));
    // A tampered proof is a finding (exit 1).
    let proof = dir.path().join("p.json").display().to_string();
    let data = ledger.files.data();
    let (code, _, err) = run(&[
        "proof",
        "inclusion",
        "--db",
        &data,
        "--genesis",
        &g,
        "--community",
        "lianhua",
        "--seq",
        "2",
        "--out",
        &proof,
    ]);
    assert_eq!(code, 0, "{err}");
    let mut p: Value = serde_json::from_str(&std::fs::read_to_string(&proof).unwrap()).unwrap();
    p["root"] = Value::from("11".repeat(32));
    std::fs::write(&proof, p.to_string()).unwrap();
    let (code, v) = json_error(&["proof", "check", "--file", &proof, "--genesis", &g]);
    assert_eq!((code, v["error"]["category"].as_str()), (1, Some("finding")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("does not verify"), "{v}");
}
