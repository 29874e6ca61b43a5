//! Criterion micro-benchmarks of the protocol's hot paths: decoding a stored entry, hashing it,
//! verifying a run of entries (batched, cofactored) and applying entries to the state machine.
//! `cargo bench -p linli-protocol` (release profile); `linli-bench` measures the whole node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use linli_protocol::body::{Award, Body, Credit, Enroll, PayEntry, RegisterMerchant};
use linli_protocol::rules::RuleTable;
use linli_protocol::testkit::{key, TestFederation};
use linli_protocol::verify::{verify_run, SignerKeys, VerifiedEntry};
use linli_protocol::{ApplyContext, Hash, SignedEntry, State};

/// A valid ledger of `n` entries after set-up: awards, payments (two signatures) and credits.
fn ledger(n: usize) -> (TestFederation, Vec<SignedEntry>) {
    let mut f = TestFederation::new(&["a", "b"]);
    let mut w = f.chain("a");
    let shop = key("shop");
    let residents: Vec<_> = (0..16).map(|i| key(&format!("r{i}"))).collect();
    let mut out = vec![
        w.next(Body::SetRules(RuleTable::default_table(1))),
        w.next(Body::RegisterMerchant(RegisterMerchant {
            merchant: shop.public(),
            name: "s".into(),
            category: "c".into(),
        })),
    ];
    for r in &residents {
        out.push(w.next(Body::Enroll(Enroll { resident: r.public(), profile_hash: Hash::ZERO })));
    }
    let mut awards = vec![0u32; residents.len()];
    let mut i = 0u64;
    while out.len() < n + 2 + residents.len() {
        let who = (i as usize / 3) % residents.len();
        let r = &residents[who];
        let body = match i % 3 {
            0 => {
                awards[who] += 1;
                Body::Award(Award {
                    resident: r.public(),
                    activity: "cleanup".into(),
                    minutes: 60,
                    rating: 5,
                    bonuses: vec![],
                    points: if awards[who] <= 3 { 40 } else { 20 },
                    rules_version: 1,
                    request_id: i,
                })
            }
            1 => {
                f.time_ms = w.time_ms;
                let p = f.payment(r, &shop, "a", 10, 100, i);
                Body::Pay(PayEntry { payment: f.sign(p, r), exposure_limit: None })
            }
            _ => {
                let pay = out.last().unwrap().entry_ref(&f.genesis_hash);
                Body::Credit(Credit {
                    source: pay,
                    merchant: shop.public(),
                    issuer: linli_protocol::testkit::cid("a"),
                    points: 10,
                })
            }
        };
        out.push(w.next(body));
        i += 1;
    }
    (f, out)
}

fn keys(f: &TestFederation) -> SignerKeys {
    let c = &f.genesis.communities[0];
    SignerKeys { current: c.signing_key, recovery: c.recovery_key }
}

fn hot_paths(c: &mut Criterion) {
    let (f, entries) = ledger(1024);
    let gh = f.genesis_hash;
    let bytes: Vec<Vec<u8>> = entries.iter().map(SignedEntry::to_bytes).collect();

    let mut g = c.benchmark_group("entry");
    g.throughput(Throughput::Elements(bytes.len() as u64));
    g.bench_function("decode (strict, canonical)", |b| {
        b.iter(|| bytes.iter().map(|x| SignedEntry::from_bytes(x).unwrap()).collect::<Vec<_>>())
    });
    g.bench_function("hash (canonical encoding + BLAKE3)", |b| {
        b.iter(|| entries.iter().map(|e| e.hash(&gh)).collect::<Vec<_>>())
    });
    g.finish();

    let mut g = c.benchmark_group("verify_run");
    g.sample_size(10);
    for size in [128usize, 1024] {
        let run: Vec<SignedEntry> = entries[..size].to_vec();
        g.throughput(Throughput::Elements(size as u64));
        g.bench_function(format!("{size} entries"), |b| {
            b.iter_batched(|| run.clone(), |r| verify_run(&gh, r, keys(&f)).unwrap(), BatchSize::LargeInput)
        });
    }
    g.finish();

    let verified: Vec<VerifiedEntry> = verify_run(&gh, entries.clone(), keys(&f)).unwrap();
    let fresh = State::new(&f.genesis);
    let mut g = c.benchmark_group("apply");
    g.throughput(Throughput::Elements(verified.len() as u64));
    g.bench_function("check + commit (state machine)", |b| {
        b.iter_batched(
            || fresh.clone(),
            |mut s| {
                for v in &verified {
                    let changes = s.check(v, &ApplyContext::default()).unwrap();
                    s.commit(changes);
                }
                s
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
