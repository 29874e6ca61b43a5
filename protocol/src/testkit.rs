//! Test support: a federation with deterministic keys that builds correctly chained, signed
//! entries and applies them to a [`State`]. Used by this crate's tests and (with the
//! `test-support` feature) by the node's and the workspace's tests. Not for production use.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use crate::body::{Body, Enroll, Payment, Signed, SignedPayload};
use crate::entry::{Entry, SignedEntry};
use crate::genesis::{Genesis, RawCommunity, RawGenesis};
use crate::keys::Keypair;
use crate::primitives::{CommunityId, Hash};
use crate::state::{ApplyContext, RejectedEntry, State};
use crate::verify::{verify_entry, VerifiedEntry};
use std::collections::BTreeMap;

/// A federation of communities with labelled keys and a live [`State`].
pub struct TestFederation {
    pub genesis: Genesis,
    pub genesis_hash: Hash,
    pub keys: BTreeMap<CommunityId, Keypair>,
    pub recovery: BTreeMap<CommunityId, Keypair>,
    pub state: State,
    pub time_ms: u64,
}

/// Deterministic key for a label (`"lianhua/signing"`, `"resident-1"`).
pub fn key(label: &str) -> Keypair {
    Keypair::from_label(label)
}

/// A community id from a literal known to be valid (panics otherwise: test code).
pub fn cid(id: &str) -> CommunityId {
    CommunityId::new(id).expect("valid test community id")
}

/// A genesis of the named communities with keys from labels `"{id}/signing"`, `"{id}/recovery"`.
pub fn genesis(ids: &[&str]) -> Genesis {
    let raw = RawGenesis {
        federation: "linli-test".into(),
        fen_per_point: crate::FEN_PER_POINT,
        created_ms: 1_790_000_000_000,
        communities: ids
            .iter()
            .enumerate()
            .map(|(i, id)| RawCommunity {
                id: (*id).into(),
                name: format!("{id} community"),
                district: if i % 2 == 0 { "east".into() } else { "west".into() },
                signing_key: key(&format!("{id}/signing")).public().to_hex(),
                recovery_key: key(&format!("{id}/recovery")).public().to_hex(),
                p2p_addresses: vec![],
                http_address: None,
            })
            .collect(),
    };
    Genesis::try_from(raw).expect("valid test genesis")
}

impl TestFederation {
    pub fn new(ids: &[&str]) -> Self {
        Self::with_genesis(genesis(ids))
    }

    /// A federation over a given genesis (e.g. a rig's, with network addresses) whose
    /// communities' keys are the labelled test keys `"{id}/signing"`, `"{id}/recovery"`.
    pub fn with_genesis(genesis: Genesis) -> Self {
        let ids: Vec<String> = genesis.communities.iter().map(|c| c.id.to_string()).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let genesis_hash = genesis.hash();
        let state = State::new(&genesis);
        let keys = ids.iter().map(|id| (cid(id), key(&format!("{id}/signing")))).collect();
        let recovery = ids.iter().map(|id| (cid(id), key(&format!("{id}/recovery")))).collect();
        Self { genesis, genesis_hash, keys, recovery, state, time_ms: 1_800_000_000_000 }
    }

    /// The next entry of `community` carrying `body`, chained on the current state and signed
    /// with the community's current key (not applied).
    pub fn entry(&mut self, community: &str, body: Body) -> SignedEntry {
        let id = cid(community);
        let (seq, prev) = self.state.ledgers.get(&id).map(|l| (l.next_seq, l.head)).unwrap_or((0, Hash::ZERO));
        self.time_ms = self.time_ms.saturating_add(1000);
        let entry = Entry { community: id.clone(), seq, prev_hash: prev, time_ms: self.time_ms, body };
        let signer = if matches!(entry.body, Body::RevokeKey(_)) { &self.recovery[&id] } else { &self.keys[&id] };
        SignedEntry::sign(entry, signer, &self.genesis_hash)
    }

    /// A writer that chains and signs entries of `community` from its current head without
    /// verifying or applying them: fast enough for ledgers of millions of entries (benchmarks).
    /// The caller vouches that the bodies are valid; a node or verifier re-checks them.
    pub fn chain(&self, community: &str) -> ChainWriter {
        let id = cid(community);
        let (seq, head) = self.state.ledgers.get(&id).map(|l| (l.next_seq, l.head)).unwrap_or((0, Hash::ZERO));
        ChainWriter {
            key: self.keys[&id].clone(),
            community: id,
            genesis_hash: self.genesis_hash,
            seq,
            head,
            time_ms: self.time_ms,
        }
    }

    /// Verify `entry` against the key in force and apply it.
    pub fn apply(&mut self, entry: SignedEntry) -> Result<VerifiedEntry, RejectedEntry> {
        let id = entry.entry.community.clone();
        let keys = self.state.signer_keys(&id);
        let signer = match (&entry.entry.body, keys) {
            (Body::RevokeKey(_), Some(k)) => k.recovery,
            (_, Some(k)) => k.current,
            (_, None) => self.keys.get(&id).map(|k| k.public()).unwrap_or_default(),
        };
        let v = verify_entry(&self.genesis_hash, entry.clone(), signer).map_err(|e| RejectedEntry {
            community: id.clone(),
            seq: entry.entry.seq,
            kind: entry.entry.body.kind(),
            rejection: crate::state::Rejection::Signature(Box::new(e)),
        })?;
        self.state.apply(&v, &ApplyContext::default())?;
        Ok(v)
    }

    /// Build, sign and apply.
    pub fn append(&mut self, community: &str, body: Body) -> Result<VerifiedEntry, RejectedEntry> {
        let e = self.entry(community, body);
        self.apply(e)
    }

    /// Sign a resident or merchant payload.
    pub fn sign<T: SignedPayload>(&self, payload: T, key: &Keypair) -> Signed<T> {
        Signed::sign(payload, key, &self.genesis_hash)
    }

    /// Enrol `resident` in `community`.
    pub fn enroll(&mut self, community: &str, resident: &Keypair) -> Result<VerifiedEntry, RejectedEntry> {
        self.append(community, Body::Enroll(Enroll { resident: resident.public(), profile_hash: Hash([7; 32]) }))
    }

    /// A payment payload valid for an hour from now.
    pub fn payment(
        &self,
        payer: &Keypair,
        merchant: &Keypair,
        merchant_community: &str,
        points: u64,
        price_fen: u64,
        nonce: u64,
    ) -> Payment {
        Payment {
            payer: payer.public(),
            merchant: merchant.public(),
            merchant_community: cid(merchant_community),
            points,
            price_fen,
            nonce,
            expiry_ms: self.time_ms.saturating_add(3_600_000),
            genesis: self.genesis_hash,
        }
    }
}

/// Chains and signs one community's entries (see [`TestFederation::chain`]).
pub struct ChainWriter {
    pub community: CommunityId,
    pub key: Keypair,
    pub genesis_hash: Hash,
    /// Seq of the next entry.
    pub seq: u64,
    /// Hash of the last entry.
    pub head: Hash,
    /// Time of the last entry; each entry is one millisecond later.
    pub time_ms: u64,
}

impl ChainWriter {
    /// The next entry carrying `body`, chained and signed.
    pub fn next(&mut self, body: Body) -> SignedEntry {
        self.time_ms += 1;
        let entry = Entry {
            community: self.community.clone(),
            seq: self.seq,
            prev_hash: self.head,
            time_ms: self.time_ms,
            body,
        };
        self.head = entry.hash(&self.genesis_hash);
        self.seq += 1;
        let signature = self.key.sign(crate::entry::ENTRY_DOMAIN, &self.genesis_hash, &self.head.0);
        SignedEntry { entry, signature }
    }
}

/// Community `a` equivocates at seq 3: on one branch its resident pays 30 points at a merchant
/// of `b` (and `b` credits the merchant, citing that payment), on the other it enrols someone.
/// A node of a third community that took the other branch can check `b`'s credit only on
/// evidence. Built over `fed` (whose genesis must hold `a` and `b`), without applying anything.
pub struct ForkedPayment {
    /// `a`'s entries 0-2: rules, a resident, 100 points for the resident.
    pub a_prefix: Vec<SignedEntry>,
    /// `a` seq 3, the branch `b` took: the payment.
    pub pay: SignedEntry,
    /// `a` seq 3, the other branch.
    pub other: SignedEntry,
    /// `b`'s entries 0-2: the merchant, credit for `a`'s points, the credit citing `pay`.
    pub b_entries: Vec<SignedEntry>,
    pub merchant: Keypair,
}

impl ForkedPayment {
    pub fn new(fed: &TestFederation) -> Self {
        use crate::body::{Credit, ExposureLimit, RegisterMerchant};
        let merchant = key("fork/merchant");
        let mut b = fed.chain("b");
        let register = RegisterMerchant { merchant: merchant.public(), name: "Tea".into(), category: "food".into() };
        let mut b_entries = vec![
            b.next(Body::RegisterMerchant(register)),
            b.next(Body::SetExposureLimit(ExposureLimit { issuer: cid("a"), limit_fen: 10_000 })),
        ];
        let limit = b_entries[1].entry_ref(&fed.genesis_hash);
        let (a_prefix, pay, other) = fork_with_payment(fed, "a", "b", &merchant, limit);
        let source = pay.entry_ref(&fed.genesis_hash);
        b_entries.push(b.next(Body::Credit(Credit {
            source,
            merchant: merchant.public(),
            issuer: cid("a"),
            points: 30,
        })));
        ForkedPayment { a_prefix, pay, other, b_entries, merchant }
    }

    /// The proof that `a` signed both.
    pub fn proof(&self) -> crate::checkpoint::EquivocationProof {
        crate::checkpoint::EquivocationProof::Entries(Box::new(self.other.clone()), Box::new(self.pay.clone()))
    }
}

/// `issuer`'s ledger from seq 0, chained from `fed`'s time: its rules, a resident with 100
/// points, then two entries at seq 3 — a payment of 30 points (300 fen) to `merchant` of
/// `merchant_community` citing that community's exposure limit `limit`, and an enrolment.
/// Returns (the common prefix, the payment, the enrolment).
pub fn fork_with_payment(
    fed: &TestFederation,
    issuer: &str,
    merchant_community: &str,
    merchant: &Keypair,
    limit: crate::body::EntryRef,
) -> (Vec<SignedEntry>, SignedEntry, SignedEntry) {
    use crate::body::{Award, PayEntry};
    let resident = key(&format!("fork/{issuer}/resident"));
    let mut chain = fed.chain(issuer);
    let award = Award {
        resident: resident.public(),
        activity: "mediation".into(),
        minutes: 600,
        rating: 5,
        bonuses: vec![],
        points: 100,
        rules_version: 1,
        request_id: 1,
    };
    let prefix = vec![
        chain.next(Body::SetRules(crate::rules::RuleTable::default_table(1))),
        chain.next(Body::Enroll(Enroll { resident: resident.public(), profile_hash: Hash::ZERO })),
        chain.next(Body::Award(award)),
    ];
    let mut payment = fed.payment(&resident, merchant, merchant_community, 30, 300, 1);
    payment.expiry_ms = chain.time_ms + 3_600_000;
    let payment = fed.sign(payment, &resident);
    let mut other_branch = ChainWriter {
        key: chain.key.clone(),
        community: chain.community.clone(),
        genesis_hash: chain.genesis_hash,
        ..chain
    };
    let pay = chain.next(Body::Pay(PayEntry { payment, exposure_limit: Some(limit) }));
    let other = other_branch.next(Body::Enroll(Enroll {
        resident: key(&format!("fork/{issuer}/other")).public(),
        profile_hash: Hash::ZERO,
    }));
    (prefix, pay, other)
}
