//! `linli export`: exported entries round-trip (the JSON lines re-verify from genesis, and an
//! export over HTTP is byte-identical to one from the directory); CSV and balances are right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_entries_round_trip_and_reverify() {
    let files = NodeFiles::new();
    let node = linli_node::node::start(&files.config(), false).await.unwrap();
    let api = Api::new(node.http_addr, files.genesis_hash);
    let (seqs, checkpoints) = scenario(&api).await;
    let size = *checkpoints.last().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let g = files.genesis_arg();

    // Over HTTP while the node runs, then from the stopped node's directory: the same bytes.
    let args = [
        "export",
        "--url",
        &api.base,
        "--genesis",
        &g,
        "--format",
        "jsonl",
        "--what",
        "entries",
        "--out",
        &path("http.jsonl"),
    ];
    let (code, out, err) = run_async(args.map(String::from).to_vec()).await;
    assert_eq!(code, 0, "{out}\n{err}");
    stop(node, files.data_dir()).await;
    let data = files.data();
    let (code, out, err) = run(&[
        "export",
        "--db",
        &data,
        "--genesis",
        &g,
        "--format",
        "jsonl",
        "--what",
        "entries",
        "--out",
        &path("db.jsonl"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("exported {size} rows")), "{out}");
    let exported = std::fs::read_to_string(path("db.jsonl")).unwrap();
    assert_eq!(exported, std::fs::read_to_string(path("http.jsonl")).unwrap());
    assert_eq!(exported.lines().count() as u64, size);

    // The export re-verifies from genesis: signatures, chain, rules, conservation.
    let (code, v, err) = run_json(&["verify", "--from-export", &path("db.jsonl"), "--genesis", &g]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!((v["ok"].as_bool(), v["entries"].as_u64()), (Some(true), Some(size)), "{v}");
    assert_eq!(v["ledgers"][0]["points_issued"], 260);

    // An edited line is caught at its seq; so is a dropped one.
    let award = seqs["award"] as usize;
    let mut lines: Vec<String> = exported.lines().map(String::from).collect();
    let mut edited: Value = serde_json::from_str(&lines[award]).unwrap();
    edited["entry"]["body"]["Award"]["points"] = Value::from(210u64);
    lines[award] = edited.to_string();
    std::fs::write(path("edited.jsonl"), lines.join("\n")).unwrap();
    let (code, v, _) = run_json(&["verify", "--from-export", &path("edited.jsonl"), "--genesis", &g]);
    assert_eq!(code, 1);
    assert_eq!(
        (v["failure"]["seq"].as_u64(), v["failure"]["rule"].as_str()),
        (Some(award as u64), Some("signature")),
        "{v}"
    );
    let mut dropped: Vec<&str> = exported.lines().collect();
    dropped.remove(seqs["settle"] as usize);
    std::fs::write(path("dropped.jsonl"), dropped.join("\n")).unwrap();
    let (code, v, _) = run_json(&["verify", "--from-export", &path("dropped.jsonl"), "--genesis", &g]);
    assert_eq!(code, 1);
    assert_eq!(
        (v["failure"]["seq"].as_u64(), v["failure"]["rule"].as_str()),
        (Some(seqs["settle"]), Some("missing-entry")),
        "{v}"
    );
    let (code, _, err) = run(&["verify", "--from-export", &path("nothing.jsonl"), "--genesis", &g]);
    assert_eq!(code, 2, "{err}");

    // CSV: a header and one record per entry; the merchant's name (comma, quotes) is quoted.
    let (code, csv, _) = run(&[
        "export",
        "--db",
        &data,
        "--genesis",
        &g,
        "--format",
        "csv",
        "--what",
        "entries",
        "--community",
        "lianhua",
    ]);
    assert_eq!(code, 0);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len() as u64, size + 1);
    assert!(rows[0].starts_with("community,seq,time_ms,"), "{}", rows[0]);
    assert!(rows[seqs["merchant"] as usize + 1].contains(r#"""Tea, \""Good\"" shop"""#), "{csv}");
    for row in &rows[1..] {
        let fields = parse_csv_record(row);
        assert_eq!(fields.len(), 14, "{row}");
        let body: Value = serde_json::from_str(&fields[12]).unwrap();
        assert!(body.is_object(), "{row}");
    }
    assert!(rows[seqs["settle"] as usize + 1].starts_with(&format!("lianhua,{},", seqs["settle"])));

    // Balances, computed by replaying: r1 earned 260, paid 30, redeemed 20; 90 - 60 minutes.
    let (code, out, err) = run(&["export", "--db", &data, "--genesis", &g, "--format", "jsonl", "--what", "balances"]);
    assert_eq!(code, 0, "{err}");
    let r1 = key("r1").public().to_hex();
    let row: Value =
        out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|v| v["account"] == r1.as_str()).unwrap();
    assert_eq!(
        (row["points"].as_u64(), row["points_value_fen"].as_u64(), row["minutes"].as_u64()),
        (Some(210), Some(2100), Some(30)),
        "{row}"
    );
    assert_eq!((row["role"].as_str(), row["lifetime_points"].as_u64()), (Some("resident"), Some(260)));
    let (code, csv, _) = run(&["export", "--db", &data, "--genesis", &g, "--format", "csv", "--what", "balances"]);
    assert_eq!(code, 0);
    assert!(csv.starts_with("community,account,role,points,"), "{csv}");
    assert!(csv.contains(&format!("lianhua,{r1},resident,210,2100,30,240,260,")), "{csv}");
    assert_eq!(csv.lines().count(), 4, "header, two residents, one merchant: {csv}");
}

/// A minimal RFC 4180 record parser (no embedded line breaks), to check the quoting.
fn parse_csv_record(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) => quoted = true,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    assert!(!quoted, "unterminated quote: {line}");
    fields
}
