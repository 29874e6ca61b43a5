//! Ceiling: what the hardware allows. Raw `ed25519-dalek` single and batch verification (the
//! batch-128 rate on one core is the run's reference), BLAKE3 on entry-sized inputs, and the
//! protocol's own paths: `keys::verify_message` (the cofactored single check) and
//! `verify::verify_run` over real ledger entries (which also hashes entries and screens keys).

use crate::report::{median, Report};
use crate::workload::{Workload, SIGNATURES_PER_ENTRY};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use linli_protocol::verify::{verify_run, SignerKeys};
use linli_protocol::{Genesis, PublicKey};
use std::time::Instant;

pub struct Sizes {
    pub signatures: usize,
    pub reps: usize,
}

struct Corpus {
    keys: Vec<VerifyingKey>,
    msgs: Vec<Vec<u8>>,
    sigs: Vec<Signature>,
}

fn corpus(n: usize) -> Corpus {
    let signers: Vec<SigningKey> = (0..64u8).map(|i| SigningKey::from_bytes(&[i.wrapping_add(1); 32])).collect();
    let mut c = Corpus { keys: vec![], msgs: vec![], sigs: vec![] };
    for i in 0..n {
        let k = &signers[i % signers.len()];
        // About the size of what Linli signs: domain, genesis hash, and an entry hash or payload.
        let msg: Vec<u8> = (0..128).map(|j| (i * 31 + j * 7) as u8).collect();
        c.sigs.push(k.sign(&msg));
        c.keys.push(k.verifying_key());
        c.msgs.push(msg);
    }
    c
}

/// Rate (items/s) of `f` over `n` items: median of `reps` timed runs.
fn rate(reps: usize, n: usize, mut f: impl FnMut()) -> f64 {
    let mut rates: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            n as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut rates)
}

fn batch_rate(c: &Corpus, size: usize, reps: usize) -> f64 {
    let n = c.sigs.len() / size * size;
    rate(reps, n, || {
        for start in (0..n).step_by(size) {
            let msgs: Vec<&[u8]> = c.msgs[start..start + size].iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(&msgs, &c.sigs[start..start + size], &c.keys[start..start + size])
                .expect("valid batch");
        }
    })
}

/// Measure the ceiling rows; sets the report's reference rate (batch 128, one core) first.
pub fn run(report: &mut Report, genesis: &Genesis, sizes: &Sizes) {
    let c = corpus(sizes.signatures);
    let reps = sizes.reps;
    let note = format!("median of {reps} × {} signatures, 128-byte messages, one core", c.sigs.len());
    let b128 = batch_rate(&c, 128, reps);
    report.reference_rate = b128;
    report.reference_name = "ed25519-dalek verify_batch(128), 1 core".into();
    report.rate("Ceiling", "ed25519 batch verify, batch 128 (reference)", b128, "sig/s", None, note.clone());
    for size in [64, 256] {
        let r = batch_rate(&c, size, reps);
        report.rate("Ceiling", &format!("ed25519 batch verify, batch {size}"), r, "sig/s", None, note.clone());
    }
    let single = rate(reps, c.sigs.len(), || {
        for i in 0..c.sigs.len() {
            c.keys[i].verify(&c.msgs[i], &c.sigs[i]).expect("valid");
        }
    });
    report.rate("Ceiling", "ed25519 single verify (dalek verify)", single, "sig/s", None, note.clone());
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let all = rate(reps, c.sigs.len() / 128 * 128, || {
        let per = c.sigs.len() / 128 / threads * 128;
        std::thread::scope(|s| {
            for t in 0..threads {
                let c = &c;
                s.spawn(move || {
                    for start in (t * per..(t + 1) * per).step_by(128) {
                        let msgs: Vec<&[u8]> = c.msgs[start..start + 128].iter().map(Vec::as_slice).collect();
                        ed25519_dalek::verify_batch(&msgs, &c.sigs[start..start + 128], &c.keys[start..start + 128])
                            .expect("valid batch");
                    }
                });
            }
        });
    });
    report.rate(
        "Ceiling",
        &format!("ed25519 batch verify, batch 128, {threads} threads"),
        all,
        "sig/s",
        None,
        format!("median of {reps}, all cores"),
    );

    let protocol_single = rate(reps, c.sigs.len(), || {
        for i in 0..c.sigs.len() {
            let key = PublicKey(c.keys[i].to_bytes());
            let sig = linli_protocol::Signature(c.sigs[i].to_bytes());
            linli_protocol::keys::verify_message(&key, &c.msgs[i], &sig, "bench").expect("valid");
        }
    });
    report.rate(
        "Ceiling",
        "protocol single verify (cofactored, keys::verify_message)",
        protocol_single,
        "sig/s",
        None,
        note.clone(),
    );

    let hash_inputs: Vec<Vec<u8>> = (0..4096).map(|i| (0..256).map(|j| (i * 13 + j) as u8).collect()).collect();
    let blake = rate(reps, hash_inputs.len() * 64, || {
        for _ in 0..64 {
            for h in &hash_inputs {
                std::hint::black_box(blake3::hash(h));
            }
        }
    });
    report.rate(
        "Ceiling",
        "BLAKE3 of 256-byte inputs",
        blake,
        "hash/s",
        None,
        format!("median of {reps} × 262,144 hashes"),
    );

    // The protocol's run verification over real entries of the benchmark ledger (steady-state mix).
    let mut w = Workload::new(genesis.clone(), "c0", 64, 3_600_000);
    let n_entries = ((sizes.signatures as f64 / SIGNATURES_PER_ENTRY) as usize).max(64);
    let _setup = w.take(66);
    let entries = w.take(n_entries);
    let info = genesis.communities.first().expect("a community");
    let keys = SignerKeys { current: info.signing_key, recovery: info.recovery_key };
    let gh = w.genesis_hash();
    for chunk in [128usize, 2048] {
        let r = rate(reps, entries.len(), || {
            for part in entries.chunks(chunk) {
                verify_run(&gh, part.to_vec(), keys).expect("valid run");
            }
        });
        report.rate(
            "Ceiling",
            &format!("protocol verify_run, runs of {chunk} entries"),
            r,
            "entry/s",
            None,
            format!("median of {reps} × {} ledger entries ({SIGNATURES_PER_ENTRY} signatures each), one core; = {:.0} sig/s", entries.len(), r * SIGNATURES_PER_ENTRY),
        );
    }
}
