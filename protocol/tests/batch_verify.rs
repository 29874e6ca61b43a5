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

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use linli_protocol::body::*;
use linli_protocol::keys::SignatureError;
use linli_protocol::testkit::{self, cid};
use linli_protocol::verify::{verify_entry, verify_run, SignerKeys, VerifyError};
use linli_protocol::{CommunityId, Entry, Hash, Keypair, PublicKey, Signature, SignedEntry};
use proptest::prelude::*;
use sha2::{Digest, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Enroll,
    Award,
    Pay,
    Redeem,
    TimeCredit,
    TimeSpend,
    Settle,
    Rotate,
    Revoke,
}

#[derive(Debug, Clone)]
enum Corruption {
    /// Flip one bit of the community's entry signature.
    CommunitySig { byte: u8, bit: u8 },
    /// Flip one bit of a resident's, merchant's or new key's signature inside the body.
    InnerSig { byte: u8, bit: u8 },
    /// Change the body after the community signed it.
    Body { salt: u8 },
    /// Sign the entry with a key that is not the one in force.
    WrongCommunityKey { which: u8 },
    /// Name another resident as the inner signer (re-signing the entry so only that is wrong).
    WrongInnerSigner,
    /// A small-order inner signer key with a signature the cofactorless equation accepts for
    /// any message (see `identity_signature` and `weak_key_signature`); the entry is re-signed.
    SmallOrderInnerKey { which: u8 },
    /// A small-order point as the `R` of the entry signature.
    SmallOrderR { which: u8 },
    /// `s + L` in place of `s` in the entry signature.
    NonCanonicalS,
    /// Rotate the community key to a small-order key, then "sign" every later entry with a
    /// signature the cofactorless equation accepts under it.
    SmallOrderRotation { which: u8 },
}

#[derive(Debug, Clone)]
struct Spec {
    start_seq: u64,
    kinds: Vec<(Kind, u8)>,
    /// The corruption and the entry it hits (modulo the run length).
    corruption: Option<(Corruption, u16)>,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        2 => Just(Kind::Enroll),
        2 => Just(Kind::Award),
        4 => Just(Kind::Pay),
        3 => Just(Kind::Redeem),
        3 => Just(Kind::TimeCredit),
        2 => Just(Kind::TimeSpend),
        2 => Just(Kind::Settle),
        1 => Just(Kind::Rotate),
        1 => Just(Kind::Revoke),
    ]
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        (0u8..64, 0u8..8).prop_map(|(byte, bit)| Corruption::CommunitySig { byte, bit }),
        (0u8..64, 0u8..8).prop_map(|(byte, bit)| Corruption::InnerSig { byte, bit }),
        any::<u8>().prop_map(|salt| Corruption::Body { salt }),
        any::<u8>().prop_map(|which| Corruption::WrongCommunityKey { which }),
        Just(Corruption::WrongInnerSigner),
        any::<u8>().prop_map(|which| Corruption::SmallOrderInnerKey { which }),
        any::<u8>().prop_map(|which| Corruption::SmallOrderR { which }),
        Just(Corruption::NonCanonicalS),
        any::<u8>().prop_map(|which| Corruption::SmallOrderRotation { which }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop_oneof![Just(0u64), 0u64..1_000_000],
        prop::collection::vec((kind(), any::<u8>()), 1..=40),
        prop::option::weighted(0.75, (corruption(), any::<u16>())),
    )
        .prop_map(|(start_seq, kinds, corruption)| Spec { start_seq, kinds, corruption })
}

const COMMUNITY: &str = "lianhua";

fn resident(i: u8) -> Keypair {
    Keypair::from_label(&format!("batch/resident-{}", i % 4))
}

/// Encodings of small-order points: the eight torsion points and the non-canonical
/// encoding of the identity (y = 1 + p).
fn small_order_point(which: u8) -> [u8; 32] {
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
fn identity_signature() -> Signature {
    let mut s = [0u8; 64];
    s[0] = 1;
    Signature(s)
}

/// One of the two signatures above, by `which`.
fn weak_signature(which: u8, salt: u64) -> Signature {
    if (which / 9).is_multiple_of(2) {
        weak_key_signature(salt)
    } else {
        identity_signature()
    }
}

/// (R = r·B, s = r): valid, cofactorless, under the identity key for any message (and under
/// any small-order key A whenever the small-order term k·A vanishes), though no one knows a
/// secret for it. R is not small-order, so only the key screening refuses it.
fn weak_key_signature(salt: u64) -> Signature {
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

fn add_l_to_s(sig: &mut Signature) {
    let mut carry = 0u16;
    for (i, l) in L.iter().enumerate() {
        let v = u16::from(sig.0[32 + i]) + u16::from(*l) + carry;
        sig.0[32 + i] = (v & 0xff) as u8;
        carry = v >> 8;
    }
}

fn inner_signature(body: &mut Body) -> Option<&mut Signature> {
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

fn inner_signer(body: &mut Body) -> Option<&mut PublicKey> {
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

fn mutate_body(body: &mut Body, salt: u8) {
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

struct Run {
    genesis_hash: Hash,
    entries: Vec<SignedEntry>,
    /// The index of the corrupted entry, if a corruption was applied.
    corrupted: Option<usize>,
    start: SignerKeys,
    retired: Vec<Keypair>,
}

fn body(kind: Kind, actor: u8, seq: u64, g: &Hash, community: &CommunityId, current: &Keypair) -> Body {
    let r = resident(actor);
    let other = resident(actor.wrapping_add(1));
    let nonce = seq;
    match kind {
        Kind::Enroll => Body::Enroll(Enroll { resident: r.public(), profile_hash: Hash([actor; 32]) }),
        Kind::Award => Body::Award(Award {
            resident: r.public(),
            activity: "cleanup".into(),
            minutes: 60,
            rating: 5,
            bonuses: vec![],
            points: 20,
            rules_version: 1,
            request_id: seq,
        }),
        Kind::Pay => Body::Pay(PayEntry {
            payment: Signed::sign(
                Payment {
                    payer: r.public(),
                    merchant: other.public(),
                    merchant_community: cid("xiangmihu"),
                    points: u64::from(actor % 50) + 1,
                    price_fen: 1000,
                    nonce,
                    expiry_ms: 1_900_000_000_000,
                    genesis: *g,
                },
                &r,
                g,
            ),
            exposure_limit: Some(EntryRef { community: cid("xiangmihu"), seq: 3, hash: Hash([3; 32]) }),
        }),
        Kind::Redeem => Body::Redeem(Signed::sign(
            Redemption { resident: r.public(), points: u64::from(actor % 9) + 1, item: "soap".into(), nonce },
            &r,
            g,
        )),
        Kind::TimeCredit => Body::TimeCredit(Signed::sign(
            TimeService { provider: r.public(), served: other.public(), minutes: 30, service: "visit".into(), nonce },
            &other,
            g,
        )),
        Kind::TimeSpend => Body::TimeSpend(Signed::sign(
            TimeDraw {
                resident: r.public(),
                minutes: 15,
                serving_community: cid("xiangmihu"),
                service: "repair".into(),
                nonce,
            },
            &r,
            g,
        )),
        Kind::Settle => Body::Settle(SettleEntry {
            request: Signed::sign(
                SettlementRequest { merchant: r.public(), issuer: cid("xiangmihu"), points: 5, fen: 50, nonce },
                &r,
                g,
            ),
            settled_total: seq,
        }),
        Kind::Rotate | Kind::Revoke => {
            let new = Keypair::from_label(&format!("batch/key-{seq}"));
            let new_key_signature = new.sign("rotate-key", g, &rotation_message(community, seq));
            if kind == Kind::Rotate {
                Body::RotateKey(RotateKey { new_key: new.public(), new_key_signature })
            } else {
                Body::RevokeKey(RevokeKey { revoked_key: current.public(), new_key: new.public(), new_key_signature })
            }
        }
    }
}

fn build(spec: &Spec) -> Run {
    let genesis = testkit::genesis(&[COMMUNITY, "xiangmihu"]);
    let g = genesis.hash();
    let community = cid(COMMUNITY);
    let recovery = testkit::key(&format!("{COMMUNITY}/recovery"));
    let mut current = testkit::key(&format!("{COMMUNITY}/signing"));
    let start = SignerKeys { current: current.public(), recovery: recovery.public() };
    let n = spec.kinds.len();
    let target = spec.corruption.as_ref().map(|(c, at)| (c.clone(), usize::from(*at) % n));
    // After a rotation to a small-order key, later entries carry a "weak" signature.
    let mut weak_from: Option<usize> = None;

    let mut entries: Vec<SignedEntry> = Vec::with_capacity(n);
    let mut signers: Vec<Keypair> = Vec::with_capacity(n);
    let mut retired: Vec<Keypair> = Vec::new();
    for (i, (kind, actor)) in spec.kinds.iter().enumerate() {
        let seq = spec.start_seq + i as u64;
        let prev_hash = entries.last().map(|e| e.hash(&g)).unwrap_or(Hash([0xab; 32]));
        let mut b = body(*kind, *actor, seq, &g, &community, &current);
        if let Some((Corruption::SmallOrderRotation { which }, at)) = &target {
            if *at == i {
                b = Body::RotateKey(RotateKey {
                    new_key: PublicKey(small_order_point(*which)),
                    new_key_signature: weak_signature(*which, seq),
                });
            }
        }
        let signer = if matches!(b, Body::RevokeKey(_)) { recovery.clone() } else { current.clone() };
        let entry = Entry { community: community.clone(), seq, prev_hash, time_ms: 1_800_000_000_000 + seq, body: b };
        let mut signed = SignedEntry::sign(entry, &signer, &g);
        if let (Some(_), Some((Corruption::SmallOrderRotation { which }, _))) = (weak_from, &target) {
            signed.signature = weak_signature(*which, seq);
        }
        match &signed.entry.body {
            Body::RotateKey(RotateKey { new_key, .. }) | Body::RevokeKey(RevokeKey { new_key, .. }) => {
                retired.push(current.clone());
                if Some(i) == target.as_ref().map(|t| t.1)
                    && matches!(target, Some((Corruption::SmallOrderRotation { .. }, _)))
                {
                    weak_from = Some(i + 1);
                } else {
                    current = Keypair::from_label(&format!("batch/key-{seq}"));
                    assert_eq!(current.public(), *new_key);
                }
            }
            _ => {}
        }
        entries.push(signed);
        signers.push(signer);
    }

    let mut corrupted = None;
    if let Some((c, at)) = target {
        let has_inner = |e: &SignedEntry| {
            let mut b = e.entry.body.clone();
            inner_signature(&mut b).is_some()
        };
        // Inner-signature corruptions go to the nearest entry (at or after `at`, wrapping) that
        // has an inner signature; with none in the run, the community signature is hit instead.
        let inner_target = (0..n).map(|d| (at + d) % n).find(|&i| has_inner(&entries[i]));
        let resign = |e: &mut SignedEntry, key: &Keypair| {
            *e = SignedEntry::sign(e.entry.clone(), key, &g);
        };
        match c {
            Corruption::CommunitySig { byte, bit } => {
                entries[at].signature.0[usize::from(byte)] ^= 1 << bit;
                corrupted = Some(at);
            }
            Corruption::InnerSig { byte, bit } => match inner_target {
                Some(i) => {
                    inner_signature(&mut entries[i].entry.body).unwrap().0[usize::from(byte)] ^= 1 << bit;
                    resign(&mut entries[i], &signers[i]);
                    corrupted = Some(i);
                }
                None => {
                    entries[at].signature.0[usize::from(byte)] ^= 1 << bit;
                    corrupted = Some(at);
                }
            },
            Corruption::Body { salt } => {
                mutate_body(&mut entries[at].entry.body, salt);
                corrupted = Some(at);
            }
            Corruption::WrongCommunityKey { which } => {
                let mallory = Keypair::from_label("batch/mallory");
                let wrong = match which % 3 {
                    0 => mallory,
                    1 if !matches!(entries[at].entry.body, Body::RevokeKey(_)) => recovery.clone(),
                    1 => testkit::key(&format!("{COMMUNITY}/signing-unknown")),
                    _ => retired.first().cloned().unwrap_or(mallory),
                };
                if wrong.public() != signers[at].public() {
                    resign(&mut entries[at], &wrong);
                    corrupted = Some(at);
                }
            }
            Corruption::WrongInnerSigner => {
                if let Some(i) = inner_target {
                    let k = inner_signer(&mut entries[i].entry.body).unwrap();
                    *k = Keypair::from_label("batch/mallory").public();
                    resign(&mut entries[i], &signers[i]);
                    corrupted = Some(i);
                }
            }
            Corruption::SmallOrderInnerKey { which } => {
                if let Some(i) = inner_target {
                    *inner_signer(&mut entries[i].entry.body).unwrap() = PublicKey(small_order_point(which));
                    *inner_signature(&mut entries[i].entry.body).unwrap() = weak_signature(which, entries[i].entry.seq);
                    resign(&mut entries[i], &signers[i]);
                    corrupted = Some(i);
                }
            }
            Corruption::SmallOrderR { which } => {
                entries[at].signature.0[..32].copy_from_slice(&small_order_point(which));
                corrupted = Some(at);
            }
            Corruption::NonCanonicalS => {
                add_l_to_s(&mut entries[at].signature);
                corrupted = Some(at);
            }
            Corruption::SmallOrderRotation { .. } => corrupted = Some(at),
        }
    }
    Run { genesis_hash: g, entries, corrupted, start, retired }
}

/// The signer of each entry, following rotations and revocations (independently of
/// `SignerKeys::step`).
fn expected_signers(entries: &[SignedEntry], start: SignerKeys) -> Vec<PublicKey> {
    let mut current = start.current;
    entries
        .iter()
        .map(|e| match &e.entry.body {
            Body::RotateKey(r) => std::mem::replace(&mut current, r.new_key),
            Body::RevokeKey(r) => {
                current = r.new_key;
                start.recovery
            }
            _ => current,
        })
        .collect()
}

/// Runs both paths and checks they agree. Returns the index of the first bad entry.
fn check_agreement(run: &Run) -> Result<Option<usize>, TestCaseError> {
    let g = &run.genesis_hash;
    let signers = expected_signers(&run.entries, run.start);
    let singles: Vec<Result<_, VerifyError>> =
        run.entries.iter().zip(&signers).map(|(e, s)| verify_entry(g, e.clone(), *s)).collect();
    let first_bad = singles.iter().position(Result::is_err);
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

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

fn sha512_scalar(parts: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// An ed25519 signature made "by hand" with secret scalar `a`, public key bytes `a_bytes` and
/// nonce point `r·B + r_torsion` (with `r = 0` when `zero_nonce`, so `R` is `r_torsion` alone).
fn raw_sign(
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
fn find_disagreement(key_torsion: EdwardsPoint, r_torsion: EdwardsPoint, zero_nonce: bool) -> Option<u64> {
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
