//! Transaction bodies: what a ledger entry says happened.
//!
//! Amounts are integers: points (`u64`), money in fen (`u64`, 1 point = 10 fen), time in
//! minutes (`u64`). Transactions a resident or merchant authorises carry their own signature
//! ([`Signed`]), so the community that sequences them cannot forge them. Operator transactions
//! (enrolment, awards, rules, limits) are authorised by the community's entry signature alone.

use crate::encoding;
use crate::keys::{self, Keypair, SignatureError};
use crate::primitives::{CommunityId, Hash, PublicKey, Signature};
use crate::rules::RuleTable;
use serde::{Deserialize, Serialize};

/// A pointer to one entry of one ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntryRef {
    pub community: CommunityId,
    pub seq: u64,
    pub hash: Hash,
}

/// A payload that a resident or merchant signs.
pub trait SignedPayload: Serialize {
    /// Domain tag of the signature (see [`keys::signing_message`]).
    const DOMAIN: &'static str;
    /// The key that must have signed.
    fn signer(&self) -> PublicKey;
    /// The signer's single-use nonce.
    fn nonce(&self) -> u64;
}

/// A payload with its signer's signature over `DOMAIN`, the genesis hash and its canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    pub payload: T,
    pub signature: Signature,
}

impl<T: SignedPayload> Signed<T> {
    /// Sign `payload` with `key` (which must be the payload's signer to verify).
    pub fn sign(payload: T, key: &Keypair, genesis: &Hash) -> Self {
        let signature = key.sign(T::DOMAIN, genesis, &encoding::encode(&payload));
        Self { payload, signature }
    }

    /// The message bytes the signature covers (for batch verification).
    pub fn signed_message(&self, genesis: &Hash) -> Vec<u8> {
        keys::signing_message(T::DOMAIN, genesis, &encoding::encode(&self.payload))
    }

    /// Check the signature.
    pub fn verify(&self, genesis: &Hash) -> Result<(), SignatureError> {
        keys::verify(&self.payload.signer(), T::DOMAIN, genesis, &encoding::encode(&self.payload), &self.signature)
    }

    /// Identifier of this signed transaction: BLAKE3 over its canonical bytes.
    pub fn tx_id(&self) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(b"linli/v1/tx\0");
        h.update(&encoding::encode(self));
        Hash(*h.finalize().as_bytes())
    }
}

/// A resident's payment at a merchant, signed by the payer. Sequenced only by the payer's home
/// community. `points * 10 <= price_fen`; the rest of the price is paid in cash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub payer: PublicKey,
    pub merchant: PublicKey,
    pub merchant_community: CommunityId,
    pub points: u64,
    pub price_fen: u64,
    pub nonce: u64,
    pub expiry_ms: u64,
    pub genesis: Hash,
}

impl SignedPayload for Payment {
    const DOMAIN: &'static str = "pay";
    fn signer(&self) -> PublicKey {
        self.payer
    }
    fn nonce(&self) -> u64 {
        self.nonce
    }
}

/// A resident spends points on the community's own goods and services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    pub resident: PublicKey,
    pub points: u64,
    pub item: String,
    pub nonce: u64,
}

impl SignedPayload for Redemption {
    const DOMAIN: &'static str = "redeem";
    fn signer(&self) -> PublicKey {
        self.resident
    }
    fn nonce(&self) -> u64 {
        self.nonce
    }
}

/// A merchant asks its home community to cash out points of one issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRequest {
    pub merchant: PublicKey,
    pub issuer: CommunityId,
    pub points: u64,
    pub fen: u64,
    pub nonce: u64,
}

impl SignedPayload for SettlementRequest {
    const DOMAIN: &'static str = "settle";
    fn signer(&self) -> PublicKey {
        self.merchant
    }
    fn nonce(&self) -> u64 {
        self.nonce
    }
}

/// A time-bank service: `provider` (a resident of the sequencing community) served `served`
/// for `minutes`; the served resident signs to confirm it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeService {
    pub provider: PublicKey,
    pub served: PublicKey,
    pub minutes: u64,
    pub service: String,
    pub nonce: u64,
}

impl SignedPayload for TimeService {
    const DOMAIN: &'static str = "time-credit";
    fn signer(&self) -> PublicKey {
        self.served
    }
    fn nonce(&self) -> u64 {
        self.nonce
    }
}

/// A resident draws time-bank minutes for a service received in `serving_community`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeDraw {
    pub resident: PublicKey,
    pub minutes: u64,
    pub serving_community: CommunityId,
    pub service: String,
    pub nonce: u64,
}

impl SignedPayload for TimeDraw {
    const DOMAIN: &'static str = "time-spend";
    fn signer(&self) -> PublicKey {
        self.resident
    }
    fn nonce(&self) -> u64 {
        self.nonce
    }
}

/// Enrol a resident (pseudonymous: only a salted hash of the profile enters the ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enroll {
    pub resident: PublicKey,
    pub profile_hash: Hash,
}

/// Register a merchant of this community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterMerchant {
    pub merchant: PublicKey,
    pub name: String,
    pub category: String,
}

/// Points minted for a resident's volunteer activity; validators recompute `points` from the
/// rule table in force (`rules_version`) and refuse any other figure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Award {
    pub resident: PublicKey,
    pub activity: String,
    /// Minutes served (hourly activities earn per full hour; all count towards served hours).
    pub minutes: u64,
    /// Service rating, 0..=5.
    pub rating: u8,
    /// Bonus ids of the activity that apply (e.g. `bad-weather`).
    pub bonuses: Vec<String>,
    pub points: u64,
    pub rules_version: u32,
    /// Operator-chosen id, single-use per community (idempotent resubmission).
    pub request_id: u64,
}

/// A `Pay` entry: the resident-signed payment plus, for a merchant of another community, the
/// exposure-limit entry (on the merchant community's ledger) that the payment was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayEntry {
    pub payment: Signed<Payment>,
    pub exposure_limit: Option<EntryRef>,
}

/// On the merchant's home ledger: credit a merchant for one source `Pay` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    pub source: EntryRef,
    pub merchant: PublicKey,
    pub issuer: CommunityId,
    pub points: u64,
}

/// On the merchant's home ledger: cash out; `fen == points * 10` exactly. `settled_total` is the
/// community's cumulative settled points of `issuer` after this entry (cited by clearings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleEntry {
    pub request: Signed<SettlementRequest>,
    pub settled_total: u64,
}

/// Clearing with `counterparty`, recorded by each side on its own ledger.
///
/// `settled_here_total`: cumulative points issued by the counterparty that this community's
/// merchants have settled (exactly this ledger's figure). `settled_there_total`: cumulative
/// points issued by this community that the counterparty's merchants have settled, as stated
/// by the cited `Settle` entry on the counterparty's ledger. The fen figures are the increments
/// since this pair's previous clearing, times 10: `receivable_fen` is owed to this community,
/// `payable_fen` by it; the net is what changes hands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clearing {
    pub counterparty: CommunityId,
    pub settled_here_total: u64,
    pub settled_there_total: u64,
    pub settled_there_ref: Option<EntryRef>,
    pub receivable_fen: u64,
    pub payable_fen: u64,
}

/// The most, in fen, this community carries for uncleared points of `issuer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposureLimit {
    pub issuer: CommunityId,
    pub limit_fen: u64,
}

/// On the serving community's ledger: the service drawn by a `TimeSpend` was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeFulfil {
    pub source: EntryRef,
    pub minutes: u64,
}

/// Rotate the community key. The entry is signed by the old key; `new_key_signature` is the new
/// key's signature over (community, seq), domain `rotate-key`. From the next seq only the new
/// key signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateKey {
    pub new_key: PublicKey,
    pub new_key_signature: Signature,
}

/// Revoke a compromised community key. The entry is signed by the community's offline recovery
/// key (from the genesis); nothing signed by `revoked_key` after this seq is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeKey {
    pub revoked_key: PublicKey,
    pub new_key: PublicKey,
    pub new_key_signature: Signature,
}

/// Move a resident's or merchant's account to a new key after the community's identity check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaceKey {
    pub old_key: PublicKey,
    pub new_key: PublicKey,
}

/// Every kind of ledger entry body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    Enroll(Enroll),
    RegisterMerchant(RegisterMerchant),
    SetRules(RuleTable),
    Award(Award),
    Redeem(Signed<Redemption>),
    Pay(PayEntry),
    Credit(Credit),
    Settle(SettleEntry),
    Clearing(Clearing),
    SetExposureLimit(ExposureLimit),
    TimeCredit(Signed<TimeService>),
    TimeSpend(Signed<TimeDraw>),
    TimeFulfil(TimeFulfil),
    RotateKey(RotateKey),
    RevokeKey(RevokeKey),
    ReplaceKey(ReplaceKey),
}

impl Body {
    /// A short kebab-case name of the kind, for filters, metrics and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Enroll(_) => "enroll",
            Body::RegisterMerchant(_) => "register-merchant",
            Body::SetRules(_) => "set-rules",
            Body::Award(_) => "award",
            Body::Redeem(_) => "redeem",
            Body::Pay(_) => "pay",
            Body::Credit(_) => "credit",
            Body::Settle(_) => "settle",
            Body::Clearing(_) => "clearing",
            Body::SetExposureLimit(_) => "set-exposure-limit",
            Body::TimeCredit(_) => "time-credit",
            Body::TimeSpend(_) => "time-spend",
            Body::TimeFulfil(_) => "time-fulfil",
            Body::RotateKey(_) => "rotate-key",
            Body::RevokeKey(_) => "revoke-key",
            Body::ReplaceKey(_) => "replace-key",
        }
    }

    /// All kinds' names, in declaration order.
    pub const KINDS: [&'static str; 16] = [
        "enroll",
        "register-merchant",
        "set-rules",
        "award",
        "redeem",
        "pay",
        "credit",
        "settle",
        "clearing",
        "set-exposure-limit",
        "time-credit",
        "time-spend",
        "time-fulfil",
        "rotate-key",
        "revoke-key",
        "replace-key",
    ];

    /// Accounts (resident or merchant keys) this body touches, for indexes and filters.
    pub fn accounts(&self) -> Vec<PublicKey> {
        match self {
            Body::Enroll(e) => vec![e.resident],
            Body::RegisterMerchant(m) => vec![m.merchant],
            Body::Award(a) => vec![a.resident],
            Body::Redeem(r) => vec![r.payload.resident],
            Body::Pay(p) => vec![p.payment.payload.payer, p.payment.payload.merchant],
            Body::Credit(c) => vec![c.merchant],
            Body::Settle(s) => vec![s.request.payload.merchant],
            Body::TimeCredit(t) => vec![t.payload.provider, t.payload.served],
            Body::TimeSpend(t) => vec![t.payload.resident],
            Body::ReplaceKey(r) => vec![r.old_key, r.new_key],
            Body::SetRules(_)
            | Body::Clearing(_)
            | Body::SetExposureLimit(_)
            | Body::TimeFulfil(_)
            | Body::RotateKey(_)
            | Body::RevokeKey(_) => vec![],
        }
    }
}

/// The message a new community key signs to accept a rotation at `seq`.
pub fn rotation_message(community: &CommunityId, seq: u64) -> Vec<u8> {
    encoding::encode(&(community, seq))
}
