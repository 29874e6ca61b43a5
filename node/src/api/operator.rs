//! Operator calls (bearer token): enrol residents, register merchants, publish rules, award
//! points, set exposure limits, record a clearing with another community, rotate the community
//! key, replace a resident's or merchant's lost key, sign a checkpoint, cut off (block) and
//! readmit (unblock) a libp2p peer.

use super::{require_operator, ApiError, ApiJson, ApiPath, AppState};
use crate::sequencer::{Draft, Receipt};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use linli_protocol::body::{Award, Body, Enroll, ExposureLimit, RegisterMerchant};
use linli_protocol::checkpoint::CosignedCheckpoint;
use linli_protocol::rules::RuleTable;
use linli_protocol::{CommunityId, Hash, PublicKey};
use serde::{Deserialize, Serialize};

/// Enrol a resident: their public key and a salted hash of their profile (never a name).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    #[schema(value_type = String)]
    pub resident: PublicKey,
    #[schema(value_type = String)]
    pub profile_hash: Hash,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MerchantRequest {
    #[schema(value_type = String)]
    pub merchant: PublicKey,
    pub name: String,
    pub category: String,
}

/// An award: the node computes the points from the rule table in force; `points`, if given,
/// must equal that figure.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AwardRequest {
    #[schema(value_type = String)]
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExposureLimitRequest {
    #[schema(value_type = String)]
    pub issuer: CommunityId,
    pub limit_fen: u64,
}

async fn submit(state: &AppState, headers: &HeaderMap, draft: Draft) -> Result<Json<Receipt>, ApiError> {
    require_operator(state, headers)?;
    Ok(Json(state.sequencer.submit(draft).await?))
}

#[utoipa::path(post, path = "/v1/operator/residents", request_body = EnrollRequest,
    responses((status = 200, description = "Sequenced (or the original entry, if resubmitted)"), (status = 401, body = ApiError), (status = 409, body = ApiError)))]
pub async fn enroll(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(r): ApiJson<EnrollRequest>,
) -> Result<Json<Receipt>, ApiError> {
    submit(&s, &headers, Draft::Body(Body::Enroll(Enroll { resident: r.resident, profile_hash: r.profile_hash }))).await
}

#[utoipa::path(post, path = "/v1/operator/merchants", request_body = MerchantRequest,
    responses((status = 200, description = "Sequenced"), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
pub async fn register_merchant(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(r): ApiJson<MerchantRequest>,
) -> Result<Json<Receipt>, ApiError> {
    let body = Body::RegisterMerchant(RegisterMerchant { merchant: r.merchant, name: r.name, category: r.category });
    submit(&s, &headers, Draft::Body(body)).await
}

#[utoipa::path(post, path = "/v1/operator/rules", request_body(content = Object, description = "A rule table (see protocol::rules::RuleTable)"),
    responses((status = 200, description = "Published"), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
pub async fn set_rules(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(table): ApiJson<RuleTable>,
) -> Result<Json<Receipt>, ApiError> {
    submit(&s, &headers, Draft::Body(Body::SetRules(table))).await
}

#[utoipa::path(post, path = "/v1/operator/awards", request_body = AwardRequest,
    responses((status = 200, description = "Points awarded as the rule table gives"), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
pub async fn award(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(r): ApiJson<AwardRequest>,
) -> Result<Json<Receipt>, ApiError> {
    let award = Award {
        resident: r.resident,
        activity: r.activity,
        minutes: r.minutes,
        rating: r.rating,
        bonuses: r.bonuses,
        points: 0,
        rules_version: 0,
        request_id: r.request_id,
    };
    submit(&s, &headers, Draft::Award { award, points: r.points }).await
}

#[utoipa::path(post, path = "/v1/operator/exposure-limits", request_body = ExposureLimitRequest,
    responses((status = 200, description = "Published"), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
pub async fn set_exposure_limit(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(r): ApiJson<ExposureLimitRequest>,
) -> Result<Json<Receipt>, ApiError> {
    submit(
        &s,
        &headers,
        Draft::Body(Body::SetExposureLimit(ExposureLimit { issuer: r.issuer, limit_fen: r.limit_fen })),
    )
    .await
}

/// A clearing with another community: the node derives every figure (settled totals on both
/// ledgers, receivable and payable fen) from the ledgers it holds; every peer recomputes them.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearingRequest {
    #[schema(value_type = String)]
    pub counterparty: CommunityId,
}

#[utoipa::path(post, path = "/v1/operator/clearings", request_body = ClearingRequest,
    responses((status = 200, description = "Sequenced clearing entry"), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
pub async fn clearing(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(r): ApiJson<ClearingRequest>,
) -> Result<Json<Receipt>, ApiError> {
    submit(&s, &headers, Draft::Clearing { counterparty: r.counterparty }).await
}

#[utoipa::path(post, path = "/v1/operator/rotate-key",
    responses((status = 200, description = "Rotation sequenced: signed by the old and the new key; the node signs with the new key from now on"), (status = 401, body = ApiError)))]
pub async fn rotate_key(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<Receipt>, ApiError> {
    require_operator(&s, &headers)?;
    crate::rotation::rotate(&s.sequencer, &s.signing_key_file)
        .await
        .map(Json)
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "key-rotation", e.to_string()))
}

/// A resident or merchant lost their key: after the office's identity check, the account moves
/// to `new_key` and `old_key` can no longer act.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceKeyRequest {
    #[schema(value_type = String)]
    pub old_key: PublicKey,
    #[schema(value_type = String)]
    pub new_key: PublicKey,
}

#[utoipa::path(post, path = "/v1/operator/replace-key", request_body = ReplaceKeyRequest,
    responses((status = 200, description = "Account moved to the new key"), (status = 401, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn replace_key(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(r): ApiJson<ReplaceKeyRequest>,
) -> Result<Json<Receipt>, ApiError> {
    let body = Body::ReplaceKey(linli_protocol::body::ReplaceKey { old_key: r.old_key, new_key: r.new_key });
    submit(&s, &headers, Draft::Body(body)).await
}

#[utoipa::path(post, path = "/v1/operator/checkpoints",
    responses((status = 200, description = "A checkpoint of the ledger as it is now, signed by the community"), (status = 401, body = ApiError)))]
pub async fn checkpoint(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<CosignedCheckpoint>, ApiError> {
    require_operator(&s, &headers)?;
    Ok(Json(s.sequencer.checkpoint().await?))
}

/// What a block or unblock call did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PeerControl {
    /// The libp2p peer id (base58, as `/v1/status` shows a node's own `peer_id`).
    pub peer_id: String,
    /// Whether connections with the peer are now refused.
    pub blocked: bool,
}

/// Parse a peer id from the path and find the network; refusals are typed.
fn peer_and_network(
    s: &AppState,
    headers: &HeaderMap,
    raw: &str,
) -> Result<(libp2p::PeerId, crate::network::NetworkHandle), ApiError> {
    require_operator(s, headers)?;
    let peer: libp2p::PeerId = raw
        .parse()
        .map_err(|e| ApiError::bad_request("bad-peer-id", format!("'{raw}' is not a libp2p peer id: {e}")))?;
    let net = s.network.clone().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "no-network",
            format!("community {} runs without networking (no p2p_listen): there is no peer to block", s.community),
        )
    })?;
    if peer == net.peer_id {
        return Err(ApiError::bad_request("own-peer-id", format!("{raw} is this node's own peer id")));
    }
    Ok((peer, net))
}

/// Cut the link with a peer: close every connection with it and refuse new ones (until
/// unblocked or this node restarts). For chaos tests, and to cut off a misbehaving peer.
#[utoipa::path(post, path = "/v1/operator/peers/{peer_id}/block",
    params(("peer_id" = String, Path, description = "libp2p peer id (base58)")),
    responses((status = 200, body = PeerControl, description = "Connections with the peer are closed and refused"), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 409, body = ApiError)))]
pub async fn block_peer(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<PeerControl>, ApiError> {
    set_peer_blocked(&s, &headers, &raw, true).await
}

/// Heal a cut link: connections with the peer are allowed again (the node redials it).
#[utoipa::path(post, path = "/v1/operator/peers/{peer_id}/unblock",
    params(("peer_id" = String, Path, description = "libp2p peer id (base58)")),
    responses((status = 200, body = PeerControl, description = "Connections with the peer are allowed again"), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 409, body = ApiError)))]
pub async fn unblock_peer(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<PeerControl>, ApiError> {
    set_peer_blocked(&s, &headers, &raw, false).await
}

/// Block or unblock the peer named in the path (what both calls do, but for the direction).
async fn set_peer_blocked(
    s: &AppState,
    headers: &HeaderMap,
    raw: &str,
    blocked: bool,
) -> Result<Json<PeerControl>, ApiError> {
    let (peer, net) = peer_and_network(s, headers, raw)?;
    let control = if blocked { crate::network::Control::Block(peer) } else { crate::network::Control::Unblock(peer) };
    net.control(control).await;
    tracing::warn!(%peer, blocked, "operator changed a peer's block");
    Ok(Json(PeerControl { peer_id: peer.to_string(), blocked }))
}
