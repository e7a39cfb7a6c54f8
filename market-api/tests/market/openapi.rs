//! `GET /openapi.json` over real HTTP: it describes every route the router
//! serves, with its method, and the one error shape.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use zkcohort_market::Store;

use crate::common::{api_config, setup_keys, store_config, TestServer};

/// The API's routes, as the module documentation of `http` lists them.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/marketplace"),
    ("get", "/audit/consistency"),
    ("get", "/audit/head"),
    ("post", "/registry/records"),
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
    ("get", "/studies/{id}/enrollments/{nullifier}"),
    ("get", "/studies/{id}/bundle"),
    ("get", "/notes"),
    ("get", "/notes/leaves"),
    ("get", "/notes/roots"),
    ("get", "/notes/spent"),
    ("post", "/notes/transfer"),
    ("get", "/circuits/{id}/proving-key"),
    ("get", "/circuits/{id}/transcript"),
    ("post", "/studies/{id}/releases"),
    ("get", "/studies/{id}/releases"),
    ("post", "/ledger/mint"),
    ("post", "/ledger/transfer"),
    ("get", "/accounts/{key}"),
    ("post", "/admin/api-keys"),
    ("post", "/admin/api-keys/revoke"),
    ("post", "/admin/issuers/suspend"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_json_describes_every_served_route() {
    let keys = setup_keys();
    let folder = tempfile::tempdir().unwrap();
    let store = Store::open(folder.path(), store_config()).unwrap();
    let mut config = api_config(&keys, HashMap::new());
    config.operator_key = "operator".into();
    let server = TestServer::serve(store, config).await;
    let (base, client) = (&server.base, &server.client);

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
            path.replace("{id}", "1")
                .replace("{key}", &"0".repeat(64))
                .replace("{nullifier}", &"0".repeat(64))
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

    server.stop().await;
}
