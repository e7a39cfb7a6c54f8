//! The marketplace's HTTP/JSON API (axum 0.8) over a [`Store`].
//!
//! [`app`] builds the [`Router`]; [`serve`] runs it on a listener until a
//! shutdown future completes, letting requests in flight finish. Every route
//! answers JSON; every failure has the one shape of [`ApiError`]. Bodies are
//! limited ([`Limits::body_bytes`], 413 past it), requests time out
//! ([`Limits::request_timeout`], 408) and at most
//! [`Limits::concurrency`] requests are served at once.
//!
//! Store calls and proof verification run on tokio's blocking pool
//! (`spawn_blocking`), never on the async workers; enrollment proofs that arrive
//! together are verified as one batch on the [`ProofBatcher`]'s own thread
//! ([`ApiConfig::proof_batching`]). A change that moves
//! tokens, spends a nullifier or appends to the registry is flushed to disk
//! before the 2xx answer.
//!
//! # Authentication
//!
//! API keys travel as `Authorization: Bearer <key>`. The operator key mints
//! tokens; researcher keys post, fund and close studies (each is bound to the
//! researcher's account key); issuer keys append and revoke registry leaves.
//! Keys are given at startup in [`ApiConfig`], or bound at run time by the
//! operator on the account holder's signed request (`POST /admin/api-keys`; the
//! holder draws the key, the store keeps only its SHA-256, see [`crate::api_keys`]). Enrollment and transfers need no key: a proof, or a
//! signature, is the authorization.
//!
//! # Routes
//!
//! | method and path | who | what |
//! |---|---|---|
//! | `GET /health` | anyone | `{"status": "ok"}`; 503 `{"status": "unavailable", "reason"}` once the store failed to write |
//! | `GET /marketplace` | anyone | [`MarketplaceInfo`]: the marketplace key, both circuits, their setups (ceremony and transcript id, or development) |
//! | `GET /circuits/{id}/proving-key` | anyone | the proving key file (`Content-Length`, `X-Content-SHA256`) |
//! | `GET /circuits/{id}/transcript` | anyone | the ceremony transcript, one file ([`circuits`](CircuitDownloads)) |
//! | `POST /registry/records` | issuer | `{"records": [{"commitment": hex field element, "issued_at": day}]}` → [`RegistryAppend`](crate::RegistryAppend); each leaf is computed over the authenticated issuer's id; over [`Limits::issuer_records_per_minute`], 429 `rate_limited` with `Retry-After` |
//! | `POST /registry/revoke` | issuer | `{"index": n}` → the new root ([`RootRecord`](crate::RootRecord)) |
//! | `GET /registry/root` | anyone | the current root ([`RootRecord`](crate::RootRecord)) |
//! | `GET /registry/roots?start&limit` | anyone | root history |
//! | `GET /registry/leaves?start&limit` | anyone | leaves (hex) |
//! | `POST /studies` | researcher | [`CreateStudy`](crate::api::CreateStudy) → [`Study`](crate::Study) (201) |
//! | `POST /studies/{id}/fund` | researcher | `{"amount": n}` → ledger entry |
//! | `POST /studies/{id}/close` | researcher | closed study and refund |
//! | `GET /studies?start&limit`, `GET /studies/{id}` | anyone | studies |
//! | `POST /studies/{id}/enroll` | anyone | [`EnrollRequest`](crate::api::EnrollRequest) → [`EnrollmentStatus`](crate::EnrollmentStatus) (202 pending, 201 settled) |
//! | `GET /studies/{id}/enrollments/{nullifier}` | the nullifier's holder | [`EnrollmentStatus`](crate::EnrollmentStatus) |
//! | `GET /notes` | anyone | [`NoteTreeState`]: the note tree's size, current root and spent count |
//! | `GET /notes/leaves?start&limit`, `GET /notes/roots?start&limit`, `GET /notes/spent?start&limit` | anyone | note commitments (hex), root history, spent note nullifiers (hex) |
//! | `POST /notes/transfer` | anyone | [`NoteTransferRequest`](crate::api::NoteTransferRequest) → [`NoteTransfer`](crate::NoteTransfer) (201): two notes spent, two appended, the withdrawal paid |
//! | `GET /studies/{id}/bundle` | anyone | [`StudyBundle`](zkcohort_verifier::StudyBundle), for `zkcohort-verify` |
//! | `POST /ledger/mint` | operator | `{"to": hex, "amount": n}` → ledger entry |
//! | `POST /ledger/transfer` | anyone | [`SignedTransfer`](crate::SignedTransfer) → ledger entry |
//! | `GET /accounts/{hex}` | anyone | balance and next nonce |
//! | `GET /audit/head` | anyone | [`SignedHead`], signed once every entry it covers is durable |
//! | `GET /audit/consistency?first&second` | anyone | [`ConsistencyProof`]: the log at `first` entries is a prefix of the log at `second` (RFC 9162) |
//! | `POST /studies/{id}/releases` | the study's researcher | [`NewRelease`](crate::releases::NewRelease) → [`StudyRelease`](crate::releases::StudyRelease) (201 new, 200 cached) |
//! | `GET /studies/{id}/releases` | the study's researcher | [`StudyReleases`](crate::releases::StudyReleases): budget and releases |
//! | `POST /admin/api-keys` | operator | the holder's signed [`CreateApiKey`](crate::api::CreateApiKey) → [`CreatedApiKey`](crate::api::CreatedApiKey) (201); the key is the holder's, never sent |
//! | `POST /admin/api-keys/revoke` | operator | [`RevokeApiKey`](crate::api::RevokeApiKey) → [`RevokedApiKey`](crate::api::RevokedApiKey) |
//! | `POST /admin/issuers/suspend` | operator | `{"issuer": hex}`: its leaves are revoked in one new root, its appends are refused (403 `issuer_suspended`), later studies do not accept it |
//! | `GET /openapi.json` | anyone | the OpenAPI 3.1 description of the routes above ([`openapi`]) |
//!
//! # The OpenAPI description
//!
//! Routes are added with utoipa-axum's [`OpenApiRouter`] and `routes!` over
//! handlers annotated with `#[utoipa::path]`, so the router and the
//! description come from one list and cannot drift apart. A module's
//! `routes()` returns an `OpenApiRouter<AppState>` merged in
//! `described_routes`; a plain `Router<AppState>` can still be merged in
//! [`app`] after the split, but its routes are then served undescribed.

mod admin;
mod batch_verify;
mod bundle;
mod circuits;
mod enroll;
mod error;
mod extract;
mod ledger;
mod notes;
mod registry;
mod releases;
mod server;
mod studies;

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ed25519_dalek::SigningKey;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use tokio::net::TcpListener;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkcohort_circuits::shape::CircuitShape;
use zkcohort_circuits::CircuitId;
use zkcohort_verifier::{KeySetup, PreparedVerifyingKey};

use crate::api::MarketplaceInfo;
use crate::api_keys::{api_key_id, ApiKeyRole};
use crate::audit::ConsistencyProof;
use crate::{Bytes32, SignedHead, Store};

/// The header that carries a request's idempotency key
/// ([`crate::idempotency`]): on minting, funding, posting a study, appending records and
/// creating an API key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

pub use batch_verify::{BatchStats, IncomingProof, ProofBatcher, ProofBatching};
pub use circuits::{CircuitDownloads, CircuitFiles, ServedFile, CHECKSUM_HEADER};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use notes::NoteTreeState;
pub use server::{serve_connections, MAX_HEADER_BYTES, MAX_URI_BYTES};

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Posts, funds and closes studies, as this account key.
    Researcher(Bytes32),
    /// Appends and revokes registry leaves, as this issuer key.
    Issuer(Bytes32),
}

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body, in bytes.
    pub body_bytes: usize,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// How many requests are served at once (more wait).
    pub concurrency: usize,
    /// How many records one issuer may append per minute, in one burst or spread out
    /// (refilled evenly): no issuer key floods the registry. Counted in this process.
    pub issuer_records_per_minute: NonZeroU32,
    /// How long a connection may take to send a request's head, from opening or from
    /// its previous answer (so also how long an idle connection stays open), and a TLS
    /// handshake.
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive, whole.
    pub body_read_timeout: Duration,
    /// How many connections may be open at once; more are closed when accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    /// 64 KiB bodies, 30 s per request, 256 requests at once, 10,000 records per
    /// issuer per minute, 10 s for a head (and idle connections), 10 s for a body,
    /// 1,024 connections.
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            concurrency: 256,
            issuer_records_per_minute: NonZeroU32::new(10_000).expect("positive"),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// The server's configuration, fixed at startup.
#[derive(Debug)]
pub struct ApiConfig {
    /// The operator's API key (mints tokens).
    pub operator_key: String,
    /// Researcher and issuer API keys given at startup (the operator adds
    /// more at run time, kept in the store).
    pub api_keys: HashMap<String, Role>,
    /// The circuit's shape: studies are compiled and hashed for its clauses and slot
    /// depth, their issuer sets built to its issuer depth. Its registry depth is the
    /// store's.
    pub shape: CircuitShape,
    /// The circuit id (the hash of its verifying key) stored in each study.
    pub circuit_id: CircuitId,
    /// The verifying key of the circuit, prepared for pairings.
    pub verifying_key: PreparedVerifyingKey<ark_bn254::Bn254>,
    /// The note-transfer circuit's id.
    pub note_circuit_id: CircuitId,
    /// The note-transfer circuit's verifying key, prepared for pairings.
    pub note_verifying_key: PreparedVerifyingKey<ark_bn254::Bn254>,
    /// Where the note-transfer circuit's keys came from.
    pub note_setup: KeySetup,
    /// Where the keys came from: announced in `GET /marketplace`, carried by every
    /// study bundle.
    pub setup: KeySetup,
    /// The circuit's files served to wallets and sponsors.
    pub downloads: CircuitDownloads,
    /// The key that signs audit-log heads.
    pub audit_key: SigningKey,
    /// Request limits.
    pub limits: Limits,
    /// How enrollment proofs that arrive together are verified together.
    pub proof_batching: ProofBatching,
}

/// The state every handler shares: the store and the configuration.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Store,
    config: ApiConfig,
    /// Each issuer's allowance of records, a cell per record.
    issuer_appends: DefaultKeyedRateLimiter<Bytes32>,
    /// Verifies enrollment proofs, in batches of those that arrive together.
    proof_batcher: ProofBatcher,
}

impl AppState {
    /// The state of a server over `store`.
    pub fn new(store: Store, config: ApiConfig) -> Self {
        let issuer_appends =
            RateLimiter::keyed(Quota::per_minute(config.limits.issuer_records_per_minute));
        let proof_batcher = ProofBatcher::new(config.verifying_key.clone(), config.proof_batching);
        Self {
            inner: Arc::new(Shared {
                store,
                config,
                issuer_appends,
                proof_batcher,
            }),
        }
    }

    /// Takes `records` from `issuer`'s allowance, or answers 429 `rate_limited` with
    /// how long to wait (and takes nothing).
    fn take_issuer_allowance(&self, issuer: &Bytes32, records: usize) -> Result<(), ApiError> {
        let per_minute = self.config().limits.issuer_records_per_minute;
        let too_many = || {
            ApiError::unprocessable(
                "too_many_records",
                format!(
                    "an issuer appends at most {per_minute} records per minute; send fewer at once"
                ),
            )
        };
        let Some(cells) = u32::try_from(records).ok().and_then(NonZeroU32::new) else {
            return if records == 0 {
                Ok(())
            } else {
                Err(too_many())
            };
        };
        match self.inner.issuer_appends.check_key_n(issuer, cells) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::rate_limited(
                    format!(
                        "this issuer may append {per_minute} records per minute: retry in {} s",
                        wait.as_secs() + 1
                    ),
                    wait.as_secs() + 1,
                ))
            }
            Err(_) => Err(too_many()),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// The verifier of enrollment proofs (its [`ProofBatcher::stats`] say how many
    /// batches it verified).
    pub fn proof_batcher(&self) -> &ProofBatcher {
        &self.inner.proof_batcher
    }

    /// The marketplace's public key: the key that signs audit heads, and the
    /// marketplace part of every study scope.
    pub fn marketplace_key(&self) -> Bytes32 {
        self.config().audit_key.verifying_key().to_bytes()
    }

    /// Fails with 401 if the request names a bearer key that is neither the operator's
    /// nor a researcher's or issuer's; passes a request without one (its route decides).
    fn bearer_is_known(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match bearer(headers) {
            None => Ok(()),
            Some(key) if api_key_id(key) == api_key_id(&self.config().operator_key) => Ok(()),
            Some(key) => self
                .key_role(key)?
                .map(|_| ())
                .ok_or_else(ApiError::unauthorized),
        }
    }

    /// The role of the request's bearer key.
    fn role(&self, headers: &HeaderMap) -> Result<Role, ApiError> {
        let key = bearer(headers).ok_or_else(ApiError::unauthorized)?;
        self.key_role(key)?.ok_or_else(ApiError::unauthorized)
    }

    /// The role of an API key: the startup keys first, then the keys the
    /// operator created (a point read of sled's cache, cheap enough to run on
    /// the async worker).
    fn key_role(&self, key: &str) -> Result<Option<Role>, ApiError> {
        if let Some(role) = self.config().api_keys.get(key) {
            return Ok(Some(*role));
        }
        Ok(self.store().api_key(key)?.map(|grant| match grant.role {
            ApiKeyRole::Researcher => Role::Researcher(grant.account),
            ApiKeyRole::Issuer => Role::Issuer(grant.account),
        }))
    }

    /// The researcher account of the request's bearer key.
    fn researcher(&self, headers: &HeaderMap) -> Result<Bytes32, ApiError> {
        match self.role(headers)? {
            Role::Researcher(account) => Ok(account),
            Role::Issuer(_) => Err(ApiError::forbidden("this route needs a researcher key")),
        }
    }

    /// The issuer key of the request's bearer key.
    fn issuer(&self, headers: &HeaderMap) -> Result<Bytes32, ApiError> {
        match self.role(headers)? {
            Role::Issuer(issuer) => Ok(issuer),
            Role::Researcher(_) => Err(ApiError::forbidden("this route needs an issuer key")),
        }
    }

    /// Every account that holds an issuer key, configured or created, and is not
    /// suspended, ascending: the issuers a study accepts when it names none.
    fn known_issuers(&self) -> Result<Vec<Bytes32>, ApiError> {
        let mut accounts = self.store().issuer_accounts()?;
        accounts.extend(
            self.config()
                .api_keys
                .values()
                .filter_map(|role| match role {
                    Role::Issuer(account) => Some(*account),
                    Role::Researcher(_) => None,
                }),
        );
        accounts.sort_unstable();
        accounts.dedup();
        let mut active = Vec::with_capacity(accounts.len());
        for account in accounts {
            if !self.store().is_suspended(&account)? {
                active.push(account);
            }
        }
        Ok(active)
    }

    /// Fails unless the request carries the operator key.
    fn operator(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match bearer(headers) {
            // Digests compared, so the time taken says nothing about the token.
            Some(key) if api_key_id(key) == api_key_id(&self.config().operator_key) => Ok(()),
            Some(key) if self.key_role(key)?.is_some() => {
                Err(ApiError::forbidden("this route needs the operator key"))
            }
            _ => Err(ApiError::unauthorized()),
        }
    }

    /// Reads a request's snarkjs proof and checks it with `verify` (a pairing check on
    /// the blocking pool, or in a [`ProofBatcher`]'s batch). Returns it re-serialized from
    /// its parsed points, the form that is stored and audited, so nothing the client added
    /// to its JSON reaches the log or the bundles. A proof of the wrong shape and one that
    /// does not verify are both 422 `bad_proof`, whose message says what it does not
    /// verify for (`this study`).
    async fn verified_proof<V>(
        proof: serde_json::Value,
        verifies_for: &str,
        verify: impl FnOnce(zkcohort_verifier::Proof<ark_bn254::Bn254>) -> V,
    ) -> Result<zkcohort_verifier::snarkjs::SnarkjsProof, ApiError>
    where
        V: Future<Output = Result<bool, ApiError>>,
    {
        let bad_proof = || {
            ApiError::unprocessable(
                "bad_proof",
                format!("the proof does not verify for {verifies_for}"),
            )
        };
        let proof = serde_json::from_value::<zkcohort_verifier::snarkjs::SnarkjsProof>(proof)
            .map_err(|_| bad_proof())?
            .to_proof()
            .map_err(|_| bad_proof())?;
        let canonical = zkcohort_verifier::snarkjs::SnarkjsProof::from_proof(&proof);
        if verify(proof).await? {
            Ok(canonical)
        } else {
            Err(bad_proof())
        }
    }

    /// Runs `work` with the store on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || work(&state))
            .await
            .map_err(ApiError::internal)?
    }
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The most items one listing answers.
const MAX_PAGE: usize = 1000;

/// `start` and `limit` of a listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// The first item (id, index or sequence number) to list.
    #[serde(default)]
    start: u64,
    /// How many items at most (default 100; more than 1000 is refused).
    #[serde(default = "default_limit", deserialize_with = "page_limit")]
    #[param(minimum = 0, maximum = 1000)]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

/// A `limit` of at most [`MAX_PAGE`]: a larger one is refused (400), not silently cut.
fn page_limit<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let limit = usize::deserialize(deserializer)?;
    if limit > MAX_PAGE {
        return Err(serde::de::Error::custom(format!(
            "limit: at most {MAX_PAGE} items per page"
        )));
    }
    Ok(limit)
}

impl Page {
    /// The limit.
    fn limit(&self) -> usize {
        self.limit
    }
}

/// The description's frame: title, the error shape, the bearer scheme.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "zkcohort marketplace API",
        description = "Anonymous, proof-gated enrollment in research studies. Every failure answers `{\"error\": {\"code\", \"message\"}}`."
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerKeys)
)]
struct ApiDoc;

/// Adds the `api_key` security scheme (`Authorization: Bearer`).
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// Every described route, with its description: the one list both the
/// router and `/openapi.json` come from.
fn described_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(marketplace))
        .routes(routes!(audit_head))
        .routes(routes!(audit_consistency))
        .merge(registry::routes())
        .merge(studies::routes())
        .merge(enroll::routes())
        .merge(notes::routes())
        .merge(bundle::routes())
        .merge(circuits::routes())
        .merge(ledger::routes())
        .merge(releases::routes())
        .merge(admin::routes())
}

/// The OpenAPI description of the API, as `GET /openapi.json` answers it: utoipa's
/// document of the routes, made as strict as the server: unsigned integers with their
/// maxima, and every operation's refusals and failures in the error shape.
pub fn openapi() -> serde_json::Value {
    strict_description(described_routes().into_openapi())
}

/// What utoipa cannot say from the types alone, added to the whole document:
/// - unsigned integers are `uint64` or `uint32` with their maximum (utoipa writes
///   `int64` or `int32` with a minimum of 0), since serde refuses anything larger;
/// - every operation describes its refusals (`4XX`) and failures (`5XX`: 500, and 503
///   `storage_unavailable` with `Retry-After`) in the error shape.
fn strict_description(document: OpenApiDoc) -> serde_json::Value {
    let mut description = serde_json::to_value(document).expect("an OpenAPI document serializes");
    unsigned_integers(&mut description);
    let Some(paths) = description["paths"].as_object_mut() else {
        return description;
    };
    let error = serde_json::json!({
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    });
    for operation in paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
    {
        for (range, description) in [
            ("4XX", "refused: the API error shape"),
            (
                "5XX",
                "failed: the API error shape; 503 `storage_unavailable` (with `Retry-After`) \
                 while the store cannot write, and the server reopens it once it can",
            ),
        ] {
            operation.entry(range).or_insert_with(|| {
                let mut response = error.clone();
                response["description"] = description.into();
                response
            });
        }
    }
    description
}

/// Rewrites every `{"type": "integer", "minimum": 0 or more}` schema in `node` as the
/// unsigned integer it is (see [`strict_description`]).
fn unsigned_integers(node: &mut serde_json::Value) {
    match node {
        serde_json::Value::Object(schema) => {
            let integer = match schema.get("type") {
                Some(serde_json::Value::String(kind)) => kind == "integer",
                Some(serde_json::Value::Array(kinds)) => kinds.iter().any(|kind| kind == "integer"),
                _ => false,
            };
            let unsigned = schema
                .get("minimum")
                .and_then(serde_json::Value::as_f64)
                .is_some_and(|minimum| minimum >= 0.0);
            if integer && unsigned {
                let (format, maximum) =
                    match schema.get("format").and_then(|format| format.as_str()) {
                        Some("int32") => ("uint32", u64::from(u32::MAX)),
                        _ => ("uint64", u64::MAX),
                    };
                schema.insert("format".into(), format.into());
                schema.entry("maximum").or_insert(maximum.into());
            }
            schema.values_mut().for_each(unsigned_integers);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unsigned_integers),
        _ => {}
    }
}

/// The API's router.
pub fn app(state: AppState) -> Router {
    let limits = state.config().limits;
    let (router, description) = described_routes().split_for_parts();
    let description = Arc::new(strict_description(description));
    router
        .route(
            "/openapi.json",
            get(move || {
                let description = Arc::clone(&description);
                async move { Json(description.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        // The timeout wraps the concurrency limit: waiting for a slot counts.
        .layer(GlobalConcurrencyLimitLayer::new(limits.concurrency))
        .layer(
            ServiceBuilder::new()
                // A request past its time answers 408 in the API's error shape.
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    ApiError::request_timeout()
                }))
                .layer(TimeoutLayer::new(limits.request_timeout)),
        )
        // Outside the slots: a body is read whole before its request takes one.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            server::read_body_in_time,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_while_faulted,
        ))
        // The request log: a span per request (method, path) and one event per answer
        // (status, milliseconds), at INFO so a default subscriber shows it.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<Body>| {
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                })
                .on_request(())
                .on_response(|response: &Response, latency: Duration, _: &tracing::Span| {
                    tracing::info!(
                        status = response.status().as_u16(),
                        ms = format_args!("{:.1}", latency.as_secs_f64() * 1e3),
                        "answered"
                    );
                }),
        )
        .with_state(state)
}

/// Answers 503 `storage_unavailable` to every request but `GET /health` once the store
/// has failed to write: what it holds in memory may not be on disk, so nothing is read
/// from it or changed in it until it is opened again.
async fn refuse_while_faulted(
    State(state): State<AppState>,
    request: Request<Body>,
    next: Next,
) -> Response {
    match state.store().fault() {
        Some(reason) if request.uri().path() != "/health" => {
            ApiError::storage_unavailable(&reason).into_response()
        }
        _ => next.run(request).await,
    }
}

/// How often a server looks whether its store has failed.
const FAULT_POLL: Duration = Duration::from_millis(100);

/// Completes, with the reason, once the store has failed to write ([`Store::fault`]).
pub async fn store_fault(state: AppState) -> String {
    let mut poll = tokio::time::interval(FAULT_POLL);
    loop {
        poll.tick().await;
        if let Some(reason) = state.store().fault() {
            return reason;
        }
    }
}

/// Serves [`app`] on `listener` until `shutdown` completes or the store fails to write
/// ([`store_fault`]; the caller reads [`Store::fault`] to tell which), then finishes
/// the requests in flight.
///
/// # Errors
///
/// I/O errors of the listener.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let settler = tokio::spawn(settle_batches(state.clone()));
    let fault = store_fault(state.clone());
    let limits = state.config().limits;
    let served = serve_connections(
        listener,
        app(state),
        limits,
        |stream| async move { Ok(stream) },
        async move {
            tokio::select! {
                () = shutdown => {}
                reason = fault => tracing::error!("stopping: the store failed to write ({reason})"),
            }
        },
    )
    .await;
    settler.abort();
    served
}

/// Settles the batches that have waited the policy's batch age ([`Store::settle_due`])
/// and flushes, a few times per batch age (at most once a minute, at least every 100
/// ms), until the task is aborted. Every server runs it beside the API.
pub async fn settle_batches(state: AppState) {
    let policy = state.store().config().cohort;
    let tick = Duration::from_millis((policy.batch_age_ms / 4).clamp(100, 60_000));
    let mut interval = tokio::time::interval(tick);
    loop {
        interval.tick().await;
        let worker = state.clone();
        let settled = tokio::task::spawn_blocking(move || {
            let store = worker.store();
            let settled = store.settle_due();
            // What settled (or was voided) before an error is committed: flush it too.
            if !matches!(settled, Ok(0)) {
                store.flush()?;
            }
            settled
        })
        .await;
        match settled {
            Ok(Ok(0)) => {}
            Ok(Ok(count)) => {
                tracing::info!("settled or voided {count} pending enrollments past their age")
            }
            Ok(Err(error)) => tracing::warn!("settling batches: {error}"),
            Err(error) => tracing::warn!("settling batches: {error}"),
        }
    }
}

#[utoipa::path(get, path = "/health", tag = "marketplace",
    responses((status = 200, description = "`{\"status\": \"ok\"}`"),
        (status = 503, description = "`{\"status\": \"unavailable\", \"reason\": \"...\"}`: the store failed to write; the server reopens it once the disk accepts writes")))]
async fn health(State(state): State<AppState>) -> Response {
    match state.store().fault() {
        None => Json(serde_json::json!({ "status": "ok" })).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "unavailable", "reason": reason })),
        )
            .into_response(),
    }
}

#[utoipa::path(get, path = "/marketplace", tag = "marketplace",
    responses((status = 200, description = "the marketplace key, the circuit and where its keys came from", body = MarketplaceInfo)))]
async fn marketplace(State(state): State<AppState>) -> Json<MarketplaceInfo> {
    let config = state.config();
    let store = state.store().config();
    Json(MarketplaceInfo {
        marketplace_key: hex::encode(state.marketplace_key()),
        circuit_id: config.circuit_id,
        clauses: config.shape.clauses,
        slot_depth: config.shape.slot_depth,
        registry_depth: store.registry_depth,
        issuer_depth: config.shape.issuer_depth,
        measures: config.shape.measures,
        measure_bins: config.shape.measure_bins,
        root_window_ms: store.root_window_ms,
        setup: config.setup,
        note_circuit_id: config.note_circuit_id,
        note_tree_depth: zkcohort_circuits::note::NOTE_TREE_DEPTH,
        note_setup: config.note_setup,
        min_cohort: store.cohort.min_cohort,
        batch_size: store.cohort.batch_size,
        batch_age_ms: store.cohort.batch_age_ms,
        time_unit_ms: store.cohort.time_unit_ms,
    })
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

#[utoipa::path(get, path = "/audit/head", tag = "marketplace",
    responses((status = 200, description = "the audit log's signed head (size, Merkle root, last hash; ed25519 public key and signature, hex)", body = Object), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn audit_head(State(state): State<AppState>) -> Result<Json<SignedHead>, ApiError> {
    state
        .blocking(|state| Ok(state.store().signed_audit_head(&state.config().audit_key)?))
        .await
        .map(Json)
}

/// The two head sizes of a consistency proof.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencySizes {
    /// The older signed head's size.
    first: u64,
    /// The newer signed head's size (at most the log's).
    second: u64,
}

#[utoipa::path(get, path = "/audit/consistency", tag = "marketplace", params(ConsistencySizes),
    responses((status = 200, description = "the RFC 9162 consistency proof that the log at `first` entries is a prefix of the log at `second` (`{\"first\", \"second\", \"path\": [hex]}`)", body = Object), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn audit_consistency(
    State(state): State<AppState>,
    extract::ApiQuery(sizes): extract::ApiQuery<ConsistencySizes>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    state
        .blocking(move |state| Ok(state.store().consistency_proof(sizes.first, sizes.second)?))
        .await
        .map(Json)
}
