//! API keys the operator binds on their holders' signed requests (`/admin/api-keys`)
//! and the error shape of the
//! timeout: the router in process, and a real server for the slow request.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{json, Value};
use tower::ServiceExt;
use zkcohort_market::http::{app, AppState, Limits, Role};
use zkcohort_market::Store;

use zkcohort_market::api::CreateApiKey;
use zkcohort_market::api_keys::{draw_api_key, ApiKeyRole};

use crate::common::{
    api_config, marketplace_key, setup_keys, store_config, TestServer, OPERATOR, RESEARCHER,
};

fn state(folder: &tempfile::TempDir, limits: Limits) -> AppState {
    let keys = setup_keys();
    let store = Store::open(folder.path(), store_config()).unwrap();
    let mut config = api_config(
        &keys,
        HashMap::from([(RESEARCHER.to_string(), Role::Researcher([7; 32]))]),
    );
    config.limits = limits;
    AppState::new(store, config)
}

async fn call(router: &Router, path: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn account(seed: u8) -> String {
    hex::encode(
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes(),
    )
}

/// 32 bytes that are not an ed25519 point.
fn not_a_point() -> String {
    (2u8..)
        .map(|first| {
            let mut bytes = [0u8; 32];
            bytes[0] = first;
            bytes
        })
        .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
        .map(hex::encode)
        .unwrap()
}

#[tokio::test]
async fn only_the_operator_creates_keys_and_bad_requests_change_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let state = state(&folder, Limits::default());
    let router = app(state.clone());
    let researcher = account(1);
    let api_key = draw_api_key();
    let request = CreateApiKey::sign(
        &SigningKey::from_bytes(&[1; 32]),
        &marketplace_key(),
        ApiKeyRole::Researcher,
        &api_key,
    );
    let good = json!(request);
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let audit_size = || state.store().audit_head().unwrap().size;
    let before = audit_size();

    let refusals = [
        (None, good.clone(), StatusCode::UNAUTHORIZED, "unauthorized"),
        (
            Some("made-up"),
            good.clone(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            Some(RESEARCHER),
            good.clone(),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            Some(OPERATOR),
            with("role", json!("auditor")),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Some(OPERATOR),
            with("account", json!("abc")),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Some(OPERATOR),
            with("account", json!(not_a_point())),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_key",
        ),
        (
            Some(OPERATOR),
            with("account", json!(account(2))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_signature",
        ),
        (
            Some(OPERATOR),
            with("admin", json!(true)),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
    ];
    for (key, body, status, code) in refusals {
        let (got, error) = call(&router, "/admin/api-keys", key, body.clone()).await;
        assert_eq!(
            (got, error["error"]["code"].as_str()),
            (status, Some(code)),
            "{body} -> {error}"
        );
        assert!(error["error"]["message"].is_string());
    }
    assert_eq!(audit_size(), before, "refused requests audit nothing");

    let (status, created) = call(&router, "/admin/api-keys", Some(OPERATOR), good).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["role"], "researcher");
    assert_eq!(created["account"], researcher.as_str());
    assert_eq!(created["key_id"], hex::encode(request.key_id));
    assert!(created.get("api_key").is_none(), "{created}");

    let entries = state.store().audit_entries(before, 10).unwrap();
    assert_eq!(entries.len(), 1);
    let entry = serde_json::to_value(&entries[0]).unwrap();
    assert_eq!(entry["kind"], "api_key_created");
    assert_eq!(entry["payload"]["role"], "researcher");
    assert_eq!(entry["payload"]["account"], researcher.as_str());
    assert!(!serde_json::to_string(&entries[0])
        .unwrap()
        .contains(&api_key));

    // The new key is a researcher: not the operator, not an issuer.
    let (status, error) = call(
        &router,
        "/ledger/mint",
        Some(&api_key),
        json!({"to": researcher, "amount": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    let (status, error) = call(
        &router,
        "/registry/revoke",
        Some(&api_key),
        json!({"index": 0}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    let (status, error) = call(
        &router,
        "/admin/api-keys",
        Some(&api_key),
        json!(CreateApiKey::sign(
            &SigningKey::from_bytes(&[1; 32]),
            &marketplace_key(),
            ApiKeyRole::Issuer,
            &draw_api_key(),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");

    // Revoked, it is unknown; revoking again finds nothing.
    let revoke = json!({"key_id": created["key_id"]});
    let (status, error) = call(
        &router,
        "/admin/api-keys/revoke",
        Some(&api_key),
        revoke.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    let (status, revoked) = call(
        &router,
        "/admin/api-keys/revoke",
        Some(OPERATOR),
        revoke.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["account"], researcher.as_str());
    let (status, _) = call(
        &router,
        "/ledger/mint",
        Some(&api_key),
        json!({"to": researcher, "amount": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, error) = call(&router, "/admin/api-keys/revoke", Some(OPERATOR), revoke).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_api_key"))
    );
    assert_eq!(audit_size(), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_time_answers_408_in_the_error_shape() {
    let folder = tempfile::tempdir().unwrap();
    let limits = Limits {
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = TestServer::serve_state(state(&folder, limits)).await;
    let addr = server.addr().to_string();

    // A body that never finishes arriving: the handler waits for it until
    // the timeout answers.
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(
                b"POST /ledger/mint HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                  content-length: 100\r\nconnection: close\r\n\r\n{\"to\":",
            )
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let error: Value = serde_json::from_str(body).unwrap();
    assert_eq!(error["error"]["code"], "request_timeout");
    assert!(error["error"]["message"].is_string());

    server.stop().await;
}
