//! Resident- and merchant-signed calls: no token; the payload's signature (bound to the genesis)
//! is checked before anything else, and again by the state machine.

use super::{ApiError, ApiJson, AppState};
use crate::sequencer::{Draft, Receipt};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use linli_protocol::body::{
    Body, Payment, Redemption, SettlementRequest, Signed, SignedPayload, TimeDraw, TimeService,
};

fn check_signature<T: SignedPayload>(s: &AppState, signed: &Signed<T>) -> Result<(), ApiError> {
    signed.verify(&s.genesis_hash).map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "signature", e.to_string()))
}

async fn submit<T: SignedPayload>(s: &AppState, signed: &Signed<T>, draft: Draft) -> Result<Json<Receipt>, ApiError> {
    check_signature(s, signed)?;
    Ok(Json(s.sequencer.submit(draft).await?))
}

#[utoipa::path(post, path = "/v1/redeem", request_body(content = Object, description = "Signed<Redemption>: {payload: {resident, points, item, nonce}, signature}"),
    responses((status = 200, description = "Redeemed"), (status = 401, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn redeem(
    State(s): State<AppState>,
    ApiJson(r): ApiJson<Signed<Redemption>>,
) -> Result<Json<Receipt>, ApiError> {
    submit(&s, &r, Draft::Body(Body::Redeem(r.clone()))).await
}

#[utoipa::path(post, path = "/v1/pay", request_body(content = Object, description = "Signed<Payment>: {payload: {payer, merchant, merchant_community, points, price_fen, nonce, expiry_ms, genesis}, signature}"),
    responses((status = 200, description = "Payment sequenced by the payer's home community"), (status = 401, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn pay(State(s): State<AppState>, ApiJson(p): ApiJson<Signed<Payment>>) -> Result<Json<Receipt>, ApiError> {
    submit(&s, &p, Draft::Pay(p.clone())).await
}

#[utoipa::path(post, path = "/v1/settle", request_body(content = Object, description = "Signed<SettlementRequest>: {payload: {merchant, issuer, points, fen, nonce}, signature}; fen must be points x 10"),
    responses((status = 200, description = "Settled"), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
pub async fn settle(
    State(s): State<AppState>,
    ApiJson(r): ApiJson<Signed<SettlementRequest>>,
) -> Result<Json<Receipt>, ApiError> {
    submit(&s, &r, Draft::Settle(r.clone())).await
}

#[utoipa::path(post, path = "/v1/time/credit", request_body(content = Object, description = "Signed<TimeService>, signed by the served resident"),
    responses((status = 200, description = "Minutes credited to the provider"), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
pub async fn time_credit(
    State(s): State<AppState>,
    ApiJson(t): ApiJson<Signed<TimeService>>,
) -> Result<Json<Receipt>, ApiError> {
    submit(&s, &t, Draft::Body(Body::TimeCredit(t.clone()))).await
}

#[utoipa::path(post, path = "/v1/time/spend", request_body(content = Object, description = "Signed<TimeDraw>, signed by the resident drawing minutes"),
    responses((status = 200, description = "Minutes debited"), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
pub async fn time_spend(
    State(s): State<AppState>,
    ApiJson(t): ApiJson<Signed<TimeDraw>>,
) -> Result<Json<Receipt>, ApiError> {
    submit(&s, &t, Draft::Body(Body::TimeSpend(t.clone()))).await
}
