//! `inspect checkpoints` on checkpoints cosigned by a real witness: two networked nodes
//! (lianhua and shatou, real libp2p on 127.0.0.1) replicate each other's ledgers and shatou
//! cosigns lianhua's checkpoint; `inspect checkpoints` names shatou as the cosigner, over HTTP
//! and from lianhua's directory, and `verify` counts the valid cosignature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_show_the_witness_that_cosigned() {
    let files = NodeFiles::networked();
    let (lianhua, shatou) = (&files[0], &files[1]);
    let node_l = linli_node::node::start(&lianhua.config(), false).await.unwrap();
    let node_s = linli_node::node::start(&shatou.config(), false).await.unwrap();
    let api = Api::new(node_l.http_addr, lianhua.genesis_hash);
    api.enroll(&key("r1")).await;
    api.enroll(&key("r2")).await;

    // Checkpoint until shatou's cosignature is on lianhua's newest one (the nodes must first
    // connect and shatou replicate the ledger).
    let deadline = Instant::now() + Duration::from_secs(90);
    let http = reqwest::Client::new();
    let size = loop {
        let cp = api.checkpoint().await;
        let size = cp["signed"]["checkpoint"]["size"].as_u64().unwrap();
        let poll_until = Instant::now() + Duration::from_secs(5);
        let mut cosigned = false;
        while Instant::now() < poll_until && !cosigned {
            let v: Value = http
                .get(format!("{}/v1/ledgers/lianhua/checkpoint", api.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            cosigned = v["signed"]["checkpoint"]["size"].as_u64() == Some(size)
                && v["cosignatures"].as_array().is_some_and(|c| !c.is_empty());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if cosigned {
            break size;
        }
        assert!(Instant::now() < deadline, "shatou never cosigned lianhua's checkpoint");
        api.enroll(&key(&format!("r-{size}"))).await;
    };
    let shatou_key = key("shatou/signing").public();
    let g = lianhua.genesis_arg();

    // Over HTTP (the node's newest checkpoint): text names the witness and its key.
    let args_http = |json: bool| {
        let mut a = if json { args(&["--json"]) } else { vec![] };
        a.extend(args(&["inspect", "checkpoints", "--url", &api.base, "--genesis", &g, "--community", "lianhua"]));
        a
    };
    let (code, out, err) = run_async(args_http(false)).await;
    assert_eq!(code, 0, "{err}");
    let row = out.lines().find(|l| l.starts_with(&size.to_string())).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains(&format!("shatou ({})", shatou_key.short())), "{out}");
    let (code, out, _) = run_async(args_http(true)).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["cosignatures"][0]["witness"], "shatou", "{v}");
    assert_eq!(v[0]["cosignatures"][0]["key"].as_str(), Some(shatou_key.to_hex().as_str()), "{v}");
    node_s.stop().await;
    stop(node_l, lianhua.data_dir()).await;

    // From lianhua's directory: the stored checkpoint with its cosignature; verify checks it.
    let data = lianhua.data();
    let (code, out, err) = run(&["inspect", "checkpoints", "--db", &data, "--genesis", &g, "--community", "lianhua"]);
    assert_eq!(code, 0, "{err}");
    let row = out.lines().find(|l| l.starts_with(&size.to_string())).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains(&format!("shatou ({})", shatou_key.short())), "{out}");
    let (code, v, err) = run_json(&["verify", "--db", &data, "--genesis", &g, "--quiet", "--community", "lianhua"]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert!(v["ledgers"][0]["cosignatures"].as_u64().unwrap() >= 1, "{v}");
}
