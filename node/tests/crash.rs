//! Crash safety: the node runs as a child process under concurrent writes and is killed with
//! SIGKILL mid-load, 20 times. After each restart (with `--check`: full replay from genesis) every
//! acknowledged entry is there; at the end `linli-node check` verifies the chain and that the
//! stored state equals a replay of the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::port::free_port;
use common::{node_files, resident, TOKEN};
use linli_protocol::{Hash, State};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CYCLES: usize = 20;
const WRITERS: usize = 8;

fn start(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_linli-node"))
        .args(["run", "--check", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

async fn wait_ready(http: &reqwest::Client, base: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("node exited during start-up: {status}");
        }
        assert!(Instant::now() < deadline, "node did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_entries_survive_sigkill() {
    let port = free_port();
    let files = node_files(&["lianhua"], "lianhua", &format!("127.0.0.1:{port}"));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut checked = 0usize;

    for cycle in 0..CYCLES {
        let mut child = start(&files.config_path);
        wait_ready(&http, &base, &mut child).await;

        // Everything acknowledged before the last kill is still there.
        let so_far = acked.lock().unwrap().clone();
        for (seq, hash) in &so_far[checked..] {
            let r: Value = http.get(format!("{base}/v1/entries/{hash}")).send().await.unwrap().json().await.unwrap();
            assert_eq!(r["entry"]["seq"].as_u64(), Some(*seq), "cycle {cycle}: acknowledged entry {hash} lost: {r}");
        }
        checked = so_far.len();

        // Concurrent writers until the kill.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (http, base, acked, stop) = (http.clone(), base.clone(), acked.clone(), stop.clone());
            writers.push(tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = resident(&format!("c{cycle}-w{w}-{i}"));
                    i += 1;
                    let body = json!({"resident": r.public(), "profile_hash": Hash([w as u8; 32])});
                    let Ok(resp) =
                        http.post(format!("{base}/v1/operator/residents")).bearer_auth(TOKEN).json(&body).send().await
                    else {
                        break;
                    };
                    if resp.status().is_success() {
                        let v: Value = match resp.json().await {
                            Ok(v) => v,
                            Err(_) => break,
                        };
                        acked
                            .lock()
                            .unwrap()
                            .push((v["seq"].as_u64().unwrap(), v["hash"].as_str().unwrap().to_string()));
                    }
                }
            }));
        }
        let run_for = 150 + (cycle as u64 * 37) % 300;
        tokio::time::sleep(Duration::from_millis(run_for)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            let _ = w.await;
        }
    }

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > CYCLES * 10, "too little load to test anything: {} acknowledged", acked.len());

    // Offline: the chain verifies and state equals a replay of the log.
    let out = Command::new(env!("CARGO_BIN_EXE_linli-node"))
        .args(["check", "--config"])
        .arg(&files.config_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "linli-node check failed: {}", String::from_utf8_lossy(&out.stderr));

    let store = linli_node::store::Store::open_read_only(&files.data_dir(), &files.genesis).unwrap();
    let c = linli_protocol::CommunityId::new("lianhua").unwrap();
    for (seq, hash) in &acked {
        let e = store
            .entry_by_hash(&Hash::from_hex(hash).unwrap())
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged seq {seq} lost"));
        assert_eq!(e.entry.seq, *seq);
    }
    let entries = store.all_entries(&c).unwrap();
    let replayed =
        linli_protocol::replay::replay(&files.genesis, [(c.clone(), entries)].into_iter().collect(), None).unwrap();
    let stored: State = store.load_state(&files.genesis).unwrap();
    assert_eq!(replayed, stored);
    eprintln!("{} acknowledged entries over {CYCLES} SIGKILL cycles all survived", acked.len());
}
