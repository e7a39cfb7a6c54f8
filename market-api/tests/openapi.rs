//! `GET /openapi.json` over real HTTP: it describes every route the router
//! serves, with its method, and the one error shape.

use std::collections::{BTreeSet, HashMap};

use ed25519_dalek::SigningKey;
use rand::{rngs::StdRng, SeedableRng};
use serde_json::Value;
use tokio::net::TcpListener;
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_market::http::{serve, ApiConfig, AppState, Limits};
use zkcohort_market::{Store, StoreConfig};
use zkcohort_prover::CircuitKeys;

const SHAPE: CircuitShape = CircuitShape::SMALL;

/// The API's routes, as the module documentation of `http` lists them.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/marketplace"),
    ("get", "/audit/head"),
    ("post", "/registry/leaves"),
    ("get", "/registry/leaves"),
    ("post", "/registry/revoke"),
    ("get", "/registry/root"),
    ("get", "/registry/roots"),
    ("post", "/studies"),
    ("get", "/studies"),
    ("get", "/studies/{id}"),
    ("post", "/studies/{id}/fund"),
    ("post", "/studies/{id}/close"),
    ("post", "/studies/{id}/enroll"),
    ("get", "/studies/{id}/bundle"),
    ("post", "/studies/{id}/releases"),
    ("get", "/studies/{id}/releases"),
    ("post", "/ledger/mint"),
    ("post", "/ledger/transfer"),
    ("get", "/accounts/{key}"),
    ("post", "/admin/api-keys"),
    ("post", "/admin/api-keys/revoke"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_json_describes_every_served_route() {
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
        operator_key: "operator".into(),
        api_keys: HashMap::new(),
        clauses: SHAPE.clauses,
        slot_depth: SHAPE.slot_depth,
        circuit_id: keys.circuit_id().to_string(),
        verifying_key: keys.prepared_verifying_key().clone(),
        audit_key: SigningKey::from_bytes(&[5; 32]),
        limits: Limits::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, AppState::new(store, config), async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    let response = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|method| {
                    ["get", "post", "put", "patch", "delete"].contains(&method.as_str())
                })
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(described, expected);

    // Every described route is served: no "no such route", no 405.
    for (method, path) in &described {
        let url = format!(
            "{base}{}",
            path.replace("{id}", "1").replace("{key}", &"0".repeat(64))
        );
        let request = match method.as_str() {
            "get" => client.get(&url),
            _ => client.post(&url).json(&serde_json::json!({})),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_ne!(status, 405, "{method} {path}");
        assert_ne!(
            body["error"]["code"], "not_found",
            "{method} {path}: {body}"
        );
        let operation = &doc["paths"][path][method];
        if status.is_client_error() {
            assert_eq!(
                operation["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path} documents its error shape"
            );
        }
    }
    let operation_ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    let unique: BTreeSet<&str> = operation_ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        described.len(),
        "one unique operationId per operation: {operation_ids:?}"
    );
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(
        error["properties"]["error"]["$ref"],
        "#/components/schemas/ErrorDetail"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
