//! The HTTP API's JSON request bodies. Resident, merchant and rule-table bodies are the protocol
//! types the handlers take; the operator's and the till's small wrappers are repeated here field
//! for field (the node's copies also derive utoipa schemas, which would pull in the node crate).

use linli_protocol::body::{Payment, Redemption, SettlementRequest, Signed, TimeDraw, TimeService};
use linli_protocol::light::EntryProof;
use linli_protocol::rules::RuleTable;
use linli_protocol::{CommunityId, Hash, PublicKey};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub resident: PublicKey,
    pub profile_hash: Hash,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantRequest {
    pub merchant: PublicKey,
    pub name: String,
    pub category: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwardRequest {
    pub resident: PublicKey,
    pub activity: String,
    pub minutes: u64,
    pub rating: u8,
    #[serde(default)]
    pub bonuses: Vec<String>,
    pub request_id: u64,
    #[serde(default)]
    pub points: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposureLimitRequest {
    pub issuer: CommunityId,
    pub limit_fen: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearingRequest {
    pub counterparty: CommunityId,
}

/// The till's sale: the payer's home community and the signed payment.
#[derive(Debug, Deserialize)]
pub struct SaleRequest {
    pub payer_community: CommunityId,
    pub payment: Signed<Payment>,
}

/// A receipt someone presents to the till.
#[derive(Debug, Deserialize)]
pub struct VerifyRequest {
    pub payment: Signed<Payment>,
    pub proof: EntryProof,
}

/// Parse `bytes` as every request body; what parses is exercised further (signature checks,
/// rule-table validation and award arithmetic). Never panics.
pub fn exercise(bytes: &[u8]) {
    let genesis = Hash([0; 32]);
    if let Ok(p) = serde_json::from_slice::<Signed<Payment>>(bytes) {
        let _ = p.verify(&genesis);
        let _ = p.tx_id();
    }
    if let Ok(r) = serde_json::from_slice::<Signed<Redemption>>(bytes) {
        let _ = r.verify(&genesis);
    }
    if let Ok(s) = serde_json::from_slice::<Signed<SettlementRequest>>(bytes) {
        let _ = s.verify(&genesis);
    }
    if let Ok(t) = serde_json::from_slice::<Signed<TimeService>>(bytes) {
        let _ = t.verify(&genesis);
    }
    if let Ok(t) = serde_json::from_slice::<Signed<TimeDraw>>(bytes) {
        let _ = t.verify(&genesis);
    }
    if let Ok(table) = serde_json::from_slice::<RuleTable>(bytes) {
        if table.validate().is_ok() {
            for activity in &table.activities {
                let bonuses: Vec<String> = activity.bonuses.iter().map(|b| b.id.clone()).collect();
                for (minutes, prior) in [(0, 0), (59, 1), (61, 2), (u64::MAX, u64::MAX)] {
                    let claim = linli_protocol::rules::AwardClaim {
                        activity: &activity.id,
                        minutes,
                        rating: 5,
                        bonuses: &bonuses,
                        prior_awards: prior,
                    };
                    let _ = table.award_points(&claim);
                }
            }
            let _ = table.star_level(u64::MAX);
        }
    }
    let _ = serde_json::from_slice::<EnrollRequest>(bytes);
    let _ = serde_json::from_slice::<MerchantRequest>(bytes);
    let _ = serde_json::from_slice::<AwardRequest>(bytes);
    let _ = serde_json::from_slice::<ExposureLimitRequest>(bytes);
    let _ = serde_json::from_slice::<ClearingRequest>(bytes);
    let _ = serde_json::from_slice::<SaleRequest>(bytes);
    let _ = serde_json::from_slice::<VerifyRequest>(bytes);
}
