//! Federation setup: `linli-node init` per community, one generated genesis, node processes,
//! merchant light nodes (`merchant-init`, registered with their home community), and HTTP
//! helpers to drive them. Everything listens on 127.0.0.1 only.

use crate::procs::{free_port, run, Bins, Proc};
use anyhow::{anyhow, bail, Context, Result};
use linli_protocol::{Genesis, Hash};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const NAMES: [(&str, &str); 8] = [
    ("lianhua", "莲花街道"),
    ("xiangmihu", "香蜜湖街道"),
    ("shatou", "沙头街道"),
    ("futian", "福田街道"),
    ("huafu", "华富街道"),
    ("nanyuan", "南园街道"),
    ("yuanling", "园岭街道"),
    ("meilin", "梅林街道"),
];

/// How big a federation to start.
#[derive(Clone, Debug)]
pub struct Size {
    pub communities: usize,
    pub tills: usize,
}

pub struct Node {
    pub id: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub http: String,
    pub p2p: String,
    pub token: String,
    pub proc: Proc,
}

pub struct Till {
    pub home: usize,
    pub dir: PathBuf,
    pub http: String,
    pub token: String,
    pub merchant: String,
    pub proc: Proc,
}

/// Fields drop in order: tills and nodes are killed before the temp dir is removed.
pub struct Federation {
    pub tills: Vec<Till>,
    pub nodes: Vec<Node>,
    pub root: PathBuf,
    pub bins: Bins,
    pub genesis_file: PathBuf,
    pub genesis_hash: Hash,
    pub http: reqwest::Client,
    _tmp: Option<tempfile::TempDir>,
}

fn read_token(path: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?.trim().to_string())
}

impl Federation {
    /// Create keys, genesis and configuration under `dir` (or a temp dir), start every node and
    /// wait until each answers HTTP. Tills are added with [`Federation::start_tills`].
    pub async fn start(bins: Bins, dir: Option<PathBuf>, size: &Size, keep: bool) -> Result<Federation> {
        if size.communities < 2 || size.communities > NAMES.len() {
            bail!("communities must be 2..={}", NAMES.len());
        }
        let (root, tmp) = match dir {
            Some(d) => {
                if d.exists() && std::fs::read_dir(&d)?.next().is_some() {
                    bail!("{} is not empty: give a fresh directory", d.display());
                }
                std::fs::create_dir_all(&d)?;
                (std::fs::canonicalize(&d)?, None)
            }
            None => {
                let t = tempfile::Builder::new().prefix("linli-testnet-").tempdir()?;
                if keep {
                    (t.keep(), None)
                } else {
                    (t.path().to_path_buf(), Some(t))
                }
            }
        };
        let node_bin = bins.node.clone();
        let mut members = Vec::new();
        let mut specs = Vec::new();
        for (id, name) in NAMES.iter().take(size.communities) {
            let (hp, pp) = (free_port()?, free_port()?);
            let cdir = root.join(id);
            let (http, p2p) = (format!("127.0.0.1:{hp}"), format!("/ip4/127.0.0.1/tcp/{pp}"));
            let d = cdir.to_string_lossy().into_owned();
            run(
                &node_bin,
                &[
                    "init",
                    "--community",
                    id,
                    "--name",
                    name,
                    "--district",
                    "futian",
                    "--dir",
                    &d,
                    "--http",
                    &http,
                    "--p2p",
                    &p2p,
                ],
            )
            .await?;
            members.push(cdir.join("member.toml").to_string_lossy().into_owned());
            specs.push((id.to_string(), cdir, http, p2p));
        }
        let genesis_file = root.join("genesis.toml");
        let mut args = vec!["genesis", "--federation", "linli-testnet", "--out"];
        let gf = genesis_file.to_string_lossy().into_owned();
        args.push(&gf);
        args.extend(members.iter().map(String::as_str));
        run(&node_bin, &args).await?;
        let genesis = Genesis::from_toml(&std::fs::read_to_string(&genesis_file)?).map_err(|e| anyhow!("{e}"))?;
        let mut nodes = Vec::new();
        for (id, cdir, http, p2p) in specs {
            // Every node.toml names the federation's genesis; checkpoints every second.
            let config = cdir.join("node.toml");
            let mut cfg: toml::Table = toml::from_str(&std::fs::read_to_string(&config)?)?;
            cfg.insert("genesis_file".into(), toml::Value::String(gf.clone()));
            cfg.insert("checkpoint_interval_ms".into(), toml::Value::Integer(1000));
            std::fs::write(&config, toml::to_string_pretty(&cfg)?)?;
            let token = read_token(&cdir.join("operator.token"))?;
            let run_args = vec!["run".to_string(), "--config".into(), config.to_string_lossy().into_owned()];
            let proc = Proc::spawn(&format!("node {id}"), &node_bin, &run_args, &cdir.join("node.log"), keep)?;
            nodes.push(Node { id, dir: cdir, config, http, p2p, token, proc });
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?;
        let f = Federation {
            root,
            _tmp: tmp,
            bins,
            genesis_file,
            genesis_hash: genesis.hash(),
            nodes,
            tills: Vec::new(),
            http,
        };
        for i in 0..f.nodes.len() {
            f.wait_node(i, Duration::from_secs(60)).await?;
        }
        let st = f.get(0, "/v1/status").await?;
        if st["genesis_hash"].as_str() != Some(f.genesis_hash.to_hex().as_str()) {
            bail!("node 0 runs another genesis: {st}");
        }
        Ok(f)
    }

    /// Wait until node `i` answers `/healthz` (fails at once if the process exited).
    pub async fn wait_node(&self, i: usize, limit: Duration) -> Result<()> {
        let n = &self.nodes[i];
        let start = Instant::now();
        loop {
            if let Ok(r) = self.http.get(format!("http://{}/healthz", n.http)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if start.elapsed() > limit {
                bail!("node {} not up within {limit:?}; see {}/node.log", n.id, n.dir.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Create `count` tills (homes: communities 1, 2, ... cycling), register their merchant
    /// keys, start them (each connected to its home node and the next community's node) and
    /// wait until each reaches a community node.
    pub async fn start_tills(&mut self, count: usize, keep: bool) -> Result<()> {
        let n = self.nodes.len();
        for k in 0..count {
            let home = (k + 1) % n;
            let dir = self.root.join(format!("till-{k}-{}", self.nodes[home].id));
            let http = format!("127.0.0.1:{}", free_port()?);
            let d = dir.to_string_lossy().into_owned();
            let gf = self.genesis_file.to_string_lossy().into_owned();
            let (a, b) = (self.nodes[home].p2p.clone(), self.nodes[(home + 1) % n].p2p.clone());
            let out = run(
                &self.bins.node,
                &[
                    "merchant-init",
                    "--home",
                    &self.nodes[home].id,
                    "--dir",
                    &d,
                    "--genesis",
                    &gf,
                    "--http",
                    &http,
                    "--full-node",
                    &a,
                    "--full-node",
                    &b,
                    "--min-witnesses",
                    "2",
                ],
            )
            .await?;
            let merchant = out.split_whitespace().last().context("merchant-init printed no key")?.trim().to_string();
            let names = ["便民超市 corner grocery", "早餐铺 breakfast stall", "理发店 barber", "药店 pharmacy"];
            let body = json!({"merchant": merchant, "name": names[k % names.len()], "category": "retail"});
            self.op(home, "/v1/operator/merchants", body).await?;
            let cfg = dir.join("merchant.toml").to_string_lossy().into_owned();
            let args = vec!["merchant".to_string(), "--config".into(), cfg];
            let proc = Proc::spawn(&format!("till {k}"), &self.bins.node, &args, &dir.join("till.log"), keep)?;
            let token = read_token(&dir.join("till.token"))?;
            self.tills.push(Till { home, dir, http, token, merchant, proc });
        }
        for (t, till) in self.tills.iter().enumerate() {
            if !self.till_connected(t, Duration::from_secs(60)).await {
                bail!("till {} never reached a community node; see its till.log", till.dir.display());
            }
        }
        Ok(())
    }

    /// Wait until till `t` reaches a community node (its `/v1/till/status` counts a
    /// connection); false if it has not after `limit`.
    pub async fn till_connected(&self, t: usize, limit: Duration) -> bool {
        let start = Instant::now();
        loop {
            let st = self.http.get(format!("http://{}/v1/till/status", self.tills[t].http)).send().await;
            if let Ok(r) = st {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                if v["connected"].as_u64().unwrap_or(0) > 0 {
                    return true;
                }
            }
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fail if a node or till exited on its own (a crash is a finding, never hidden by a restart).
    pub fn check_alive(&mut self) -> Result<()> {
        for n in &mut self.nodes {
            if let Some(status) = n.proc.exited() {
                bail!("node {} exited on its own ({status}); see {}/node.log", n.id, n.dir.display());
            }
        }
        for t in &mut self.tills {
            if let Some(status) = t.proc.exited() {
                bail!("{} exited on its own ({status}); see {}/till.log", t.proc.name, t.dir.display());
            }
        }
        Ok(())
    }

    /// Stop every till and node gracefully (SIGTERM).
    pub async fn stop_all(&mut self) {
        for t in &mut self.tills {
            t.proc.stop(Duration::from_secs(10)).await.ok();
        }
        for n in &mut self.nodes {
            n.proc.stop(Duration::from_secs(10)).await.ok();
        }
    }

    /// Leave every process running (`--keep`) and print how to reach and stop them.
    pub fn keep(&mut self) {
        let mut pids = Vec::new();
        println!("\nThe testnet keeps running (data in {}):", self.root.display());
        for n in &mut self.nodes {
            println!("  node {:<10} http://{}/   (log {}/node.log)", n.id, n.http, n.dir.display());
            pids.extend(n.proc.pid());
            n.proc.detach();
        }
        for t in &mut self.tills {
            println!(
                "  till of {:<7} http://{}/v1/till/status   (token in {}/till.token)",
                self.nodes[t.home].id,
                t.http,
                t.dir.display()
            );
            pids.extend(t.proc.pid());
            t.proc.detach();
        }
        let list: Vec<String> = pids.iter().map(u32::to_string).collect();
        let stop = format!("kill {}\n", list.join(" "));
        std::fs::write(self.root.join("stop.sh"), format!("#!/bin/sh\n{stop}")).ok();
        println!("Stop them with: {}  (or sh {}/stop.sh)", stop.trim(), self.root.display());
    }
}
