//! Sustained signed traffic at a fixed offered rate (open loop): resident-signed payments to
//! merchants of other communities (`/v1/pay` on the payer's home node) and operator awards,
//! spread over every node; reports throughput and latency percentiles, and every acknowledged
//! entry so the end state can be checked against it.

use crate::federation::Federation;
use crate::scenario::{award, cid, council, enrol, now_ms, publish_rules};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use linli_protocol::body::{Payment, Signed};
use linli_protocol::{Hash, Keypair, PublicKey};
use rand_core::RngCore;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the load generator needs, independent of the processes (chaos restarts them meanwhile).
pub struct Plan {
    http: reqwest::Client,
    bases: Vec<String>,
    tokens: Vec<String>,
    ids: Vec<String>,
    genesis: Hash,
    residents: Vec<Vec<Keypair>>,
    /// (merchant key, home community index)
    merchants: Vec<(PublicKey, usize)>,
    next: AtomicU64,
}

#[derive(Default)]
pub struct Outcome {
    pub ok: u64,
    pub refused: u64,
    /// 5xx answers.
    pub errors: u64,
    /// No answer within 10 s, connection refused, or more than 512 requests in flight.
    pub unanswered: u64,
    pub latencies: Vec<Duration>,
    /// (community, seq, hash) of every acknowledged entry.
    pub acked: Vec<(String, u64, String)>,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn percentile(&self, p: f64) -> Duration {
        let mut v = self.latencies.clone();
        v.sort();
        let i = ((v.len() as f64 - 1.0) * p).round().max(0.0) as usize;
        v.get(i).copied().unwrap_or_default()
    }

    pub fn report(&self, rate: u64) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "offered {rate}/s for {:.1} s: {} acknowledged ({:.1}/s), {} refused (4xx), {} errors (5xx), {} unanswered; latency of acknowledged requests p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
            self.elapsed.as_secs_f64(),
            self.ok,
            self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9),
            self.refused,
            self.errors,
            self.unanswered,
            ms(self.percentile(0.50)),
            ms(self.percentile(0.90)),
            ms(self.percentile(0.99)),
        )
    }
}

/// Rules, `per` funded residents per community, exposure limits for every pair.
pub async fn prepare(f: &Federation, per: usize) -> Result<Plan> {
    publish_rules(f).await?;
    let n = f.nodes.len();
    let mut residents = Vec::new();
    for i in 0..n {
        let mut v = Vec::new();
        for k in 0..per {
            let r = enrol(f, i).await?;
            for a in 0..3u64 {
                let id = (k as u64) * 10 + a + 1;
                if council(i) {
                    award(f, i, &r, ("volunteering", 1200, 5, &[]), id, 100).await?;
                } else {
                    award(f, i, &r, ("mediation", 60, 5, &[]), id, 100).await?;
                }
            }
            v.push(r);
        }
        residents.push(v);
    }
    for i in 0..n {
        for (j, issuer) in f.nodes.iter().enumerate() {
            if i != j {
                f.op(i, "/v1/operator/exposure-limits", json!({"issuer": issuer.id, "limit_fen": 100_000_000})).await?;
            }
        }
    }
    f.converge(Duration::from_secs(60), false).await?;
    let merchants = f
        .tills
        .iter()
        .map(|t| Ok((PublicKey::from_hex(&t.merchant).map_err(|e| anyhow::anyhow!("{e}"))?, t.home)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Plan {
        http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
        bases: (0..n).map(|i| f.base(i)).collect(),
        tokens: f.nodes.iter().map(|x| x.token.clone()).collect(),
        ids: f.nodes.iter().map(|x| x.id.clone()).collect(),
        genesis: f.genesis_hash,
        residents,
        merchants,
        next: AtomicU64::new(1_000_000),
    })
}

impl Plan {
    /// A sale body for till `merchant` (home community `home`): a funded resident of another
    /// community pays 1 point (price 0.10 yuan).
    pub fn till_sale(&self, merchant: &PublicKey, home: usize) -> Result<serde_json::Value> {
        let others: Vec<usize> = (0..self.ids.len()).filter(|i| *i != home).collect();
        let i = *others.get(pick(others.len())).context("no other community")?;
        let r = &self.residents[i][pick(self.residents[i].len())];
        let p = Payment {
            payer: r.public(),
            merchant: *merchant,
            merchant_community: cid(&self.ids[home])?,
            points: 1,
            price_fen: 10,
            nonce: self.next.fetch_add(1, Ordering::Relaxed),
            expiry_ms: now_ms() + 600_000,
            genesis: self.genesis,
        };
        Ok(json!({"payer_community": self.ids[i], "payment": Signed::sign(p, r, &self.genesis)}))
    }
}

fn pick(n: usize) -> usize {
    (rand_core::OsRng.next_u64() % n.max(1) as u64) as usize
}

/// One request: every fourth an award, the others a 1-point payment at another community's
/// merchant. Returns (status, body) or a transport error.
async fn one(plan: &Plan) -> Result<(u16, serde_json::Value)> {
    let k = plan.next.fetch_add(1, Ordering::Relaxed);
    let i = pick(plan.ids.len());
    let r = &plan.residents[i][pick(plan.residents[i].len())];
    let req = if k.is_multiple_of(4) {
        let (activity, minutes) = if council(i) { ("volunteering", 60) } else { ("hourly-service", 60) };
        let body =
            json!({"resident": r.public(), "activity": activity, "minutes": minutes, "rating": 4, "request_id": k});
        plan.http.post(format!("{}/v1/operator/awards", plan.bases[i])).bearer_auth(&plan.tokens[i]).json(&body)
    } else {
        let others: Vec<&(PublicKey, usize)> = plan.merchants.iter().filter(|m| m.1 != i).collect();
        let (merchant, home) = others.get(pick(others.len())).context("no merchant of another community")?;
        let p = Payment {
            payer: r.public(),
            merchant: *merchant,
            merchant_community: cid(&plan.ids[*home])?,
            points: 1,
            price_fen: 10,
            nonce: k,
            expiry_ms: now_ms() + 600_000,
            genesis: plan.genesis,
        };
        plan.http.post(format!("{}/v1/pay", plan.bases[i])).json(&json!(Signed::sign(p, r, &plan.genesis)))
    };
    let resp = req.send().await?;
    let s = resp.status().as_u16();
    Ok((s, resp.json().await.unwrap_or(serde_json::Value::Null)))
}

/// Offer `rate` requests a second for `duration` (at most 512 in flight).
pub async fn run(plan: Arc<Plan>, rate: u64, duration: Duration, pb: Option<ProgressBar>) -> Outcome {
    let out = Arc::new(Mutex::new(Outcome::default()));
    let gate = Arc::new(tokio::sync::Semaphore::new(512));
    let start = Instant::now();
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let mut tasks = tokio::task::JoinSet::new();
    // Without a terminal the bar is hidden: print a progress line every few seconds instead.
    let every = Duration::from_secs(5).min(duration / 3).max(Duration::from_secs(1));
    let mut last_line = Instant::now();
    for k in 0..total {
        let at = start + Duration::from_secs_f64(k as f64 / rate.max(1) as f64);
        tokio::time::sleep_until(at.into()).await;
        if let Some(pb) = &pb {
            pb.set_position(start.elapsed().as_secs());
            if pb.is_hidden() && last_line.elapsed() >= every {
                last_line = Instant::now();
                if let Ok(o) = out.lock() {
                    println!(
                        "  load: {:>4.1} s of {} s, {} sent: {} acknowledged, {} refused, {} errors, {} unanswered",
                        start.elapsed().as_secs_f64(),
                        duration.as_secs(),
                        k,
                        o.ok,
                        o.refused,
                        o.errors,
                        o.unanswered
                    );
                }
            }
        }
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            out.lock().map(|mut o| o.unanswered += 1).ok();
            continue;
        };
        let (plan, out) = (plan.clone(), out.clone());
        tasks.spawn(async move {
            let t = Instant::now();
            let r = one(&plan).await;
            let took = t.elapsed();
            drop(permit);
            let Ok(mut o) = out.lock() else { return };
            match r {
                Ok((200, v)) => {
                    o.ok += 1;
                    o.latencies.push(took);
                    if let (Some(c), Some(seq), Some(h)) =
                        (v["community"].as_str(), v["seq"].as_u64(), v["hash"].as_str())
                    {
                        o.acked.push((c.to_string(), seq, h.to_string()));
                    }
                }
                Ok((s, _)) if (400..500).contains(&s) => o.refused += 1,
                Ok(_) => o.errors += 1,
                Err(_) => o.unanswered += 1,
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut o = out.lock().map(|mut o| std::mem::take(&mut *o)).unwrap_or_default();
    o.elapsed = start.elapsed();
    o
}

/// Every acknowledged entry is in the ledgers (as node 0 serves them, after convergence).
pub fn check_acked(
    acked: &[(String, u64, String)],
    ledgers: &std::collections::BTreeMap<String, Vec<serde_json::Value>>,
) -> Result<()> {
    for (c, seq, hash) in acked {
        let e = ledgers.get(c).and_then(|l| l.get(*seq as usize));
        let found = e.and_then(|e| e["hash"].as_str());
        anyhow::ensure!(
            found == Some(hash.as_str()),
            "acknowledged entry {c} #{seq} {hash} is not in the ledger (found {found:?})"
        );
    }
    Ok(())
}
