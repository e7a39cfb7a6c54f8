//! A blocking HTTP client of the marketplace API, for the CLI's role commands
//! (`zkcohort operator ...`) and the demo.
//!
//! [`MarketClient`] sends JSON with an optional bearer token and turns the
//! API's error shape `{"error": {"code", "message"}}` into
//! [`ClientError::Api`]. Commands add their calls as methods on it, built on
//! [`MarketClient::get`] and [`MarketClient::post`]. Plain HTTP only (no TLS
//! backend is built in); do not call it from inside a tokio runtime (the
//! blocking client runs one of its own).

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zkcohort_market::api_keys::ApiKeyRole;
use zkcohort_market::http::{CreatedApiKey, ErrorBody};
use zkcohort_market::LedgerEntry;

/// How long one request may take (the server's own limit is 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request did not get an answer (connection refused, timeout, ...).
    #[error("{method} {url}: {source}")]
    Transport {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// What went wrong.
        source: reqwest::Error,
    },
    /// The server answered with its error shape.
    #[error("{method} {path}: {message} ({status}, {code})")]
    Api {
        /// The request's method.
        method: Method,
        /// The request's path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The API's error code (`unauthorized`, `duplicate_nullifier`, ...).
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server answered something that is neither the expected JSON nor
    /// the error shape (not a zkcohort server?).
    #[error("{method} {path}: unexpected answer ({status}): {detail}")]
    UnexpectedAnswer {
        /// The request's method.
        method: Method,
        /// The request's path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// Why it could not be read, and the start of the body.
        detail: String,
    },
}

impl ClientError {
    /// The API's error code, for [`ClientError::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A client of one marketplace server, optionally with an API key.
#[derive(Debug, Clone)]
pub struct MarketClient {
    base: String,
    token: Option<String>,
    http: Client,
}

impl MarketClient {
    /// A client of the server at `base` (`http://HOST:PORT`), without a key.
    ///
    /// # Errors
    ///
    /// [`ClientError::Transport`] if the HTTP client cannot be built.
    pub fn new(base: impl Into<String>) -> Result<Self, ClientError> {
        let base = base.into().trim_end_matches('/').to_owned();
        let http = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| ClientError::Transport {
                method: Method::GET,
                url: base.clone(),
                source,
            })?;
        Ok(Self {
            base,
            token: None,
            http,
        })
    }

    /// The same client, sending `token` as `Authorization: Bearer`.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`, answered with JSON `T`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Method::GET, path, |request| request)
    }

    /// `POST path` with JSON `body`, answered with JSON `T`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(Method::POST, path, |request| request.json(body))
    }

    /// Operator: creates an API key for `role` acting as `account` (hex).
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; `unauthorized` or `forbidden` without the
    /// operator token, `bad_key` for an account that is not an ed25519 key.
    pub fn create_api_key(
        &self,
        role: ApiKeyRole,
        account: &str,
    ) -> Result<CreatedApiKey, ClientError> {
        self.post(
            "/admin/api-keys",
            &serde_json::json!({ "role": role, "account": account }),
        )
    }

    /// Operator: mints `amount` tokens to the account `to` (hex).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn mint(&self, to: &str, amount: u64) -> Result<LedgerEntry, ClientError> {
        self.post(
            "/ledger/mint",
            &serde_json::json!({ "to": to, "amount": amount }),
        )
    }

    fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = build(self.http.request(method.clone(), &url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let transport = |source| ClientError::Transport {
            method: method.clone(),
            url: url.clone(),
            source,
        };
        let response = request.send().map_err(transport)?;
        let status = response.status();
        let body = response.bytes().map_err(transport)?;
        let unexpected = |detail: String| ClientError::UnexpectedAnswer {
            method: method.clone(),
            path: path.to_owned(),
            status: status.as_u16(),
            detail,
        };
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|error| unexpected(format!("{error}: {}", excerpt(&body))));
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(ErrorBody { error }) => Err(ClientError::Api {
                method,
                path: path.to_owned(),
                status: status.as_u16(),
                code: error.code,
                message: error.message,
            }),
            Err(_) => Err(unexpected(excerpt(&body))),
        }
    }
}

/// The start of a body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.into_owned(),
    }
}
