//! `inspect` and `proof` over a node's RocksDB directory, as a secondary instance beside the
//! running node and read-only once it stopped: time filters, lookup by hash, consistency proofs
//! saved and re-checked (and refused when tampered), and the human (text) output of
//! `inspect entries` and `verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

/// `(seq, time_ms, hash)` of every listed entry.
fn listed(v: &Value) -> Vec<(u64, u64, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|e| {
            (
                e["entry"]["seq"].as_u64().unwrap(),
                e["entry"]["time_ms"].as_u64().unwrap(),
                e["hash"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_and_prove_from_a_directory() {
    let files = NodeFiles::new();
    let node = linli_node::node::start(&files.config(), false).await.unwrap();
    let api = Api::new(node.http_addr, files.genesis_hash);
    let (seqs, checkpoints) = scenario(&api).await;
    let size = *checkpoints.last().unwrap();
    let (g, data) = (files.genesis_arg(), files.data());
    let scratch = tempfile::tempdir().unwrap();
    let scratch = scratch.path().display().to_string();
    let dir = tempfile::tempdir().unwrap();

    // Beside the running node, as a secondary instance: entries, checkpoints, an inclusion proof.
    let secondary = |cmd: &[&str]| {
        let mut a = args(&["--json"]);
        a.extend(args(cmd));
        a.extend(args(&["--db", &data, "--secondary", &scratch, "--genesis", &g, "--community", "lianhua"]));
        a
    };
    let (code, out, err) = run_async(secondary(&["inspect", "entries"])).await;
    assert_eq!(code, 0, "{err}");
    let all = listed(&serde_json::from_str(&out).unwrap());
    assert_eq!(all.len() as u64, size);
    let (code, out, err) = run_async(secondary(&["inspect", "checkpoints"])).await;
    assert_eq!(code, 0, "{err}");
    let sizes: Vec<u64> = serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["signed"]["checkpoint"]["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, checkpoints);
    let pay = seqs["pay"].to_string();
    let (code, out, err) = run_async(secondary(&["proof", "inclusion", "--seq", &pay])).await;
    assert_eq!(code, 0, "{err}");
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((p["tree_size"].as_u64(), p["checkpoint"].is_object()), (Some(size), true), "{p}");
    // The entry by its hash, over HTTP.
    let award_hash = all[seqs["award"] as usize].2.clone();
    let (code, out, err) =
        run_async(args(&["inspect", "entry", "--url", &api.base, "--genesis", &g, "--hash", &award_hash])).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["entry"]["seq"].as_u64(), Some(seqs["award"]));
    stop(node, files.data_dir()).await;

    // Read-only, the node stopped.
    let ro = |cmd: &[&str], extra: &[&str]| {
        let mut a = vec!["--json"];
        a.extend_from_slice(cmd);
        a.extend_from_slice(&["--db", &data, "--genesis", &g]);
        a.extend_from_slice(extra);
        let (code, out, err) = run(&a);
        assert_eq!(code, 0, "{a:?}: {out}\n{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let entries = |extra: &[&str]| {
        let mut a = vec!["--community", "lianhua"];
        a.extend_from_slice(extra);
        listed(&ro(&["inspect", "entries"], &a))
    };
    assert_eq!(entries(&[]), all);
    // Time filters: what they keep is exactly what the times say.
    let (first, last) = (all[0].1, all[all.len() - 1].1);
    assert!(first < last, "the scenario took at least a millisecond");
    let mid = all[seqs["pay"] as usize].1;
    let expect =
        |keep: &dyn Fn(u64) -> bool| -> Vec<(u64, u64, String)> { all.iter().filter(|e| keep(e.1)).cloned().collect() };
    let from = entries(&["--from-time", &mid.to_string()]);
    assert_eq!(from, expect(&|t| t >= mid));
    assert!(!from.is_empty() && from.len() < all.len(), "{from:?}");
    let to = entries(&["--to-time", &mid.to_string()]);
    assert_eq!(to, expect(&|t| t <= mid));
    assert!(!to.is_empty() && to.len() < all.len());
    assert_eq!(entries(&["--from-time", &mid.to_string(), "--to-time", &mid.to_string()]), expect(&|t| t == mid));
    assert_eq!(entries(&["--from-time", &(last + 1).to_string()]), vec![]);
    assert_eq!(entries(&["--to-time", &(first - 1).to_string()]), vec![]);
    let (code, out, _) = run(&[
        "inspect",
        "entries",
        "--db",
        &data,
        "--genesis",
        &g,
        "--community",
        "lianhua",
        "--from-time",
        &(last + 1).to_string(),
    ]);
    assert_eq!((code, out.trim()), (0, "no entries of lianhua match"));
    // By hash, from the directory; an unknown hash is an error naming the source.
    let e = ro(&["inspect", "entry"], &["--hash", &award_hash]);
    assert_eq!((e["entry"]["seq"].as_u64(), e["kind"].as_str()), (Some(seqs["award"]), Some("award")));
    let (code, _, err) = run(&["inspect", "entry", "--db", &data, "--genesis", &g, "--hash", &"ab".repeat(32)]);
    assert_eq!(code, 2);
    assert!(err.contains("has no entry"), "{err}");

    // A consistency proof between the two checkpoints, saved, re-checked, then tampered.
    let file = dir.path().join("consistency.json").display().to_string();
    let (old, new) = (checkpoints[0].to_string(), checkpoints[1].to_string());
    let p = ro(&["proof", "consistency"], &["--community", "lianhua", "--old", &old, "--new", &new, "--out", &file]);
    assert_eq!(
        (p["type"].as_str(), p["old_checkpoint"].is_object(), p["new_checkpoint"].is_object()),
        (Some("consistency"), true, true),
        "{p}"
    );
    let (code, out, err) = run(&["proof", "check", "--file", &file, "--genesis", &g]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("ledger of {old} entries")) && out.contains(&format!("one of {new} entries")),
        "{out}"
    );
    let mut bad: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    bad["proof"]["path"][0] = Value::from("00".repeat(32));
    std::fs::write(&file, bad.to_string()).unwrap();
    let (code, _, err) = run(&["proof", "check", "--file", &file, "--genesis", &g]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not verify"), "{err}");
    // --secondary works on a stopped node's directory too.
    let (code, _, err) = run(&[
        "proof",
        "consistency",
        "--db",
        &data,
        "--secondary",
        &scratch,
        "--genesis",
        &g,
        "--community",
        "lianhua",
        "--old",
        &old,
    ]);
    assert_eq!(code, 0, "{err}");

    // Human output: the entries table and verify's summary table.
    let (code, out, err) =
        run(&["inspect", "entries", "--db", &data, "--genesis", &g, "--community", "lianhua", "--kind", "award"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two awards: {out}");
    for col in ["seq", "time (UTC)", "kind", "hash", "what"] {
        assert!(lines[0].contains(col), "{out}");
    }
    let r1 = key("r1").public().short();
    assert!(lines[1].starts_with(&seqs["award"].to_string()) && lines[1].contains("award"), "{out}");
    assert!(lines[1].contains(&format!("200 pts to {r1} for mediation")), "{out}");
    assert!(lines[1].contains(&all[seqs["award"] as usize].2[..8]), "the short hash: {out}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    let (date, time) = (cells[1].as_bytes(), cells[2].as_bytes());
    assert!(
        date.len() == 10 && date[4] == b'-' && time.len() == 12 && time[8] == b'.',
        "YYYY-MM-DD HH:MM:SS.mmm: {out}"
    );
    let (code, out, err) = run(&["verify", "--db", &data, "--genesis", &g]);
    assert_eq!(code, 0, "{err}");
    let header = out.lines().find(|l| l.starts_with("community")).unwrap_or_else(|| panic!("{out}"));
    for col in ["entries", "checkpoints", "cosignatures", "points issued", "redeemed", "settled"] {
        assert!(header.contains(col), "{out}");
    }
    let row: Vec<&str> = out.lines().find(|l| l.starts_with("lianhua")).unwrap().split_whitespace().collect();
    // community, entries, checkpoints, cosignatures, issued, redeemed, settled, credited, spent.
    assert_eq!(row, ["lianhua", &size.to_string(), "2", "0", "260", "20", "30", "90", "60"], "{out}");
    assert!(out.contains(&format!("OK: {size} entries in 2 ledgers")), "{out}");
}
