//! The benchmark command cannot rot: `linli-bench --smoke` runs every row end to end (real
//! RocksDB directories, HTTP, libp2p on 127.0.0.1, the `linli` binary) and its JSON copy holds
//! every row with a finite figure. Figures are not checked (CI machines vary).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

#[test]
fn smoke_run_writes_every_row() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_linli-bench"));
    let linli = bench.with_file_name("linli");
    assert!(linli.is_file(), "{} missing: build the workspace (cargo test --workspace builds it)", linli.display());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = std::process::Command::new(&bench)
        .arg("--smoke")
        .arg("--json")
        .arg(&json)
        .arg("--linli")
        .arg(&linli)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "linli-bench --smoke failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["smoke"], true);
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(!report["machine"]["cpu_model"].as_str().unwrap().is_empty());
    let reference = report["reference_rate"].as_f64().unwrap();
    assert!(reference > 0.0);
    let rows = report["rows"].as_array().unwrap();
    let expected: &[(&str, &[&str])] = &[
        (
            "Ceiling",
            &[
                "batch 128 (reference)",
                "batch 64",
                "batch 256",
                "single verify (dalek",
                "cofactored",
                "BLAKE3",
                "verify_run, runs of 128",
                "verify_run, runs of 2048",
            ],
        ),
        ("Light client", &["cosignatures", "inclusion proofs", "sale checks"]),
        ("Append", &["payments sequenced", "acknowledged", "p50", "p99"]),
        (
            "Gossip",
            &[
                "awards: propagation to all nodes p50",
                "awards: propagation to all nodes p99",
                "awards: CPU time per entry",
                "new residents: propagation to all nodes p50",
                "new residents: propagation to all nodes p99",
                "new residents: CPU time per entry",
            ],
        ),
        ("Ingest", &["peer entries"]),
        ("Footprint", &["memory", "disk bytes per entry"]),
        ("Verify", &["linli verify"]),
        ("Catch-up", &["syncing"]),
    ];
    for (section, names) in expected {
        for name in *names {
            let row = rows
                .iter()
                .find(|r| r["section"] == *section && r["name"].as_str().unwrap().contains(name))
                .unwrap_or_else(|| panic!("no {section} row containing {name:?} in {report:#}"));
            let v = row["value"].as_f64().unwrap();
            assert!(v.is_finite() && v >= 0.0, "{section} {name}: {v}");
            if row["unit"].as_str().unwrap().ends_with("/s") {
                assert!(v > 0.0, "{section} {name}: a rate of 0");
                assert!(row["ratio"].as_f64().unwrap() > 0.0);
            }
        }
    }
    // The printed table is the same run: one line per row, plus the header lines.
    assert!(stdout.contains("Linli benchmark"));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("| ")).count(), rows.len() + 1);
}
