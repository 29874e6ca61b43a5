//! `verify::verify_run` (batched) and `verify::verify_entry` (one entry, strict) never disagree:
//! on random runs of validly signed entries, optionally with one corruption (a flipped bit in the
//! community or an inner signature, a body changed after signing, a wrong signer, small-order
//! keys or `R`, a non-canonical `s`), the run fails exactly when some entry fails alone, its
//! error names the first bad entry, and the verified prefix is exactly the entries before it.
//! Runs contain key rotations and revocations, so the expected signer follows them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod build;
mod residual_gap;
mod signatures;
mod spec;

use build::{build, expected_signers, Run};
use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::EdwardsPoint;
use linli_protocol::keys::SignatureError;
use linli_protocol::testkit;
use linli_protocol::verify::{verify_entry, verify_run, SignerKeys, VerifyError};
use linli_protocol::{Keypair, PublicKey, SignedEntry};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use residual_gap::{find_disagreement, raw_sign, sha512_scalar};
use signatures::{identity_signature, small_order_point, weak_key_signature};
use spec::{spec, Corruption, Kind, Spec};

const COMMUNITY: &str = "lianhua";

/// Runs both paths and checks they agree. Returns the index of the first bad entry.
fn check_agreement(run: &Run) -> Result<Option<usize>, TestCaseError> {
    let g = &run.genesis_hash;
    let signers = expected_signers(&run.entries, run.start);
    let singles: Vec<Result<_, VerifyError>> =
        run.entries.iter().zip(&signers).map(|(e, s)| verify_entry(g, e.clone(), *s)).collect();
    let first_bad = singles.iter().position(Result::is_err);
    // Each entry alone is a run of one: an entry with only the community's signature takes the
    // batch's single-signature equation (`batch::one_valid`); its verdict must be the single
    // check's too, for every corruption.
    for ((e, s), single) in run.entries.iter().zip(&signers).zip(&singles) {
        let keys = SignerKeys { current: *s, recovery: run.start.recovery };
        let alone = verify_run(g, vec![e.clone()], keys).map(|v| v.len()).map_err(|(_, err)| err);
        prop_assert_eq!(alone, single.as_ref().map(|_| 1).map_err(Clone::clone), "seq {} alone", e.entry.seq);
    }
    match (verify_run(g, run.entries.clone(), run.start), first_bad) {
        (Ok(verified), None) => {
            prop_assert_eq!(verified.len(), run.entries.len());
            for ((v, e), s) in verified.iter().zip(&run.entries).zip(&signers) {
                prop_assert_eq!(v.signed(), e);
                prop_assert_eq!(v.signer(), *s);
                prop_assert_eq!(v.hash(), e.hash(g));
            }
        }
        (Err((prefix, err)), Some(i)) => {
            prop_assert_eq!(prefix.len(), i, "verified prefix length");
            for (v, e) in prefix.iter().zip(&run.entries) {
                prop_assert_eq!(v.signed(), e);
            }
            prop_assert_eq!(err.seq, run.entries[i].entry.seq, "error names the first bad entry");
            let single = singles[i].as_ref().unwrap_err();
            prop_assert_eq!(&err, single);
        }
        (Ok(_), Some(i)) => {
            return Err(TestCaseError::fail(format!(
                "verify_run accepted the run but entry {i} fails alone: {}",
                singles[i].as_ref().unwrap_err()
            )))
        }
        (Err((_, err)), None) => {
            return Err(TestCaseError::fail(format!("verify_run refused a run whose entries all verify: {err}")))
        }
    }
    Ok(first_bad)
}

// Failure seeds stay in a file next to this one (`main.proptest-regressions`), as they did next to
// `batch_verify.rs` before it became a directory: the default (`SourceParallel`) would now put them
// in `tests/proptest-regressions/main.txt`, a name every directory test target shares.
proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn batch_and_single_verification_agree(spec in spec()) {
        let run = build(&spec);
        let first_bad = check_agreement(&run)?;
        // Every corruption we apply makes exactly that entry the first bad one.
        prop_assert_eq!(first_bad, run.corrupted, "corruption {:?}", spec.corruption);
    }
}

fn spec_of(kinds: &[Kind]) -> Spec {
    Spec { start_seq: 0, kinds: kinds.iter().enumerate().map(|(i, k)| (*k, i as u8)).collect(), corruption: None }
}

#[test]
fn signer_follows_rotations_and_revocations() {
    use Kind::*;
    let run = build(&spec_of(&[Pay, Rotate, Redeem, TimeCredit, Revoke, Pay, Rotate, Settle]));
    assert_eq!(check_agreement(&run).unwrap(), None);
    let verified = verify_run(&run.genesis_hash, run.entries.clone(), run.start).unwrap();
    let signers: Vec<PublicKey> = verified.iter().map(|v| v.signer()).collect();
    let k1 = Keypair::from_label("batch/key-1").public();
    let k4 = Keypair::from_label("batch/key-4").public();
    let k6 = Keypair::from_label("batch/key-6").public();
    assert_eq!(signers, vec![run.start.current, run.start.current, k1, k1, run.start.recovery, k4, k4, k6]);
    assert_eq!(run.retired.len(), 3);

    // An entry after a rotation signed by the retired key is the first bad entry.
    let mut bad = run.entries.clone();
    bad[2] = SignedEntry::sign(bad[2].entry.clone(), &testkit::key("lianhua/signing"), &run.genesis_hash);
    let (prefix, err) = verify_run(&run.genesis_hash, bad.clone(), run.start).unwrap_err();
    assert_eq!((prefix.len(), err.seq, err.what), (2, 2, "community entry"));
    assert!(matches!(err.error, SignatureError::BadSignature { key, .. } if key == k1));
    // Starting the run mid-ledger needs the keys in force there.
    let mid = SignerKeys { current: k1, recovery: run.start.recovery };
    assert_eq!(verify_run(&run.genesis_hash, run.entries[2..].to_vec(), mid).unwrap().len(), 6);
    assert!(verify_run(&run.genesis_hash, run.entries[2..].to_vec(), run.start).is_err());
}

#[test]
fn small_order_keys_pass_cofactorless_equations_but_are_refused() {
    // The identity signature verifies under a small-order key with a plain (non-strict)
    // cofactorless check, which is why both paths must screen keys and R.
    let weak = ed25519_dalek::VerifyingKey::from_bytes(&small_order_point(0)).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&identity_signature().0);
    assert!(weak.verify_strict(b"anything", &sig).is_err());
    let plain = ed25519_dalek::Verifier::verify(&weak, b"anything", &sig);
    assert!(plain.is_ok(), "non-strict verification accepts the identity signature");
    // Under the identity key, (R = r·B, s = r) verifies cofactorlessly for any message too.
    let identity_key = ed25519_dalek::VerifyingKey::from_bytes(&small_order_point(0)).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&weak_key_signature(7).0);
    assert!(ed25519_dalek::Verifier::verify(&identity_key, b"anything", &sig).is_ok());
    for which in 0..18u8 {
        for c in [
            Corruption::SmallOrderInnerKey { which },
            Corruption::SmallOrderR { which },
            Corruption::SmallOrderRotation { which },
        ] {
            let mut spec = spec_of(&[Kind::Pay, Kind::Redeem, Kind::Rotate, Kind::Enroll, Kind::Pay]);
            spec.corruption = Some((c.clone(), 2));
            let run = build(&spec);
            let first_bad = check_agreement(&run).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert_eq!(first_bad, run.corrupted, "{c:?}");
        }
    }
}

// --- The residual gap of cofactorless batch verification -------------------------------------

#[test]
fn hand_made_signatures_match_the_library() {
    // Sanity check of `raw_sign`: without torsion it makes signatures both paths accept.
    let identity = EdwardsPoint::default();
    assert_eq!(find_disagreement(identity, identity, false), None);
    let a = sha512_scalar(&[b"x"]);
    let a_bytes = EdwardsPoint::mul_base(&a).compress().to_bytes();
    let sig = raw_sign(&a, &a_bytes, identity, false, b"msg", b"salt");
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&a_bytes).unwrap();
    assert!(vk.verify_strict(b"msg", &ed25519_dalek::Signature::from_bytes(&sig.0)).is_ok());
}

/// A key holder can make `R` a small-order point (nonce 0, `s = k·a`): the cofactorless batch
/// equation then only misses by that small-order point, which the random coefficient kills for
/// 1 batch in `order`. Strict verification refuses small-order `R`; the batch path screens it,
/// so the two agree.
#[test]
fn small_order_r_crafted_by_the_key_holder_is_refused_by_both_paths() {
    for t in EIGHT_TORSION {
        assert_eq!(find_disagreement(EdwardsPoint::default(), t, true), None);
    }
}

/// A signer who adds a small-order component to its signature's `R` gets a signature that
/// strict (cofactorless) verification refuses but that `ed25519_dalek::verify_batch` accepts for
/// about half of the batches. Linli's validity is the cofactored equation, which accepts it on
/// both paths, so `verify_run` and `verify_entry` agree.
#[test]
fn torsion_in_r_cannot_make_the_paths_disagree() {
    let order_2 = EIGHT_TORSION[4];
    assert_eq!(find_disagreement(EdwardsPoint::default(), order_2, false), None);
}

/// A mixed-order public key (a valid key plus a small-order component) would make strict and
/// batch verification disagree (strict refuses 7 of 8 honest signatures, the batch accepts a
/// different 1 in 8 of batches); `keys::verifying_key` screens such keys out on both paths.
#[test]
fn torsion_in_the_key_cannot_make_the_paths_disagree() {
    let order_8 = EIGHT_TORSION[1];
    assert_eq!(find_disagreement(order_8, EdwardsPoint::default(), false), None);
}
