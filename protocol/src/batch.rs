//! Batch verification of Linli signatures: one multiscalar multiplication for a run.
//!
//! Each signature `(R, s)` by key `A` on message `M` is valid when the cofactored equation of
//! [`crate::keys::verify_message`] holds: `[8]([s]B − [k]A − R) = O`, `k = SHA-512(R ‖ A ‖ M)`,
//! with `s` canonical, `R` a point not of small order and `A` screened. A batch draws a
//! 128-bit coefficient `z_i` per signature and checks the one combination
//! `[8]([−Σ z_i s_i]B + Σ [z_i]R_i + Σ_A [Σ_{i signed by A} z_i k_i]A) = O`: if any signature is
//! invalid it fails except with probability about 2^-128, and every valid batch passes, so
//! batch and single verification agree.
//!
//! Compared with `ed25519_dalek::verify_batch` (which Linli used before): each `R` is
//! decompressed once (the small-order screen needs it anyway), the screened keys' points come
//! from the verifier's cache, and signatures by the same key share one point in the sum (a run
//! is mostly signed by its community's key), so the multiscalar multiplication has about half
//! the points. The coefficients are derived from a hash of every `R`, `A`, `s` and `k` in the
//! batch (no randomness comes into the pure core): they are fixed only after all signatures
//! are, so a forger would have to find a 2^-128 event to make a bad batch pass.

use crate::primitives::{PublicKey, Signature};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};
use std::collections::BTreeMap;

/// One signature to check: the key's screened point, the message as signed, the signature.
pub(crate) struct BatchItem<'a> {
    pub key: PublicKey,
    pub point: EdwardsPoint,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// The parts of one signature the batch needs, or `None` when it cannot be valid (`s` not
/// canonical, `R` not a point or of small order).
struct Parsed {
    r_bytes: [u8; 32],
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

fn parse(item: &BatchItem) -> Option<Parsed> {
    let r_bytes: [u8; 32] = item.signature.0.get(..32)?.try_into().ok()?;
    let s_bytes: [u8; 32] = item.signature.0.get(32..)?.try_into().ok()?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    if r.is_small_order() {
        return None;
    }
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(item.key.0);
    h.update(item.message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    Some(Parsed { r_bytes, r, s, k })
}

/// Whether every signature of the batch is valid (see the module docs). `false` means at least
/// one is not (up to 2^-128): check them one by one to find which.
// Scalar and point arithmetic here is modular / group arithmetic, not integer arithmetic.
#[allow(clippy::arithmetic_side_effects)]
pub(crate) fn all_valid(items: &[BatchItem]) -> bool {
    if let [item] = items {
        return one_valid(item);
    }
    let mut parsed = Vec::with_capacity(items.len());
    let mut transcript = blake3::Hasher::new_derive_key("linli/v1 batch verification coefficients");
    for item in items {
        let Some(p) = parse(item) else { return false };
        // The bytes as sent (compressing the point again would cost a field inversion).
        transcript.update(&p.r_bytes);
        transcript.update(&item.key.0);
        transcript.update(p.s.as_bytes());
        transcript.update(p.k.as_bytes());
        parsed.push(p);
    }
    let mut coefficients = transcript.finalize_xof();
    let mut basepoint_scalar = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(items.len().saturating_add(8));
    let mut points = Vec::with_capacity(items.len().saturating_add(8));
    let mut per_key: BTreeMap<PublicKey, (Scalar, EdwardsPoint)> = BTreeMap::new();
    for (item, p) in items.iter().zip(&parsed) {
        let mut z_bytes = [0u8; 32];
        if let Some(low) = z_bytes.get_mut(..16) {
            coefficients.fill(low);
        }
        let z = Scalar::from_bytes_mod_order(z_bytes);
        basepoint_scalar -= z * p.s;
        scalars.push(z);
        points.push(p.r);
        let entry = per_key.entry(item.key).or_insert((Scalar::ZERO, item.point));
        entry.0 += z * p.k;
    }
    scalars.push(basepoint_scalar);
    points.push(curve25519_dalek::constants::ED25519_BASEPOINT_POINT);
    for (scalar, point) in per_key.into_values() {
        scalars.push(scalar);
        points.push(point);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).mul_by_cofactor().is_identity()
}

/// A batch of one (a gossiped entry): the cofactored equation itself, `[8]([s]B − [k]A − R) = O`,
/// with the basepoint's precomputed table (the same verdict as the batch equation, whose
/// coefficient is not 0 mod ℓ; about a fifth cheaper than a multiscalar product of three points).
#[allow(clippy::arithmetic_side_effects)] // group arithmetic
fn one_valid(item: &BatchItem) -> bool {
    let Some(p) = parse(item) else { return false };
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&p.k, &(-item.point), &p.s);
    (sb_minus_ka - p.r).mul_by_cofactor().is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{signing_message, Keypair};
    use crate::primitives::Hash;

    struct Signed {
        key: PublicKey,
        point: EdwardsPoint,
        message: Vec<u8>,
        signature: Signature,
    }

    fn signed(label: &str, n: u8) -> Signed {
        let k = Keypair::from_label(label);
        let message = vec![n; 40];
        let signature = k.sign("test", &Hash::ZERO, &message);
        let point = CompressedEdwardsY(k.public().0).decompress().unwrap();
        Signed { key: k.public(), point, message: signing_message("test", &Hash::ZERO, &message), signature }
    }

    fn items(v: &[Signed]) -> Vec<BatchItem<'_>> {
        v.iter()
            .map(|s| BatchItem { key: s.key, point: s.point, message: &s.message, signature: &s.signature })
            .collect()
    }

    #[test]
    fn valid_signatures_pass_with_shared_and_distinct_keys() {
        let v: Vec<Signed> = (0..20).map(|i| signed(if i % 3 == 0 { "b/one" } else { "b/many" }, i)).collect();
        assert!(all_valid(&items(&v)));
        assert!(all_valid(&[]));
    }

    #[test]
    fn one_bad_signature_fails_the_batch() {
        let mut v: Vec<Signed> = (0..20).map(|i| signed("b/one", i)).collect();
        v[7].message[60] ^= 1;
        assert!(!all_valid(&items(&v)));
        let mut v: Vec<Signed> = (0..5).map(|i| signed("b/one", i)).collect();
        v[2].signature = v[3].signature;
        assert!(!all_valid(&items(&v)));
    }

    #[test]
    fn a_batch_of_one_takes_the_single_equation_and_agrees_with_a_larger_batch() {
        let good = signed("b/one", 1);
        let other = signed("b/two", 2);
        assert!(all_valid(&items(std::slice::from_ref(&good))));
        let mut bad_message = signed("b/one", 1);
        bad_message.message[60] ^= 1;
        let mut bad_key = signed("b/one", 1);
        (bad_key.key, bad_key.point) = (other.key, other.point);
        let mut bad_s = signed("b/one", 1);
        bad_s.signature.0[63] |= 0xf0;
        for bad in [bad_message, bad_key, bad_s] {
            assert!(!all_valid(&items(std::slice::from_ref(&bad))), "alone");
            let pair = [bad, signed("b/two", 2)];
            assert!(!all_valid(&items(&pair)), "in a batch of two");
        }
    }

    #[test]
    fn a_non_canonical_s_or_a_small_order_r_fails() {
        let mut v = vec![signed("b/one", 1)];
        v[0].signature.0[63] |= 0xf0; // s ≥ ℓ
        assert!(!all_valid(&items(&v)));
        let mut v = vec![signed("b/one", 1)];
        v[0].signature.0[..32].copy_from_slice(&[
            1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert!(!all_valid(&items(&v)), "R = identity (small order)");
    }

    #[test]
    fn a_signature_under_another_key_fails() {
        let mut v = vec![signed("b/one", 1), signed("b/two", 2)];
        v[1].key = v[0].key;
        v[1].point = v[0].point;
        assert!(!all_valid(&items(&v)));
    }
}
