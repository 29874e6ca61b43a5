//! The node's HTTP JSON API (axum): operator calls (bearer token), resident- and
//! merchant-signed calls (signature checked, no token), and public read-only calls.
//!
//! Every refusal is a 4xx with a JSON body `{"error": <rule or code>, "message": <what and
//! where>}`; nothing refused is written. The OpenAPI description is served at `/openapi.json`.

pub mod disclosure;
mod operator;
mod page;
mod public;
mod resident;

use crate::metrics::Metrics;
use crate::sequencer::{SequencerHandle, SubmitError};
use crate::store::{Store, StoreError};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use linli_protocol::{CommunityId, Genesis, Hash};
use serde::Serialize;
use std::sync::Arc;
use utoipa::OpenApi;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared, read-only context of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub community: CommunityId,
    pub genesis: Arc<Genesis>,
    pub genesis_hash: Hash,
    pub store: Store,
    pub sequencer: SequencerHandle,
    pub operator_token: Arc<String>,
    /// Where the community key lives (a rotation replaces it).
    pub signing_key_file: Arc<std::path::PathBuf>,
    pub metrics: Metrics,
    /// Figures of the disclosure page folded from the own ledger so far.
    pub disclosure: Arc<disclosure::DisclosureCache>,
    /// Control of the libp2p network (cut and heal links), when networking is configured.
    pub network: Option<crate::network::NetworkHandle>,
}

/// A JSON error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// The rule broken or the error code (`insufficient-points`, `unauthorized`, ...).
    pub error: String,
    /// What was wrong and where.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, error: error.into(), message: message.into() }
    }
    pub fn bad_request(error: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Rejected(r) => {
                let rule = r.rejection.rule();
                let status = match rule {
                    "signature" => StatusCode::UNAUTHORIZED,
                    "nonce-reused" | "request-id-reused" | "account-exists" | "source-reused" => StatusCode::CONFLICT,
                    "missing-dependency" => StatusCode::CONFLICT,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, rule, r.to_string())
            }
            SubmitError::Storage(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", m),
            SubmitError::Closed => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "closed", "the node is shutting down")
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let error = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "content-type",
            _ => "malformed-json",
        };
        ApiError::new(status, error, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request("bad-query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request("bad-path", r.body_text())
    }
}

/// JSON body extractor whose refusals are [`ApiError`]s.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Query extractor whose refusals are [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Path extractor whose refusals are [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Check the operator's bearer token.
pub fn require_operator(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    check_bearer(&state.operator_token, headers)
}

/// Check an `Authorization: Bearer <token>` header against `token` (in constant time).
pub fn check_bearer(token: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "this call needs 'Authorization: Bearer <token>'")
        })?;
    let expected = token.as_bytes();
    let ok = given.len() == expected.len() && given.bytes().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "bearer token is wrong"))
    }
}

/// Run blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Linli community node API",
        description = "Operator, resident-signed and public calls of a Linli community node. Amounts: points (u64), money in fen (1 point = 10 fen), time in minutes."
    ),
    paths(
        operator::enroll,
        operator::register_merchant,
        operator::set_rules,
        operator::award,
        operator::set_exposure_limit,
        operator::clearing,
        operator::rotate_key,
        operator::replace_key,
        operator::checkpoint,
        operator::block_peer,
        operator::unblock_peer,
        resident::redeem,
        resident::pay,
        resident::settle,
        resident::time_credit,
        resident::time_spend,
        public::entries,
        public::entry_by_hash,
        public::account,
        public::checkpoint,
        public::inclusion_proof,
        public::consistency_proof,
        public::status,
        disclosure::disclosure,
    ),
    components(schemas(ApiError, operator::PeerControl))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Prometheus text exposition of the node's metrics (RocksDB sizes read at scrape time).
async fn metrics(axum::extract::State(s): axum::extract::State<AppState>) -> Result<Response, ApiError> {
    let text = blocking(move || {
        s.metrics.refresh_store(&s.store);
        s.metrics.encode().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
    })
    .await?;
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], text).into_response())
}

/// The full router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/page/app.js", get(page::app_js))
        .route("/page/style.css", get(page::style_css))
        .route("/metrics", get(metrics))
        .route("/v1/disclosure", get(disclosure::disclosure))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/operator/residents", post(operator::enroll))
        .route("/v1/operator/merchants", post(operator::register_merchant))
        .route("/v1/operator/rules", post(operator::set_rules))
        .route("/v1/operator/awards", post(operator::award))
        .route("/v1/operator/exposure-limits", post(operator::set_exposure_limit))
        .route("/v1/operator/clearings", post(operator::clearing))
        .route("/v1/operator/rotate-key", post(operator::rotate_key))
        .route("/v1/operator/replace-key", post(operator::replace_key))
        .route("/v1/operator/checkpoints", post(operator::checkpoint))
        .route("/v1/operator/peers/{peer_id}/block", post(operator::block_peer))
        .route("/v1/operator/peers/{peer_id}/unblock", post(operator::unblock_peer))
        .route("/v1/redeem", post(resident::redeem))
        .route("/v1/pay", post(resident::pay))
        .route("/v1/settle", post(resident::settle))
        .route("/v1/time/credit", post(resident::time_credit))
        .route("/v1/time/spend", post(resident::time_spend))
        .route("/v1/ledgers/{community}/entries", get(public::entries))
        .route("/v1/ledgers/{community}/checkpoint", get(public::checkpoint))
        .route("/v1/ledgers/{community}/proofs/inclusion", get(public::inclusion_proof))
        .route("/v1/ledgers/{community}/proofs/consistency", get(public::consistency_proof))
        .route("/v1/entries/{hash}", get(public::entry_by_hash))
        .route("/v1/accounts/{community}/{key}", get(public::account))
        .route("/v1/status", get(public::status))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
