//! The community-practice scenario, on the pure protocol.

use anyhow::{anyhow, Result};
use linli_protocol::body::*;
use linli_protocol::checkpoint::{Checkpoint, CosignedCheckpoint, SignedCheckpoint};
use linli_protocol::merkle;
use linli_protocol::rules::RuleTable;
use linli_protocol::testkit::{cid, key, TestFederation};
use linli_protocol::{Keypair, SignedEntry};
use std::collections::BTreeMap;

const NAMES: [&str; 8] = ["lianhua", "xiangmihu", "shatou", "futian", "huafu", "nanyuan", "yuanling", "meilin"];

struct Run {
    f: TestFederation,
    log: BTreeMap<String, Vec<SignedEntry>>,
    refused: Vec<String>,
}

impl Run {
    fn append(&mut self, community: &str, body: Body) -> Result<EntryRef> {
        let v = self.f.append(community, body).map_err(|e| anyhow!("{e}"))?;
        let r = v.signed().entry_ref(&self.f.genesis_hash);
        self.log.entry(community.to_string()).or_default().push(v.into_signed());
        Ok(r)
    }
    fn expect_refused(&mut self, community: &str, body: Body, what: &str) -> Result<()> {
        match self.f.append(community, body) {
            Ok(_) => Err(anyhow!("{what} was accepted but must be refused")),
            Err(e) => {
                self.refused.push(format!("{what}: {}", e.rejection));
                Ok(())
            }
        }
    }
}

fn award(resident: &Keypair, activity: &str, minutes: u64, rating: u8, bonuses: &[&str], points: u64, id: u64) -> Body {
    Body::Award(Award {
        resident: resident.public(),
        activity: activity.into(),
        minutes,
        rating,
        bonuses: bonuses.iter().map(|b| b.to_string()).collect(),
        points,
        rules_version: 1,
        request_id: id,
    })
}

pub fn run(n: usize) -> Result<()> {
    let names: Vec<&str> = NAMES.iter().copied().cycle().take(n).collect();
    let mut r = Run { f: TestFederation::new(&names), log: BTreeMap::new(), refused: vec![] };
    println!("Linli scenario: {} communities, genesis {}", n, r.f.genesis_hash);

    // Every community publishes its rules and extends credit to every other.
    let mut limits = BTreeMap::new();
    for (i, c) in names.iter().enumerate() {
        let table = if i % 2 == 0 { RuleTable::default_table(1) } else { RuleTable::council_table(1) };
        r.append(c, Body::SetRules(table))?;
        for other in &names {
            if other != c {
                let at =
                    r.append(c, Body::SetExposureLimit(ExposureLimit { issuer: cid(other), limit_fen: 50_000 }))?;
                limits.insert((c.to_string(), other.to_string()), at);
            }
        }
    }
    // Residents and merchants.
    let residents: Vec<Keypair> = names.iter().map(|c| key(&format!("{c}/resident"))).collect();
    let merchants: Vec<Keypair> = names.iter().map(|c| key(&format!("{c}/merchant"))).collect();
    for (i, c) in names.iter().enumerate() {
        r.append(
            c,
            Body::Enroll(Enroll { resident: residents[i].public(), profile_hash: linli_protocol::Hash([i as u8; 32]) }),
        )?;
        r.append(
            c,
            Body::RegisterMerchant(RegisterMerchant {
                merchant: merchants[i].public(),
                name: format!("{c} grocery"),
                category: "groceries".into(),
            }),
        )?;
    }
    println!("  enrolled {} residents and {} merchants", residents.len(), merchants.len());

    // Earn under each community's published rules.
    let (a, b) = (names[0], names[1]);
    let ra = residents[0].clone();
    r.append(a, award(&ra, "cleanup", 120, 5, &["bad-weather"], 60, 1))?; // newcomer: (20+10)x2
    r.expect_refused(a, award(&ra, "mediation", 60, 5, &[], 50, 2), "mediation award of 50 points to a newcomer")?;
    r.append(a, award(&ra, "mediation", 60, 5, &[], 100, 2))?; // newcomer: 50x2
    r.append(a, award(&ra, "patrol", 60, 2, &[], 0, 4))?; // rating too low: no points
    r.append(a, award(&ra, "elder-care", 60, 5, &["continuous-3m"], 100, 5))?;
    let rb = residents[1].clone();
    r.append(b, award(&rb, "volunteering", 180, 4, &[], 15, 1))?;
    r.append(b, award(&rb, "council", 60, 4, &[], 10, 2))?;
    println!("  awards recomputed from each community's rule table");

    // Redeem at home.
    let red = r.f.sign(Redemption { resident: ra.public(), points: 20, item: "rice 5kg".into(), nonce: 1 }, &ra);
    r.append(a, Body::Redeem(red))?;

    // Spend at a merchant of b: sequenced by a, credited by b.
    let pay = r.f.payment(&ra, &merchants[1], b, 50, 800, 2);
    let payment = r.f.sign(pay, &ra);
    let limit = limits.get(&(b.to_string(), a.to_string())).cloned();
    let pay_ref = r.append(a, Body::Pay(PayEntry { payment: payment.clone(), exposure_limit: limit.clone() }))?;
    r.expect_refused(a, Body::Pay(PayEntry { payment, exposure_limit: limit }), "replayed payment")?;
    r.append(b, Body::Credit(Credit { source: pay_ref, merchant: merchants[1].public(), issuer: cid(a), points: 50 }))?;
    let req = r.f.sign(
        SettlementRequest { merchant: merchants[1].public(), issuer: cid(a), points: 50, fen: 500, nonce: 1 },
        &merchants[1],
    );
    let settle_ref = r.append(b, Body::Settle(SettleEntry { request: req, settled_total: 50 }))?;
    println!("  {a} resident paid 50 points (5.00 yuan) at a {b} merchant; merchant settled 5.00 yuan");

    // Clearing, recorded by both sides.
    r.append(
        b,
        Body::Clearing(Clearing {
            counterparty: cid(a),
            settled_here_total: 50,
            settled_there_total: 0,
            settled_there_ref: None,
            receivable_fen: 500,
            payable_fen: 0,
        }),
    )?;
    r.append(
        a,
        Body::Clearing(Clearing {
            counterparty: cid(b),
            settled_here_total: 0,
            settled_there_total: 50,
            settled_there_ref: Some(settle_ref),
            receivable_fen: 0,
            payable_fen: 500,
        }),
    )?;

    // Time bank across communities.
    let svc = r.f.sign(
        TimeService { provider: ra.public(), served: rb.public(), minutes: 120, service: "tutoring".into(), nonce: 3 },
        &rb,
    );
    r.append(a, Body::TimeCredit(svc))?;
    let c = names[n - 1];
    let draw = r.f.sign(
        TimeDraw {
            resident: ra.public(),
            minutes: 60,
            serving_community: cid(c),
            service: "home repair".into(),
            nonce: 4,
        },
        &ra,
    );
    let draw_ref = r.append(a, Body::TimeSpend(draw))?;
    r.append(c, Body::TimeFulfil(TimeFulfil { source: draw_ref, minutes: 60 }))?;

    verify_and_summarise(&r, &names)
}

fn verify_and_summarise(r: &Run, names: &[&str]) -> Result<()> {
    let g = &r.f.genesis;
    let gh = r.f.genesis_hash;
    // Re-verify every ledger from genesis: batch signatures, then the state machine (ledgers
    // replayed round-robin so cross-ledger references resolve).
    let ledgers = r.log.iter().map(|(c, entries)| (cid(c), entries.clone())).collect();
    let replay = linli_protocol::replay::replay(g, ledgers, None).map_err(|e| anyhow!("replay refused: {e}"))?;
    anyhow::ensure!(replay == r.f.state, "replayed state differs from the live state");
    anyhow::ensure!(replay.conservation_violation().is_none(), "conservation broken");

    // Checkpoints cosigned by every other community, and an inclusion proof per ledger.
    for (c, entries) in &r.log {
        let hashes: Vec<_> = entries.iter().map(|e| e.hash(&gh)).collect();
        let root = merkle::root(&hashes);
        let cp = Checkpoint { community: cid(c), size: hashes.len() as u64, root, time_ms: r.f.time_ms };
        let signed = SignedCheckpoint::sign(cp, &r.f.keys[&cid(c)], &gh);
        let cosignatures = names
            .iter()
            .filter(|w| **w != c.as_str())
            .map(|w| signed.cosign(cid(w), &r.f.keys[&cid(w)], &gh))
            .collect();
        let cosigned = CosignedCheckpoint { signed, cosignatures };
        let witnesses = cosigned
            .verify(&gh, &r.f.keys[&cid(c)].public(), |w| r.f.keys.get(w).map(|k| k.public()), names.len() - 1)
            .map_err(|e| anyhow!("{e}"))?;
        let last = hashes.len() as u64 - 1;
        let proof = merkle::prove_inclusion(&hashes, last).map_err(|e| anyhow!("{e}"))?;
        proof.verify(&hashes[last as usize], &root).map_err(|e| anyhow!("{e}"))?;
        println!(
            "  {c:<10} {} entries, checkpoint root {}… cosigned by {witnesses}",
            hashes.len(),
            &root.to_hex()[..12]
        );
    }

    println!("\nRefused as they must be:");
    for line in &r.refused {
        println!("  - {line}");
    }
    println!(
        "\n{:<10} {:>8} {:>9} {:>11} {:>12} {:>10}",
        "community", "issued", "redeemed", "settled", "outstanding", "minutes"
    );
    for c in names {
        let t = &replay.totals[&cid(c)];
        let outstanding = t.minted - t.redeemed - t.settled;
        println!(
            "{:<10} {:>8} {:>9} {:>11} {:>12} {:>10}",
            c,
            t.minted,
            t.redeemed,
            format!("{}.{:02} yuan", t.settled / 10, (t.settled % 10) * 10),
            format!("{}.{:02} yuan", outstanding / 10, (outstanding % 10) * 10),
            t.minutes_held
        );
    }
    println!("\nVerdict: every ledger re-verified from genesis (signatures, chain, rules, 1 point = 0.1 yuan); conservation holds; checkpoints cosigned.");
    Ok(())
}
