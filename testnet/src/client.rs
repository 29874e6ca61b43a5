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

    /// Every ledger's (size, head, checkpoint size, checkpoint root) as node `i` holds it.
    pub async fn view(&self, i: usize) -> Result<Vec<(String, u64, String, Option<u64>, Option<String>)>> {
        let st = self.get(i, "/v1/status").await?;
        let ledgers = st["ledgers"].as_array().context("status without ledgers")?;
        Ok(ledgers
            .iter()
            .map(|l| {
                (
                    l["community"].as_str().unwrap_or("").to_string(),
                    l["size"].as_u64().unwrap_or(0),
                    l["head"].as_str().unwrap_or("").to_string(),
                    l["latest_checkpoint_size"].as_u64(),
                    l["latest_checkpoint_root"].as_str().map(str::to_string),
                )
            })
            .collect())
    }

    /// Wait until every node holds the same heads; with `checkpoints`, also the same latest
    /// checkpoint of every ledger, covering the whole ledger.
    pub async fn converge(&self, limit: Duration, checkpoints: bool) -> Result<Duration> {
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
                let heads_agree = views
                    .windows(2)
                    .all(|w| w[0].iter().zip(&w[1]).all(|(a, b)| (&a.0, a.1, &a.2) == (&b.0, b.1, &b.2)));
                let cps_agree =
                    views.windows(2).all(|w| w[0] == w[1]) && views[0].iter().all(|l| l.1 == 0 || l.3 == Some(l.1));
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
