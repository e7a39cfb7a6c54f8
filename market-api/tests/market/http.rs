//! The HTTP API end to end: a real server on 127.0.0.1:0 over a sled store in
//! a temporary folder, a real Groth16 proof on the small circuit shape, shut
//! down through an injected future.

use std::collections::HashMap;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::{rngs::StdRng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zkcohort_circuits::identity::StudyScope;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::statement::{fr_from_hex, fr_to_hex};
use zkcohort_circuits::Fr;
use zkcohort_cohort::{Catalog, Query};
use zkcohort_market::http::{AppState, Role};
use zkcohort_market::Store;
use zkcohort_prover::{CircuitKeys, ProofRequest};

use crate::common::{
    api_config, appended_record, enroll_body, patient, records_body, store_config, study_body,
    test_issuers, TestServer as Server, ISSUER, QUERY, RESEARCHER, REWARD, SHAPE,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enrollment_over_http_with_a_real_proof() {
    let keys = Arc::new(CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(1)).unwrap());
    let researcher = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
    let receiver = Fr::from(8u64);
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
    let body = records_body(&[appended_record(&secret, &record)]);
    let (status, refused) = server.post("/registry/records", None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    let (status, appended) = server.post("/registry/records", Some(ISSUER), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{appended}");
    let index = appended["first_index"].as_u64().unwrap();
    let mut registry = RegistryTree::new(SHAPE.registry_depth).unwrap();
    assert_eq!(registry.append(leaf).unwrap(), index);
    let (status, root) = server.get("/registry/root").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        fr_from_hex(root["root"].as_str().unwrap()).unwrap(),
        registry.root()
    );

    // The researcher posts and funds a study.
    let study = study_body(5);
    let (status, body) = server.post("/studies", Some(ISSUER), &study).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, created) = server.post("/studies", Some(RESEARCHER), &study).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let study_id = created["id"].as_u64().unwrap();
    assert_eq!(created["circuit_id"], keys.circuit_id().to_string());
    server.mint(&researcher, 100).await;
    server.fund(study_id, 30).await;
    assert_eq!(server.balance(&researcher).await, 70);

    // The patient proves eligibility for this study, bound to a reward receiver.
    let query = Query::parse(QUERY, Catalog::bundled())
        .unwrap()
        .compile(Catalog::bundled())
        .unwrap();
    let request = ProofRequest {
        secret,
        record,
        registry_path: registry.path(index).unwrap(),
        issuers: test_issuers(),
        query,
        study_scope: StudyScope::for_study(&server.marketplace_key().await, study_id),
        reward_receiver: receiver,
    };
    let proof = keys
        .prove_with_rng(&request, &mut StdRng::seed_from_u64(3))
        .unwrap();
    let body = enroll_body(&proof, &receiver);
    let enroll_path = format!("/studies/{study_id}/enroll");
    let before = server.snapshot(&receiver).await;

    // Malformed bodies: 4xx, never 5xx, nothing changes.
    for raw in [
        &b"{"[..],
        b"[]",
        b"{\"proof\": 1}",
        b"{\"proof\": {}, \"registry_root\": 1, \"nullifier\": \"1\", \"reward_receiver\": \"00\"}",
        b"\xff\xfe",
    ] {
        let (status, error) = server.post_bytes(&enroll_path, raw.to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["error"]["code"], "malformed_json");
    }
    let mut bad = body.clone();
    bad["reward_receiver"] = json!("zz");
    assert_eq!(
        server.post(&enroll_path, None, &bad).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let mut bad = body.clone();
    // The field modulus, the same value in decimal, and a short one: not canonical.
    for nullifier in [
        "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001",
        "21888242871839275222246405745257275088548364400416034343698204186575808495617",
        "abc",
    ] {
        bad["nullifier"] = json!(nullifier);
        let (status, error) = server.post(&enroll_path, None, &bad).await;
        assert_eq!(
            (status, &error["error"]["code"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &json!("non_canonical")),
            "{nullifier}"
        );
    }

    // Oversized body: 413.
    let (status, error) = server.post_bytes(&enroll_path, vec![b' '; 70 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_eq!(error["error"]["code"], "body_too_large");

    // Bad proofs: 422. The proof binds the reward receiver, so paying another
    // note does not verify; nor does a garbage proof.
    let other = Fr::from(11u64);
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
    bad["registry_root"] = json!(fr_to_hex(&Fr::from(12345u64)));
    let (status, error) = server.post(&enroll_path, None, &bad).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("unknown_root"))
    );
    assert_eq!(server.snapshot(&receiver).await, before);

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
    assert_eq!(server.paid_to(&receiver).await, REWARD);
    let (_, study) = server.get(&format!("/studies/{study_id}")).await;
    assert_eq!(
        (study["enrolled"].as_u64(), study["escrow"].as_u64()),
        (Some(1), Some(30 - REWARD))
    );

    // A later replay: 409, nothing changes.
    let after = server.snapshot(&receiver).await;
    let (status, error) = server.post(&enroll_path, None, &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(server.snapshot(&receiver).await, after);

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
    let store = Store::open(folder.path(), store_config()).unwrap();
    let config = api_config(
        &keys,
        HashMap::from([(RESEARCHER.to_string(), Role::Researcher([7; 32]))]),
    );
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
    let accepted = hex::encode([9u8; 32]);
    let study = |query: Value| json!({"title": "t", "query": query, "reward": 1, "max_enrollments": 1, "epsilon_budget": 1.0, "issuers": [accepted]});
    let with_issuers = |issuers: Value| {
        let mut body = study(json!(QUERY));
        body["issuers"] = issuers;
        body
    };
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
            call("GET", "/registry/leaves?limit=1001", None, json!(null)).await,
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
        (
            // This marketplace has no issuer yet, and the study names none.
            call("POST", "/studies", Some(RESEARCHER), {
                let mut body = study(json!(QUERY));
                body.as_object_mut().unwrap().remove("issuers");
                body
            })
            .await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_study"),
        ),
        (
            call(
                "POST",
                "/studies",
                Some(RESEARCHER),
                with_issuers(json!(["zz"])),
            )
            .await,
            (StatusCode::BAD_REQUEST, "bad_key"),
        ),
        (
            call(
                "POST",
                "/studies",
                Some(RESEARCHER),
                with_issuers(json!([])),
            )
            .await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_study"),
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
