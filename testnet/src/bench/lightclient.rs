//! Light client: a merchant's node checking that entries are in a ledger, against a checkpoint
//! it verified once (issuer signature and witness cosignatures) and cached.

use crate::report::{median, Report};
use crate::workload::Workload;
use linli_protocol::checkpoint::{Checkpoint, CosignedCheckpoint, SignedCheckpoint};
use linli_protocol::merkle::{self, InclusionProof};
use linli_protocol::testkit::key;
use linli_protocol::verify::verify_entry;
use linli_protocol::{Genesis, Hash};
use std::time::Instant;

pub struct Sizes {
    pub tree: usize,
    pub proofs: usize,
    pub reps: usize,
}

pub fn run(report: &mut Report, genesis: &Genesis, sizes: &Sizes) {
    let gh = genesis.hash();
    let mut w = Workload::new(genesis.clone(), "c0", 64, 3_600_000);
    let entries = w.take(sizes.proofs.min(sizes.tree));
    let mut leaves: Vec<Hash> = entries.iter().map(|e| e.hash(&gh)).collect();
    leaves.extend((leaves.len()..sizes.tree).map(|i| Hash(*blake3::hash(&(i as u64).to_le_bytes()).as_bytes())));
    let root = merkle::root(&leaves);
    let issuer = key("c0/signing");
    let cp = Checkpoint { community: entries[0].entry.community.clone(), size: leaves.len() as u64, root, time_ms: 0 };
    let signed = SignedCheckpoint::sign(cp, &issuer, &gh);
    let cosignatures = genesis
        .communities
        .iter()
        .skip(1)
        .map(|c| signed.cosign(c.id.clone(), &key(&format!("{}/signing", c.id)), &gh))
        .collect();
    let cosigned = CosignedCheckpoint { signed, cosignatures };
    let witnesses = genesis.communities.len() - 1;
    let witness_key = |c: &linli_protocol::CommunityId, k: &linli_protocol::PublicKey| {
        genesis.community(c).is_some_and(|i| i.signing_key == *k)
    };

    // Checking the checkpoint itself (done once, then cached).
    let mut rates: Vec<f64> = (0..sizes.reps)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..20 {
                cosigned.verify(&gh, &issuer.public(), witness_key, witnesses).expect("valid checkpoint");
            }
            20.0 / t.elapsed().as_secs_f64()
        })
        .collect();
    report.rate(
        "Light client",
        &format!("checkpoint + {witnesses} cosignatures verified (once, then cached)"),
        median(&mut rates),
        "checkpoint/s",
        None,
        format!("median of {}", sizes.reps),
    );

    let proofs: Vec<InclusionProof> =
        (0..entries.len()).map(|i| merkle::prove_inclusion(&leaves, i as u64).expect("proof")).collect();
    let cached_root = cosigned.signed.checkpoint.root;
    let loops = 200;
    let mut rates: Vec<f64> = (0..sizes.reps)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..loops {
                for (p, l) in proofs.iter().zip(&leaves) {
                    p.verify(l, &cached_root).expect("valid proof");
                }
            }
            (loops * proofs.len()) as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    report.rate(
        "Light client",
        "inclusion proofs checked against the cached checkpoint",
        median(&mut rates),
        "proof/s",
        None,
        format!(
            "median of {} × {} proofs, tree of {} entries (path {}), one core",
            sizes.reps,
            loops * proofs.len(),
            leaves.len(),
            proofs[0].path.len()
        ),
    );

    let key_now = issuer.public();
    let mut rates: Vec<f64> = (0..sizes.reps)
        .map(|_| {
            let t = Instant::now();
            for (p, e) in proofs.iter().zip(&entries) {
                let v = verify_entry(&gh, e.clone(), key_now).expect("valid entry");
                p.verify(&v.hash(), &cached_root).expect("valid proof");
            }
            proofs.len() as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    report.rate(
        "Light client",
        "sale checks: entry hash + signatures + inclusion proof",
        median(&mut rates),
        "check/s",
        None,
        format!(
            "median of {} × {} real entries (single, cofactored verification), one core",
            sizes.reps,
            entries.len()
        ),
    );
}
