//! Helpers shared by the market-api integration tests: a real server on
//! 127.0.0.1:0 over a sled store, HTTP calls to it, the Synthea fixture
//! patients, small-shape proofs and request bodies.

// Every test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Mutex, OnceLock};

use ed25519_dalek::SigningKey;
use rand::{rngs::StdRng, SeedableRng};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::identity::{IdentitySecret, StudyScope};
use zkcohort_circuits::issuers::IssuerSet;
use zkcohort_circuits::note::note_commitment;
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::shape::NoteShape;
use zkcohort_circuits::statement::{fr_to_bytes, fr_to_hex};
use zkcohort_circuits::{CircuitId, Fr};
use zkcohort_cohort::CompiledQuery;
use zkcohort_market::api::FundStudy;
use zkcohort_market::http::{
    serve, ApiConfig, AppState, CircuitDownloads, Limits, ProofBatching, Role,
};
use zkcohort_market::AuditEntry;
use zkcohort_market::{CohortPolicy, Store, StoreConfig};
use zkcohort_prover::{CircuitKeys, EligibilityProof, ProofRequest};
use zkcohort_testkit::{
    ali_harris, compile, fixture_paths, import, Enrollee, TestRegistry, ISSUER as ISSUER_ACCOUNT,
};
use zkcohort_verifier::bundle::StudyBundle;
use zkcohort_verifier::events::AppendedRecord;
use zkcohort_verifier::snarkjs::{proof_to_json, SnarkjsProof};
use zkcohort_verifier::KeySetup;

pub(crate) const SHAPE: CircuitShape = CircuitShape::SMALL;
/// [`zkcohort_testkit::ALI_HARRIS`] is eligible for it.
pub(crate) const QUERY: &str = zkcohort_testkit::HYPERTENSION_QUERY;
pub(crate) const OPERATOR: &str = "operator-key";
pub(crate) const RESEARCHER: &str = "researcher-key";
pub(crate) const ISSUER: &str = "issuer-key";
pub(crate) const REWARD: u64 = 10;
/// The seed of the audit key: the same key across restarts keeps the
/// marketplace key, and so every study scope, unchanged.
pub(crate) const AUDIT_KEY_SEED: [u8; 32] = [5; 32];

/// The note-transfer circuit's keys, set up once per test binary.
pub(crate) fn note_keys() -> &'static CircuitKeys<NoteShape> {
    static KEYS: OnceLock<CircuitKeys<NoteShape>> = OnceLock::new();
    KEYS.get_or_init(|| {
        CircuitKeys::setup_with_rng(NoteShape::STANDARD, &mut StdRng::seed_from_u64(2)).unwrap()
    })
}

/// The small-shape circuit keys, set up once per test binary.
pub(crate) fn keys() -> &'static CircuitKeys {
    static KEYS: OnceLock<CircuitKeys> = OnceLock::new();
    KEYS.get_or_init(setup_keys)
}

/// Fresh small-shape circuit keys (seed 1, as every test uses).
pub(crate) fn setup_keys() -> CircuitKeys {
    CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(1)).unwrap()
}

/// The ed25519 public key of the signing key `[seed; 32]`.
/// Funds study `study` with `amount` from the account of the key with `seed`, straight
/// through the store, on an order signed for [`marketplace_key`].
pub(crate) fn fund_through_store(
    store: &Store,
    seed: u8,
    study: u64,
    amount: u64,
) -> Result<zkcohort_market::LedgerEntry, zkcohort_market::StoreError> {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let account = key.verifying_key().to_bytes();
    let order = FundStudy::sign(
        &key,
        &marketplace_key(),
        study,
        amount,
        store.nonce(&account)?,
    );
    store.fund_escrow(study, account, &order, &marketplace_key())
}

/// The account key of the researcher in every test: [`public_key`]`(7)`.
pub(crate) fn researcher_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

pub(crate) fn public_key(seed: u8) -> [u8; 32] {
    SigningKey::from_bytes(&[seed; 32])
        .verifying_key()
        .to_bytes()
}

/// The marketplace key of a server with the audit key [`AUDIT_KEY_SEED`].
pub(crate) fn marketplace_key() -> [u8; 32] {
    SigningKey::from_bytes(&AUDIT_KEY_SEED)
        .verifying_key()
        .to_bytes()
}

/// A study query that measures: hypertension, by sex, age bands and HbA1c clamped to
/// [4, 14] %.
pub(crate) fn measured_query() -> zkcohort_cohort::Query {
    serde_json::from_value(json!({
        "index_date": "2020-01-01",
        "criteria": [{"require": [{"condition": "hypertension"}]}],
        "measures": [
            "sex",
            {"age_bands": [18, 40, 65]},
            {"lab_sum": {"lab": "hba1c", "field": "latest", "low": 4, "high": 14}}
        ]
    }))
    .expect("the measured query parses")
}

/// A store for the small shape.
pub(crate) fn store_config() -> StoreConfig {
    StoreConfig {
        registry_depth: SHAPE.registry_depth,
        root_window_ms: 60_000,
        cohort: CohortPolicy::immediate(),
        privacy: zkcohort_market::PrivacyCaps::default(),
    }
}

/// The API keys: [`RESEARCHER`] for `researcher`, [`ISSUER`] for issuer `[9; 32]`.
pub(crate) fn api_keys(researcher: [u8; 32]) -> HashMap<String, Role> {
    HashMap::from([
        (RESEARCHER.to_string(), Role::Researcher(researcher)),
        (ISSUER.to_string(), Role::Issuer(ISSUER_ACCOUNT)),
    ])
}

/// A small-shape configuration verifying with `keys`, [`OPERATOR`] as the
/// operator key, the audit key [`AUDIT_KEY_SEED`] and default limits.
pub(crate) fn api_config(keys: &CircuitKeys, api_keys: HashMap<String, Role>) -> ApiConfig {
    api_config_for(
        keys.circuit_id(),
        keys.prepared_verifying_key().clone(),
        api_keys,
    )
}

/// [`api_config`] for a circuit given by its id and verifying key.
pub(crate) fn api_config_for(
    circuit_id: CircuitId,
    verifying_key: zkcohort_verifier::PreparedVerifyingKey<ark_bn254::Bn254>,
    api_keys: HashMap<String, Role>,
) -> ApiConfig {
    ApiConfig {
        operator_key: OPERATOR.into(),
        api_keys,
        shape: SHAPE,
        circuit_id,
        verifying_key,
        setup: KeySetup::Development,
        note_circuit_id: note_keys().circuit_id(),
        note_verifying_key: note_keys().prepared_verifying_key().clone(),
        note_setup: KeySetup::Development,
        downloads: CircuitDownloads::default(),
        audit_key: SigningKey::from_bytes(&AUDIT_KEY_SEED),
        limits: Limits::default(),
        proof_batching: ProofBatching::default(),
    }
}

/// An answer: its status and its body, parsed as JSON when it is JSON.
pub(crate) type Answer = (StatusCode, Option<Value>);

/// HTTP calls to a server at `base`.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) client: Client,
}

impl Api {
    pub(crate) fn new(base: String) -> Self {
        Self {
            base,
            client: Client::new(),
        }
    }

    /// Posts `body` as JSON; the answer's body is `null` when it is not JSON.
    pub(crate) async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let (status, body) = self
            .post_raw(
                path,
                key,
                Some("application/json"),
                body.to_string().into_bytes(),
            )
            .await
            .unwrap();
        (status, body.unwrap_or(Value::Null))
    }

    /// Posts raw bytes; an error only when the connection fails.
    pub(crate) async fn post_raw(
        &self,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).ok()))
    }

    /// Posts raw bytes as `application/json`, without a key; the answer
    /// must be JSON.
    pub(crate) async fn post_bytes(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_with_key(path, None).await
    }

    pub(crate) async fn get_with_key(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    pub(crate) async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// The operator mints `amount` to `to`; fails the test unless it is done.
    pub(crate) async fn mint(&self, to: &[u8; 32], amount: u64) {
        let (status, minted) = self
            .post(
                "/ledger/mint",
                Some(OPERATOR),
                &json!({"to": hex::encode(to), "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{minted}");
    }

    /// The researcher ([`researcher_key`]) funds study `study_id` with `amount` on a
    /// signed order; fails the test unless it is done.
    pub(crate) async fn fund(&self, study_id: u64, amount: u64) {
        let order = self
            .funding_order(&researcher_key(), study_id, amount)
            .await;
        let (status, funded) = self
            .post(
                &format!("/studies/{study_id}/fund"),
                Some(RESEARCHER),
                &order,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{funded}");
    }

    /// An order signed by `key` moving `amount` into study `study_id`'s escrow, at the
    /// account's next nonce.
    pub(crate) async fn funding_order(
        &self,
        key: &SigningKey,
        study_id: u64,
        amount: u64,
    ) -> Value {
        let account = key.verifying_key().to_bytes();
        let (status, view) = self
            .get(&format!("/accounts/{}", hex::encode(account)))
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        let nonce = view["nonce"].as_u64().unwrap();
        let marketplace_key = self.marketplace_key().await;
        serde_json::to_value(FundStudy::sign(
            key,
            &marketplace_key,
            study_id,
            amount,
            nonce,
        ))
        .unwrap()
    }

    pub(crate) async fn balance(&self, key: &[u8; 32]) -> u64 {
        let (status, account) = self.get(&format!("/accounts/{}", hex::encode(key))).await;
        assert_eq!(status, StatusCode::OK, "{account}");
        account["balance"].as_u64().unwrap()
    }

    /// The marketplace key, as a wallet learns it: from `GET /marketplace`.
    pub(crate) async fn marketplace_key(&self) -> [u8; 32] {
        let (status, info) = self.get("/marketplace").await;
        assert_eq!(status, StatusCode::OK);
        let mut key = [0u8; 32];
        hex::decode_to_slice(info["marketplace_key"].as_str().unwrap(), &mut key).unwrap();
        key
    }

    /// Every note commitment in the note tree, in order.
    pub(crate) async fn note_leaves(&self) -> Vec<String> {
        let mut leaves = Vec::new();
        loop {
            let path = format!("/notes/leaves?start={}&limit=1000", leaves.len());
            let (status, page) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let page: Vec<String> = serde_json::from_value(page).unwrap();
            if page.is_empty() {
                return leaves;
            }
            leaves.extend(page);
        }
    }

    /// What the note tree pays `receiver`: [`REWARD`] for each reward note to it.
    pub(crate) async fn paid_to(&self, receiver: &Fr) -> u64 {
        let note = hex::encode(fr_to_bytes(&note_commitment(REWARD, *receiver)));
        let notes = self.note_leaves().await;
        REWARD * notes.iter().filter(|leaf| **leaf == note).count() as u64
    }

    /// What must not change when a request about study 1 is refused.
    pub(crate) async fn snapshot(&self, receiver: &Fr) -> (u64, Value, Value) {
        (
            self.paid_to(receiver).await,
            self.get("/studies/1").await.1,
            self.get("/audit/head").await.1["head"].clone(),
        )
    }

    /// The study's bundle, parsed, and its text.
    pub(crate) async fn bundle(&self, study_id: u64) -> (StudyBundle, String) {
        let (status, text) = self.get_text(&format!("/studies/{study_id}/bundle")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        (StudyBundle::from_json(&text).unwrap(), text)
    }
}

/// A running in-process server.
pub(crate) struct TestServer {
    pub(crate) api: Api,
    /// The server's state, kept to check the store itself; dropped on stop
    /// so the folder can be opened again.
    pub(crate) state: AppState,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    /// The temporary folder of the store, when the server owns it.
    pub(crate) _folder: Option<tempfile::TempDir>,
}

impl Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestServer {
    /// Serves a fresh small-shape store in a temporary folder, verifying with
    /// `keys`, with [`api_keys`]`(researcher)`.
    pub(crate) async fn start(keys: &CircuitKeys, researcher: [u8; 32]) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let store = Store::open(folder.path().join("db"), store_config()).unwrap();
        let mut server = Self::serve(store, api_config(keys, api_keys(researcher))).await;
        server._folder = Some(folder);
        server
    }

    /// Serves `store` with `config`.
    pub(crate) async fn serve(store: Store, config: ApiConfig) -> Self {
        Self::serve_state(AppState::new(store, config)).await
    }

    /// Serves `state`.
    pub(crate) async fn serve_state(state: AppState) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = signal.await;
        }));
        Self {
            api: Api::new(base),
            state,
            shutdown,
            task,
            _folder: None,
        }
    }

    /// The server's address, `127.0.0.1:port`.
    pub(crate) fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub(crate) fn store(&self) -> &Store {
        self.state.store()
    }

    /// Stops serving, lets requests in flight finish and closes the store.
    pub(crate) async fn stop(self) {
        self.shutdown.send(()).unwrap();
        self.task.await.unwrap().unwrap();
        // The last handle on the store: sled releases the folder.
        drop(self.state);
    }
}

/// [`QUERY`], compiled.
pub(crate) fn compiled_query() -> CompiledQuery {
    compile(QUERY)
}

/// Ali Harris (56, hypertension, no CKD) with an identity and a salt (issuer 3, seed 2).
pub(crate) fn patient() -> (IdentitySecret, IssuedRecord) {
    let enrollee = Enrollee::issue(ali_harris(), ISSUER_ACCOUNT, &mut StdRng::seed_from_u64(2));
    (enrollee.secret, enrollee.record)
}

/// The fixture patients `query` admits, each with an identity and salt (issuer 3,
/// seed 2, in file-name order).
pub(crate) fn eligible_patients(
    query: &CompiledQuery,
    wanted: usize,
) -> Vec<(IdentitySecret, IssuedRecord)> {
    let mut rng = StdRng::seed_from_u64(2);
    let patients: Vec<_> = fixture_paths()
        .iter()
        .map(|path| import(path))
        .filter(|summary| query.evaluate(summary))
        .take(wanted)
        .map(|summary| {
            let enrollee = Enrollee::issue(summary, ISSUER_ACCOUNT, &mut rng);
            (enrollee.secret, enrollee.record)
        })
        .collect();
    assert!(
        patients.len() >= 2,
        "the fixtures hold too few eligible patients"
    );
    patients
}

/// Several identities holding the fixture patient's record, each with its
/// own salt and so its own registry leaf (leaf `i` at index `i`).
pub(crate) struct Cohort {
    pub(crate) members: Vec<(IdentitySecret, IssuedRecord)>,
    /// What the issuer posts for each member.
    pub(crate) records: Vec<AppendedRecord>,
    pub(crate) leaves: Vec<Fr>,
    pub(crate) registry: RegistryTree,
}

impl Cohort {
    /// The body of `POST /registry/records` that appends every member's record.
    pub(crate) fn records_body(&self) -> Value {
        records_body(&self.records)
    }
}

/// What the issuer posts for `record` of `secret`'s identity.
pub(crate) fn appended_record(secret: &IdentitySecret, record: &IssuedRecord) -> AppendedRecord {
    AppendedRecord {
        commitment: fr_to_bytes(
            &record
                .commitment(secret.commitment(), SHAPE.slot_depth)
                .unwrap(),
        ),
        issued_at: record.issued_at,
    }
}

/// The body of `POST /registry/records` for these records.
pub(crate) fn records_body(records: &[AppendedRecord]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|record| {
            json!({
                "commitment": hex::encode(record.commitment),
                "issued_at": record.issued_at,
            })
        })
        .collect();
    json!({ "records": records })
}

/// The issuers a study of these tests accepts: the tests' issuer alone.
pub(crate) fn test_issuers() -> IssuerSet {
    IssuerSet::new(&[ISSUER_ACCOUNT], SHAPE.issuer_depth).unwrap()
}

/// Ali Harris held by `size` identities (issuer 3, seed 2).
pub(crate) fn cohort(size: usize) -> Cohort {
    let summary = ali_harris();
    let mut rng = StdRng::seed_from_u64(2);
    let mut registry = TestRegistry::new(SHAPE);
    let mut members = Vec::new();
    let mut records = Vec::new();
    let mut leaves = Vec::new();
    for _ in 0..size {
        let enrollee = Enrollee::issue(summary.clone(), ISSUER_ACCOUNT, &mut rng);
        let index = registry.register(&enrollee);
        leaves.push(registry.tree.leaf(index).expect("just registered"));
        records.push(appended_record(&enrollee.secret, &enrollee.record));
        members.push((enrollee.secret, enrollee.record));
    }
    Cohort {
        members,
        records,
        leaves,
        registry: registry.tree,
    }
}

/// One proof per member for `study` of the marketplace [`marketplace_key`],
/// paying member `i` into a note to `receiver(i)`, proved in parallel with `keys`.
pub(crate) fn prove_cohort(
    keys: &CircuitKeys,
    cohort: &Cohort,
    study: u64,
    receiver: impl Fn(usize) -> Fr,
) -> Vec<EligibilityProof> {
    let query = compiled_query();
    let scope = StudyScope::for_study(&marketplace_key(), study);
    let requests: Vec<ProofRequest> = cohort
        .members
        .iter()
        .enumerate()
        .map(|(index, (secret, record))| ProofRequest {
            secret: secret.clone(),
            record: record.clone(),
            registry_path: cohort.registry.path(index as u64).unwrap(),
            issuers: test_issuers(),
            query: query.clone(),
            study_scope: scope,
            reward_receiver: receiver(index),
        })
        .collect();
    let proofs = Mutex::new(vec![None; requests.len()]);
    keys.prove_batch_with_seed(requests, 3, |progress, proof| {
        proofs.lock().unwrap()[progress.index] = Some(proof.unwrap());
    });
    proofs
        .into_inner()
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect()
}

/// A study of [`QUERY`] paying [`REWARD`], room for `max_enrollments`.
pub(crate) fn study_body(max_enrollments: u64) -> Value {
    json!({
        "title": "Hypertension, 40 and over",
        "description": "no CKD",
        "query": QUERY,
        "reward": REWARD,
        "max_enrollments": max_enrollments,
        "epsilon_budget": 1.0,
    })
}

/// The body of `POST /studies/{id}/enroll` for `proof`, paying into a note to `receiver`.
pub(crate) fn enroll_body(proof: &EligibilityProof, receiver: &Fr) -> Value {
    json!({
        "proof": serde_json::from_str::<Value>(&proof_to_json(&proof.proof)).unwrap(),
        "registry_root": fr_to_hex(&proof.statement.registry_root),
        "nullifier": fr_to_hex(&proof.statement.nullifier.0),
        "reward_receiver": fr_to_hex(receiver),
        "measure_opening": proof.measure_opening,
    })
}

/// The note paid to `receiver` by the study store's reward [`REWARD`], as stored (hex).
pub(crate) fn reward_note_hex(receiver: &Fr) -> String {
    hex::encode(fr_to_bytes(&note_commitment(REWARD, *receiver)))
}

/// `entry` with the payload value at JSON `pointer` (`/ledger/amount`)
/// replaced, its hash left as it was: a tampered entry.
pub(crate) fn with_payload(entry: &AuditEntry, pointer: &str, value: Value) -> AuditEntry {
    let mut json = serde_json::to_value(entry).unwrap();
    *json["payload"].pointer_mut(pointer).unwrap() = value;
    serde_json::from_value(json).unwrap()
}

/// A well-formed proof for store-level tests, which record proofs without
/// verifying them (the HTTP layer verifies).
pub(crate) fn unverified_proof() -> SnarkjsProof {
    SnarkjsProof::from_proof(&zkcohort_verifier::Proof::default())
}
