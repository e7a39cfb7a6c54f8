//! Differentially private releases end to end: a real server on 127.0.0.1:0
//! over a sled store in a temporary folder. Enrollments, with the measure
//! values their proofs would commit to, go through the store directly (their
//! proofs and openings are the enrollment route's business, tested in
//! `http.rs` and `bundle.rs`); releases, budgets and the audit log are read
//! over HTTP.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::CircuitId;
use zkcohort_cohort::query::CompiledMeasure;
use zkcohort_cohort::{Catalog, Query};
use zkcohort_market::dp::Epsilon;
use zkcohort_market::dp::Spend;
use zkcohort_market::http::{ApiConfig, CircuitDownloads, Limits, Role};
use zkcohort_market::{CohortPolicy, NewStudy, PrivacyCaps, ProofRecord, Store, StoreConfig};
use zkcohort_verifier::KeySetup;

use crate::common::{public_key as public, TestServer, ISSUER, OPERATOR, RESEARCHER, REWARD};

const OTHER_RESEARCHER: &str = "other-researcher-key";

/// Positions of enrollments across the tests: each has its own nullifier.
static NEXT_ENROLLMENT: AtomicU64 = AtomicU64::new(0);

/// Servers over the store in `folder`; tests keep a handle on the state so
/// they can enroll through the store.
struct Server;

/// Caps of epsilon 2 per study and 3 per researcher in a 30-day window.
fn caps() -> PrivacyCaps {
    PrivacyCaps {
        study: Spend {
            epsilon: eps(2.0),
            delta_nanos: 3,
        },
        researcher: Spend {
            epsilon: eps(3.0),
            delta_nanos: 5,
        },
        ..PrivacyCaps::default()
    }
}

impl Server {
    async fn start(folder: &Path) -> TestServer {
        Self::start_with(folder, CohortPolicy::immediate(), caps()).await
    }

    async fn start_with(folder: &Path, cohort: CohortPolicy, privacy: PrivacyCaps) -> TestServer {
        let store = Store::open(
            folder,
            StoreConfig {
                registry_depth: 8,
                root_window_ms: 60_000,
                cohort,
                privacy,
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
            proof_batching: Default::default(),
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
    /// `max` enrollments, its escrow funded for all of them; it measures sex,
    /// age bands and a bounded HbA1c.
    fn study(&self, budget: f64, max: u64) -> u64 {
        self.study_of(1, budget, max).unwrap()
    }

    /// A study of researcher `researcher` (1 or 2), or the store's refusal.
    fn study_of(
        &self,
        researcher: u8,
        budget: f64,
        max: u64,
    ) -> Result<u64, zkcohort_market::StoreError> {
        let store = self.store();
        let study = store.create_study(NewStudy {
            researcher: public(researcher),
            title: "Hypertension outcomes".into(),
            description: "adults with hypertension".into(),
            query: query(),
            query_hash: [7; 32],
            circuit_id: CircuitId([7; 32]),
            issuers: vec![[9; 32]],
            issuer_depth: 1,
            reward: REWARD,
            max_enrollments: max,
            epsilon_budget: budget,
        })?;
        store.mint(public(researcher), REWARD * max).unwrap();
        crate::common::fund_through_store(store, researcher, study.id, REWARD * max).unwrap();
        Ok(study.id)
    }

    /// Enrolls `count` more patients in `study` (their proofs are assumed
    /// verified: the store does not look at them), each with the measure values
    /// of [`values`] for its position.
    fn enroll(&self, study: u64, count: u64) {
        let store = self.store();
        let root = store.registry_root().unwrap().root;
        let first = NEXT_ENROLLMENT.fetch_add(count, Ordering::SeqCst);
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
                    values(n),
                )
                .unwrap();
        }
    }
}

fn query() -> Query {
    crate::common::measured_query()
}

fn measures() -> Vec<CompiledMeasure> {
    query().compile(Catalog::bundled()).unwrap().measures
}

/// The measure values of the enrollment at position `n`: every sex and age band in
/// turn, and an HbA1c for four in five.
fn values(n: u64) -> Vec<u64> {
    let measures = measures();
    let span = |m: &CompiledMeasure| m.value_count() - 1;
    vec![
        1 + n % span(&measures[0]),
        1 + n % span(&measures[1]),
        if n % 5 == 0 {
            0
        } else {
            1 + (n * 37) % span(&measures[2])
        },
    ]
}

fn epsilon(value: &Value) -> Epsilon {
    serde_json::from_value(value.clone()).unwrap()
}

fn eps(x: f64) -> Epsilon {
    Epsilon::new(x).unwrap()
}

/// `(cap, spent)` epsilons of a budget in an answer or a listing.
fn spent(budget: &Value) -> (Epsilon, Epsilon) {
    (
        epsilon(&budget["cap"]["epsilon"]),
        epsilon(&budget["spent"]["epsilon"]),
    )
}

fn histogram(measure: &str, epsilon: f64) -> Value {
    json!({"statistic": {"histogram": measure}, "epsilon": epsilon})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_is_charged_once_and_then_answered_from_the_cache() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    let study = server.study(1.0, 100);
    server.enroll(study, 40);
    let size = server.audit_size().await;
    let measures = measures();

    let (status, first) = server.release(study, &histogram("sex", 0.5)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let stored = &first["release"];
    assert_eq!(stored["enrollments"], 40);
    let release = &stored["release"];
    assert_eq!(epsilon(&release["epsilon"]), eps(0.5));
    assert_eq!(release["delta_nanos"], 0);
    let rows: Vec<String> = serde_json::from_value(release["values"]["rows"].clone()).unwrap();
    assert_eq!(rows, measures[0].labels);
    let counts: Vec<u64> = serde_json::from_value(release["values"]["counts"].clone()).unwrap();
    assert_eq!(counts.len(), rows.len());
    // The true counts: 40 enrollments over the answers after "unknown".
    let mut truth = vec![0u64; rows.len()];
    (0..40).for_each(|n| truth[values(n)[0] as usize] += 1);
    for (noisy, true_count) in counts.iter().zip(&truth) {
        // At scale 2, 30 away has probability about e^-15.
        assert!(noisy.abs_diff(*true_count) < 30, "{counts:?} {truth:?}");
    }
    assert_eq!(
        first["shown"],
        json!(counts.iter().map(u64::to_string).collect::<Vec<_>>())
    );
    assert_eq!(spent(&first["study_budget"]), (eps(1.0), eps(0.5)));
    assert_eq!(spent(&first["researcher_budget"]), (eps(3.0), eps(0.5)));
    assert_eq!(server.audit_size().await, size + 1);

    // The same question: the same answer, to the bit, the same status, nothing charged.
    let (status, again) = server.release(study, &histogram("sex", 0.5)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    // By position, and with the defaults spelt out: the same question.
    let (status, by_position) = server
        .release(
            study,
            &json!({"statistic": {"histogram": "sex"}, "epsilon": 0.5,
                    "mechanism": "discrete_laplace", "post_process": "none"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_position, first);
    // The i2b2 display is post-processing of the cached release: free.
    let (status, i2b2) = server
        .release(
            study,
            &json!({"statistic": {"histogram": "sex"}, "epsilon": 0.5, "post_process": "i2b2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(i2b2["release"], first["release"]);
    let shown: Vec<String> = serde_json::from_value(i2b2["shown"].clone()).unwrap();
    for (shown, noisy) in shown.iter().zip(&counts) {
        assert_eq!(*shown, zkcohort_market::dp::i2b2_display(*noisy));
    }
    assert_eq!(spent(&i2b2["study_budget"]), (eps(1.0), eps(0.5)));
    assert_eq!(server.audit_size().await, size + 1);

    // The audit entry records the question, both charges and the noisy values only.
    let index = stored["audit_index"].as_u64().unwrap();
    let entry = serde_json::to_value(server.store().audit_entry(index).unwrap()).unwrap();
    assert_eq!(entry["kind"], "dp_release");
    let payload = &entry["payload"];
    assert_eq!(payload["statistic"], json!({"histogram": "sex"}));
    assert_eq!(payload["epsilon_micros"], 500_000);
    assert_eq!(payload["study_budget"]["epsilon_spent"], 500_000);
    assert_eq!(payload["researcher_budget"]["epsilon_spent"], 500_000);
    assert_eq!(payload["values"], release["values"]);
    server.store().verify_audit_log().unwrap();

    // A table and a Gaussian release: charged, the Gaussian's delta too.
    let (status, table) = server
        .release(
            study,
            &json!({"statistic": {"table": ["age", "sex"]}, "epsilon": 0.25,
                                "mechanism": "discrete_gaussian"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{table}");
    let values = &table["release"]["release"]["values"];
    assert_eq!(values["rows"], json!(measures[1].labels));
    assert_eq!(values["columns"], json!(measures[0].labels));
    assert_eq!(
        values["counts"].as_array().unwrap().len(),
        measures[0].labels.len() * measures[1].labels.len()
    );
    assert_eq!(spent(&table["study_budget"]), (eps(1.0), eps(0.75)));
    assert_eq!(table["study_budget"]["spent"]["delta_nanos"], 1);
    assert_eq!(table["researcher_budget"]["spent"]["delta_nanos"], 1);

    let listing = server.releases(study).await;
    assert_eq!(spent(&listing["budget"]), (eps(1.0), eps(0.75)));
    assert_eq!(listing["releases"].as_array().unwrap().len(), 2);

    // The study's bundle carries both releases in its chain, and a sponsor replays
    // their budgets (the proofs here are placeholders, so only that check is read).
    let (bundle, _) = server.bundle(study).await;
    let report = zkcohort_verifier::verify_bundle(&bundle, None, None);
    for name in ["study_chain", "release_budgets"] {
        let check = report.check(name).unwrap();
        assert!(check.passed, "{name}: {}", check.detail);
    }
    assert!(
        report
            .check("release_budgets")
            .unwrap()
            .detail
            .starts_with("2 DP releases"),
        "{report:#?}"
    );
    server.store().verify_audit_log().unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sum_releases_a_clamped_sum_and_a_mean_near_the_truth() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    let study = server.study(2.0, 500);
    server.enroll(study, 400);
    let measure = &measures()[2];
    let known: Vec<i64> = (0..400)
        .filter_map(|n| measure.amount(values(n)[2]))
        .collect();
    let true_mean =
        known.iter().sum::<i64>() as f64 / known.len() as f64 / measure.units_per_display as f64;

    let (status, answer) = server
        .release(study, &json!({"statistic": {"sum": "3"}, "epsilon": 2.0}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let values = &answer["release"]["release"]["values"];
    let count = values["counts"][0].as_u64().unwrap();
    assert!(
        count.abs_diff(known.len() as u64) < 20,
        "{count} of {}",
        known.len()
    );
    let sum = &values["sum"];
    assert_eq!(sum["unit"], measure.unit);
    let total = sum["total"].as_i64().unwrap() as f64 / measure.units_per_display as f64;
    let mean = total / count as f64;
    // Count noise of scale 1 and sum noise of scale 1 x the width (10 %) on some 320
    // values: the mean is within a few hundredths of a percent point.
    assert!(
        (mean - true_mean).abs() < 0.2,
        "mean {mean}, truth {true_mean}"
    );
    let shown_mean = answer["mean"].as_str().unwrap();
    assert!(shown_mean.ends_with(measure.unit.as_str()), "{shown_mean}");
    // No true value anywhere in the answer.
    let text = answer.to_string();
    assert!(
        !text.contains(&format!("\"total\":{}", known.iter().sum::<i64>())),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn releases_past_either_budget_are_refused_and_change_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    // The operator's study cap is 2: a researcher cannot choose more.
    let refused = server.study_of(1, 2.5, 10).unwrap_err();
    assert!(refused.to_string().contains("at most 2"), "{refused}");
    let first = server.study(2.0, 10);
    server.enroll(first, 5);
    let (status, _) = server.release(first, &histogram("sex", 1.5)).await;
    assert_eq!(status, StatusCode::OK);
    let size = server.audit_size().await;
    let listing = server.releases(first).await;
    // The study's budget: 0.5 left.
    let (status, body) = server.release(first, &histogram("age", 0.6)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "budget_exhausted");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("the study's"));
    assert_eq!(server.releases(first).await, listing);
    assert_eq!(server.audit_size().await, size);

    // The same query re-posted: a fresh study budget, but the researcher's window has
    // 1.5 left of 3.
    let second = server.study(2.0, 10);
    server.enroll(second, 5);
    let size = server.audit_size().await;
    let (status, body) = server.release(second, &histogram("sex", 1.6)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the researcher's"),
        "{body}"
    );
    assert_eq!(server.audit_size().await, size);
    let (status, body) = server.release(second, &histogram("sex", 1.5)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(spent(&body["researcher_budget"]), (eps(3.0), eps(3.0)));
    // Spent to the micro-epsilon: nothing more anywhere, not even on the first study.
    let (status, _) = server.release(first, &histogram("age", 0.001)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Another researcher's window is their own.
    let other = server.study_of(2, 1.0, 10).unwrap();
    server.enroll(other, 3);
    let (status, body) = server
        .post(
            &format!("/studies/{other}/releases"),
            Some(OTHER_RESEARCHER),
            &histogram("sex", 1.0),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
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

    let (status, body) = server
        .post(&path, Some(OTHER_RESEARCHER), &histogram("sex", 0.5))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "not_study_owner");
    let (status, body) = server.get_with_key(&path, Some(OTHER_RESEARCHER)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "not_study_owner");
    for key in [None, Some("nobody")] {
        let (status, body) = server.post(&path, key, &histogram("sex", 0.5)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let (status, body) = server
        .post(&path, Some(ISSUER), &histogram("sex", 0.5))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = server
        .post(
            "/studies/99/releases",
            Some(RESEARCHER),
            &histogram("sex", 0.5),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "unknown_study");

    for bad in [0.0, -1.0, 1e-9, 0.0009, 2e9] {
        let (status, body) = server.release(study, &histogram("sex", bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_epsilon", "{bad}");
    }
    for (statistic, code, names) in [
        (json!({"histogram": "weight"}), "unknown_measure", "\"sex\""),
        (json!({"histogram": "4"}), "unknown_measure", "\"age\""),
        (
            json!({"histogram": "lab hba1c latest"}),
            "unsuitable_measure",
            "sum",
        ),
        (json!({"sum": "sex"}), "unsuitable_measure", "histogram"),
        (
            json!({"table": ["sex", "1"]}),
            "unsuitable_measure",
            "two different",
        ),
    ] {
        let (status, body) = server
            .release(study, &json!({"statistic": statistic, "epsilon": 0.5}))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{statistic}: {body}"
        );
        assert_eq!(body["error"]["code"], code, "{statistic}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{statistic}: {message}");
    }
    for malformed in [
        json!({"statistic": {"histogram": "sex"}, "epsilon": 0.5, "mechanism": "laplace"}),
        json!({"statistic": {"histogram": "sex"}, "epsilon": 0.5, "post_process": "round"}),
        json!({"statistic": "count", "epsilon": 0.5}),
        json!({"measure": "count", "epsilon": 0.5}),
        json!({"statistic": {"table": ["sex"]}, "epsilon": 0.5}),
        json!({"statistic": {"histogram": "sex"}, "epsilon": "0.5"}),
        json!({"statistic": {"histogram": "sex"}}),
        json!({"statistic": {"histogram": "sex"}, "epsilon": 0.5, "study": 2}),
    ] {
        let (status, body) = server.release(study, &malformed).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}: {body}");
        assert_eq!(body["error"]["code"], "malformed_json", "{malformed}");
    }
    assert_eq!(server.releases(study).await, listing);
    assert_eq!(server.audit_size().await, size);
    server.stop().await;
}

/// Many different requests at once, over two studies of one researcher: the
/// successes never spend more than either cap, and what was spent is what the
/// successes charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_exceed_either_budget() {
    let folder = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(folder.path()).await);
    let studies = [server.study(2.0, 10), server.study(2.0, 10)];
    for study in studies {
        server.enroll(study, 4);
    }
    let size = server.audit_size().await;
    // 2 x 12 requests of 0.3 each (distinct epsilons so none is another's cache hit):
    // at most 6 fit a study (1.8 of 2), at most 10 the researcher (3.0 of 3).
    let tasks: Vec<_> = (0..24u64)
        .map(|n| {
            let server = server.clone();
            let study = studies[(n % 2) as usize];
            let epsilon = 0.3 + n as f64 * 1e-6;
            tokio::spawn(async move {
                let (status, body) = server.release(study, &histogram("sex", epsilon)).await;
                (study, epsilon, status, body)
            })
        })
        .collect();
    let mut charged = HashMap::<u64, u64>::new();
    for task in tasks {
        let (study, epsilon, status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => {
                *charged.entry(study).or_default() += eps(epsilon).micros();
            }
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "budget_exhausted"),
            other => panic!("{other}: {body}"),
        }
    }
    let total: u64 = charged.values().sum();
    assert!(total <= eps(3.0).micros(), "{charged:?}");
    // The researcher's cap binds: 9 releases of about 0.3 fit 3.0, a tenth does not
    // (0.3 x 10 plus the increments passes 3).
    assert_eq!(total / 290_000, 9, "{charged:?}");
    for study in studies {
        let listing = server.releases(study).await;
        let (_, spent_here) = spent(&listing["budget"]);
        assert_eq!(
            spent_here.micros(),
            charged.get(&study).copied().unwrap_or(0)
        );
        assert!(spent_here <= eps(2.0));
    }
    assert_eq!(server.audit_size().await, size + 9);
    let server = Arc::into_inner(server).unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budgets_and_releases_survive_a_restart() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    let study = server.study(2.0, 10);
    server.enroll(study, 4);
    let (status, first) = server.release(study, &histogram("sex", 1.25)).await;
    assert_eq!(status, StatusCode::OK);
    let listing = server.releases(study).await;
    let size = server.audit_size().await;
    server.stop().await;

    let server = Server::start(folder.path()).await;
    assert_eq!(server.releases(study).await, listing);
    let (status, again) = server.release(study, &histogram("sex", 1.25)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    assert_eq!(server.audit_size().await, size);
    // The budget left is what was left before the restart, exactly, for the study and
    // for the researcher's window (a second study of the same researcher).
    let (status, _) = server.release(study, &histogram("age", 0.750_001)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let other = server.study(2.0, 10);
    server.enroll(other, 4);
    let (status, body) = server.release(other, &histogram("sex", 1.750_001)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = server.release(other, &histogram("sex", 1.75)).await;
    assert_eq!(status, StatusCode::OK);
    server.store().verify_audit_log().unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_settled_enrollments_get_a_fresh_release_and_closed_studies_still_release() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    let study = server.study(1.0, 10);
    server.enroll(study, 2);
    let (status, first) = server.release(study, &histogram("sex", 0.25)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["release"]["enrollments"], 2);

    server.enroll(study, 1);
    let (status, fresh) = server.release(study, &histogram("sex", 0.25)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a new data version is a new question"
    );
    assert_eq!(fresh["release"]["enrollments"], 3);
    assert_eq!(spent(&fresh["study_budget"]).1, eps(0.5));

    let (status, _) = server
        .post(
            &format!("/studies/{study}/close"),
            Some(RESEARCHER),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, closed) = server.release(study, &histogram("age", 0.5)).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["release"]["enrollments"], 3);
    let versions: Vec<_> = server.releases(study).await["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["enrollments"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [2, 3, 3]);
    server.stop().await;
}

/// Pending enrollments are in no release: below the minimum cohort nothing is
/// released, and once a batch settles the release counts the settled ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn releases_read_settled_enrollments_only() {
    let folder = tempfile::tempdir().unwrap();
    let cohort = CohortPolicy {
        min_cohort: 5,
        batch_size: 5,
        batch_age_ms: 3_600_000,
        time_unit_ms: 1,
    };
    let server = Server::start_with(folder.path(), cohort, caps()).await;
    let study = server.study(2.0, 20);
    server.enroll(study, 4);
    let (status, body) = server.release(study, &histogram("sex", 0.5)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "below_minimum_cohort");
    server.enroll(study, 3);
    let (status, body) = server.release(study, &histogram("sex", 0.5)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["release"]["enrollments"], 5);
    assert_eq!(server.store().measure_values(study).unwrap().len(), 5);
    server.stop().await;
}

/// A researcher's charges leave the window once it has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_researcher_window_rolls() {
    let folder = tempfile::tempdir().unwrap();
    let privacy = PrivacyCaps {
        researcher_window_ms: 1_500,
        ..caps()
    };
    let server = Server::start_with(folder.path(), CohortPolicy::immediate(), privacy).await;
    let (first, second) = (server.study(2.0, 10), server.study(2.0, 10));
    server.enroll(first, 3);
    server.enroll(second, 3);
    let (status, _) = server.release(first, &histogram("sex", 2.0)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.release(second, &histogram("sex", 1.5)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    std::thread::sleep(std::time::Duration::from_millis(1_600));
    let (status, body) = server.release(second, &histogram("sex", 1.5)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(spent(&body["researcher_budget"]).1, eps(1.5));
    server.stop().await;
}
