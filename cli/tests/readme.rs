//! Every `linli` example of the README's CLI section runs: the ```sh blocks are read from
//! README.md, the placeholders (`lianhua/data`, `genesis.toml`, port 8101, the abbreviated
//! keys, key files, sizes) are replaced by those of a real node that ran the scenario, and each
//! command must exit 0 — those with `--url` (and `keys`) while the node runs, then the others
//! on its stopped directory, each group in README order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use std::collections::BTreeMap;

/// The `linli` commands of the README's CLI section, continuation lines joined.
fn examples() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("## The `linli` CLI"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect();
    let (mut out, mut in_sh, mut pending) = (Vec::new(), false, String::new());
    for line in section {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh || line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        pending.push_str(line.trim_end().trim_end_matches('\\'));
        pending.push(' ');
        if !line.trim_end().ends_with('\\') {
            let words: Vec<String> = pending.split_whitespace().map(String::from).collect();
            assert_eq!(words[0], "linli", "a line of a sh block that is not a linli command: {pending}");
            out.push(words);
            pending.clear();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_example_runs() {
    let all = examples();
    assert!(all.len() >= 20, "the README's CLI section lost its examples: {all:?}");
    let files = NodeFiles::new();
    let node = linli_node::node::start(&files.config(), false).await.unwrap();
    let api = Api::new(node.http_addr, files.genesis_hash);
    let (seqs, checkpoints) = scenario(&api).await;
    let work = tempfile::tempdir().unwrap();
    let keyfile = |name: &str, label: &str| {
        let p = work.path().join(name);
        linli_node::keyfile::write_key(&p, &key(label)).unwrap();
        p.display().to_string()
    };
    let mut subst: BTreeMap<&str, String> = BTreeMap::new();
    subst.insert("lianhua/data", files.data());
    subst.insert("genesis.toml", files.genesis_arg());
    for port in ["8101", "8102", "8103"] {
        subst.insert(["http://127.0.0.1:", port].concat().leak(), api.base.clone());
    }
    subst.insert("~/.linli/resident.key", work.path().join("new/resident.key").display().to_string());
    subst.insert("resident.key", keyfile("resident.key", "r1"));
    subst.insert("served.key", keyfile("served.key", "r2"));
    subst.insert("merchant.key", keyfile("merchant.key", "shop"));
    subst.insert("0481ef5b...fb82", key("r1").public().to_hex());
    subst.insert("4d23ed8d...be5a", key("shop").public().to_hex());
    subst.insert("/tmp/linli-scratch", work.path().join("scratch").display().to_string());
    let sizes = [("--seq", seqs["award"]), ("--old", checkpoints[0]), ("--new", checkpoints[1])];
    let commands: Vec<Vec<String>> = all
        .iter()
        .map(|words| {
            let mut c: Vec<String> =
                words[1..].iter().map(|w| subst.get(w.as_str()).cloned().unwrap_or_else(|| w.clone())).collect();
            for i in 1..c.len() {
                if let Some((_, v)) = sizes.iter().find(|(flag, _)| *flag == c[i - 1]) {
                    c[i] = v.to_string();
                }
            }
            c
        })
        .collect();
    let live = |c: &Vec<String>| c.iter().any(|w| w == "--url") || c[0] == "keys";
    let run_in = |c: Vec<String>| {
        let dir = work.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_linli")).args(&c).current_dir(dir).output().unwrap();
            let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            assert_eq!(o.status.code(), Some(0), "linli {}\n{out}\n{err}", c.join(" "));
        })
    };
    for c in commands.iter().filter(|c| live(c)) {
        run_in(c.clone()).await.unwrap();
    }
    stop(node, files.data_dir()).await;
    for c in commands.iter().filter(|c| !live(c)) {
        run_in(c.clone()).await.unwrap();
    }
    eprintln!("{} README examples ran", commands.len());
}
