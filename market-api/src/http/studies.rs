//! Study routes: researchers post, fund and close studies; anyone lists them.
//! The server compiles a study's query against the bundled catalog for the
//! configured circuit shape and stores its `query_hash` and circuit id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkcohort_circuits::clause::query_hash;
use zkcohort_circuits::statement::fr_to_bytes;
use zkcohort_cohort::{Catalog, Query};

use super::extract::{ApiJson, ApiPath, ApiQuery, IdempotencyKey, Researcher};
use super::{ApiError, AppState, ErrorBody, Page};
use crate::api::{ClosedStudy, CreateStudy, FundStudy};
use crate::{LedgerEntry, NewStudy, Study};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(one))
        .routes(routes!(fund))
        .routes(routes!(close))
}

/// Parses and compiles a study query; returns it and its `query_hash`.
fn compile(state: &AppState, query: &serde_json::Value) -> Result<(Query, [u8; 32]), ApiError> {
    let catalog = Catalog::bundled();
    let parsed = match query {
        serde_json::Value::String(text) => Query::parse_any(text, catalog),
        serde_json::Value::Object(_) => Query::from_json(&query.to_string(), catalog),
        _ => {
            return Err(ApiError::bad_request(
                "malformed_json",
                "query: expected the text form (a string) or the JSON form (an object)",
            ))
        }
    }
    .map_err(|error| ApiError::unprocessable("invalid_query", error.to_string()))?;
    let compiled = parsed
        .compile(catalog)
        .map_err(|error| ApiError::unprocessable("invalid_query", error.to_string()))?;
    let config = state.config();
    let hash = query_hash(&compiled, &config.shape)
        .map_err(|error| ApiError::unprocessable("invalid_query", error.to_string()))?;
    Ok((parsed, fr_to_bytes(&hash)))
}

#[utoipa::path(post, path = "/studies", operation_id = "create_study", tag = "studies", security(("api_key" = [])),
    request_body = CreateStudy, params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "a key the client draws per request (1 to 255 printable ASCII characters): a retry with the same key and body answers the first outcome and applies nothing; with another body, 422 `idempotency_key_reused`")),
    responses((status = 201, description = "the study", body = Study), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Researcher(researcher): Researcher,
    once: IdempotencyKey,
    ApiJson(body): ApiJson<CreateStudy>,
) -> Result<(StatusCode, Json<Study>), ApiError> {
    let claim = once.claim(&researcher, "create_study", "/studies", &body)?;
    let study = state
        .blocking(move |state| {
            let (query, query_hash) = compile(state, &body.query)?;
            let issuers = match &body.issuers {
                Some(named) => named
                    .iter()
                    .map(|account| super::extract::key_from_hex(account, "issuers"))
                    .collect::<Result<Vec<_>, _>>()?,
                None => {
                    let known = state.known_issuers()?;
                    if known.is_empty() {
                        return Err(crate::StoreError::InvalidStudy(
                            "the marketplace has no issuer yet, and a study accepts the records of at least one".into(),
                        )
                        .into());
                    }
                    known
                }
            };
            for issuer in &issuers {
                if state.store().is_suspended(issuer)? {
                    return Err(crate::StoreError::InvalidStudy(format!(
                        "issuer {} is suspended",
                        hex::encode(issuer)
                    ))
                    .into());
                }
            }
            let new = NewStudy {
                researcher,
                title: body.title,
                description: body.description,
                query,
                query_hash,
                circuit_id: state.config().circuit_id,
                issuers,
                issuer_depth: state.config().shape.issuer_depth,
                reward: body.reward,
                max_enrollments: body.max_enrollments,
                epsilon_budget: body.epsilon_budget,
            };
            let study = state.store().create_study_once(new, claim.as_ref())?;
            state.store().flush()?;
            Ok(study)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(study)))
}

#[utoipa::path(post, path = "/studies/{id}/fund", operation_id = "fund_study", tag = "studies", security(("api_key" = [])),
    params(("id" = u64, Path, description = "the study id"), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "as for posting a study: a retry with the same key and order answers the first entry")), request_body = FundStudy,
    responses((status = 200, description = "the ledger entry", body = LedgerEntry), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn fund(
    State(state): State<AppState>,
    Researcher(researcher): Researcher,
    ApiPath(id): ApiPath<u64>,
    once: IdempotencyKey,
    ApiJson(body): ApiJson<FundStudy>,
) -> Result<Json<LedgerEntry>, ApiError> {
    let claim = once.claim(
        &researcher,
        "fund_study",
        &format!("/studies/{id}/fund"),
        &body,
    )?;
    state
        .blocking(move |state| {
            let entry = state.store().fund_escrow_once(
                id,
                researcher,
                &body,
                &state.marketplace_key(),
                claim.as_ref(),
            )?;
            state.store().flush()?;
            Ok(entry)
        })
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/studies/{id}/close", operation_id = "close_study", tag = "studies", security(("api_key" = [])),
    params(("id" = u64, Path, description = "the study id")),
    responses((status = 200, description = "the closed study and its refund", body = ClosedStudy), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn close(
    State(state): State<AppState>,
    Researcher(researcher): Researcher,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<ClosedStudy>, ApiError> {
    state
        .blocking(move |state| {
            let (study, refund) = state.store().close_study(id, researcher)?;
            state.store().flush()?;
            Ok(ClosedStudy { study, refund })
        })
        .await
        .map(Json)
}

#[utoipa::path(get, path = "/studies", operation_id = "list_studies", tag = "studies", params(Page),
    responses((status = 200, description = "studies by id", body = Vec<Study>), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Vec<Study>>, ApiError> {
    state
        .blocking(move |state| Ok(state.store().studies(page.start, page.limit())?))
        .await
        .map(Json)
}

#[utoipa::path(get, path = "/studies/{id}", operation_id = "get_study", tag = "studies",
    params(("id" = u64, Path, description = "the study id")),
    responses((status = 200, description = "the study", body = Study), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<Study>, ApiError> {
    state
        .blocking(move |state| Ok(state.store().study(id)?))
        .await
        .map(Json)
}
