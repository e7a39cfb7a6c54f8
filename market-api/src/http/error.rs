//! The one error shape of the API: `{"error": {"code": "...", "message": "..."}}`
//! with a stable machine-readable `code`. Every failure of every route becomes an
//! [`ApiError`] and leaves through its single [`IntoResponse`] impl; 5xx bodies
//! say only "internal error" (the cause is logged on the server, never sent).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::StoreError;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code naming the failure (`duplicate_nullifier`, `bad_proof`, ...).
    pub code: &'static str,
    /// A message for people; empty of detail for 5xx.
    pub message: String,
    /// Seconds to wait before retrying, sent as `Retry-After` (429).
    pub retry_after_s: Option<u64>,
}

/// The JSON body of every error: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code (`unauthorized`, `duplicate_nullifier`, ...).
    pub code: String,
    /// A message for people ("internal error" for every 5xx).
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// A caller over its rate limit (429), told when to retry.
    pub fn rate_limited(message: impl Into<String>, retry_after_s: u64) -> Self {
        Self {
            retry_after_s: Some(retry_after_s),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    /// A malformed request (400).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A well-formed request the server will not carry out (422).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// A missing or unknown API key (401).
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required (Authorization: Bearer)",
        )
    }

    /// An API key without the role this route needs (403).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// A request that took longer than [`Limits::request_timeout`](super::Limits) (408).
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took too long",
        )
    }

    /// The store cannot write (503 `storage_unavailable`, `Retry-After`): a full disk or
    /// an I/O error; the server reopens its store once the disk accepts writes. Whether
    /// a change answered so was applied is unknown: see it again before repeating it.
    pub fn storage_unavailable(reason: &str) -> Self {
        Self {
            retry_after_s: Some(5),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                format!("the store cannot write ({reason}); the server reopens it once the disk accepts writes: retry later"),
            )
        }
    }

    /// A failure of the server; `cause` is logged, not answered.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A 503 says why the service is unavailable (an I/O error's description, never
        // stored data); every other 5xx reveals nothing.
        let message = if self.status.is_server_error() && self.code != "storage_unavailable" {
            "internal error"
        } else {
            self.message.as_str()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: message.to_owned(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        use StatusCode as S;
        let message = error.to_string();
        let (status, code) = match &error {
            StoreError::UnknownStudy(_) => (S::NOT_FOUND, "unknown_study"),
            StoreError::StudyClosed(_) => (S::CONFLICT, "study_closed"),
            StoreError::NotStudyOwner(_) => (S::FORBIDDEN, "not_study_owner"),
            StoreError::InvalidStudy(_) => (S::UNPROCESSABLE_ENTITY, "invalid_study"),
            StoreError::InvalidRecord(_) => (S::UNPROCESSABLE_ENTITY, "invalid_record"),
            StoreError::IssuerSuspended => (S::FORBIDDEN, "issuer_suspended"),
            StoreError::DuplicateNullifier { .. } => (S::CONFLICT, "duplicate_nullifier"),
            StoreError::StudyFull { .. } => (S::CONFLICT, "study_full"),
            StoreError::EscrowExhausted { .. } => (S::CONFLICT, "escrow_exhausted"),
            StoreError::EscrowBelowCohort { .. } => (S::CONFLICT, "escrow_below_cohort"),
            StoreError::InsufficientBalance { .. } => (S::CONFLICT, "insufficient_balance"),
            StoreError::InvalidAmount(_) => (S::UNPROCESSABLE_ENTITY, "invalid_amount"),
            StoreError::Overflow => (S::UNPROCESSABLE_ENTITY, "overflow"),
            StoreError::BadSignature => (S::UNPROCESSABLE_ENTITY, "bad_signature"),
            StoreError::BadNonce { .. } => (S::CONFLICT, "bad_nonce"),
            StoreError::ApiKeyExists => (S::CONFLICT, "api_key_exists"),
            StoreError::InvalidIdempotencyKey(_) => (S::BAD_REQUEST, "invalid_idempotency_key"),
            StoreError::IdempotencyKeyReused => (S::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            StoreError::UnknownRoot => (S::UNPROCESSABLE_ENTITY, "unknown_root"),
            StoreError::UnknownNoteRoot => (S::UNPROCESSABLE_ENTITY, "unknown_note_root"),
            StoreError::NoteSpent { .. } => (S::CONFLICT, "note_spent"),
            StoreError::RootExpired { .. } => (S::UNPROCESSABLE_ENTITY, "root_expired"),
            StoreError::RootBeforeStudy { .. } => (S::UNPROCESSABLE_ENTITY, "root_before_study"),
            StoreError::NotLeafIssuer { .. } => (S::FORBIDDEN, "not_leaf_issuer"),
            StoreError::Registry(_) => (S::UNPROCESSABLE_ENTITY, "registry"),
            StoreError::AuditIndex { .. } => (S::NOT_FOUND, "unknown_audit_entry"),
            StoreError::Storage(cause) => return Self::storage_unavailable(&cause.to_string()),
            StoreError::Faulted(cause) => return Self::storage_unavailable(cause),
            StoreError::Corrupt(_)
            | StoreError::Config(_)
            | StoreError::AuditVerification(_)
            | StoreError::Conservation(_) => return Self::internal(message),
        };
        Self::new(status, code, message)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ if status.is_server_error() => return Self::internal(rejection.body_text()),
            _ => "malformed_json",
        };
        // 422 from axum means well-formed JSON of the wrong shape: still a
        // malformed request for this API.
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        Self::new(status, code, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("bad_path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("bad_query_string", rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn server_errors_reveal_nothing() {
        let (status, body) =
            answer(StoreError::Corrupt("study 7 patient cohort".into()).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "internal", "message": "internal error"}})
        );
        let leaky = ApiError::new(StatusCode::BAD_GATEWAY, "upstream", "patient 42");
        assert_eq!(answer(leaky).await.1["error"]["message"], "internal error");
    }

    #[tokio::test]
    async fn client_errors_name_the_failure() {
        let (status, body) = answer(StoreError::DuplicateNullifier { study: 3 }.into()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "duplicate_nullifier");
        let (status, body) = answer(
            StoreError::EscrowExhausted {
                study: 3,
                escrow: 1,
                reward: 2,
            }
            .into(),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "escrow_exhausted");
    }
}
