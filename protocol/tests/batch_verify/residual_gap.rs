//! For the residual gap of cofactorless batch verification (its tests are in `main.rs`):
//! ed25519 signatures made by hand, with torsion in the key or in `R`, and the search for a
//! redemption that strict and batched verification disagree on.

use crate::COMMUNITY;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use linli_protocol::body::*;
use linli_protocol::testkit::{self, cid};
use linli_protocol::verify::{verify_entry, verify_run, SignerKeys};
use linli_protocol::{Entry, Hash, PublicKey, Signature, SignedEntry};
use sha2::{Digest, Sha512};

pub(crate) fn sha512_scalar(parts: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// An ed25519 signature made "by hand" with secret scalar `a`, public key bytes `a_bytes` and
/// nonce point `r·B + r_torsion` (with `r = 0` when `zero_nonce`, so `R` is `r_torsion` alone).
pub(crate) fn raw_sign(
    a: &Scalar,
    a_bytes: &[u8; 32],
    r_torsion: EdwardsPoint,
    zero_nonce: bool,
    msg: &[u8],
    salt: &[u8],
) -> Signature {
    let r = if zero_nonce { Scalar::ZERO } else { sha512_scalar(&[b"nonce", salt, msg]) };
    let big_r = (EdwardsPoint::mul_base(&r) + r_torsion).compress().to_bytes();
    let k = sha512_scalar(&[&big_r, a_bytes, msg]);
    let s = r + k * a;
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&big_r);
    out[32..].copy_from_slice(s.as_bytes());
    Signature(out)
}

/// Searches for a redemption whose resident signature is refused by strict single verification
/// but whose one-entry run passes `verify_run`'s batch. `key_torsion` / `r_torsion` are added to
/// the resident's public key / the signature's R.
pub(crate) fn find_disagreement(key_torsion: EdwardsPoint, r_torsion: EdwardsPoint, zero_nonce: bool) -> Option<u64> {
    let genesis = testkit::genesis(&[COMMUNITY, "xiangmihu"]);
    let g = genesis.hash();
    let community_key = testkit::key(&format!("{COMMUNITY}/signing"));
    let start = SignerKeys {
        current: community_key.public(),
        recovery: testkit::key(&format!("{COMMUNITY}/recovery")).public(),
    };
    let a = sha512_scalar(&[b"torsion resident"]);
    let a_bytes = (EdwardsPoint::mul_base(&a) + key_torsion).compress().to_bytes();
    (0..256u64).find(|&nonce| {
        let payload = Redemption { resident: PublicKey(a_bytes), points: 1, item: "soap".into(), nonce };
        let unsigned = Signed { payload, signature: Signature([0; 64]) };
        let msg = unsigned.signed_message(&g);
        let signature = raw_sign(&a, &a_bytes, r_torsion, zero_nonce, &msg, &nonce.to_le_bytes());
        let body = Body::Redeem(Signed { payload: unsigned.payload, signature });
        let entry = Entry { community: cid(COMMUNITY), seq: 0, prev_hash: Hash::ZERO, time_ms: 1, body };
        let signed = SignedEntry::sign(entry, &community_key, &g);
        let single = verify_entry(&g, signed.clone(), start.current);
        let batch = verify_run(&g, vec![signed], start);
        single.is_err() && batch.is_ok()
    })
}
