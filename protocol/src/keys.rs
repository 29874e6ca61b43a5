//! Key pairs and signatures: every signature in Linli is ed25519 over a domain tag and the
//! genesis hash, so a signature from one federation or for one purpose is never valid in
//! another.

use crate::primitives::{Hash, PublicKey, Signature};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

/// Why a signature or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key {key} is not a valid ed25519 point")]
    InvalidKey { key: PublicKey },
    #[error("public key {key} is a weak (small-order) key")]
    WeakKey { key: PublicKey },
    #[error("public key {key} has a small-order component (not in the prime-order subgroup)")]
    MixedOrderKey { key: PublicKey },
    #[error("signature by {key} does not verify ({purpose})")]
    BadSignature { key: PublicKey, purpose: &'static str },
}

/// A secret signing key of a community, resident or merchant. The secret is zeroized on drop
/// and never printed by `Debug`.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl core::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "Keypair(public {})", self.public())
    }
}

impl Keypair {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        Self { signing: SigningKey::generate(&mut rand_core::OsRng) }
    }

    /// A key from its 32-byte secret seed (deterministic: tests and key files).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { signing: SigningKey::from_bytes(&seed) }
    }

    /// A key derived from a label, for tests and generated testnets only.
    pub fn from_label(label: &str) -> Self {
        Self::from_seed(*blake3::hash(label.as_bytes()).as_bytes())
    }

    /// The 32-byte secret seed, for writing a key file.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Sign `message` under `domain`, bound to `genesis`.
    pub fn sign(&self, domain: &str, genesis: &Hash, message: &[u8]) -> Signature {
        let msg = signing_message(domain, genesis, message);
        Signature(self.signing.sign(&msg).to_bytes())
    }
}

/// The exact bytes that get signed: `"linli/v1/" || domain || 0x00 || genesis || message`.
pub fn signing_message(domain: &str, genesis: &Hash, message: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(domain.len().saturating_add(message.len()).saturating_add(48));
    msg.extend_from_slice(b"linli/v1/");
    msg.extend_from_slice(domain.as_bytes());
    msg.push(0);
    msg.extend_from_slice(&genesis.0);
    msg.extend_from_slice(message);
    msg
}

/// Decompress and screen a public key: it must be a valid point in the prime-order subgroup
/// (not small-order, no small-order component). Screening mixed-order keys makes strict single
/// verification and batch verification agree on every signature under an accepted key.
pub fn verifying_key(key: &PublicKey) -> Result<VerifyingKey, SignatureError> {
    // One decompression (`from_bytes`); the point it holds is screened as it is.
    let vk = VerifyingKey::from_bytes(&key.0).map_err(|_| SignatureError::InvalidKey { key: *key })?;
    if vk.is_weak() {
        return Err(SignatureError::WeakKey { key: *key });
    }
    if !vk.to_edwards().is_torsion_free() {
        return Err(SignatureError::MixedOrderKey { key: *key });
    }
    Ok(vk)
}

/// Verify one signature under `domain`, bound to `genesis` (see [`verify_message`]).
pub fn verify(
    key: &PublicKey,
    domain: &'static str,
    genesis: &Hash,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let msg = signing_message(domain, genesis, message);
    verify_message(key, &msg, signature, domain)
}

/// The definition of a valid Linli signature: cofactored ed25519 (as ZIP-215 makes it), over
/// keys screened by [`verifying_key`], with a canonical `s` and an `R` that is a valid point not
/// of small order: `[8]([s]B − [k]A − R) = O` with `k = SHA-512(R ‖ A ‖ msg) mod ℓ`.
///
/// The cofactored equation is what makes batch verification agree with single verification:
/// a batch (random linear combination) that passes implies every signature satisfies its
/// cofactored equation (except with probability about 2^-128), and a batch that fails falls
/// back to this check. Every signature `verify_strict` accepts is accepted here.
// Point negation, subtraction and multiplication here are elliptic-curve group operations, not
// integer arithmetic: they cannot overflow.
#[allow(clippy::arithmetic_side_effects)]
pub fn verify_message(
    key: &PublicKey,
    msg: &[u8],
    signature: &Signature,
    purpose: &'static str,
) -> Result<(), SignatureError> {
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::Identity;
    use sha2::{Digest, Sha512};
    let a = verifying_key(key)?.to_edwards();
    let bad = || SignatureError::BadSignature { key: *key, purpose };
    let (r_bytes, s_bytes) = signature.0.split_at(32);
    let r_bytes: [u8; 32] = r_bytes.try_into().map_err(|_| bad())?;
    let s_bytes: [u8; 32] = s_bytes.try_into().map_err(|_| bad())?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or_else(bad)?;
    let r = CompressedEdwardsY(r_bytes).decompress().ok_or_else(bad)?;
    if r.is_small_order() {
        return Err(bad());
    }
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(key.0);
    h.update(msg);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-a), &s);
    if (sb_minus_ka - r).mul_by_cofactor() == EdwardsPoint::identity() {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_binds_domain_and_genesis() {
        let k = Keypair::from_label("resident-1");
        let g = Hash([1; 32]);
        let sig = k.sign("pay", &g, b"hello");
        assert_eq!(verify(&k.public(), "pay", &g, b"hello", &sig), Ok(()));
        assert!(verify(&k.public(), "redeem", &g, b"hello", &sig).is_err());
        assert!(verify(&k.public(), "pay", &Hash([2; 32]), b"hello", &sig).is_err());
        assert!(verify(&k.public(), "pay", &g, b"hellO", &sig).is_err());
    }

    #[test]
    fn refuses_invalid_and_weak_keys() {
        // The identity point (small order) is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(verifying_key(&PublicKey(identity)), Err(SignatureError::WeakKey { key: PublicKey(identity) }));
        // y = 2 is not on the curve.
        let mut bad = [0u8; 32];
        bad[0] = 2;
        assert!(matches!(verifying_key(&PublicKey(bad)), Err(SignatureError::InvalidKey { .. })));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = Keypair::from_seed([9; 32]);
        let shown = format!("{k:?}");
        assert!(!shown.contains(&hex::encode([9u8; 32])));
        assert!(shown.contains(&k.public().to_hex()));
    }
}
