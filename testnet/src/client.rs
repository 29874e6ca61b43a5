//! HTTP calls to the federation's nodes and tills (operator calls with the node's token, signed
//! calls, reads), and waiting until every node holds the same ledgers.

use crate::federation::Federation;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::time::{Duration, Instant};

impl Federation {
    pub fn base(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].http)
    }

    /// POST with node `i`'s operator token: (status, body).
    pub async fn op_raw(&self, i: usize, path: &str, body: Value) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.base(i));
        let r = self.http.post(&url).bearer_auth(&self.nodes[i].token).json(&body).send().await?;
        let s = r.status().as_u16();
        Ok((s, r.json().await.unwrap_or(Value::Null)))
    }

    /// An operator call that must succeed.
    pub async fn op(&self, i: usize, path: &str, body: Value) -> Result<Value> {
        let (s, v) = self.op_raw(i, path, body).await?;
        if s != 200 {
            bail!("{} {path}: {s} {v}", self.nodes[i].id);
        }
        Ok(v)
    }

    /// A public POST (signed resident/merchant calls): (status, body).
    pub async fn post(&self, i: usize, path: &str, body: &Value) -> Result<(u16, Value)> {
        let r = self.http.post(format!("{}{path}", self.base(i))).json(body).send().await?;
        let s = r.status().as_u16();
        Ok((s, r.json().await.unwrap_or(Value::Null)))
    }

    pub async fn get(&self, i: usize, path: &str) -> Result<Value> {
        let r = self.http.get(format!("{}{path}", self.base(i))).send().await?;
        if !r.status().is_success() {
            bail!("GET {}{path}: {}", self.nodes[i].id, r.status());
        }
        Ok(r.json().await?)
    }

    /// POST to till `t` with its token: (status, body).
    pub async fn till(&self, t: usize, path: &str, body: Value) -> Result<(u16, Value)> {
        let till = &self.tills[t];
        let r =
            self.http.post(format!("http://{}{path}", till.http)).bearer_auth(&till.token).json(&body).send().await?;
        let s = r.status().as_u16();
        Ok((s, r.json().await.unwrap_or(Value::Null)))
    }

    /// Every ledger as node `i` holds it.
    pub async fn view(&self, i: usize) -> Result<Vec<LedgerView>> {
        let st = self.get(i, "/v1/status").await?;
        let ledgers = st["ledgers"].as_array().context("status without ledgers")?;
        Ok(ledgers
            .iter()
            .map(|l| LedgerView {
                community: l["community"].as_str().unwrap_or("").to_string(),
                size: l["size"].as_u64().unwrap_or(0),
                head: l["head"].as_str().unwrap_or("").to_string(),
                checkpoint_size: l["latest_checkpoint_size"].as_u64(),
                checkpoint_root: l["latest_checkpoint_root"].as_str().map(str::to_string),
                cosigners: l["latest_checkpoint_cosigners"].as_u64().unwrap_or(0),
            })
            .collect())
    }

    /// Wait until every node holds the same heads; with `checkpoints`, also the same latest
    /// checkpoint of every ledger, covering the whole ledger and cosigned by at least two
    /// witnesses (as the tills require) in every node's copy.
    pub async fn converge(&self, limit: Duration, checkpoints: bool) -> Result<Duration> {
        let need = 2.min(self.nodes.len().saturating_sub(1)) as u64;
        let start = Instant::now();
        loop {
            let mut views = Vec::new();
            let mut err = None;
            for i in 0..self.nodes.len() {
                match self.view(i).await {
                    Ok(v) => views.push(v),
                    Err(e) => err = Some(e),
                }
            }
            if err.is_none() {
                let heads = |v: &Vec<LedgerView>| {
                    v.iter().map(|l| (l.community.clone(), l.size, l.head.clone())).collect::<Vec<_>>()
                };
                let cps = |v: &Vec<LedgerView>| {
                    v.iter().map(|l| (l.checkpoint_size, l.checkpoint_root.clone())).collect::<Vec<_>>()
                };
                let heads_agree = views.windows(2).all(|w| heads(&w[0]) == heads(&w[1]));
                let cps_agree = views.windows(2).all(|w| cps(&w[0]) == cps(&w[1]))
                    && views
                        .iter()
                        .flatten()
                        .all(|l| l.size == 0 || (l.checkpoint_size == Some(l.size) && l.cosigners >= need));
                if heads_agree && (!checkpoints || cps_agree) {
                    return Ok(start.elapsed());
                }
            }
            if start.elapsed() > limit {
                bail!("nodes did not converge within {limit:?} (last error: {err:?}): {views:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One ledger as one node reports it in `/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerView {
    pub community: String,
    pub size: u64,
    pub head: String,
    pub checkpoint_size: Option<u64>,
    pub checkpoint_root: Option<String>,
    pub cosigners: u64,
}
