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
    let vk = VerifyingKey::from_bytes(&key.0).map_err(|_| SignatureError::InvalidKey { key: *key })?;
    if vk.is_weak() {
        return Err(SignatureError::WeakKey { key: *key });
    }
    let point = curve25519_dalek::edwards::CompressedEdwardsY(key.0)
        .decompress()
        .ok_or(SignatureError::InvalidKey { key: *key })?;
    if !point.is_torsion_free() {
        return Err(SignatureError::MixedOrderKey { key: *key });
    }
    Ok(vk)
}

/// Verify one signature (strict ed25519: canonical encodings, no small-order components).
pub fn verify(
    key: &PublicKey,
    domain: &'static str,
    genesis: &Hash,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let vk = verifying_key(key)?;
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    let msg = signing_message(domain, genesis, message);
    vk.verify_strict(&msg, &sig).map_err(|_| SignatureError::BadSignature { key: *key, purpose: domain })
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
