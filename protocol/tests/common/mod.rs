//! Shared fixtures of the integration tests: a deterministic "golden" ledger of community
//! `lianhua` holding one entry of every body kind (in `Body::KINDS` order), which is also a valid
//! ledger under the state machine, plus a checkpoint, Merkle proofs and an equivocation proof
//! over it. Everything is derived from labelled keys and fixed times, so the bytes never change.
#![allow(dead_code)]

use linli_protocol::body::*;
use linli_protocol::checkpoint::{Checkpoint, CosignedCheckpoint, EquivocationProof, SignedCheckpoint};
use linli_protocol::merkle::{self, ConsistencyProof, InclusionProof};
use linli_protocol::rules::RuleTable;
use linli_protocol::testkit::{self, cid};
use linli_protocol::verify::SignerKeys;
use linli_protocol::{CommunityId, Entry, Genesis, Hash, Keypair, SignedEntry};

/// Time of entry `seq` of the golden ledger.
pub const T0_MS: u64 = 1_800_000_000_000;

pub fn time_of(seq: u64) -> u64 {
    T0_MS + seq * 60_000
}

pub struct Golden {
    pub genesis: Genesis,
    pub genesis_hash: Hash,
    pub community: CommunityId,
    /// The resident who confirms the time credit (seq 10); enrolled before this excerpt.
    pub neighbour: linli_protocol::PublicKey,
    /// One entry per body kind, seq 0..16, chained and signed by the key in force.
    pub entries: Vec<SignedEntry>,
    /// The community key that signed each entry.
    pub signers: Vec<Keypair>,
    /// Keys in force at seq 0 (from the genesis).
    pub start_keys: SignerKeys,
    /// The community key in force after the last entry.
    pub final_key: Keypair,
    pub checkpoint: CosignedCheckpoint,
    pub inclusion: InclusionProof,
    pub consistency: ConsistencyProof,
    pub equivocation: EquivocationProof,
}

impl Golden {
    pub fn hashes(&self) -> Vec<Hash> {
        self.entries.iter().map(|e| e.hash(&self.genesis_hash)).collect()
    }
}

pub fn k(label: &str) -> Keypair {
    Keypair::from_label(label)
}

/// Builds the golden ledger. Entry `i` has body kind `Body::KINDS[i]`.
pub fn golden() -> Golden {
    let genesis = testkit::genesis(&["lianhua", "xiangmihu"]);
    let g = genesis.hash();
    let l = cid("lianhua");
    let x = cid("xiangmihu");
    let signing = k("lianhua/signing");
    let recovery = k("lianhua/recovery");
    let signing2 = k("lianhua/signing-2");
    let signing3 = k("lianhua/signing-3");
    let r1 = k("golden/resident-1");
    let r1_new = k("golden/resident-1-new");
    let r2 = k("golden/resident-2");
    let m = k("golden/merchant-1");

    let mut entries: Vec<SignedEntry> = Vec::new();
    let mut signers: Vec<Keypair> = Vec::new();
    let mut push = |body: Body, signer: &Keypair, entries: &mut Vec<SignedEntry>| {
        let seq = entries.len() as u64;
        let prev_hash = entries.last().map(|e| e.hash(&g)).unwrap_or(Hash::ZERO);
        let entry = Entry { community: l.clone(), seq, prev_hash, time_ms: time_of(seq), body };
        entries.push(SignedEntry::sign(entry, signer, &g));
        signers.push(signer.clone());
    };
    let entry_ref = |entries: &[SignedEntry], seq: usize| entries[seq].entry_ref(&g);

    // 0 enroll
    push(
        Body::Enroll(Enroll {
            resident: r1.public(),
            profile_hash: Hash(*blake3::hash(b"golden profile r1").as_bytes()),
        }),
        &signing,
        &mut entries,
    );
    // 1 register-merchant
    push(
        Body::RegisterMerchant(RegisterMerchant {
            merchant: m.public(),
            name: "莲花茶铺 Lianhua tea".into(),
            category: "food".into(),
        }),
        &signing,
        &mut entries,
    );
    // 2 set-rules
    push(Body::SetRules(RuleTable::default_table(1)), &signing, &mut entries);
    // 3 award: newcomer clean-up in bad weather, (20 + 10) x 2.
    push(
        Body::Award(Award {
            resident: r1.public(),
            activity: "cleanup".into(),
            minutes: 180,
            rating: 5,
            bonuses: vec!["bad-weather".into()],
            points: 60,
            rules_version: 1,
            request_id: 1,
        }),
        &signing,
        &mut entries,
    );
    // 4 redeem
    push(
        Body::Redeem(Signed::sign(
            Redemption { resident: r1.public(), points: 5, item: "大米 rice 1kg".into(), nonce: 1 },
            &r1,
            &g,
        )),
        &signing,
        &mut entries,
    );
    // 5 pay (a merchant of the same community: no exposure limit)
    push(
        Body::Pay(PayEntry {
            payment: Signed::sign(
                Payment {
                    payer: r1.public(),
                    merchant: m.public(),
                    merchant_community: l.clone(),
                    points: 20,
                    price_fen: 350,
                    nonce: 2,
                    expiry_ms: T0_MS + 3_600_000,
                    genesis: g,
                },
                &r1,
                &g,
            ),
            exposure_limit: None,
        }),
        &signing,
        &mut entries,
    );
    // 6 credit
    let source = entry_ref(&entries, 5);
    push(Body::Credit(Credit { source, merchant: m.public(), issuer: l.clone(), points: 20 }), &signing, &mut entries);
    // 7 settle
    push(
        Body::Settle(SettleEntry {
            request: Signed::sign(
                SettlementRequest { merchant: m.public(), issuer: l.clone(), points: 10, fen: 100, nonce: 1 },
                &m,
                &g,
            ),
            settled_total: 10,
        }),
        &signing,
        &mut entries,
    );
    // 8 clearing (nothing settled between the two communities yet)
    push(
        Body::Clearing(Clearing {
            counterparty: x.clone(),
            settled_here_total: 0,
            settled_there_total: 0,
            settled_there_ref: None,
            receivable_fen: 0,
            payable_fen: 0,
        }),
        &signing,
        &mut entries,
    );
    // 9 set-exposure-limit
    push(Body::SetExposureLimit(ExposureLimit { issuer: x.clone(), limit_fen: 50_000 }), &signing, &mut entries);
    // 10 time-credit (the served resident signs)
    push(
        Body::TimeCredit(Signed::sign(
            TimeService {
                provider: r1.public(),
                served: r2.public(),
                minutes: 90,
                service: "陪诊 hospital escort".into(),
                nonce: 3,
            },
            &r2,
            &g,
        )),
        &signing,
        &mut entries,
    );
    // 11 time-spend
    push(
        Body::TimeSpend(Signed::sign(
            TimeDraw {
                resident: r1.public(),
                minutes: 60,
                serving_community: l.clone(),
                service: "修理 repair".into(),
                nonce: 4,
            },
            &r1,
            &g,
        )),
        &signing,
        &mut entries,
    );
    // 12 time-fulfil
    let source = entry_ref(&entries, 11);
    push(Body::TimeFulfil(TimeFulfil { source, minutes: 60 }), &signing, &mut entries);
    // 13 rotate-key (signed by the old key)
    push(
        Body::RotateKey(RotateKey {
            new_key: signing2.public(),
            new_key_signature: signing2.sign("rotate-key", &g, &rotation_message(&l, 13)),
        }),
        &signing,
        &mut entries,
    );
    // 14 revoke-key (signed by the recovery key)
    push(
        Body::RevokeKey(RevokeKey {
            revoked_key: signing2.public(),
            new_key: signing3.public(),
            new_key_signature: signing3.sign("rotate-key", &g, &rotation_message(&l, 14)),
        }),
        &recovery,
        &mut entries,
    );
    // 15 replace-key (signed by the key installed by the revocation)
    push(Body::ReplaceKey(ReplaceKey { old_key: r1.public(), new_key: r1_new.public() }), &signing3, &mut entries);

    let hashes: Vec<Hash> = entries.iter().map(|e| e.hash(&g)).collect();
    let size = hashes.len() as u64;
    let signed = SignedCheckpoint::sign(
        Checkpoint { community: l.clone(), size, root: merkle::root(&hashes), time_ms: time_of(size) },
        &signing3,
        &g,
    );
    let cosig = signed.cosign(x.clone(), &k("xiangmihu/signing"), &g);
    let checkpoint = CosignedCheckpoint { signed, cosignatures: vec![cosig] };
    let inclusion = merkle::prove_inclusion(&hashes, 5).unwrap();
    let consistency = merkle::prove_consistency(&hashes, 6).unwrap();

    // The community signs a second, different entry 0.
    let mut other = entries[0].entry.clone();
    other.body = Body::Enroll(Enroll { resident: r2.public(), profile_hash: Hash([0x5a; 32]) });
    let equivocation =
        EquivocationProof::Entries(Box::new(entries[0].clone()), Box::new(SignedEntry::sign(other, &signing, &g)));

    Golden {
        genesis,
        genesis_hash: g,
        community: l,
        neighbour: r2.public(),
        entries,
        signers,
        start_keys: SignerKeys { current: signing.public(), recovery: recovery.public() },
        final_key: signing3,
        checkpoint,
        inclusion,
        consistency,
        equivocation,
    }
}
