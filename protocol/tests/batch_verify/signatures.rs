//! Key and signature helpers the corruptions use: small-order points, weak signatures, `s + L`,
//! access to a body's inner signature and signer, and body mutation.

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use linli_protocol::body::*;
use linli_protocol::testkit::cid;
use linli_protocol::{Hash, Keypair, PublicKey, Signature};

/// Encodings of small-order points: the eight torsion points and the non-canonical
/// encoding of the identity (y = 1 + p).
pub(crate) fn small_order_point(which: u8) -> [u8; 32] {
    let i = usize::from(which % 9);
    if i == 8 {
        let mut b = [0xffu8; 32];
        b[0] = 0xee;
        b[31] = 0x7f;
        return b;
    }
    EIGHT_TORSION[i].compress().to_bytes()
}

/// (R = identity, s = 0): valid under any small-order key for any message, cofactorless.
pub(crate) fn identity_signature() -> Signature {
    let mut s = [0u8; 64];
    s[0] = 1;
    Signature(s)
}

/// One of the two signatures above, by `which`.
pub(crate) fn weak_signature(which: u8, salt: u64) -> Signature {
    if (which / 9).is_multiple_of(2) {
        weak_key_signature(salt)
    } else {
        identity_signature()
    }
}

/// (R = r·B, s = r): valid, cofactorless, under the identity key for any message (and under
/// any small-order key A whenever the small-order term k·A vanishes), though no one knows a
/// secret for it. R is not small-order, so only the key screening refuses it.
pub(crate) fn weak_key_signature(salt: u64) -> Signature {
    let r = Scalar::from(salt + 1);
    let mut s = [0u8; 64];
    s[..32].copy_from_slice(&EdwardsPoint::mul_base(&r).compress().to_bytes());
    s[32..].copy_from_slice(r.as_bytes());
    Signature(s)
}

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

pub(crate) fn add_l_to_s(sig: &mut Signature) {
    let mut carry = 0u16;
    for (i, l) in L.iter().enumerate() {
        let v = u16::from(sig.0[32 + i]) + u16::from(*l) + carry;
        sig.0[32 + i] = (v & 0xff) as u8;
        carry = v >> 8;
    }
}

pub(crate) fn inner_signature(body: &mut Body) -> Option<&mut Signature> {
    match body {
        Body::Redeem(s) => Some(&mut s.signature),
        Body::Pay(p) => Some(&mut p.payment.signature),
        Body::Settle(s) => Some(&mut s.request.signature),
        Body::TimeCredit(s) => Some(&mut s.signature),
        Body::TimeSpend(s) => Some(&mut s.signature),
        Body::RotateKey(r) => Some(&mut r.new_key_signature),
        Body::RevokeKey(r) => Some(&mut r.new_key_signature),
        _ => None,
    }
}

pub(crate) fn inner_signer(body: &mut Body) -> Option<&mut PublicKey> {
    match body {
        Body::Redeem(s) => Some(&mut s.payload.resident),
        Body::Pay(p) => Some(&mut p.payment.payload.payer),
        Body::Settle(s) => Some(&mut s.request.payload.merchant),
        Body::TimeCredit(s) => Some(&mut s.payload.served),
        Body::TimeSpend(s) => Some(&mut s.payload.resident),
        Body::RotateKey(r) => Some(&mut r.new_key),
        Body::RevokeKey(r) => Some(&mut r.new_key),
        _ => None,
    }
}

pub(crate) fn mutate_body(body: &mut Body, salt: u8) {
    match body {
        Body::Enroll(e) => e.profile_hash.0[usize::from(salt % 32)] ^= 1,
        Body::Award(a) => a.points ^= 1 << (salt % 8),
        Body::Pay(p) if salt.is_multiple_of(2) => p.payment.payload.points ^= 1 << (salt % 8),
        // (Cites a limit no generated `Pay` cites: seq 3 with hash [3; 32] would be a no-op.)
        Body::Pay(p) => {
            p.exposure_limit =
                Some(EntryRef { community: cid("xiangmihu"), seq: 1000 + u64::from(salt), hash: Hash([salt; 32]) })
        }
        Body::Redeem(r) => r.payload.item.push('!'),
        Body::TimeCredit(t) => t.payload.minutes ^= 1,
        Body::TimeSpend(t) => t.payload.minutes ^= 1,
        Body::Settle(s) => s.settled_total ^= 1,
        Body::RotateKey(r) => r.new_key = Keypair::from_label("batch/other").public(),
        Body::RevokeKey(r) => r.revoked_key = Keypair::from_label("batch/other").public(),
        other => panic!("no mutation for {}", other.kind()),
    }
}
