//! Operator routes: API keys created and revoked at run time; issuers suspended.
//!
//! `POST /admin/api-keys` binds a key the account holder drew to its account, on the
//! holder's signed request (its proof of possession); the operator forwards the request
//! and never sees the key (see [`crate::api_keys`]). The account must be an ed25519
//! public key: researchers' accounts pay escrows and issuers' keys own leaves.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ed25519_dalek::VerifyingKey;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::key_from_hex;
use super::extract::ApiJson;
use super::extract::{IdempotencyKey, Operator};
use super::{ApiError, AppState, ErrorBody};
use crate::api::{
    CreateApiKey, CreatedApiKey, RevokeApiKey, RevokedApiKey, SuspendIssuer, SuspendedIssuer,
};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(revoke))
        .routes(routes!(suspend_issuer))
}

#[utoipa::path(post, path = "/admin/issuers/suspend", operation_id = "suspend_issuer", tag = "admin", security(("api_key" = [])),
    request_body = SuspendIssuer,
    responses((status = 200, description = "the issuer is suspended: its leaves are revoked in one new root, its appends are refused, later studies do not accept it", body = SuspendedIssuer), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn suspend_issuer(
    State(state): State<AppState>,
    _: Operator,
    ApiJson(body): ApiJson<SuspendIssuer>,
) -> Result<Json<SuspendedIssuer>, ApiError> {
    let issuer = key_from_hex(&body.issuer, "issuer")?;
    let newly_suspended = state
        .blocking(move |state| {
            let changed = state.store().suspend_issuer(issuer)?;
            state.store().flush()?;
            Ok(changed)
        })
        .await?;
    Ok(Json(SuspendedIssuer {
        issuer: hex::encode(issuer),
        newly_suspended,
    }))
}

#[utoipa::path(post, path = "/admin/api-keys", operation_id = "create_api_key", tag = "admin", security(("api_key" = [])),
    request_body = CreateApiKey, params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "a key the client draws per request (1 to 255 printable ASCII characters): a retry with the same key and body answers the first outcome and applies nothing; with another body, 422 `idempotency_key_reused`")),
    responses((status = 201, description = "the key the holder drew is bound to its account", body = CreatedApiKey), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    _: Operator,
    once: IdempotencyKey,
    ApiJson(request): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let claim = once.claim(b"operator", "create_api_key", "/admin/api-keys", &request)?;
    VerifyingKey::from_bytes(&request.account)
        .map_err(|_| ApiError::unprocessable("bad_key", "account: not an ed25519 public key"))?;
    let marketplace_key = state.marketplace_key();
    let grant = state
        .blocking(move |state| {
            let grant =
                state
                    .store()
                    .create_api_key_once(&request, &marketplace_key, claim.as_ref())?;
            state.store().flush()?;
            Ok(grant)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key_id: hex::encode(request.key_id),
            role: grant.role,
            account: hex::encode(grant.account),
        }),
    ))
}

#[utoipa::path(post, path = "/admin/api-keys/revoke", operation_id = "revoke_api_key", tag = "admin", security(("api_key" = [])),
    request_body = RevokeApiKey,
    responses((status = 200, description = "what the revoked key granted", body = RevokedApiKey), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn revoke(
    State(state): State<AppState>,
    _: Operator,
    ApiJson(body): ApiJson<RevokeApiKey>,
) -> Result<Json<RevokedApiKey>, ApiError> {
    let key_id = key_from_hex(&body.key_id, "key_id")?;
    let grant = state
        .blocking(move |state| {
            let grant = state.store().revoke_api_key(key_id)?;
            state.store().flush()?;
            Ok(grant)
        })
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_api_key",
                "no API key has this id (created at run time; keys given at startup cannot be revoked)",
            )
        })?;
    Ok(Json(RevokedApiKey {
        key_id: hex::encode(key_id),
        role: grant.role,
        account: hex::encode(grant.account),
    }))
}
