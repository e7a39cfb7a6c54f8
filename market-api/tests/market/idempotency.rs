//! Idempotency keys over HTTP: a request retried with its key, also concurrently and
//! after a restart, applies once and answers its first outcome; a key reused for another
//! request is refused; keys are scoped to their caller and operation.

use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use zkcohort_market::api::{CreateApiKey, FundStudy};
use zkcohort_market::api_keys::{draw_api_key, ApiKeyRole};
use zkcohort_market::http::IDEMPOTENCY_KEY_HEADER;
use zkcohort_market::Store;

use crate::common::{
    api_config, api_keys, appended_record, marketplace_key, patient, public_key, records_body,
    researcher_key, setup_keys, store_config, study_body, Api, TestServer, ISSUER, OPERATOR,
    RESEARCHER,
};

/// How many copies of each request race.
const COPIES: usize = 8;

/// `POST path` with `body`, the bearer `token` and the idempotency key `key`.
async fn post_keyed(api: &Api, path: &str, token: &str, key: &str, body: &Value) -> (u16, Value) {
    let response = api
        .client
        .post(format!("{}{path}", api.base))
        .bearer_auth(token)
        .header(IDEMPOTENCY_KEY_HEADER, key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends `COPIES` copies of one keyed request at once: they all answer the same.
async fn race(api: &Api, path: &str, token: &str, key: &str, body: &Value) -> (u16, Value) {
    let copies: Vec<_> = (0..COPIES)
        .map(|_| {
            let (api, path, token) = (api.clone(), path.to_owned(), token.to_owned());
            let (key, body) = (key.to_owned(), body.clone());
            tokio::spawn(async move { post_keyed(&api, &path, &token, &key, &body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for copy in copies {
        answers.push(copy.await.unwrap());
    }
    for answer in &answers {
        assert_eq!(answer, &answers[0], "{path}: copies answered differently");
    }
    answers[0].clone()
}

async fn audit_size(api: &Api) -> u64 {
    api.get("/audit/head").await.1["head"]["size"]
        .as_u64()
        .unwrap()
}

/// The keyed requests of a marketplace's first steps, in order: mint, append a record,
/// post a study, fund it, bind an API key. Each is `(path, token, key, body)`.
fn keyed_requests(study: u64) -> Vec<(String, &'static str, String, Value)> {
    let researcher = public_key(7);
    let order = FundStudy::sign(&researcher_key(), &marketplace_key(), study, 300, 0);
    let (secret, record) = patient();
    let holder = SigningKey::from_bytes(&[9; 32]);
    let grant = CreateApiKey::sign(
        &holder,
        &marketplace_key(),
        ApiKeyRole::Researcher,
        &draw_api_key(),
    );
    vec![
        (
            "/ledger/mint".into(),
            OPERATOR,
            "mint-1".into(),
            json!({"to": hex::encode(researcher), "amount": 1000}),
        ),
        (
            "/registry/records".into(),
            ISSUER,
            "append-1".into(),
            records_body(&[appended_record(&secret, &record)]),
        ),
        (
            "/studies".into(),
            RESEARCHER,
            "post-1".into(),
            study_body(20),
        ),
        (
            format!("/studies/{study}/fund"),
            RESEARCHER,
            "fund-1".into(),
            serde_json::to_value(order).unwrap(),
        ),
        (
            "/admin/api-keys".into(),
            OPERATOR,
            "key-1".into(),
            serde_json::to_value(grant).unwrap(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_request_applies_once_and_answers_its_first_outcome_also_after_a_restart() {
    let keys = setup_keys();
    let folder = tempfile::tempdir().unwrap();
    let open = || Store::open(folder.path().join("db"), store_config()).unwrap();
    let config = || api_config(&keys, api_keys(public_key(7)));
    let researcher = public_key(7);

    let server = TestServer::serve(open(), config()).await;
    // The study posted below is the store's first.
    let requests = keyed_requests(1);
    let mut first = Vec::new();
    for (path, token, key, body) in &requests {
        let before = audit_size(&server).await;
        let answer = race(&server, path, token, key, body).await;
        assert!(answer.0 < 300, "{path}: {answer:?}");
        assert_eq!(
            audit_size(&server).await,
            before + 1,
            "{path}: {COPIES} copies of one keyed request made more than one change"
        );
        first.push(answer);
    }
    assert_eq!(first[2].1["id"], 1, "{:?}", first[2]);
    assert_eq!(server.balance(&researcher).await, 700);
    let (_, studies) = server.get("/studies").await;
    assert_eq!(studies.as_array().unwrap().len(), 1, "{studies}");
    let size = audit_size(&server).await;

    // A retry with the same key but another body is another request: refused, and it
    // changes nothing.
    let (path, token, key, _) = &requests[0];
    let other = json!({"to": hex::encode(researcher), "amount": 2000});
    let reused = post_keyed(&server, path, token, key, &other).await;
    assert_eq!(reused.0, 422, "{reused:?}");
    assert_eq!(reused.1["error"]["code"], "idempotency_key_reused");
    assert_eq!(server.balance(&researcher).await, 700);

    // The outcomes are on disk with their changes: after a restart a retry answers them
    // again and applies nothing.
    server.stop().await;
    let server = TestServer::serve(open(), config()).await;
    for ((path, token, key, body), answer) in requests.iter().zip(&first) {
        assert_eq!(
            &post_keyed(&server, path, token, key, body).await,
            answer,
            "{path}: a retry after a restart"
        );
    }
    assert_eq!(audit_size(&server).await, size);
    assert_eq!(server.balance(&researcher).await, 700);

    // Without a key, the same mint applies again; a key is scoped to its caller and its
    // operation, so the mint's key on a study post is a new request.
    let body = &requests[0].3;
    let (status, _) = server.post("/ledger/mint", Some(OPERATOR), body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.balance(&researcher).await, 1700);
    let (status, study) =
        post_keyed(&server, "/studies", RESEARCHER, "mint-1", &study_body(20)).await;
    assert_eq!((status, &study["id"]), (201, &json!(2)), "{study}");
    server.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_that_is_not_one_is_refused_before_anything_changes() {
    let keys = setup_keys();
    let server = TestServer::start(&keys, public_key(7)).await;
    let body = json!({"to": hex::encode(public_key(7)), "amount": 5});
    for key in [
        String::new(),
        "two words".to_string(),
        "é".to_string(),
        "k".repeat(256),
    ] {
        let response = server
            .client
            .post(format!("{}/ledger/mint", server.base))
            .bearer_auth(OPERATOR)
            .header(
                IDEMPOTENCY_KEY_HEADER,
                reqwest::header::HeaderValue::from_bytes(key.as_bytes()).unwrap(),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key:?}: {answer}");
        assert_eq!(
            answer["error"]["code"], "invalid_idempotency_key",
            "{answer}"
        );
    }
    assert_eq!(server.balance(&public_key(7)).await, 0);
    let longest = "k".repeat(255);
    let answer = post_keyed(&server, "/ledger/mint", OPERATOR, &longest, &body).await;
    assert_eq!(answer.0, 200, "{answer:?}");
    server.stop().await;
}
