//! Differentially private releases end to end: a real server on 127.0.0.1:0
//! over a sled store in a temporary folder. Enrollments go through the store
//! directly (their proofs are the enrollment route's business, tested in
//! `http.rs`); releases, budgets and the audit log are read over HTTP.

use std::collections::HashMap;
use std::path::Path;

use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::CircuitId;
use zkcohort_market::dp::Epsilon;
use zkcohort_market::http::{ApiConfig, CircuitDownloads, Limits, Role};
use zkcohort_market::{CohortPolicy, NewStudy, ProofRecord, Store, StoreConfig};
use zkcohort_verifier::KeySetup;

use crate::common::{public_key as public, TestServer, ISSUER, OPERATOR, RESEARCHER, REWARD};

const OTHER_RESEARCHER: &str = "other-researcher-key";

/// Servers over the store in `folder`; tests keep a handle on the state so
/// they can enroll through the store.
struct Server;

impl Server {
    async fn start(folder: &Path) -> TestServer {
        let store = Store::open(
            folder,
            StoreConfig {
                registry_depth: 8,
                root_window_ms: 60_000,
                cohort: CohortPolicy::immediate(),
            },
        )
        .unwrap();
        let api_keys = HashMap::from([
            (RESEARCHER.to_string(), Role::Researcher(public(1))),
            (OTHER_RESEARCHER.to_string(), Role::Researcher(public(2))),
            (ISSUER.to_string(), Role::Issuer([9; 32])),
        ]);
        let config = ApiConfig {
            operator_key: OPERATOR.into(),
            api_keys,
            shape: CircuitShape {
                clauses: 4,
                slot_depth: 4,
                registry_depth: 8,
                issuer_depth: 1,
                measures: 1,
                measure_bins: 3,
            },
            circuit_id: CircuitId([7; 32]),
            // No route here verifies a proof.
            verifying_key: Default::default(),
            setup: KeySetup::Development,
            note_circuit_id: CircuitId([8; 32]),
            note_verifying_key: Default::default(),
            note_setup: KeySetup::Development,
            downloads: CircuitDownloads::default(),
            audit_key: SigningKey::from_bytes(&[5; 32]),
            limits: Limits::default(),
        };
        TestServer::serve(store, config).await
    }
}

impl TestServer {
    async fn release(&self, study: u64, body: &Value) -> (StatusCode, Value) {
        self.post(
            &format!("/studies/{study}/releases"),
            Some(RESEARCHER),
            body,
        )
        .await
    }

    /// The study's releases and budget, as its researcher sees them.
    async fn releases(&self, study: u64) -> Value {
        let (status, body) = self
            .get_with_key(&format!("/studies/{study}/releases"), Some(RESEARCHER))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn audit_size(&self) -> u64 {
        let (status, head) = self.get("/audit/head").await;
        assert_eq!(status, StatusCode::OK);
        head["head"]["size"].as_u64().unwrap()
    }

    /// A study of the first researcher with `budget` epsilon and room for
    /// `max` enrollments, its escrow funded for all of them.
    fn study(&self, budget: f64, max: u64) -> u64 {
        let store = self.store();
        let study = store
            .create_study(NewStudy {
                researcher: public(1),
                title: "Hypertension outcomes".into(),
                description: "adults with hypertension".into(),
                query: serde_json::from_value(json!({
                    "index_date": "2020-01-01",
                    "criteria": [{"require": [{"condition": "hypertension"}]}]
                }))
                .unwrap(),
                query_hash: [7; 32],
                circuit_id: CircuitId([7; 32]),
                issuers: vec![[9; 32]],
                issuer_depth: 1,
                reward: REWARD,
                max_enrollments: max,
                epsilon_budget: budget,
            })
            .unwrap();
        store.mint(public(1), REWARD * max).unwrap();
        crate::common::fund_through_store(store, 1, study.id, REWARD * max).unwrap();
        study.id
    }

    /// Enrolls `count` more patients in `study` (their proofs are assumed
    /// verified: the store does not look at them).
    fn enroll(&self, study: u64, count: u64) {
        let store = self.store();
        let root = store.registry_root().unwrap().root;
        let first = store.study(study).unwrap().enrolled;
        for n in first..first + count {
            let mut nullifier = [0u8; 32];
            nullifier[..8].copy_from_slice(&study.to_be_bytes());
            nullifier[8..16].copy_from_slice(&n.to_be_bytes());
            store
                .enroll(
                    study,
                    nullifier,
                    public(100),
                    ProofRecord {
                        registry_root: root,
                        proof: crate::common::unverified_proof(),
                        public_inputs: vec![],
                    },
                    Vec::new(),
                )
                .unwrap();
        }
    }
}

fn epsilon(value: &Value) -> Epsilon {
    serde_json::from_value(value.clone()).unwrap()
}

fn eps(x: f64) -> Epsilon {
    Epsilon::new(x).unwrap()
}

/// `(total, spent, remaining)` of a study's budget.
fn budget(listing: &Value) -> (Epsilon, Epsilon, Epsilon) {
    let budget = &listing["budget"];
    (
        epsilon(&budget["total"]),
        epsilon(&budget["spent"]),
        epsilon(&budget["remaining"]),
    )
}

fn count_request(epsilon: f64) -> Value {
    json!({"measure": "count", "epsilon": epsilon})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_is_charged_once_and_then_answered_from_the_cache() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    let study = server.study(1.0, 100);
    server.enroll(study, 30);
    let size = server.audit_size().await;

    let request = json!({
        "measure": "count",
        "epsilon": 0.25,
        "mechanism": "discrete_laplace",
        "post_process": "none"
    });
    let (status, first) = server.release(study, &request).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["enrollments"], 30);
    let release = &first["release"];
    assert_eq!(epsilon(&release["epsilon"]), eps(0.25));
    assert_eq!(release["delta"], 0.0);
    assert_eq!(release["scale"], 4.0);
    assert_eq!(release["counts"].as_array().unwrap().len(), 1);
    let noisy = release["counts"][0]["value"].as_i64().unwrap();
    assert_eq!(release["counts"][0]["display"], noisy.to_string());
    // At scale 4, 40 away from the truth has probability about e^-10.
    assert!((noisy - 30).abs() < 40, "{noisy}");
    assert_eq!(server.audit_size().await, size + 1);

    // The same request: the same answer, to the bit, and nothing charged.
    let (status, again) = server.release(study, &request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    // The shorthand and defaults name the same request.
    let (status, same) = server.release(study, &count_request(0.25)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same, first);
    let (status, tagged) = server
        .release(
            study,
            &json!({"measure": {"kind": "count"}, "epsilon": 0.25}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tagged, first);
    assert_eq!(server.audit_size().await, size + 1);

    let listing = server.releases(study).await;
    assert_eq!(budget(&listing), (eps(1.0), eps(0.25), eps(0.75)));
    assert_eq!(listing["releases"], json!([first]));

    // The audit entry records the request, the charge, the budget left and
    // the released value, and the log still verifies.
    let index = first["audit_index"].as_u64().unwrap();
    assert_eq!(index, size);
    let entry = serde_json::to_value(server.store().audit_entry(index).unwrap()).unwrap();
    assert_eq!(entry["kind"], "dp_release");
    assert_eq!(entry["payload"]["study"], study);
    assert_eq!(entry["payload"]["enrollments"], 30);
    assert_eq!(entry["payload"]["epsilon_micros"], 250_000);
    assert_eq!(
        entry["payload"]["budget_micros"],
        json!({"total": 1_000_000, "spent": 250_000, "remaining": 750_000})
    );
    assert_eq!(entry["payload"]["counts"], release["counts"]);
    assert_eq!(entry["payload"]["mechanism"], "discrete_laplace");
    server.store().verify_audit_log().unwrap();

    // Three different requests of 0.1 each: spent exactly 0.55, no float drift.
    for request in [
        json!({"measure": "count", "epsilon": 0.1}),
        json!({"measure": "count", "epsilon": 0.1, "mechanism": "discrete_gaussian"}),
        json!({"measure": "count", "epsilon": 0.1, "post_process": "i2b2"}),
    ] {
        let (status, body) = server.release(study, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let listing = server.releases(study).await;
    assert_eq!(budget(&listing), (eps(1.0), eps(0.55), eps(0.45)));
    assert_eq!(listing["releases"].as_array().unwrap().len(), 4);
    assert_eq!(server.audit_size().await, size + 4);
    let gaussian = listing["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["release"]["mechanism"] == "discrete_gaussian")
        .unwrap();
    assert_eq!(gaussian["release"]["delta"], 1e-9);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_past_the_budget_is_refused_and_changes_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    let study = server.study(1.0, 10);
    server.enroll(study, 5);
    let (status, _) = server.release(study, &count_request(0.7)).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = (server.releases(study).await, server.audit_size().await);

    let (status, body) = server.release(study, &count_request(0.300_001)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "budget_exhausted");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("0.300001") && message.contains("0.3"),
        "{message}"
    );
    assert_eq!(
        (server.releases(study).await, server.audit_size().await),
        before
    );

    // Exactly the rest fits, then nothing does.
    let (status, _) = server
        .release(
            study,
            &json!({"measure": "count", "epsilon": 0.3, "post_process": "i2b2"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let listing = server.releases(study).await;
    assert_eq!(budget(&listing), (eps(1.0), eps(1.0), Epsilon::ZERO));
    let before = (listing, server.audit_size().await);
    let (status, body) = server.release(study, &count_request(0.000_001)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "budget_exhausted");
    assert_eq!(
        (server.releases(study).await, server.audit_size().await),
        before
    );
    // What was released stays available, free.
    let (status, _) = server.release(study, &count_request(0.7)).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_distinct_errors_and_change_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    let study = server.study(2.0, 10);
    server.enroll(study, 3);
    let path = format!("/studies/{study}/releases");
    let size = server.audit_size().await;
    let listing = server.releases(study).await;

    // Another researcher may neither release nor list.
    let (status, body) = server
        .post(&path, Some(OTHER_RESEARCHER), &count_request(0.5))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "not_study_owner");
    let (status, body) = server.get_with_key(&path, Some(OTHER_RESEARCHER)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "not_study_owner");
    // Keys: none, unknown, an issuer's.
    for key in [None, Some("nobody")] {
        let (status, body) = server.post(&path, key, &count_request(0.5)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(
            server.get_with_key(&path, key).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, body) = server.post(&path, Some(ISSUER), &count_request(0.5)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");

    for missing in ["/studies/99/releases", "/studies/0/releases"] {
        let (status, body) = server
            .post(missing, Some(RESEARCHER), &count_request(0.5))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "unknown_study");
        let (status, body) = server.get_with_key(missing, Some(RESEARCHER)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "unknown_study");
    }

    for bad in [0.0, -1.0, 1e-9, 2e9] {
        let (status, body) = server.release(study, &count_request(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_epsilon", "{bad}");
    }
    let (status, body) = server
        .release(
            study,
            &json!({"measure": {"kind": "count_by", "breakdown": "sex"}, "epsilon": 0.5}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "unsupported_breakdown");
    assert!(body["error"]["message"].as_str().unwrap().contains("sex"));

    for malformed in [
        json!({"measure": "count", "epsilon": 0.5, "mechanism": "laplace"}),
        json!({"measure": "count", "epsilon": 0.5, "post_process": "round"}),
        json!({"measure": "sum", "epsilon": 0.5}),
        json!({"measure": {"kind": "count_by"}, "epsilon": 0.5}),
        json!({"measure": "count", "epsilon": "0.5"}),
        json!({"measure": "count"}),
        json!({"measure": "count", "epsilon": 0.5, "study": 2}),
    ] {
        let (status, body) = server.release(study, &malformed).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}: {body}");
        assert_eq!(body["error"]["code"], "malformed_json", "{malformed}");
    }

    assert_eq!(server.releases(study).await, listing);
    assert_eq!(server.audit_size().await, size);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_requests_are_charged_once_and_agree() {
    let folder = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(Server::start(folder.path()).await);
    let study = server.study(1.0, 10);
    server.enroll(study, 7);
    let size = server.audit_size().await;

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { server.release(study, &count_request(0.5)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(answers
        .iter()
        .all(
            |(status, body)| (*status == StatusCode::CREATED || *status == StatusCode::OK)
                && *body == answers[0].1
        ));
    let listing = server.releases(study).await;
    assert_eq!(budget(&listing), (eps(1.0), eps(0.5), eps(0.5)));
    assert_eq!(listing["releases"], json!([answers[0].1]));
    assert_eq!(server.audit_size().await, size + 1);
    let server = std::sync::Arc::into_inner(server).unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn releases_and_spent_budget_survive_a_restart() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    let study = server.study(1.5, 10);
    server.enroll(study, 4);
    let (status, first) = server.release(study, &count_request(0.5)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server
        .release(
            study,
            &json!({"measure": "count", "epsilon": 0.25, "post_process": "i2b2"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let listing = server.releases(study).await;
    let size = server.audit_size().await;
    server.stop().await;

    let server = Server::start(folder.path()).await;
    assert_eq!(server.releases(study).await, listing);
    assert_eq!(budget(&listing), (eps(1.5), eps(0.75), eps(0.75)));
    let (status, again) = server.release(study, &count_request(0.5)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    assert_eq!(server.audit_size().await, size);
    // The budget left is what was left before the restart, exactly.
    let (status, body) = server.release(study, &count_request(0.750_001)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = server.release(study, &count_request(0.75)).await;
    assert_eq!(status, StatusCode::CREATED);
    server.store().verify_audit_log().unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_enrollments_get_a_fresh_release_and_closed_studies_still_release() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    let study = server.study(1.0, 10);
    server.enroll(study, 2);
    let (status, first) = server.release(study, &count_request(0.25)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first["enrollments"], 2);

    server.enroll(study, 1);
    let (status, fresh) = server.release(study, &count_request(0.25)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a new data version is a new question"
    );
    assert_eq!(fresh["enrollments"], 3);
    let (status, cached) = server.release(study, &count_request(0.25)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cached, fresh);

    // Analysis after recruitment: closing keeps the study releasable.
    let (status, _) = server
        .post(
            &format!("/studies/{study}/close"),
            Some(RESEARCHER),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, closed) = server.release(study, &count_request(0.5)).await;
    assert_eq!(status, StatusCode::CREATED, "{closed}");
    assert_eq!(closed["enrollments"], 3);

    let listing = server.releases(study).await;
    assert_eq!(budget(&listing), (eps(1.0), eps(1.0), Epsilon::ZERO));
    let versions: Vec<_> = listing["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["enrollments"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [2, 3, 3]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i2b2_releases_show_only_rounded_counts() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    let small = server.study(100.0, 10);
    server.enroll(small, 2);
    let large = server.study(100.0, 40);
    server.enroll(large, 40);

    let mut displays = Vec::new();
    for (study, epsilon) in [
        (small, 1.0),
        (small, 2.0),
        (large, 1.0),
        (large, 2.0),
        (large, 4.0),
    ] {
        let (status, body) = server
            .release(
                study,
                &json!({"measure": "count", "epsilon": epsilon, "post_process": "i2b2"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let count = &body["release"]["counts"][0];
        // Only the rounded text is released.
        assert_eq!(count["value"], Value::Null);
        let shown = count["display"].as_str().unwrap().to_string();
        assert!(
            shown == "<10" || shown.parse::<i64>().is_ok_and(|v| v >= 10 && v % 5 == 0),
            "{shown}"
        );
        displays.push((study, shown));
    }
    // Two patients read "<10" unless the noise passed 8 (probability below
    // e^-8 at epsilon 1); forty read as a multiple of 5 near 40.
    assert!(displays
        .iter()
        .filter(|(study, _)| *study == small)
        .all(|(_, shown)| shown == "<10"));
    assert!(displays
        .iter()
        .filter(|(study, _)| *study == large)
        .all(|(_, shown)| shown.parse::<i64>().is_ok_and(|v| (25..=55).contains(&v))));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn extreme_epsilons_release_or_are_refused_never_fail() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    // A budget above the largest epsilon is capped at it.
    let capped = server.study(5e9, 10);
    assert_eq!(budget(&server.releases(capped).await).0, eps(1e9));
    for mechanism in ["discrete_laplace", "discrete_gaussian"] {
        for asked in [0.000_001, 0.000_7, 1000.0, 1e6, 1e9] {
            let study = server.study(1e9, 10);
            server.enroll(study, 6);
            let (status, body) = server
                .release(
                    study,
                    &json!({"measure": "count", "epsilon": asked, "mechanism": mechanism}),
                )
                .await;
            assert!(
                status == StatusCode::CREATED
                    || (status == StatusCode::UNPROCESSABLE_ENTITY
                        && body["error"]["code"] == "invalid_epsilon"),
                "{mechanism} at {asked}: {status} {body}"
            );
            if status == StatusCode::CREATED {
                assert_eq!(epsilon(&body["release"]["epsilon"]), eps(asked));
            }
        }
    }
    server.stop().await;
}
