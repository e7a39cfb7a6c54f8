//! The HTTP API end to end: a real server on 127.0.0.1:0 over a sled store in
//! a temporary folder, a real Groth16 proof on the small circuit shape, shut
//! down through an injected future.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::{rngs::StdRng, SeedableRng};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::identity::{IdentitySecret, StudyScope};
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::slots::RecordSalt;
use zkcohort_circuits::statement::{fr_from_decimal, fr_to_decimal};
use zkcohort_cohort::{import_bundle, Catalog, Day, Query};
use zkcohort_market::http::{serve, ApiConfig, AppState, Limits, Role};
use zkcohort_market::{Store, StoreConfig};
use zkcohort_prover::{CircuitKeys, EligibilityProof, ProofRequest};
use zkcohort_verifier::snarkjs::proof_to_json;

const SHAPE: CircuitShape = CircuitShape::SMALL;
const QUERY: &str = "index date 2021-01-01\nrequire age >= 40\nrequire condition hypertension\nexclude condition ckd";
const OPERATOR: &str = "operator-key";
const RESEARCHER: &str = "researcher-key";
const ISSUER: &str = "issuer-key";
const REWARD: u64 = 10;

/// A running server and what it needs.
struct Server {
    base: String,
    client: Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    _folder: tempfile::TempDir,
}

impl Server {
    async fn start(keys: &CircuitKeys, researcher: [u8; 32]) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let store = Store::open(
            folder.path().join("db"),
            StoreConfig {
                registry_depth: SHAPE.registry_depth,
                root_window: 4,
            },
        )
        .unwrap();
        let api_keys = HashMap::from([
            (RESEARCHER.to_string(), Role::Researcher(researcher)),
            (ISSUER.to_string(), Role::Issuer([9; 32])),
        ]);
        let config = ApiConfig {
            operator_key: OPERATOR.into(),
            api_keys,
            clauses: SHAPE.clauses,
            slot_depth: SHAPE.slot_depth,
            circuit_id: keys.circuit_id().to_string(),
            verifying_key: keys.prepared_verifying_key().clone(),
            audit_key: SigningKey::from_bytes(&[5; 32]),
            limits: Limits::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, AppState::new(store, config), async move {
            let _ = signal.await;
        }));
        Self {
            base,
            client: Client::new(),
            shutdown: Some(shutdown),
            task,
            _folder: folder,
        }
    }

    async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn post_raw(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
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

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn balance(&self, key: &[u8; 32]) -> u64 {
        let (status, account) = self.get(&format!("/accounts/{}", hex::encode(key))).await;
        assert_eq!(status, StatusCode::OK);
        account["balance"].as_u64().unwrap()
    }

    /// The marketplace key, as a wallet learns it: from `GET /marketplace`.
    async fn marketplace_key(&self) -> [u8; 32] {
        let (status, info) = self.get("/marketplace").await;
        assert_eq!(status, StatusCode::OK);
        let mut key = [0u8; 32];
        hex::decode_to_slice(info["marketplace_key"].as_str().unwrap(), &mut key).unwrap();
        key
    }

    /// What must not change when a request is refused.
    async fn snapshot(&self, payout: &[u8; 32]) -> (u64, Value, Value) {
        (
            self.balance(payout).await,
            self.get("/studies/1").await.1,
            self.get("/audit/head").await.1["head"].clone(),
        )
    }

    async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// Ali Harris (56, hypertension, no CKD): a patient the query admits.
fn patient() -> (IdentitySecret, IssuedRecord) {
    let catalog = Catalog::bundled();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/fhir/Ali_Harris_eed1d00b-7665-4da3-88b7-c37cfb2ed245.json");
    let issued_at: Day = "2021-06-01".parse().unwrap();
    let summary = import_bundle(catalog, &std::fs::read_to_string(path).unwrap(), issued_at)
        .unwrap()
        .0;
    let mut rng = StdRng::seed_from_u64(2);
    let secret = IdentitySecret::random_with_rng(&mut rng);
    let record = IssuedRecord {
        summary,
        salt: RecordSalt::random_with_rng(&mut rng),
        issuer_id: 3,
        issued_at,
    };
    (secret, record)
}

fn enroll_body(proof: &EligibilityProof, payout: &[u8; 32]) -> Value {
    json!({
        "proof": serde_json::from_str::<Value>(&proof_to_json(&proof.proof)).unwrap(),
        "registry_root": fr_to_decimal(&proof.statement.registry_root),
        "nullifier": fr_to_decimal(&proof.statement.nullifier.0),
        "payout_account": hex::encode(payout),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enrollment_over_http_with_a_real_proof() {
    let keys = Arc::new(CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(1)).unwrap());
    let researcher = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
    let payout = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
    let server = Server::start(&keys, researcher).await;

    assert_eq!(
        server.get("/health").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );

    // The issuer registers the patient's record.
    let (secret, record) = patient();
    let leaf = record
        .registry_leaf(secret.commitment(), SHAPE.slot_depth)
        .unwrap();
    let (status, body) = server
        .post(
            "/registry/leaves",
            None,
            &json!({"leaves": [fr_to_decimal(&leaf)]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, appended) = server
        .post(
            "/registry/leaves",
            Some(ISSUER),
            &json!({"leaves": [fr_to_decimal(&leaf)]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{appended}");
    let index = appended["first_index"].as_u64().unwrap();
    let mut registry = RegistryTree::new(SHAPE.registry_depth).unwrap();
    assert_eq!(registry.append(leaf).unwrap(), index);
    let (status, root) = server.get("/registry/root").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        fr_from_decimal(root["root_decimal"].as_str().unwrap()).unwrap(),
        registry.root()
    );

    // The researcher posts and funds a study.
    let study = json!({
        "title": "Hypertension, 40 and over",
        "description": "no CKD",
        "query": QUERY,
        "reward": REWARD,
        "max_enrollments": 5,
        "epsilon_budget": 1.0,
    });
    let (status, body) = server.post("/studies", Some(ISSUER), &study).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, created) = server.post("/studies", Some(RESEARCHER), &study).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let study_id = created["id"].as_u64().unwrap();
    assert_eq!(created["circuit_id"], keys.circuit_id().to_string());
    let (status, _) = server
        .post(
            "/ledger/mint",
            Some(OPERATOR),
            &json!({"to": hex::encode(researcher), "amount": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .post(
            &format!("/studies/{study_id}/fund"),
            Some(RESEARCHER),
            &json!({"amount": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.balance(&researcher).await, 70);

    // The patient proves eligibility for this study and this payout account.
    let query = Query::parse(QUERY, Catalog::bundled())
        .unwrap()
        .compile(Catalog::bundled())
        .unwrap();
    let request = ProofRequest {
        secret,
        record,
        registry_path: registry.path(index).unwrap(),
        query,
        study_scope: StudyScope::for_study(&server.marketplace_key().await, study_id),
        payout_account: payout,
    };
    let proof = keys
        .prove_with_rng(&request, &mut StdRng::seed_from_u64(3))
        .unwrap();
    let body = enroll_body(&proof, &payout);
    let enroll_path = format!("/studies/{study_id}/enroll");
    let before = server.snapshot(&payout).await;

    // Malformed bodies: 4xx, never 5xx, nothing changes.
    for raw in [
        &b"{"[..],
        b"[]",
        b"{\"proof\": 1}",
        b"{\"proof\": {}, \"registry_root\": 1, \"nullifier\": \"1\", \"payout_account\": \"00\"}",
        b"\xff\xfe",
    ] {
        let (status, error) = server.post_raw(&enroll_path, raw.to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["error"]["code"], "malformed_json");
    }
    let mut bad = body.clone();
    bad["payout_account"] = json!("zz");
    assert_eq!(
        server.post(&enroll_path, None, &bad).await.0,
        StatusCode::BAD_REQUEST
    );
    let mut bad = body.clone();
    bad["nullifier"] =
        json!("21888242871839275222246405745257275088548364400416034343698204186575808495617");
    let (status, error) = server.post(&enroll_path, None, &bad).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("non_canonical"))
    );

    // Oversized body: 413.
    let (status, error) = server.post_raw(&enroll_path, vec![b' '; 70 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_eq!(error["error"]["code"], "body_too_large");

    // Bad proofs: 422. The proof binds the payout account, so paying another
    // account does not verify; nor does a garbage proof.
    let other = SigningKey::from_bytes(&[11; 32]).verifying_key().to_bytes();
    let (status, error) = server
        .post(&enroll_path, None, &enroll_body(&proof, &other))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["code"], "bad_proof");
    let mut bad = body.clone();
    bad["proof"] = json!({"pi_a": ["1", "2", "1"]});
    let (status, error) = server.post(&enroll_path, None, &bad).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("bad_proof"))
    );
    // An unknown root: 422.
    let mut bad = body.clone();
    bad["registry_root"] = json!("12345");
    let (status, error) = server.post(&enroll_path, None, &bad).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("unknown_root"))
    );
    assert_eq!(server.snapshot(&payout).await, before);

    // 50 concurrent submissions of the same proof: exactly one enrolls.
    let server = Arc::new(server);
    let submissions: Vec<_> = (0..50)
        .map(|_| {
            let server = Arc::clone(&server);
            let (path, body) = (enroll_path.clone(), body.clone());
            tokio::spawn(async move { server.post(&path, None, &body).await })
        })
        .collect();
    let mut statuses = HashMap::new();
    for submission in submissions {
        let (status, answer) = submission.await.unwrap();
        if status == StatusCode::CONFLICT {
            assert_eq!(answer["error"]["code"], "duplicate_nullifier");
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        HashMap::from([(StatusCode::CREATED, 1), (StatusCode::CONFLICT, 49)])
    );
    assert_eq!(server.balance(&payout).await, REWARD);
    let (_, study) = server.get(&format!("/studies/{study_id}")).await;
    assert_eq!(
        (study["enrolled"].as_u64(), study["escrow"].as_u64()),
        (Some(1), Some(30 - REWARD))
    );

    // A later replay: 409, nothing changes.
    let after = server.snapshot(&payout).await;
    let (status, error) = server.post(&enroll_path, None, &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(server.snapshot(&payout).await, after);

    // The audit head is signed; closing refunds the escrow; a closed study refuses.
    let (status, head) = server.get("/audit/head").await;
    assert_eq!(status, StatusCode::OK);
    assert!(head["signature"].is_string(), "{head}");
    let (status, closed) = server
        .post(
            &format!("/studies/{study_id}/close"),
            Some(RESEARCHER),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(server.balance(&researcher).await, 100 - REWARD);
    let (status, error) = server.post(&enroll_path, None, &body).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (StatusCode::CONFLICT, &json!("study_closed"))
    );

    Arc::into_inner(server).unwrap().stop().await;
}

/// In-process checks through `app(..).oneshot(..)`: authentication, paths,
/// queries and fallbacks all answer in the one error shape.
#[tokio::test]
async fn refusals_share_one_error_shape() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    use zkcohort_market::http::app;

    let keys = CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(1)).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let store = Store::open(
        folder.path(),
        StoreConfig {
            registry_depth: SHAPE.registry_depth,
            root_window: 4,
        },
    )
    .unwrap();
    let config = ApiConfig {
        operator_key: OPERATOR.into(),
        api_keys: HashMap::from([(RESEARCHER.to_string(), Role::Researcher([7; 32]))]),
        clauses: SHAPE.clauses,
        slot_depth: SHAPE.slot_depth,
        circuit_id: keys.circuit_id().to_string(),
        verifying_key: keys.prepared_verifying_key().clone(),
        audit_key: SigningKey::from_bytes(&[5; 32]),
        limits: Limits::default(),
    };
    let router = app(AppState::new(store, config));
    let call = |method: &str, uri: &str, key: Option<&str>, body: Value| {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let request = request.body(Body::from(body.to_string())).unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    let mint = json!({"to": hex::encode([1u8; 32]), "amount": 5});
    let study = |query: Value| json!({"title": "t", "query": query, "reward": 1, "max_enrollments": 1, "epsilon_budget": 1.0});
    let cases = [
        (
            call("GET", "/nowhere", None, json!(null)).await,
            (StatusCode::NOT_FOUND, "not_found"),
        ),
        (
            call("POST", "/ledger/mint", None, mint.clone()).await,
            (StatusCode::UNAUTHORIZED, "unauthorized"),
        ),
        (
            call("POST", "/ledger/mint", Some("guess"), mint.clone()).await,
            (StatusCode::UNAUTHORIZED, "unauthorized"),
        ),
        (
            call("POST", "/ledger/mint", Some(RESEARCHER), mint).await,
            (StatusCode::FORBIDDEN, "forbidden"),
        ),
        (
            call("GET", "/studies/abc", None, json!(null)).await,
            (StatusCode::BAD_REQUEST, "bad_path"),
        ),
        (
            call("GET", "/studies/9", None, json!(null)).await,
            (StatusCode::NOT_FOUND, "unknown_study"),
        ),
        (
            call("GET", "/studies?limit=x", None, json!(null)).await,
            (StatusCode::BAD_REQUEST, "bad_query_string"),
        ),
        (
            call("GET", "/accounts/00", None, json!(null)).await,
            (StatusCode::BAD_REQUEST, "bad_key"),
        ),
        (
            call(
                "POST",
                "/studies",
                Some(RESEARCHER),
                study(json!("require nonsense")),
            )
            .await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_query"),
        ),
        (
            call("POST", "/studies", Some(RESEARCHER), study(json!(7))).await,
            (StatusCode::BAD_REQUEST, "malformed_json"),
        ),
    ];
    for (got, (status, code)) in cases {
        assert_eq!((got.0, got.1.as_str()), (status, code));
    }
    // The JSON form of a query is accepted as well as the text form.
    let json_query = json!({"index_date": "2021-01-01", "criteria": [{"require": [{"condition": "hypertension"}]}]});
    let (status, code) = call("POST", "/studies", Some(RESEARCHER), study(json_query)).await;
    assert_eq!((status, code.as_str()), (StatusCode::CREATED, ""));
    let (status, code) = call("POST", "/studies", Some(RESEARCHER), study(json!(QUERY))).await;
    assert_eq!((status, code.as_str()), (StatusCode::CREATED, ""));
}
