//! Typed rejections: every rule of the state machine, with the expected and actual values.

use crate::body::EntryRef;
use crate::keys::SignatureError;
use crate::primitives::{CommunityId, Hash, PublicKey};
use crate::rules::RuleError;
use crate::verify::VerifyError;

/// The role of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Role {
    Resident,
    Merchant,
}

/// Why an entry was refused. `rule()` gives a stable short name for metrics and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("community {community} is not in the genesis")]
    UnknownCommunity { community: CommunityId },
    #[error("community {community} is marked faulty (equivocation); its entries are quarantined")]
    CommunityFaulty { community: CommunityId },
    #[error("expected seq {expected}, got {actual}")]
    WrongSeq { expected: u64, actual: u64 },
    #[error("prev_hash {actual} does not match the hash of the previous entry {expected}")]
    WrongPrevHash { expected: Hash, actual: Hash },
    #[error("time {actual_ms} ms is before the previous entry's time {previous_ms} ms")]
    TimeWentBackwards { previous_ms: u64, actual_ms: u64 },
    #[error("time {actual_ms} ms is more than {max_skew_ms} ms ahead of now ({now_ms} ms)")]
    TimeInFuture { now_ms: u64, actual_ms: u64, max_skew_ms: u64 },
    #[error("entry signed by {actual}, but the key in force is {expected}")]
    WrongSigner { expected: PublicKey, actual: PublicKey },
    #[error("{0}")]
    Signature(Box<VerifyError>),
    #[error("key {key} is refused: {error}")]
    BadKey { key: PublicKey, error: SignatureError },
    #[error("account {key} already exists in {community}")]
    AccountExists { community: CommunityId, key: PublicKey },
    #[error("no account {key} in {community}")]
    UnknownAccount { community: CommunityId, key: PublicKey },
    #[error("account {key} is a {actual:?}, expected a {expected:?}")]
    WrongRole { key: PublicKey, expected: Role, actual: Role },
    #[error("account {key} was replaced by {new_key}; the old key can no longer act")]
    AccountReplaced { key: PublicKey, new_key: PublicKey },
    #[error("field {field} is empty or longer than {max} bytes")]
    BadText { field: &'static str, max: usize },
    #[error("{field} must be greater than zero")]
    ZeroAmount { field: &'static str },
    #[error("community {community} has published no rule table")]
    RulesNotPublished { community: CommunityId },
    #[error("rule table version must be above {current}, got {actual}")]
    RulesVersion { current: u32, actual: u32 },
    #[error("rule table refused: {0}")]
    InvalidRules(RuleError),
    #[error("award refused by the rule table: {0}")]
    AwardInvalid(RuleError),
    #[error("award cites rule table version {actual}, but version {expected} is in force")]
    AwardRulesVersion { expected: u32, actual: u32 },
    #[error("award carries {actual} points, but the rule table gives {expected}")]
    AwardPoints { expected: u64, actual: u64 },
    #[error("request id {request_id} was already used by {first:?}")]
    RequestIdReused { request_id: u64, first: EntryRef },
    #[error("nonce {nonce} of {signer} was already used by {first:?}")]
    NonceReused { signer: PublicKey, nonce: u64, first: EntryRef },
    #[error("insufficient points: {account} holds {balance}, needs {required}")]
    InsufficientPoints { account: PublicKey, balance: u64, required: u64 },
    #[error("insufficient time-bank minutes: {account} holds {balance}, needs {required}")]
    InsufficientMinutes { account: PublicKey, balance: u64, required: u64 },
    #[error("merchant {merchant} holds {balance} points of {issuer}, needs {required}")]
    InsufficientHoldings { merchant: PublicKey, issuer: CommunityId, balance: u64, required: u64 },
    #[error("resident has served {actual_minutes} minutes; {required_minutes} are needed before redeeming")]
    ServedHoursTooFew { required_minutes: u64, actual_minutes: u64 },
    #[error("{points} points are worth {points_fen} fen (1 point = 10 fen), more than the price of {price_fen} fen")]
    PointsExceedPrice { points: u64, points_fen: u64, price_fen: u64 },
    #[error("{points} points must settle for exactly {expected_fen} fen (1 point = 10 fen), got {actual_fen}")]
    SettleFen { points: u64, expected_fen: u64, actual_fen: u64 },
    #[error("payment is bound to genesis {actual}, this federation is {expected}")]
    WrongGenesis { expected: Hash, actual: Hash },
    #[error("payment expired at {expiry_ms} ms; entry time is {entry_time_ms} ms")]
    PaymentExpired { expiry_ms: u64, entry_time_ms: u64 },
    #[error("{creditor} has published no exposure limit for points of {issuer} (cite one)")]
    ExposureLimitMissing { issuer: CommunityId, creditor: CommunityId },
    #[error("a payment to a merchant of the issuing community must not cite an exposure limit")]
    ExposureLimitUnexpected,
    #[error("cited exposure limit {reference:?} is not {creditor}'s limit for {issuer}")]
    ExposureLimitWrong { reference: EntryRef, issuer: CommunityId, creditor: CommunityId },
    #[error("cited exposure limit at seq {actual} is older than the one already cited (seq {latest})")]
    ExposureLimitStale { latest: u64, actual: u64 },
    #[error("payment of {payment_fen} fen would take uncleared debt from {uncleared_fen} fen over the limit of {limit_fen} fen")]
    ExposureExceeded { limit_fen: u64, uncleared_fen: u64, payment_fen: u64 },
    #[error("{what} {reference:?} is not known yet (held until it arrives)")]
    MissingDependency { what: &'static str, reference: EntryRef },
    #[error("the served resident {served} must be {expected}, but is {actual}")]
    ServedNotResident { served: PublicKey, expected: String, actual: String },
    #[error("{field} does not match the source entry: expected {expected}, got {actual}")]
    SourceMismatch { field: &'static str, expected: String, actual: String },
    #[error("source {source_ref:?} was already used by {first:?}")]
    AlreadyUsed { source_ref: EntryRef, first: EntryRef },
    #[error("settled_total must be {expected}, got {actual}")]
    SettledTotal { expected: u64, actual: u64 },
    #[error("clearing figure {field} must be {expected}, got {actual}")]
    ClearingFigure { field: &'static str, expected: u64, actual: u64 },
    #[error("{what} must name another community, not {community}")]
    SelfReference { what: &'static str, community: CommunityId },
    #[error("minutes must be between 1 and {max}, got {actual}")]
    MinutesOutOfRange { max: u64, actual: u64 },
    #[error("key rotation refused: {reason}")]
    KeyRotation { reason: &'static str },
    #[error("entry is {actual} bytes encoded; the limit every peer decodes is {limit}")]
    EntryTooLarge { limit: usize, actual: usize },
    #[error("arithmetic overflow in {what}")]
    Overflow { what: &'static str },
    #[error("evidence of {community} seq {actual} is not at or past its first proven conflict (seq {conflict_at})")]
    EvidenceBeforeConflict { community: CommunityId, conflict_at: u64, actual: u64 },
    #[error("evidence of {community}: the key in force at its conflict (seq {conflict_at}) is not known yet; this node holds its ledger to seq {held_to}")]
    EvidenceKeyUnknown { community: CommunityId, conflict_at: u64, held_to: u64 },
    #[error("evidence of {community} seq {seq} is a {kind} entry, which no other ledger cites")]
    EvidenceNotCitable { community: CommunityId, seq: u64, kind: &'static str },
}

impl Rejection {
    /// A stable short name of the rule broken.
    pub fn rule(&self) -> &'static str {
        use Rejection::*;
        match self {
            UnknownCommunity { .. } => "unknown-community",
            CommunityFaulty { .. } => "community-faulty",
            WrongSeq { .. } => "seq",
            WrongPrevHash { .. } => "prev-hash",
            TimeWentBackwards { .. } => "time-order",
            TimeInFuture { .. } => "clock-skew",
            WrongSigner { .. } => "signer",
            Signature(_) => "signature",
            BadKey { .. } => "bad-key",
            AccountExists { .. } => "account-exists",
            UnknownAccount { .. } => "unknown-account",
            WrongRole { .. } => "role",
            AccountReplaced { .. } => "account-replaced",
            BadText { .. } => "text",
            ZeroAmount { .. } => "zero-amount",
            RulesNotPublished { .. } => "rules-missing",
            RulesVersion { .. } => "rules-version",
            InvalidRules(_) => "rules-invalid",
            AwardInvalid(_) => "award-invalid",
            AwardRulesVersion { .. } => "award-rules-version",
            AwardPoints { .. } => "award-points",
            RequestIdReused { .. } => "request-id-reused",
            NonceReused { .. } => "nonce-reused",
            InsufficientPoints { .. } => "insufficient-points",
            InsufficientMinutes { .. } => "insufficient-minutes",
            InsufficientHoldings { .. } => "insufficient-holdings",
            ServedHoursTooFew { .. } => "served-hours",
            PointsExceedPrice { .. } => "exchange-rate",
            SettleFen { .. } => "exchange-rate",
            WrongGenesis { .. } => "genesis",
            PaymentExpired { .. } => "expired",
            ExposureLimitMissing { .. } => "exposure-limit-missing",
            ExposureLimitUnexpected => "exposure-limit-unexpected",
            ExposureLimitWrong { .. } => "exposure-limit-wrong",
            ExposureLimitStale { .. } => "exposure-limit-stale",
            ExposureExceeded { .. } => "exposure-exceeded",
            MissingDependency { .. } => "missing-dependency",
            ServedNotResident { .. } => "served-not-resident",
            SourceMismatch { .. } => "source-mismatch",
            AlreadyUsed { .. } => "source-reused",
            SettledTotal { .. } => "settled-total",
            ClearingFigure { .. } => "clearing-figure",
            SelfReference { .. } => "self-reference",
            MinutesOutOfRange { .. } => "minutes-range",
            KeyRotation { .. } => "key-rotation",
            EntryTooLarge { .. } => "entry-size",
            Overflow { .. } => "overflow",
            EvidenceBeforeConflict { .. } => "evidence-before-conflict",
            EvidenceKeyUnknown { .. } => "evidence-key-unknown",
            EvidenceNotCitable { .. } => "evidence-not-citable",
        }
    }

    /// True when the entry may become valid once a cited entry of another ledger arrives.
    pub fn is_missing_dependency(&self) -> bool {
        matches!(self, Rejection::MissingDependency { .. })
    }
}

/// A rejection with where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("community {community} seq {seq} ({kind}): rule {rule}: {rejection}", rule = rejection.rule())]
pub struct RejectedEntry {
    pub community: CommunityId,
    pub seq: u64,
    pub kind: &'static str,
    pub rejection: Rejection,
}
