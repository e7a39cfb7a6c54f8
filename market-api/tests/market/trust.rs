//! Attacks by a party the protocol does not trust, each refused: an issuer putting a
//! record under another issuer's id, a record revoked before a study was posted
//! enrolling in it through an older root, and one revoked later enrolling after the
//! root window; an issuer the operator suspended, in studies posted later and in those
//! already open; the holder of a researcher's API
//! key moving the researcher's tokens without the account's signature; and the operator
//! binding an API key to an account without its holder; an issuer flooding the registry. Real proofs, real
//! HTTP on 127.0.0.1.

use std::collections::HashMap;

use ed25519_dalek::SigningKey;
use rand::{rngs::StdRng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zkcohort_circuits::identity::StudyScope;
use zkcohort_circuits::issuers::IssuerSet;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::statement::fr_to_bytes;
use zkcohort_circuits::CircuitError;
use zkcohort_circuits::Fr;
use zkcohort_market::api::{CreateApiKey, FundStudy};
use zkcohort_market::api_keys::{draw_api_key, ApiKeyRole};
use zkcohort_market::audit::verify_log;
use zkcohort_market::bundle::BundleContext;
use zkcohort_market::http::Role;
use zkcohort_market::{Store, StoreConfig};
use zkcohort_prover::{ProofRequest, ProverError};
use zkcohort_testkit::{ali_harris, Enrollee, ISSUER as ISSUER_ACCOUNT, OTHER_ISSUER};
use zkcohort_verifier::events::AuditEvent;
use zkcohort_verifier::{verify_bundle, KeySetup};

use crate::common::{
    api_config, api_keys, appended_record, compiled_query, enroll_body, keys, public_key,
    records_body, researcher_key, store_config, study_body, TestServer, AUDIT_KEY_SEED, ISSUER,
    OPERATOR, RESEARCHER, SHAPE,
};

/// The API key of a second issuer, acting as [`OTHER_ISSUER`].
const OTHER_ISSUER_KEY: &str = "other-issuer-key";

async fn server_with_two_issuers() -> (TestServer, tempfile::TempDir) {
    server_with_window(store_config().root_window_ms).await
}

async fn server_with_window(root_window_ms: u64) -> (TestServer, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        root_window_ms,
        ..store_config()
    };
    let store = Store::open(folder.path(), config).unwrap();
    let mut keys_by_token: HashMap<String, Role> = api_keys(public_key(7));
    keys_by_token.insert(OTHER_ISSUER_KEY.into(), Role::Issuer(OTHER_ISSUER));
    let server = TestServer::serve(store, api_config(keys(), keys_by_token)).await;
    (server, folder)
}

/// Posts a study of the common query accepting `issuers` (all when `None`) for `max`
/// enrollments and mints 100 to its researcher; returns its id.
async fn posted_study(server: &TestServer, max: u64, issuers: Option<&[[u8; 32]]>) -> u64 {
    let mut body = study_body(max);
    if let Some(issuers) = issuers {
        body["issuers"] = json!(issuers.iter().map(hex::encode).collect::<Vec<_>>());
    }
    let (status, study) = server.post("/studies", Some(RESEARCHER), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{study}");
    server.mint(&public_key(7), 100).await;
    study["id"].as_u64().unwrap()
}

/// [`posted_study`], its escrow funded for all `max` enrollments.
async fn funded_study(server: &TestServer, max: u64, issuers: Option<&[[u8; 32]]>) -> u64 {
    let id = posted_study(server, max, issuers).await;
    server.fund(id, 10 * max).await;
    id
}

fn request(
    enrollee: &Enrollee,
    registry: &RegistryTree,
    index: u64,
    issuers: &IssuerSet,
    scope: StudyScope,
) -> ProofRequest {
    ProofRequest {
        secret: enrollee.secret.clone(),
        record: enrollee.record.clone(),
        registry_path: registry.path(index).unwrap(),
        issuers: issuers.clone(),
        query: compiled_query(),
        study_scope: scope,
        reward_receiver: Fr::from(40u64),
    }
}

/// Appends `enrollee`'s record with the issuer API key `key`; returns the answer.
async fn append(server: &TestServer, key: &str, enrollee: &Enrollee) -> Value {
    let (status, appended) = server
        .post(
            "/registry/records",
            Some(key),
            &records_body(&[appended_record(&enrollee.secret, &enrollee.record)]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{appended}");
    appended
}

async fn enroll(server: &TestServer, study: u64, request: &ProofRequest) -> (StatusCode, Value) {
    let proof = keys()
        .prove_with_rng(request, &mut StdRng::seed_from_u64(5))
        .unwrap();
    server
        .post(
            &format!("/studies/{study}/enroll"),
            None,
            &enroll_body(&proof, &request.reward_receiver),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_cannot_register_a_record_under_another_issuer_s_id() {
    let (server, _folder) = server_with_two_issuers().await;
    let study = funded_study(&server, 2, Some(&[OTHER_ISSUER])).await;
    let scope = StudyScope::for_study(&server.marketplace_key().await, study);
    let accepted = IssuerSet::new(&[OTHER_ISSUER], SHAPE.issuer_depth).unwrap();

    // The first issuer invents a record in the name of the second and appends it
    // with its own key: the marketplace computes the leaf over its own id.
    let forged = Enrollee::issue(ali_harris(), OTHER_ISSUER, &mut StdRng::seed_from_u64(11));
    let appended = append(&server, ISSUER, &forged).await;
    assert_eq!(appended["issuer"], hex::encode(ISSUER_ACCOUNT));
    let stored = server.store().registry_leaves(0, 1).unwrap()[0];
    assert_ne!(
        stored,
        fr_to_bytes(&forged.leaf(SHAPE)),
        "the claimed issuer's leaf"
    );
    let mut as_stored = forged.clone();
    as_stored.record.issuer = ISSUER_ACCOUNT;
    assert_eq!(stored, fr_to_bytes(&as_stored.leaf(SHAPE)));

    // Proving the record as the registry holds it: the study does not accept that issuer.
    let mut registry = RegistryTree::new(SHAPE.registry_depth).unwrap();
    registry.append(as_stored.leaf(SHAPE)).unwrap();
    assert_eq!(
        fr_to_bytes(&registry.root()),
        server.store().registry_root().unwrap().root
    );
    let refused = keys().prove(&request(&as_stored, &registry, 0, &accepted, scope));
    assert!(matches!(
        refused,
        Err(ProverError::Circuit(CircuitError::Issuers(_)))
    ));

    // Proving it as claimed: a valid proof, but under a root the registry never had.
    let mut claimed = RegistryTree::new(SHAPE.registry_depth).unwrap();
    claimed.append(forged.leaf(SHAPE)).unwrap();
    let before = server.store().study(study).unwrap();
    let (status, error) = enroll(
        &server,
        study,
        &request(&forged, &claimed, 0, &accepted, scope),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["code"], "unknown_root");
    assert_eq!(server.store().study(study).unwrap(), before);

    // The same record appended by the issuer it names enrolls.
    append(&server, OTHER_ISSUER_KEY, &forged).await;
    registry.append(forged.leaf(SHAPE)).unwrap();
    let (status, enrolled) = enroll(
        &server,
        study,
        &request(&forged, &registry, 1, &accepted, scope),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_revoked_before_a_study_was_posted_never_enrolls_in_it() {
    let (server, _folder) = server_with_two_issuers().await;
    let enrollee = Enrollee::issue(ali_harris(), ISSUER_ACCOUNT, &mut StdRng::seed_from_u64(12));
    append(&server, ISSUER, &enrollee).await;
    let mut registry = RegistryTree::new(SHAPE.registry_depth).unwrap();
    registry.append(enrollee.leaf(SHAPE)).unwrap();

    let earlier = funded_study(&server, 2, None).await;
    let (status, revoked) = server
        .post("/registry/revoke", Some(ISSUER), &json!({"index": 0}))
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    let later = funded_study(&server, 2, None).await;
    let key = server.marketplace_key().await;
    let issuers = IssuerSet::new(&[ISSUER_ACCOUNT, OTHER_ISSUER], SHAPE.issuer_depth).unwrap();

    // The root from before the revocation is still inside the time window...
    let scope = StudyScope::for_study(&key, later);
    let before = server.store().study(later).unwrap();
    let (status, error) = enroll(
        &server,
        later,
        &request(&enrollee, &registry, 0, &issuers, scope),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["code"], "root_before_study");
    assert_eq!(server.store().study(later).unwrap(), before);

    // ...so the study posted before the revocation still takes it (until the window
    // closes), which shows the refusal above is the study's minimum root.
    let scope = StudyScope::for_study(&key, earlier);
    let (status, enrolled) = enroll(
        &server,
        earlier,
        &request(&enrollee, &registry, 0, &issuers, scope),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
}

/// Waits out the root window, then sends the enrollment `body`: refused as
/// `root_expired`, and the study unchanged.
async fn refused_once_the_window_has_passed(
    server: &TestServer,
    study: u64,
    body: &Value,
    window_ms: u64,
) {
    tokio::time::sleep(std::time::Duration::from_millis(window_ms + 200)).await;
    let before = server.store().study(study).unwrap();
    let (status, error) = server
        .post(&format!("/studies/{study}/enroll"), None, body)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["code"], "root_expired");
    assert_eq!(server.store().study(study).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_revoked_during_a_study_stops_enrolling_once_the_window_has_passed() {
    const WINDOW_MS: u64 = 1_000;
    let (server, _folder) = server_with_window(WINDOW_MS).await;
    let study = funded_study(&server, 2, None).await;
    let enrollee = Enrollee::issue(ali_harris(), ISSUER_ACCOUNT, &mut StdRng::seed_from_u64(13));
    append(&server, ISSUER, &enrollee).await;
    let mut registry = RegistryTree::new(SHAPE.registry_depth).unwrap();
    registry.append(enrollee.leaf(SHAPE)).unwrap();
    let scope = StudyScope::for_study(&server.marketplace_key().await, study);
    let issuers = IssuerSet::new(&[ISSUER_ACCOUNT, OTHER_ISSUER], SHAPE.issuer_depth).unwrap();
    let proof = keys()
        .prove_with_rng(
            &request(&enrollee, &registry, 0, &issuers, scope),
            &mut StdRng::seed_from_u64(6),
        )
        .unwrap();
    let body = enroll_body(&proof, &Fr::from(40u64));

    let (status, revoked) = server
        .post("/registry/revoke", Some(ISSUER), &json!({"index": 0}))
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    refused_once_the_window_has_passed(&server, study, &body, WINDOW_MS).await;
}

/// A suspension reaches the studies already open: every leaf of the suspended issuer
/// is revoked in one new root, audited with the indices, so a record it issued proves
/// only against the roots before the suspension and stops enrolling once the window
/// has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_issuer_s_records_stop_enrolling_in_open_studies_after_the_window() {
    const WINDOW_MS: u64 = 1_000;
    let (server, _folder) = server_with_window(WINDOW_MS).await;
    let study = funded_study(&server, 2, None).await;
    let kept = Enrollee::issue(ali_harris(), ISSUER_ACCOUNT, &mut StdRng::seed_from_u64(15));
    let suspended = Enrollee::issue(ali_harris(), OTHER_ISSUER, &mut StdRng::seed_from_u64(16));
    append(&server, ISSUER, &kept).await;
    append(&server, OTHER_ISSUER_KEY, &suspended).await;
    let mut registry = RegistryTree::new(SHAPE.registry_depth).unwrap();
    registry.append(kept.leaf(SHAPE)).unwrap();
    registry.append(suspended.leaf(SHAPE)).unwrap();
    let scope = StudyScope::for_study(&server.marketplace_key().await, study);
    let issuers = IssuerSet::new(&[ISSUER_ACCOUNT, OTHER_ISSUER], SHAPE.issuer_depth).unwrap();
    let proof = keys()
        .prove_with_rng(
            &request(&suspended, &registry, 1, &issuers, scope),
            &mut StdRng::seed_from_u64(7),
        )
        .unwrap();
    let body = enroll_body(&proof, &Fr::from(40u64));

    let (status, answer) = server
        .post(
            "/admin/issuers/suspend",
            Some(OPERATOR),
            &json!({"issuer": hex::encode(OTHER_ISSUER)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let last = server.store().audit_entries(0, usize::MAX).unwrap();
    let AuditEvent::IssuerSuspended(suspension) = &last.last().unwrap().event else {
        panic!("the suspension is the last entry");
    };
    assert_eq!(suspension.revoked, vec![1]);
    registry.revoke(1).unwrap();
    assert_eq!(
        suspension.root.map(|root| root.root),
        Some(fr_to_bytes(&registry.root())),
        "one new root without the issuer's leaves"
    );
    let leaves = server.store().registry_leaves(0, 10).unwrap();
    assert_eq!(leaves[0], fr_to_bytes(&kept.leaf(SHAPE)));
    assert_eq!(leaves[1], [0u8; 32]);

    refused_once_the_window_has_passed(&server, study, &body, WINDOW_MS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_issuer_appends_nothing_and_later_studies_do_not_accept_it() {
    let (server, _folder) = server_with_two_issuers().await;
    let enrollee = Enrollee::issue(ali_harris(), OTHER_ISSUER, &mut StdRng::seed_from_u64(14));
    let body = records_body(&[appended_record(&enrollee.secret, &enrollee.record)]);
    let suspend = json!({"issuer": hex::encode(OTHER_ISSUER)});

    let (status, refused) = server
        .post("/admin/issuers/suspend", Some(ISSUER), &suspend)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, suspended) = server
        .post("/admin/issuers/suspend", Some(OPERATOR), &suspend)
        .await;
    assert_eq!(status, StatusCode::OK, "{suspended}");
    assert_eq!(suspended["newly_suspended"], true);
    let entries = server.store().audit_entries(0, usize::MAX).unwrap();
    assert!(matches!(
        &entries.last().unwrap().event,
        AuditEvent::IssuerSuspended(suspension) if suspension.issuer == OTHER_ISSUER
    ));

    let leaves_before = server.store().registry_len().unwrap();
    let (status, error) = server
        .post("/registry/records", Some(OTHER_ISSUER_KEY), &body)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert_eq!(error["error"]["code"], "issuer_suspended");
    assert_eq!(server.store().registry_len().unwrap(), leaves_before);

    let mut naming = study_body(2);
    naming["issuers"] = json!([hex::encode(OTHER_ISSUER)]);
    let (status, error) = server.post("/studies", Some(RESEARCHER), &naming).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["code"], "invalid_study");
    let (status, study) = server
        .post("/studies", Some(RESEARCHER), &study_body(2))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{study}");
    assert_eq!(study["issuers"], json!([hex::encode(ISSUER_ACCOUNT)]));

    let (status, again) = server
        .post("/admin/issuers/suspend", Some(OPERATOR), &suspend)
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["newly_suspended"], false);
    assert_eq!(
        server.store().audit_entries(0, usize::MAX).unwrap().len(),
        entries.len() + 1,
        "only the study was recorded since the suspension"
    );
}

/// The operator (who issues API keys) or anyone holding a researcher's API key cannot
/// move the researcher's tokens: funding needs the account key's signature for this
/// marketplace, once per order.
#[tokio::test]
async fn funding_without_the_account_holder_s_signature_is_refused() {
    let (server, _folder) = server_with_two_issuers().await;
    let id = posted_study(&server, 2, None).await;
    let researcher = public_key(7);
    let fund = |order: Value| {
        let server = &server;
        async move {
            server
                .post(&format!("/studies/{id}/fund"), Some(RESEARCHER), &order)
                .await
        }
    };

    // The API key with an order the operator signed with its own key.
    let operator_key = SigningKey::from_bytes(&[42; 32]);
    let forged = server.funding_order(&operator_key, id, 50).await;
    let (status, body) = fund(forged).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "bad_signature");
    // The API key with no signature at all.
    let (status, body) = fund(json!({"amount": 50})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // The researcher's own order, signed for another marketplace.
    let mut elsewhere = server.funding_order(&researcher_key(), id, 50).await;
    let order = FundStudy::sign(&researcher_key(), &[1; 32], id, 50, 0);
    elsewhere["signature"] = json!(hex::encode(order.signature));
    let (status, body) = fund(elsewhere).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(server.balance(&researcher).await, 100);

    // Signed by the researcher it funds once; the same order again is a replay.
    let order = server.funding_order(&researcher_key(), id, 50).await;
    let (status, body) = fund(order.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = fund(order).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "bad_nonce");
    assert_eq!(server.balance(&researcher).await, 50);
    server.store().check_conservation().unwrap();
}

/// A marketplace that books a funding on an order the researcher signed for another
/// marketplace (its store takes whatever key it is told) is caught by the sponsor:
/// the bundle's `funds` check verifies every funding's signature for the bundle's
/// marketplace key.
#[tokio::test]
async fn a_funding_the_researcher_did_not_sign_for_this_marketplace_fails_the_bundle() {
    let (server, _folder) = server_with_two_issuers().await;
    let id = posted_study(&server, 2, None).await;
    let researcher = public_key(7);
    server.fund(id, 10).await;
    let other_marketplace = [1; 32];
    let store = server.store();
    let order = FundStudy::sign(
        &researcher_key(),
        &other_marketplace,
        id,
        20,
        store.nonce(&researcher).unwrap(),
    );
    store
        .fund_escrow(id, researcher, &order, &other_marketplace)
        .unwrap();

    let config = server.state.config();
    let bundle = store
        .study_bundle(
            id,
            &BundleContext {
                audit_key: &config.audit_key,
                shape: SHAPE,
                verifying_key: keys().verifying_key(),
                setup: KeySetup::Development,
            },
        )
        .unwrap();
    let report = verify_bundle(&bundle, Some(&server.marketplace_key().await), None);
    let funds = report.check("funds").unwrap();
    assert!(!funds.passed, "{report:#?}");
    assert!(
        funds
            .detail
            .contains("is not the study researcher's signed order"),
        "{}",
        funds.detail
    );
    let failed: Vec<&str> = report.failures().map(|check| check.name.as_str()).collect();
    assert_eq!(failed, ["funds"]);
}

/// The operator cannot bind an API key to an account without its holder: the request
/// must carry the account's signature over the key's id, the role and this
/// marketplace. The holder draws the key, so the operator that forwards the request
/// never holds a key that acts as the account; a replayed request binds nothing, and the
/// whole log shows every binding's signature to an auditor.
#[tokio::test]
async fn an_api_key_is_bound_to_an_account_only_on_its_holder_s_signed_request() {
    let (server, _folder) = server_with_two_issuers().await;
    let marketplace = server.marketplace_key().await;
    let holder = SigningKey::from_bytes(&[21; 32]);
    let api_key = draw_api_key();
    let request = CreateApiKey::sign(&holder, &marketplace, ApiKeyRole::Issuer, &api_key);
    let operator_key = SigningKey::from_bytes(&[42; 32]);
    let create = |body: Value| {
        let server = &server;
        async move { server.post("/admin/api-keys", Some(OPERATOR), &body).await }
    };

    // The operator's own signature, the holder's for another marketplace or another
    // role, and a request with no signature.
    for forged in [
        CreateApiKey {
            possession: CreateApiKey::sign(
                &operator_key,
                &marketplace,
                ApiKeyRole::Issuer,
                &api_key,
            )
            .possession,
            ..request
        },
        CreateApiKey::sign(&holder, &[1; 32], ApiKeyRole::Issuer, &api_key),
        CreateApiKey {
            role: ApiKeyRole::Researcher,
            ..request
        },
    ] {
        let (status, body) = create(json!(forged)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "bad_signature");
    }
    let mut unsigned = json!(request);
    unsigned.as_object_mut().unwrap().remove("possession");
    let (status, body) = create(unsigned).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server.get_with_key("/registry/root", Some(&api_key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = append_with_key(&server, &api_key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no key was bound");

    let (status, created) = create(json!(request)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created.get("api_key").is_none(), "{created}");
    assert_eq!(
        created["account"],
        hex::encode(holder.verifying_key().to_bytes())
    );
    let (status, body) = append_with_key(&server, &api_key).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the holder's key works: {body}"
    );
    let (status, body) = create(json!(request)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "api_key_exists");

    let entries = server.store().audit_entries(0, usize::MAX).unwrap();
    let signed = server
        .store()
        .signed_audit_head(&SigningKey::from_bytes(&AUDIT_KEY_SEED))
        .unwrap();
    verify_log(&entries, &signed, Some(&marketplace)).unwrap();
}

/// Appends one fresh record of the holder's with `api_key`.
async fn append_with_key(server: &TestServer, api_key: &str) -> (StatusCode, Value) {
    let holder = SigningKey::from_bytes(&[21; 32]).verifying_key().to_bytes();
    let enrollee = Enrollee::issue(ali_harris(), holder, &mut StdRng::seed_from_u64(14));
    let body = records_body(&[appended_record(&enrollee.secret, &enrollee.record)]);
    server.post("/registry/records", Some(api_key), &body).await
}

/// An issuer key cannot flood the registry (junk leaves to crowd it, or to churn roots):
/// each issuer appends at most its allowance of records per minute, counted per issuer,
/// and a refused append changes nothing and says when to retry.
#[tokio::test]
async fn an_issuer_over_its_records_per_minute_is_refused_and_others_are_not() {
    let folder = tempfile::tempdir().unwrap();
    let store = Store::open(folder.path(), store_config()).unwrap();
    let mut keys_by_token: HashMap<String, Role> = api_keys(public_key(7));
    keys_by_token.insert(OTHER_ISSUER_KEY.into(), Role::Issuer(OTHER_ISSUER));
    let mut config = api_config(keys(), keys_by_token);
    config.limits.issuer_records_per_minute = std::num::NonZeroU32::new(3).unwrap();
    let server = TestServer::serve(store, config).await;
    let batch = |issuer: [u8; 32], seeds: std::ops::Range<u64>| {
        let records: Vec<_> = seeds
            .map(|seed| {
                let enrollee =
                    Enrollee::issue(ali_harris(), issuer, &mut StdRng::seed_from_u64(seed));
                appended_record(&enrollee.secret, &enrollee.record)
            })
            .collect();
        records_body(&records)
    };

    let (status, body) = server
        .post(
            "/registry/records",
            Some(ISSUER),
            &batch(ISSUER_ACCOUNT, 0..2),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let leaves = server.store().registry_len().unwrap();
    let audit = server.store().audit_head().unwrap();
    let response = reqwest::Client::new()
        .post(format!("http://{}/registry/records", server.addr()))
        .bearer_auth(ISSUER)
        .json(&batch(ISSUER_ACCOUNT, 2..4))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limited");
    assert_eq!(server.store().registry_len().unwrap(), leaves);
    assert_eq!(server.store().audit_head().unwrap(), audit);

    // More than the whole allowance at once can never pass: said as such.
    let (status, error) = server
        .post(
            "/registry/records",
            Some(OTHER_ISSUER_KEY),
            &batch(OTHER_ISSUER, 4..8),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["code"], "too_many_records");
    // The other issuer's allowance is its own.
    let (status, body) = server
        .post(
            "/registry/records",
            Some(OTHER_ISSUER_KEY),
            &batch(OTHER_ISSUER, 8..11),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
