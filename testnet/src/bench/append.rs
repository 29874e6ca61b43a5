//! Append: one community node sequencing its own residents' payments through the API path —
//! real HTTP, signature check, sequencer (sign, apply, credit the merchant), synced group write —
//! with concurrent clients. Each payment at a merchant of the same community is two entries
//! (the `Pay` and the merchant's `Credit`, in the same group).

use crate::report::{percentile, Report};
use anyhow::{bail, Result};
use linli_protocol::body::{Payment, Signed};
use linli_protocol::rules::RuleTable;
use linli_protocol::testkit::key;
use linli_protocol::{CommunityId, Hash};
use linli_tests::Rig;
use serde_json::json;
use std::time::Instant;

pub struct Sizes {
    pub payments: usize,
    pub clients: usize,
}

pub async fn run(report: &mut Report, sizes: &Sizes) -> Result<()> {
    let mut rig = Rig::new(1);
    rig.start(0).await;
    let gh = rig.genesis_hash;
    let ok = |(s, v): (u16, serde_json::Value)| -> Result<()> {
        if s != 200 {
            bail!("set-up call refused: {s} {v}");
        }
        Ok(())
    };
    ok(rig.post(0, "/v1/operator/rules", serde_json::to_value(RuleTable::default_table(1))?).await)?;
    let shop = key("c0/append-shop");
    ok(rig
        .post(0, "/v1/operator/merchants", json!({"merchant": shop.public(), "name": "shop", "category": "grocery"}))
        .await)?;
    let per_client = sizes.payments.div_ceil(sizes.clients);
    // Mediation of a complex dispute by a newcomer: (50 + 50) × 2, capped at 200 points.
    let awards = per_client.div_ceil(200);
    let residents: Vec<_> = (0..sizes.clients).map(|i| key(&format!("c0/append-r{i}"))).collect();
    let mut request_id = 0u64;
    for r in &residents {
        ok(rig.post(0, "/v1/operator/residents", json!({"resident": r.public(), "profile_hash": Hash::ZERO})).await)?;
        for _ in 0..awards {
            request_id += 1;
            ok(rig
                .post(
                    0,
                    "/v1/operator/awards",
                    json!({"resident": r.public(), "activity": "mediation", "minutes": 60, "rating": 5,
                           "bonuses": ["complex"], "request_id": request_id}),
                )
                .await)?;
        }
    }
    // Payments are signed before the clock starts: a resident's app signs, the node checks.
    let c0 = CommunityId::new("c0")?;
    let bodies: Vec<Vec<serde_json::Value>> = residents
        .iter()
        .map(|r| {
            (0..per_client as u64)
                .map(|nonce| {
                    let p = Payment {
                        payer: r.public(),
                        merchant: shop.public(),
                        merchant_community: c0.clone(),
                        points: 1,
                        price_fen: 50,
                        nonce: nonce + 1,
                        expiry_ms: u64::MAX,
                        genesis: gh,
                    };
                    serde_json::to_value(Signed::sign(p, r, &gh))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let url = format!("{}/v1/pay", rig.members[0].base());
    let http = reqwest::Client::new();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for list in bodies {
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(list.len());
            for body in list {
                let t = Instant::now();
                let r = http.post(&url).json(&body).send().await?;
                let status = r.status();
                let _ = r.bytes().await?;
                if !status.is_success() {
                    anyhow::bail!("payment refused: {status}");
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let took = start.elapsed().as_secs_f64();
    rig.stop(0).await;
    lat.sort_by(|a, b| a.total_cmp(b));
    let pays = lat.len() as f64;
    let note = format!(
        "{} payments by {} concurrent HTTP clients (each waits for its answer), client and node in one process; {:.1} s",
        lat.len(),
        sizes.clients,
        took
    );
    report.rate(
        "Append",
        "resident payments sequenced (pay + credit entries)",
        2.0 * pays / took,
        "entry/s",
        None,
        note.clone(),
    );
    report.rate("Append", "resident payments acknowledged", pays / took, "payment/s", None, note.clone());
    report.latency_ms("Append", "payment latency p50", percentile(&lat, 50.0), None, note.clone());
    report.latency_ms("Append", "payment latency p99", percentile(&lat, 99.0), None, note);
    Ok(())
}
