//! The till's HTTP JSON API. A sale needs no token (the resident's signature is the
//! authority); listing receipts, settling and reconciling need the till's bearer token.
//! Refusals are `{"error": <code>, "message": <reason a cashier understands>}`.

use super::reconcile::Reconciliation;
use super::store::{SaleReceipt, Settlement};
use super::till::{Refusal, Till};
use crate::api::{check_bearer, ApiError, ApiJson, MAX_BODY_BYTES};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use linli_protocol::body::{Payment, Signed};
use linli_protocol::light::EntryProof;
use linli_protocol::{CommunityId, EntryRef, PublicKey};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(Clone)]
pub struct TillState {
    pub till: Till,
    pub token: Arc<String>,
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let status = match r.code {
            "unconfirmed" => StatusCode::ACCEPTED,
            "unavailable" | "storage" => StatusCode::SERVICE_UNAVAILABLE,
            "already-used" => StatusCode::CONFLICT,
            "bad-signature" => StatusCode::UNAUTHORIZED,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, r.code, r.reason)
    }
}

/// A resident's payment presented at the till, with the resident's home community.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleRequest {
    #[schema(value_type = String)]
    pub payer_community: CommunityId,
    #[schema(value_type = Object)]
    pub payment: Signed<Payment>,
}

/// A receipt presented for checking: the payment and the proof that came with it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    #[schema(value_type = Object)]
    pub payment: Signed<Payment>,
    #[schema(value_type = Object)]
    pub proof: EntryProof,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verified {
    #[schema(value_type = Object)]
    pub at: EntryRef,
    pub checkpoint_size: u64,
    pub witnesses: u64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    #[schema(value_type = String)]
    pub issuer: CommunityId,
    pub points: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TillStatus {
    #[schema(value_type = String)]
    pub home: CommunityId,
    #[schema(value_type = String)]
    pub merchant: PublicKey,
    pub min_witnesses: usize,
    #[schema(value_type = Vec<String>)]
    pub faulty: Vec<CommunityId>,
    pub pending: usize,
    /// Community nodes connected now.
    pub connected: usize,
    /// Communities whose key changed since the genesis, as this till verified it: how many keys
    /// each has had and the checkpoint size the history was proven at.
    pub keys_followed: Vec<KeysFollowed>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeysFollowed {
    #[schema(value_type = String)]
    pub community: CommunityId,
    pub keys: usize,
    #[schema(value_type = String)]
    pub current_key: PublicKey,
    pub proven_at: u64,
}

#[utoipa::path(post, path = "/v1/till/sales", request_body = SaleRequest,
    responses((status = 200, description = "Sale accepted: the verified receipt"),
        (status = 202, body = ApiError, description = "Sequenced, proof still awaited (completes later)"),
        (status = 409, body = ApiError), (status = 422, body = ApiError), (status = 503, body = ApiError)))]
pub async fn sale(State(s): State<TillState>, ApiJson(r): ApiJson<SaleRequest>) -> Result<Json<SaleReceipt>, ApiError> {
    Ok(Json(s.till.sale(r.payer_community, r.payment).await?))
}

#[utoipa::path(post, path = "/v1/till/receipts/verify", request_body = VerifyRequest,
    responses((status = 200, body = Verified), (status = 422, body = ApiError)))]
pub async fn verify(
    State(s): State<TillState>,
    ApiJson(r): ApiJson<VerifyRequest>,
) -> Result<Json<Verified>, ApiError> {
    let till = s.till.clone();
    let v = tokio::task::spawn_blocking(move || till.verify_receipt(&r.payment, &r.proof))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    Ok(Json(Verified { at: v.at, checkpoint_size: v.checkpoint_size, witnesses: v.witnesses as u64 }))
}

#[utoipa::path(get, path = "/v1/till/receipts", responses((status = 200, description = "Every verified receipt"), (status = 401, body = ApiError)))]
pub async fn receipts(State(s): State<TillState>, headers: HeaderMap) -> Result<Json<Vec<SaleReceipt>>, ApiError> {
    check_bearer(&s.token, &headers)?;
    Ok(Json(s.till.store.receipts().map_err(Refusal::from)?))
}

#[utoipa::path(post, path = "/v1/till/settlements", request_body = SettleRequest,
    responses((status = 200, description = "Settlement sequenced by the home community"), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
pub async fn settle(
    State(s): State<TillState>,
    headers: HeaderMap,
    ApiJson(r): ApiJson<SettleRequest>,
) -> Result<Json<Settlement>, ApiError> {
    check_bearer(&s.token, &headers)?;
    Ok(Json(s.till.settle(r.issuer, r.points).await?))
}

#[utoipa::path(get, path = "/v1/till/settlements", responses((status = 200, description = "Every settlement"), (status = 401, body = ApiError)))]
pub async fn settlements(State(s): State<TillState>, headers: HeaderMap) -> Result<Json<Vec<Settlement>>, ApiError> {
    check_bearer(&s.token, &headers)?;
    Ok(Json(s.till.store.settlements().map_err(Refusal::from)?))
}

#[utoipa::path(post, path = "/v1/till/reconcile", responses((status = 200, body = Reconciliation), (status = 401, body = ApiError)))]
pub async fn reconcile(State(s): State<TillState>, headers: HeaderMap) -> Result<Json<Reconciliation>, ApiError> {
    check_bearer(&s.token, &headers)?;
    Ok(Json(s.till.reconcile().await?))
}

#[utoipa::path(get, path = "/v1/till/status", responses((status = 200, body = TillStatus)))]
pub async fn status(State(s): State<TillState>) -> Result<Json<TillStatus>, ApiError> {
    let store = &s.till.store;
    Ok(Json(TillStatus {
        home: s.till.home.clone(),
        merchant: s.till.merchant(),
        min_witnesses: s.till.trust().map_err(Refusal::from)?.min_witnesses(),
        faulty: store.faulty().map_err(Refusal::from)?,
        pending: store.pending().map_err(Refusal::from)?.len(),
        connected: s.till.connected().await,
        keys_followed: store
            .key_histories()
            .map_err(Refusal::from)?
            .into_iter()
            .map(|(community, h)| KeysFollowed {
                community,
                keys: h.keys.len(),
                current_key: h.latest(),
                proven_at: h.proven_at,
            })
            .collect(),
    }))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Linli merchant light node (till)"),
    paths(sale, verify, receipts, settle, settlements, reconcile, status),
    components(schemas(
        ApiError,
        SaleRequest,
        VerifyRequest,
        Verified,
        SettleRequest,
        TillStatus,
        KeysFollowed,
        Reconciliation
    ))
)]
pub struct TillApiDoc;

pub fn router(state: TillState) -> Router {
    Router::new()
        .route("/openapi.json", get(|| async { Json(TillApiDoc::openapi()) }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/till/sales", post(sale))
        .route("/v1/till/receipts", get(receipts))
        .route("/v1/till/receipts/verify", post(verify))
        .route("/v1/till/settlements", get(settlements).post(settle))
        .route("/v1/till/reconcile", post(reconcile))
        .route("/v1/till/status", get(status))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
