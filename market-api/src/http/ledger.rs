//! Ledger routes: the operator mints, key holders transfer with a signature,
//! anyone reads an account.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{key_from_hex, ApiJson, ApiPath, IdempotencyKey, Operator};
use super::{ApiError, AppState, ErrorBody};
use crate::api::{AccountView, MintRequest};
use crate::{Account, LedgerEntry, SignedTransfer};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mint))
        .routes(routes!(transfer))
        .routes(routes!(account))
}

#[utoipa::path(post, path = "/ledger/mint", tag = "ledger", security(("api_key" = [])),
    request_body = MintRequest, params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "a key the client draws per request (1 to 255 printable ASCII characters): a retry with the same key and body answers the first outcome and applies nothing; with another body, 422 `idempotency_key_reused`")),
    responses((status = 200, description = "the ledger entry", body = LedgerEntry), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn mint(
    State(state): State<AppState>,
    _: Operator,
    once: IdempotencyKey,
    ApiJson(body): ApiJson<MintRequest>,
) -> Result<Json<LedgerEntry>, ApiError> {
    let to = key_from_hex(&body.to, "to")?;
    let claim = once.claim(b"operator", "mint", "/ledger/mint", &body)?;
    state
        .blocking(move |state| {
            let entry = state.store().mint_once(to, body.amount, claim.as_ref())?;
            state.store().flush()?;
            Ok(entry)
        })
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/ledger/transfer", tag = "ledger",
    request_body = SignedTransfer,
    responses((status = 200, description = "the ledger entry", body = LedgerEntry), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn transfer(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignedTransfer>,
) -> Result<Json<LedgerEntry>, ApiError> {
    state
        .blocking(move |state| {
            let entry = state.store().transfer(&body, &state.marketplace_key())?;
            state.store().flush()?;
            Ok(entry)
        })
        .await
        .map(Json)
}

#[utoipa::path(get, path = "/accounts/{key}", operation_id = "get_account", tag = "ledger",
    params(("key" = String, Path, description = "the account's public key, hex")),
    responses((status = 200, description = "balance and next nonce", body = AccountView), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn account(
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<AccountView>, ApiError> {
    let key = key_from_hex(&key, "account")?;
    state
        .blocking(move |state| {
            Ok(AccountView {
                account: hex::encode(key),
                balance: state.store().balance(Account::Key(key))?,
                nonce: state.store().nonce(&key)?,
            })
        })
        .await
        .map(Json)
}
