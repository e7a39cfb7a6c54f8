//! A blocking HTTP client of the marketplace API, for the CLI's role commands
//! (`zkcohort operator ...`) and the demo.
//!
//! [`MarketClient`] sends JSON with an optional bearer token and turns the
//! API's error shape `{"error": {"code", "message"}}` into
//! [`ClientError::Api`]. Each route is one typed method over the bodies of
//! `zkcohort_market::api`, which the server's handlers use too. Plain HTTP only (no TLS
//! backend is built in); do not call it from inside a tokio runtime (the
//! blocking client runs one of its own).

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zkcohort_market::api::{
    AccountView, AppendRecords, ClosedStudy, CreateApiKey, CreateStudy, CreatedApiKey,
    EnrollRequest, ErrorBody, FundStudy, MarketplaceInfo, MintRequest, NewRelease,
    NoteTransferRequest, RecordToAppend, RevokeLeaf, SuspendIssuer, SuspendedIssuer,
};
use zkcohort_market::http::{NoteTreeState, CHECKSUM_HEADER, IDEMPOTENCY_KEY_HEADER};
use zkcohort_market::releases::{ReleaseAnswer, StudyReleases};
use zkcohort_market::{
    EnrollmentStatus, LedgerEntry, NoteTransfer, RegistryAppend, RootRecord, SignedTransfer, Study,
};
use zkcohort_verifier::StudyBundle;

/// How long one request may take (the server's own limit is 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times a keyed request ([`MarketClient::post_once`]) is sent before its
/// failure is reported.
const KEYED_ATTEMPTS: u32 = 4;
/// The pause before the first retry of a keyed request; it doubles with each one (1, 2,
/// 4 s: a server that reopens its store after a storage error asks for 5).
const FIRST_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How long a file download may take (a reference-shape key is tens of megabytes).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(3600);

/// The environment variable naming a PEM file of CA certificates the client trusts
/// besides the Mozilla roots: the operator's private CA, or a self-signed certificate.
pub const CA_CERT_ENV: &str = "ZKCOHORT_CA_CERT";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The CA certificates of [`CA_CERT_ENV`] could not be read.
    #[error("{CA_CERT_ENV}={path}: {detail}")]
    Certificate {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
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

    /// Whether the request may have been sent without its answer arriving, and a retry
    /// may succeed: the connection broke or timed out after it was made, or the server
    /// answered 408 or 503. A refused connection is not retried: nothing listens there
    /// (a wrong `--server`, a stopped server), and saying so at once helps more.
    fn is_worth_retrying(&self) -> bool {
        match self {
            ClientError::Transport { source, .. } => !source.is_connect(),
            ClientError::Api { status, .. } => matches!(status, 408 | 503),
            _ => false,
        }
    }
}

/// Whether `base` is an `http://` URL of a host other than loopback.
fn is_plain_http_off_loopback(base: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base) else {
        return false;
    };
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    url.scheme() == "http" && !loopback
}

/// A client of one marketplace server, optionally with an API key.
#[derive(Debug, Clone)]
pub struct MarketClient {
    base: String,
    token: Option<String>,
    http: Client,
}

impl MarketClient {
    /// A client of the server at `base` (`https://HOST:PORT`, or `http://` on loopback),
    /// without a key. Over https it trusts the Mozilla roots and the certificates in the
    /// PEM file [`CA_CERT_ENV`] names; plain http to another host than loopback is
    /// warned about, since everything it sends crosses the network in clear.
    ///
    /// # Errors
    ///
    /// [`ClientError::Certificate`] for an unreadable CA file; [`ClientError::Transport`]
    /// if the HTTP client cannot be built.
    pub fn new(base: impl Into<String>) -> Result<Self, ClientError> {
        let base = base.into().trim_end_matches('/').to_owned();
        if is_plain_http_off_loopback(&base) {
            tracing::warn!(
                "{base} is plain http: proofs, transfers and keys cross the network in clear; use https"
            );
        }
        let mut builder = Client::builder().timeout(REQUEST_TIMEOUT);
        if let Some(path) = std::env::var_os(CA_CERT_ENV) {
            let path = path.to_string_lossy().into_owned();
            let certificate = |detail: String| ClientError::Certificate {
                path: path.clone(),
                detail,
            };
            let pem = std::fs::read(&path).map_err(|error| certificate(error.to_string()))?;
            for found in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|error| certificate(error.to_string()))?
            {
                builder = builder.add_root_certificate(found);
            }
        }
        let http = builder.build().map_err(|source| ClientError::Transport {
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

    /// `GET path`, answered with JSON `T`: a raw call, for tests that look at
    /// the JSON itself; commands use the typed methods below.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Method::GET, path, |request| request)
    }

    /// `POST path` with JSON `body`, answered with JSON `T` (raw, as [`Self::get`]).
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

    /// `POST path` with JSON `body` under an idempotency key drawn for it, sent again
    /// with the same key while it gets no answer or a 408 or 503 (at most
    /// 4 times): the server applies it at most once and answers a retry
    /// with the first outcome. For the requests that are not idempotent by themselves.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]: the last attempt's.
    pub fn post_once<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let key = hex::encode(rand::random::<[u8; 16]>());
        let mut pause = FIRST_RETRY_PAUSE;
        let mut attempt = 1;
        loop {
            let answer = self.send(Method::POST, path, |request| {
                request.json(body).header(IDEMPOTENCY_KEY_HEADER, &key)
            });
            match answer {
                Err(error) if attempt < KEYED_ATTEMPTS && error.is_worth_retrying() => {
                    tracing::warn!(
                        "{error}: sending it again in {} s with the same idempotency key \
                         (attempt {} of {KEYED_ATTEMPTS})",
                        pause.as_secs(),
                        attempt + 1
                    );
                    std::thread::sleep(pause);
                    pause *= 2;
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }

    /// `GET /marketplace`: the marketplace key and its circuit.
    ///
    /// # Errors
    ///
    /// See [`ClientError`] (also for every method below).
    pub fn marketplace(&self) -> Result<MarketplaceInfo, ClientError> {
        self.get("/marketplace")
    }

    /// Operator: suspends the issuer acting as `issuer` (hex).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn suspend_issuer(&self, issuer: &str) -> Result<SuspendedIssuer, ClientError> {
        self.post(
            "/admin/issuers/suspend",
            &SuspendIssuer {
                issuer: issuer.to_owned(),
            },
        )
    }

    /// Operator: binds the key an account holder drew to its account, on the holder's
    /// signed `request`; `unauthorized` or `forbidden` without the operator token,
    /// `bad_signature` for a request the account's key did not sign for this marketplace,
    /// `api_key_exists` for a key already bound or revoked.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn create_api_key(&self, request: &CreateApiKey) -> Result<CreatedApiKey, ClientError> {
        self.post_once("/admin/api-keys", request)
    }

    /// Operator: mints `amount` tokens to the account `to` (hex).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn mint(&self, to: &str, amount: u64) -> Result<LedgerEntry, ClientError> {
        let body = MintRequest {
            to: to.to_owned(),
            amount,
        };
        self.post_once("/ledger/mint", &body)
    }

    /// Issuer: appends records; the marketplace computes their leaves.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn append_records(
        &self,
        records: Vec<RecordToAppend>,
    ) -> Result<RegistryAppend, ClientError> {
        self.post_once("/registry/records", &AppendRecords { records })
    }

    /// Issuer: revokes the leaf at `index`; answers the new current root.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn revoke_leaf(&self, index: u64) -> Result<RootRecord, ClientError> {
        self.post("/registry/revoke", &RevokeLeaf { index })
    }

    /// The registry's current root.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn registry_root(&self) -> Result<RootRecord, ClientError> {
        self.get("/registry/root")
    }

    /// Up to `limit` registry leaves (hex) from index `start` on.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn registry_leaves(&self, start: u64, limit: usize) -> Result<Vec<String>, ClientError> {
        self.get(&format!("/registry/leaves?start={start}&limit={limit}"))
    }

    /// Up to `limit` studies from id `start` on.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn studies(&self, start: u64, limit: usize) -> Result<Vec<Study>, ClientError> {
        self.get(&format!("/studies?start={start}&limit={limit}"))
    }

    /// One study.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn study(&self, study: u64) -> Result<Study, ClientError> {
        self.get(&format!("/studies/{study}"))
    }

    /// Researcher: posts a study.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn create_study(&self, body: &CreateStudy) -> Result<Study, ClientError> {
        self.post_once("/studies", body)
    }

    /// Researcher: moves `amount` tokens into the study's escrow.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn fund_study(&self, study: u64, order: &FundStudy) -> Result<LedgerEntry, ClientError> {
        self.post_once(&format!("/studies/{study}/fund"), order)
    }

    /// Researcher: closes a study, refunding its escrow.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn close_study(&self, study: u64) -> Result<ClosedStudy, ClientError> {
        self.post(&format!("/studies/{study}/close"), &serde_json::json!({}))
    }

    /// The study's bundle, for sponsors.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn bundle(&self, study: u64) -> Result<StudyBundle, ClientError> {
        self.get(&format!("/studies/{study}/bundle"))
    }

    /// Researcher: a DP release of the study (charged, or the cached answer).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn release(&self, study: u64, body: &NewRelease) -> Result<ReleaseAnswer, ClientError> {
        self.post(&format!("/studies/{study}/releases"), body)
    }

    /// Researcher: the study's releases and its privacy budget.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn releases(&self, study: u64) -> Result<StudyReleases, ClientError> {
        self.get(&format!("/studies/{study}/releases"))
    }

    /// Patient: enrolls in a study with a proof.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn enroll(
        &self,
        study: u64,
        body: &EnrollRequest,
    ) -> Result<EnrollmentStatus, ClientError> {
        self.post(&format!("/studies/{study}/enroll"), body)
    }

    /// Where this wallet's enrollment (its nullifier, hex) in a study stands.
    ///
    /// # Errors
    ///
    /// See [`ClientError`] (`unknown_enrollment` when the marketplace never took it).
    pub fn enrollment_status(
        &self,
        study: u64,
        nullifier: &str,
    ) -> Result<EnrollmentStatus, ClientError> {
        self.get(&format!("/studies/{study}/enrollments/{nullifier}"))
    }

    /// The note tree's size, current root and spent count.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn note_tree(&self) -> Result<NoteTreeState, ClientError> {
        self.get("/notes")
    }

    /// Up to `limit` note commitments (hex) from index `start` on.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn note_leaves(&self, start: u64, limit: usize) -> Result<Vec<String>, ClientError> {
        self.get(&format!("/notes/leaves?start={start}&limit={limit}"))
    }

    /// Up to `limit` spent note nullifiers (hex) from position `start` on.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn spent_notes(&self, start: u64, limit: usize) -> Result<Vec<String>, ClientError> {
        self.get(&format!("/notes/spent?start={start}&limit={limit}"))
    }

    /// Spends two notes into two, with a withdrawal.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn transfer_notes(&self, body: &NoteTransferRequest) -> Result<NoteTransfer, ClientError> {
        self.post("/notes/transfer", body)
    }

    /// An account's balance and next nonce.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn account(&self, key: &[u8; 32]) -> Result<AccountView, ClientError> {
        self.get(&format!("/accounts/{}", hex::encode(key)))
    }

    /// Patient: a signed transfer between key accounts.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn transfer(&self, transfer: &SignedTransfer) -> Result<LedgerEntry, ClientError> {
        self.post("/ledger/transfer", transfer)
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
        Err(refusal(method, path, status.as_u16(), &body))
    }

    /// `GET path` of a file (a proving key, a transcript), read in chunks with
    /// `progress(bytes so far, Content-Length)` after each; answers the bytes and the
    /// checksum the server sent (`X-Content-SHA256`), which the caller compares.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub fn download(
        &self,
        path: &str,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<Downloaded, ClientError> {
        let url = format!("{}{path}", self.base);
        let transport = |source| ClientError::Transport {
            method: Method::GET,
            url: url.clone(),
            source,
        };
        // A key of a large shape takes longer than one JSON call: a longer limit.
        let mut response = self
            .http
            .get(&url)
            .timeout(DOWNLOAD_TIMEOUT)
            .send()
            .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().map_err(transport)?;
            return Err(refusal(Method::GET, path, status.as_u16(), &body));
        }
        let length = response.content_length();
        let checksum = response
            .headers()
            .get(CHECKSUM_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::with_capacity(length.unwrap_or(0).min(1 << 30) as usize);
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let read = std::io::Read::read(&mut response, &mut buffer).map_err(|error| {
                ClientError::UnexpectedAnswer {
                    method: Method::GET,
                    path: path.to_owned(),
                    status: status.as_u16(),
                    detail: format!("the download broke off: {error}"),
                }
            })?;
            if read == 0 {
                break;
            }
            bytes.extend_from_slice(&buffer[..read]);
            progress(bytes.len() as u64, length);
        }
        Ok(Downloaded { bytes, checksum })
    }
}

/// A file [`MarketClient::download`] fetched.
#[derive(Debug)]
pub struct Downloaded {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The SHA-256 the server announced (hex), if it sent one.
    pub checksum: Option<String>,
}

/// The error of a refused call: the API's error shape, or an unexpected answer.
fn refusal(method: Method, path: &str, status: u16, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => ClientError::Api {
            method,
            path: path.to_owned(),
            status,
            code: error.code,
            message: error.message,
        },
        Err(_) => ClientError::UnexpectedAnswer {
            method,
            path: path.to_owned(),
            status,
            detail: excerpt(body),
        },
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
