//! Registry routes: issuers append and revoke record leaves; anyone reads
//! roots and leaves. Field elements travel as 64 hex digits both ways.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkcohort_circuits::statement::fr_to_bytes;

use super::extract::{ApiJson, ApiQuery, IdempotencyKey, Issuer};
use super::{ApiError, AppState, ErrorBody, Page};
use zkcohort_cohort::Day;
use zkcohort_verifier::events::AppendedRecord;

use crate::api::{AppendRecords, RevokeLeaf};
use crate::{RegistryAppend, RootRecord};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(append))
        .routes(routes!(leaves))
        .routes(routes!(revoke))
        .routes(routes!(root))
        .routes(routes!(roots))
}

#[utoipa::path(post, path = "/registry/records", operation_id = "append_registry_records", tag = "registry", security(("api_key" = [])),
    request_body = AppendRecords, params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "a key the client draws per request (1 to 255 printable ASCII characters): a retry with the same key and body answers the first outcome and applies nothing; with another body, 422 `idempotency_key_reused`")),
    responses((status = 201, description = "the leaves were appended", body = RegistryAppend), (status = 429, description = "over the issuer's records per minute: `rate_limited`, with Retry-After", body = ErrorBody), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn append(
    State(state): State<AppState>,
    Issuer(issuer): Issuer,
    once: IdempotencyKey,
    ApiJson(body): ApiJson<AppendRecords>,
) -> Result<(StatusCode, Json<RegistryAppend>), ApiError> {
    let claim = once.claim(
        &issuer,
        "append_registry_records",
        "/registry/records",
        &body,
    )?;
    state.take_issuer_allowance(&issuer, body.records.len())?;
    let records = body
        .records
        .iter()
        .map(|record| {
            let commitment = super::extract::field(&record.commitment, "commitment")?;
            Ok(AppendedRecord {
                commitment: fr_to_bytes(&commitment),
                issued_at: record.issued_at,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let today = Day::from_date(chrono::Utc::now().date_naive()).map_err(ApiError::internal)?;
    let appended = state
        .blocking(move |state| {
            let appended =
                state
                    .store()
                    .append_records_once(issuer, &records, today, claim.as_ref())?;
            state.store().flush()?;
            Ok(appended)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(appended)))
}

#[utoipa::path(post, path = "/registry/revoke", operation_id = "revoke_registry_leaf", tag = "registry", security(("api_key" = [])),
    request_body = RevokeLeaf,
    responses((status = 200, description = "the new current root", body = RootRecord), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn revoke(
    State(state): State<AppState>,
    Issuer(issuer): Issuer,
    ApiJson(body): ApiJson<RevokeLeaf>,
) -> Result<Json<RootRecord>, ApiError> {
    let record = state
        .blocking(move |state| {
            let record = state.store().revoke_leaf(issuer, body.index)?;
            state.store().flush()?;
            Ok(record)
        })
        .await?;
    Ok(Json(record))
}

#[utoipa::path(get, path = "/registry/root", operation_id = "registry_root", tag = "registry",
    responses((status = 200, description = "the current root", body = RootRecord), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn root(State(state): State<AppState>) -> Result<Json<RootRecord>, ApiError> {
    let record = state
        .blocking(|state| Ok(state.store().registry_root()?))
        .await?;
    Ok(Json(record))
}

#[utoipa::path(get, path = "/registry/roots", operation_id = "list_registry_roots", tag = "registry", params(Page),
    responses((status = 200, description = "root history", body = Vec<RootRecord>), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn roots(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Vec<RootRecord>>, ApiError> {
    state
        .blocking(move |state| Ok(state.store().root_history(page.start, page.limit())?))
        .await
        .map(Json)
}

#[utoipa::path(get, path = "/registry/leaves", operation_id = "list_registry_leaves", tag = "registry", params(Page),
    responses((status = 200, description = "leaves, hex", body = Vec<String>), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn leaves(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Vec<String>>, ApiError> {
    let leaves = state
        .blocking(move |state| Ok(state.store().registry_leaves(page.start, page.limit())?))
        .await?;
    Ok(Json(leaves.iter().map(hex::encode).collect()))
}
