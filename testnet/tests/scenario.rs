//! The testnet end to end through the built binaries: `linli-testnet` starts real `linli-node`
//! processes (4 community nodes, 3 tills) on 127.0.0.1 and must exit 0 only when every check
//! passed; a short `load` run; Ctrl-C leaves no child process behind; bad sizes are refused.
//! The tests run one at a time (each starts seven processes on a small machine).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn testnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linli-testnet")).args(args).env("LINLI_CHILD_LOG", "warn").output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Processes whose command line mentions `dir` (the testnet's children name their config in it).
fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(p.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&needle) && !cmd.contains("linli-testnet") {
                found.push(cmd);
            }
        }
    }
    found
}

#[test]
fn scenario_runs_end_to_end_on_real_processes() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    let t = Instant::now();
    let o = testnet(&["scenario", "--residents", "2", "--dir", net.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "scenario failed:\n{out}\n{err}");
    eprintln!("scenario took {:?}\n{out}", t.elapsed());
    assert!(out.contains("Started 4 community nodes and 3 merchant light nodes"), "{out}");
    assert!(out.contains("Every figure the nodes computed matches what the scenario expects"), "{out}");
    // lianhua (default table): 60+100+0+60+80 for the first resident, 100 for the second.
    let lianhua = out.lines().find(|l| l.starts_with("lianhua ")).expect("a lianhua row");
    assert!(lianhua.split_whitespace().nth(1) == Some("400"), "{lianhua}");
    // xiangmihu (council table, extended): 63+100+0+24+38+10+100 for the first resident, 36
    // for the second.
    let xiangmihu = out.lines().find(|l| l.starts_with("xiangmihu ")).expect("a xiangmihu row");
    assert!(xiangmihu.split_whitespace().nth(1) == Some("371"), "{xiangmihu}");
    // Every community issues for clean-ups, mediation, elder care and patrols under its own
    // table: the activity table's rows (the second row of each community) are all positive.
    let table = out.split("Points issued by activity").nth(1).expect("an activity table");
    for c in ["lianhua", "xiangmihu", "shatou", "futian"] {
        let row = table.lines().find(|l| l.starts_with(&format!("{c} "))).expect("an activity row");
        let cols: Vec<u64> = row.split_whitespace().skip(1).take(4).map(|x| x.parse().unwrap()).collect();
        assert!(cols.len() == 4 && cols.iter().all(|p| *p > 0), "{c} did not issue for every activity: {row}");
    }
    assert_eq!(out.matches("every ledger replays from genesis").count(), 4, "{out}");
    assert!(out.contains("linli-node check verified every node's store"), "{out}");
    assert!(out.contains("Verdict: OK"), "{out}");
    // Real stores were written, one per community, and no process outlived the testnet.
    for c in ["lianhua", "xiangmihu", "shatou", "futian"] {
        assert!(net.join(c).join("data").is_dir(), "no RocksDB directory for {c}");
    }
    assert!(processes_under(&net).is_empty(), "{:?}", processes_under(&net));
}

#[test]
fn short_load_run_reports_throughput_and_latency() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let o = testnet(&["load", "--rate", "10", "--duration", "3", "--residents", "2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "load failed:\n{out}\n{err}");
    eprintln!("{out}");
    // stdout is a pipe here: the hidden progress bar is replaced by progress lines.
    assert!(out.lines().any(|l| l.starts_with("  load: ") && l.contains("acknowledged")), "no progress line: {out}");
    let line = out.lines().find(|l| l.starts_with("Load: ")).expect("a load report");
    assert!(line.contains("p50") && line.contains("p99"), "{line}");
    let acked: u64 = line.split(" acknowledged").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(acked >= 20, "only {acked} of 30 requests acknowledged: {line}");
    assert!(out.contains("Verdict: OK"), "{out}");
}

#[test]
fn interrupting_the_testnet_leaves_no_process_behind() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    let mut child = Command::new(env!("CARGO_BIN_EXE_linli-testnet"))
        .args(["load", "--rate", "5", "--duration", "120", "--dir", net.to_str().unwrap()])
        .env("LINLI_CHILD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the nodes and the tills run.
    let start = Instant::now();
    while processes_under(&net).len() < 7 {
        assert!(start.elapsed() < Duration::from_secs(60), "the testnet never started 7 processes");
        assert!(child.try_wait().unwrap().is_none(), "the testnet exited early");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: SIGINT to our own child, as a Ctrl-C at the terminal would.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted testnet must not report success");
    let start = Instant::now();
    while !processes_under(&net).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "children outlived the testnet: {:?}",
            processes_under(&net)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn too_small_a_federation_is_refused() {
    let o = testnet(&["--communities", "3"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("at least 4 communities"), "{err}");
}

#[test]
fn keep_leaves_the_processes_running_until_stopped() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    let o = testnet(&["scenario", "--keep", "--residents", "2", "--dir", net.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("Stop them with: kill "), "{out}");
    assert_eq!(processes_under(&net).len(), 7, "4 nodes and 3 tills keep running: {:?}", processes_under(&net));
    // The printed dashboard URL of a node answers.
    let url =
        out.lines().find(|l| l.trim_start().starts_with("node lianhua")).unwrap().split_whitespace().nth(2).unwrap();
    let port: u16 = url.trim_start_matches("http://127.0.0.1:").trim_end_matches('/').parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "{url} does not answer");
    let stop = Command::new("sh").arg(net.join("stop.sh")).status().unwrap();
    assert!(stop.success());
    let start = Instant::now();
    while !processes_under(&net).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "stop.sh left {:?}", processes_under(&net));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of `key=` in the chaos run's `chaos counts:` line.
fn count(out: &str, key: &str) -> u64 {
    let line = out.lines().find(|l| l.starts_with("chaos counts:")).unwrap_or_else(|| panic!("no counts line: {out}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

#[test]
fn short_chaos_run_converges_with_every_acknowledged_entry() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let o = testnet(&["chaos", "--duration", "18", "--rate", "10"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "chaos failed:\n{out}\n{err}");
    eprintln!("{out}");
    // Links were really cut (both cut nodes lost a peer and kept acknowledging writes) and
    // healed; nodes and a till were killed and restarted.
    let cuts = count(&out, "cuts");
    assert!(cuts >= 1 && out.contains("cut link"), "no link was cut: {out}");
    assert_eq!(count(&out, "heals"), cuts, "a cut was not healed: {out}");
    assert_eq!(count(&out, "peer_drops"), cuts, "a cut did not lower both nodes' peer counts: {out}");
    assert_eq!(count(&out, "cut_writes"), 2 * cuts, "a cut node stopped acknowledging writes: {out}");
    assert!(count(&out, "kills") >= 1 && out.contains("SIGKILL node"), "no node was killed: {out}");
    assert!(count(&out, "till_restarts") >= 1, "no till was restarted: {out}");
    assert!(out.contains("acknowledged entries (and the"), "{out}");
    assert!(out.contains("every till reconciles"), "{out}");
    assert!(out.contains("Verdict: OK"), "{out}");
}
