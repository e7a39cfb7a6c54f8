//! Extractors whose rejections are [`ApiError`]s, so malformed JSON, paths and
//! query strings answer in the API's one error shape.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;
use zkcohort_circuits::statement::fr_from_hex;
use zkcohort_circuits::Fr;

use super::{ApiError, AppState, IDEMPOTENCY_KEY_HEADER};
use crate::idempotency::IdempotencyClaim;
use crate::{Bytes32, StoreError};

/// A canonical field element from 64 hex digits, or a 422 naming the field.
pub(super) fn field(text: &str, what: &str) -> Result<Fr, ApiError> {
    fr_from_hex(text).map_err(|_| {
        ApiError::unprocessable(
            "non_canonical",
            format!("{what}: expected a canonical field element, 64 hex digits (big-endian)"),
        )
    })
}

/// A 32-byte key from hex.
pub(super) fn key_from_hex(text: &str, what: &str) -> Result<[u8; 32], ApiError> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(text, &mut key)
        .map_err(|_| ApiError::bad_request("bad_key", format!("{what}: expected 64 hex digits")))?;
    Ok(key)
}

/// A JSON body (`Content-Type: application/json`).
#[derive(Debug)]
pub(super) struct ApiJson<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// Path parameters.
#[derive(Debug)]
pub(super) struct ApiPath<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Query-string parameters.
#[derive(Debug)]
pub(super) struct ApiQuery<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// The operator's bearer key: 401 without a valid key, 403 for another role's. An
/// extractor, so a request is authenticated before its body is parsed.
#[derive(Debug)]
pub(super) struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state.operator(&parts.headers)?;
        Ok(Self)
    }
}

/// The researcher account of the request's bearer key (as [`Operator`]).
#[derive(Debug)]
pub(super) struct Researcher(pub(super) Bytes32);

impl FromRequestParts<AppState> for Researcher {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state.researcher(&parts.headers).map(Self)
    }
}

/// The issuer account of the request's bearer key (as [`Operator`]).
#[derive(Debug)]
pub(super) struct Issuer(pub(super) Bytes32);

impl FromRequestParts<AppState> for Issuer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state.issuer(&parts.headers).map(Self)
    }
}

/// The request's `Idempotency-Key` header ([`IDEMPOTENCY_KEY_HEADER`]), when it has one.
#[derive(Debug)]
pub(super) struct IdempotencyKey(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.headers.get(IDEMPOTENCY_KEY_HEADER) {
            None => Ok(Self(None)),
            Some(value) => match value.to_str() {
                Ok(key) => Ok(Self(Some(key.to_owned()))),
                Err(_) => Err(StoreError::InvalidIdempotencyKey(
                    "the header is not printable ASCII".into(),
                )
                .into()),
            },
        }
    }
}

impl IdempotencyKey {
    /// The claim of `principal`'s request `body` on `operation` under the key, if the
    /// request carries one. The request is fingerprinted as its path and its body as
    /// parsed, so a retry that re-encodes the same body is the same request.
    ///
    /// # Errors
    ///
    /// 400 `invalid_idempotency_key` for a key that is not one.
    pub(super) fn claim(
        &self,
        principal: &[u8],
        operation: &str,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<Option<IdempotencyClaim>, ApiError> {
        let Some(key) = &self.0 else {
            return Ok(None);
        };
        let mut request = path.as_bytes().to_vec();
        request.push(0);
        serde_json::to_writer(&mut request, body)
            .map_err(|error| ApiError::internal(error.to_string()))?;
        Ok(Some(IdempotencyClaim::new(
            principal, operation, key, &request,
        )?))
    }
}
