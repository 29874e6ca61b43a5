//! The market side of the scenario: residents pay at tills of other communities (receipts
//! verified by the till; a repeated payment, a reused nonce and an overspend), tills reconcile
//! and settle at 10 fen a point, and every pair of communities clears, each figure checked.

use crate::federation::Federation;
use crate::scenario::{cid, now_ms};
use crate::summary::Expected;
use anyhow::{ensure, Context, Result};
use linli_protocol::body::{Payment, Signed};
use linli_protocol::Keypair;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Each community's first resident pays 20 points (price 3.00 yuan) at every till of another
/// community; returns the sales per till.
pub async fn sales(f: &Federation, people: &[Vec<Keypair>], exp: &mut Expected) -> Result<Vec<u64>> {
    let (n, gh) = (f.nodes.len(), f.genesis_hash);
    let ids: Vec<String> = f.nodes.iter().map(|x| x.id.clone()).collect();
    let mut receipts = vec![0u64; f.tills.len()];
    let mut nonce = 10;
    for i in 0..n {
        let r0 = &people[i][0];
        for (t, till) in f.tills.iter().enumerate() {
            if till.home == i {
                continue;
            }
            nonce += 1;
            let p = Payment {
                payer: r0.public(),
                merchant: linli_protocol::PublicKey::from_hex(&till.merchant).map_err(|e| anyhow::anyhow!("{e}"))?,
                merchant_community: cid(&ids[till.home])?,
                points: 20,
                price_fen: 300,
                nonce,
                expiry_ms: now_ms() + 600_000,
                genesis: gh,
            };
            let signed = Signed::sign(p, r0, &gh);
            let sale = json!({"payer_community": ids[i], "payment": signed});
            let (s, v) = f.till(t, "/v1/till/sales", sale.clone()).await?;
            ensure!(s == 200, "sale at till {t}: {s} {v}");
            ensure!(v["points"] == 20 && v["cash_fen"] == 100, "receipt figures: {v}");
            ensure!(v["witnesses"].as_u64().unwrap_or(0) >= 2, "receipt with too few witnesses: {v}");
            receipts[t] += 1;
            exp.get(&ids[i]).spent_elsewhere += 20;
            if i == 0 && t == 0 {
                let (s, again) = f.till(t, "/v1/till/sales", sale).await?;
                ensure!(
                    s == 200 && again["at"] == v["at"],
                    "the same payment presented again is another sale: {s} {again}"
                );
                let mut p2 = signed.payload.clone();
                p2.nonce = 1;
                let replay = json!({"payer_community": ids[i], "payment": Signed::sign(p2.clone(), r0, &gh)});
                let (s, v) = f.till(t, "/v1/till/sales", replay).await?;
                ensure!(s == 409 && v["error"] == "already-used", "a reused nonce was not refused: {s} {v}");
                p2.nonce = 9_999;
                p2.points = 10_000;
                p2.price_fen = 100_000;
                let over = json!({"payer_community": ids[i], "payment": Signed::sign(p2, r0, &gh)});
                let (s, v) = f.till(t, "/v1/till/sales", over).await?;
                ensure!(s == 422 && v["error"] == "insufficient-points", "an overspend was not refused: {s} {v}");
            }
        }
    }
    Ok(receipts)
}

/// Wait until a till has reconciled `receipts` credits, then settle every issuer's credited points.
async fn settle_till(f: &Federation, t: usize, receipts: u64) -> Result<Vec<(String, u64)>> {
    let start = Instant::now();
    let r = loop {
        let (s, r) = f.till(t, "/v1/till/reconcile", Value::Null).await?;
        ensure!(s == 200, "reconcile: {s} {r}");
        if r["credited"].as_u64() == Some(receipts) {
            break r;
        }
        ensure!(start.elapsed() < Duration::from_secs(60), "till {t}: credits never reconciled: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut settled = Vec::new();
    for issuer in r["issuers"].as_array().context("reconcile without issuers")? {
        let (c, points) = (issuer["issuer"].as_str().unwrap_or(""), issuer["credited_points"].as_u64().unwrap_or(0));
        if points == 0 {
            continue;
        }
        let (s, v) = f.till(t, "/v1/till/settlements", json!({"issuer": c, "points": points})).await?;
        ensure!(s == 200, "settlement of {points} points of {c}: {s} {v}");
        ensure!(v["fen"].as_u64() == Some(points * 10), "settlement of {points} points paid {} fen", v["fen"]);
        settled.push((c.to_string(), points));
    }
    Ok(settled)
}

/// Every till settles what was credited; returns (merchant community, issuer, points).
pub async fn settle(f: &Federation, receipts: &[u64], exp: &mut Expected) -> Result<Vec<(usize, usize, u64)>> {
    let ids: Vec<String> = f.nodes.iter().map(|x| x.id.clone()).collect();
    let mut pairs: Vec<(usize, usize, u64)> = Vec::new();
    for (t, till) in f.tills.iter().enumerate() {
        for (issuer, points) in settle_till(f, t, receipts[t]).await? {
            let j = ids.iter().position(|x| *x == issuer).context("unknown issuer")?;
            exp.get(&ids[till.home]).settled_points += points;
            exp.get(&issuer).settled_issued += points;
            pairs.push((till.home, j, points));
        }
    }
    Ok(pairs)
}

/// Every pair of communities with settlements clears, both sides; returns the pairs cleared.
pub async fn clear(f: &Federation, pairs: &[(usize, usize, u64)], exp: &mut Expected) -> Result<usize> {
    let ids: Vec<String> = f.nodes.iter().map(|x| x.id.clone()).collect();
    f.converge(Duration::from_secs(60), false).await?;
    let owed =
        |here: usize, there: usize| pairs.iter().filter(|p| p.0 == here && p.1 == there).map(|p| p.2 * 10).sum::<u64>();
    let mut done = std::collections::BTreeSet::new();
    for &(a, b, _) in pairs {
        let key = (a.min(b), a.max(b));
        if !done.insert(key) {
            continue;
        }
        for (x, y) in [(a, b), (b, a)] {
            let v = f.op(x, "/v1/operator/clearings", json!({"counterparty": ids[y]})).await?;
            let c = &v["entry"]["entry"]["body"]["Clearing"];
            let (rec, pay) = (c["receivable_fen"].as_u64(), c["payable_fen"].as_u64());
            ensure!(
                (rec, pay) == (Some(owed(x, y)), Some(owed(y, x))),
                "{} clearing with {}: {c}; expected receivable {} payable {}",
                ids[x],
                ids[y],
                owed(x, y),
                owed(y, x)
            );
            exp.get(&ids[x]).receivable_fen += owed(x, y);
            exp.get(&ids[x]).payable_fen += owed(y, x);
            f.converge(Duration::from_secs(60), false).await?;
        }
    }
    Ok(done.len())
}
