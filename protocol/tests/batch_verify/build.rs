//! The run builder: a run of validly signed entries from a `Spec`, with its corruption applied,
//! and the signer each entry expects.

use crate::signatures::{add_l_to_s, inner_signature, inner_signer, mutate_body, small_order_point, weak_signature};
use crate::spec::{Corruption, Kind, Spec};
use crate::COMMUNITY;
use linli_protocol::body::*;
use linli_protocol::testkit::{self, cid};
use linli_protocol::verify::SignerKeys;
use linli_protocol::{CommunityId, Entry, Hash, Keypair, PublicKey, SignedEntry};

fn resident(i: u8) -> Keypair {
    Keypair::from_label(&format!("batch/resident-{}", i % 4))
}

pub(crate) struct Run {
    pub(crate) genesis_hash: Hash,
    pub(crate) entries: Vec<SignedEntry>,
    /// The index of the corrupted entry, if a corruption was applied.
    pub(crate) corrupted: Option<usize>,
    pub(crate) start: SignerKeys,
    pub(crate) retired: Vec<Keypair>,
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

pub(crate) fn build(spec: &Spec) -> Run {
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
pub(crate) fn expected_signers(entries: &[SignedEntry], start: SignerKeys) -> Vec<PublicKey> {
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
