//! Pass and fail cases of the light client's checks.

use super::*;
use crate::body::PayEntry;
use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::entry::Entry;
use crate::merkle::{prove_inclusion, root};
use crate::testkit::{cid, key, TestFederation};

struct Fixture {
    fed: TestFederation,
    entries: Vec<SignedEntry>,
    payments: Vec<Signed<Payment>>,
}

/// Ledger `a` of five `Pay` entries (signatures only: the light client checks no state).
fn fixture() -> Fixture {
    let fed = TestFederation::new(&["a", "b", "c", "d"]);
    let (payer, merchant) = (key("payer"), key("merchant"));
    let mut entries: Vec<SignedEntry> = Vec::new();
    let mut payments = Vec::new();
    for seq in 0..5u64 {
        let payment = fed.sign(fed.payment(&payer, &merchant, "b", 10, 100, seq), &payer);
        let prev_hash = entries.last().map(|e| e.hash(&fed.genesis_hash)).unwrap_or(Hash::ZERO);
        let entry = Entry {
            community: cid("a"),
            seq,
            prev_hash,
            time_ms: 1_800_000_000_000 + seq,
            body: Body::Pay(PayEntry { payment: payment.clone(), exposure_limit: None }),
        };
        entries.push(SignedEntry::sign(entry, &fed.keys[&cid("a")], &fed.genesis_hash));
        payments.push(payment);
    }
    Fixture { fed, entries, payments }
}

impl Fixture {
    fn hashes(&self) -> Vec<Hash> {
        self.entries.iter().map(|e| e.hash(&self.fed.genesis_hash)).collect()
    }

    fn checkpoint(&self, size: u64, witnesses: &[&str]) -> CosignedCheckpoint {
        let hashes = self.hashes();
        let cp = Checkpoint { community: cid("a"), size, root: root(&hashes[..size as usize]), time_ms: 1 };
        let signed = SignedCheckpoint::sign(cp, &self.fed.keys[&cid("a")], &self.fed.genesis_hash);
        let cosignatures =
            witnesses.iter().map(|w| signed.cosign(cid(w), &self.fed.keys[&cid(w)], &self.fed.genesis_hash)).collect();
        CosignedCheckpoint { signed, cosignatures }
    }

    fn proof(&self, seq: u64, size: u64, witnesses: &[&str]) -> EntryProof {
        let hashes = self.hashes();
        EntryProof {
            entry: self.entries[seq as usize].clone(),
            checkpoint: self.checkpoint(size, witnesses),
            inclusion: prove_inclusion(&hashes[..size as usize], seq).unwrap(),
        }
    }

    fn trust(&self, min_witnesses: usize) -> LightTrust {
        LightTrust::new(self.fed.genesis.clone(), min_witnesses)
    }
}

#[test]
fn a_cosigned_proof_passes() {
    let f = fixture();
    let v = f.trust(2).verify_payment(&f.proof(2, 5, &["b", "c"]), &f.payments[2]).unwrap();
    assert_eq!((v.at.seq, v.checkpoint_size, v.witnesses), (2, 5, 2));
    assert_eq!(v.at.hash, f.entries[2].hash(&f.fed.genesis_hash));
}

#[test]
fn too_few_witnesses_fail() {
    let f = fixture();
    let err = f.trust(3).verify(&f.proof(2, 5, &["b", "c"])).unwrap_err();
    assert!(matches!(err, LightError::Checkpoint(CheckpointError::TooFewWitnesses { expected: 3, actual: 2, .. })));
}

#[test]
fn the_issuer_does_not_witness_itself_and_duplicates_count_once() {
    let f = fixture();
    let err = f.trust(2).verify(&f.proof(2, 5, &["a", "b", "b"])).unwrap_err();
    assert!(matches!(err, LightError::Checkpoint(CheckpointError::TooFewWitnesses { actual: 1, .. })), "{err}");
}

#[test]
fn a_bad_entry_signature_fails() {
    let f = fixture();
    let mut p = f.proof(2, 5, &["b", "c"]);
    p.entry.signature = f.entries[1].signature;
    assert!(matches!(f.trust(2).verify(&p), Err(LightError::Signature(_))));
}

#[test]
fn a_checkpoint_signed_by_another_key_fails() {
    let f = fixture();
    let mut p = f.proof(2, 5, &["b", "c"]);
    p.checkpoint.signed.signature =
        SignedCheckpoint::sign(p.checkpoint.signed.checkpoint.clone(), &f.fed.keys[&cid("b")], &f.fed.genesis_hash)
            .signature;
    assert!(matches!(f.trust(2).verify(&p), Err(LightError::Checkpoint(CheckpointError::Signature { .. }))));
}

#[test]
fn a_wrong_inclusion_path_fails() {
    let f = fixture();
    let mut p = f.proof(2, 5, &["b", "c"]);
    p.inclusion.path[0] = Hash([9; 32]);
    assert!(matches!(f.trust(2).verify(&p), Err(LightError::Inclusion { seq: 2, .. })));
    let mut p = f.proof(2, 5, &["b", "c"]);
    p.inclusion = prove_inclusion(&f.hashes(), 3).unwrap();
    assert_eq!(f.trust(2).verify(&p), Err(LightError::LeafIndex { expected: 2, actual: 3 }));
}

#[test]
fn a_checkpoint_that_does_not_cover_the_entry_fails() {
    let f = fixture();
    let mut p = f.proof(1, 2, &["b", "c"]);
    p.entry = f.entries[3].clone();
    assert_eq!(f.trust(2).verify(&p), Err(LightError::NotCovered { seq: 3, size: 2 }));
    let mut p = f.proof(1, 5, &["b", "c"]);
    p.checkpoint = f.checkpoint(4, &["b", "c"]);
    assert_eq!(f.trust(2).verify(&p), Err(LightError::TreeSize { expected: 4, actual: 5 }));
}

#[test]
fn a_faulty_community_is_refused() {
    let f = fixture();
    let mut trust = f.trust(2);
    trust.mark_faulty(cid("a"));
    assert_eq!(trust.verify(&f.proof(2, 5, &["b", "c"])), Err(LightError::Faulty { community: cid("a") }));
}

#[test]
fn another_payment_is_refused() {
    let f = fixture();
    let err = f.trust(2).verify_payment(&f.proof(2, 5, &["b", "c"]), &f.payments[1]).unwrap_err();
    assert!(matches!(err, LightError::NotThePayment { seq: 2, what: "another payment", .. }));
}
