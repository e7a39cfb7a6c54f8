//! Study bundles end to end: a real server on 127.0.0.1 over a sled store in a
//! temporary folder, real small-shape Groth16 proofs of fixture patients,
//! `GET /studies/{id}/bundle`, `verify_bundle` and the `zkcohort-verify`
//! binary on the written file. The bundle made here is the verifier's committed
//! vector (`ZKCOHORT_WRITE_VECTORS=1` rewrites it), on which the verifier's own tests
//! tamper.

use std::path::{Path, PathBuf};
use std::process::Command;

use ed25519_dalek::SigningKey;
use rand::{rngs::StdRng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zkcohort_circuits::identity::StudyScope;
use zkcohort_circuits::registry::{MembershipPath, RegistryTree};
use zkcohort_circuits::statement::fr_to_hex;
use zkcohort_circuits::Fr;
use zkcohort_circuits::TranscriptId;
use zkcohort_cohort::{Catalog, Query};
use zkcohort_market::bundle::BundleContext;
use zkcohort_prover::{CircuitKeys, ProofRequest};
use zkcohort_verifier::bundle::{BundleReport, StudyBundle};
use zkcohort_verifier::records::StudyStatus;
use zkcohort_verifier::setup::{split_transcript, transcript_file};
use zkcohort_verifier::snarkjs::proof_to_json;
use zkcohort_verifier::verify_bundle;
use zkcohort_verifier::{CeremonyTranscript, KeySetup};

use crate::common::{
    appended_record, eligible_patients, records_body, study_body, test_issuers,
    TestServer as Server, AUDIT_KEY_SEED as AUDIT_KEY, ISSUER, QUERY, RESEARCHER, REWARD, SHAPE,
};

/// The `zkcohort-verify` binary of this build (`cargo build --release -p
/// zkcohort-verifier` puts it next to this test's folder).
fn verifier_binary() -> PathBuf {
    // Cargo builds only this package's binaries for its tests: build the
    // verifier's, in this test's profile and target folder, so it is never
    // a stale one.
    let test = std::env::current_exe().unwrap();
    let profile = test.parent().and_then(Path::parent).unwrap();
    let target = profile.parent().unwrap();
    let mut build = Command::new(env!("CARGO"));
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "zkcohort-verifier",
            "--bin",
            "zkcohort-verify",
        ])
        .arg("--target-dir")
        .arg(target);
    if profile.file_name().is_some_and(|name| name == "release") {
        build.arg("--release");
    }
    assert!(
        build.status().unwrap().success(),
        "building zkcohort-verify"
    );
    profile.join(format!("zkcohort-verify{}", std::env::consts::EXE_SUFFIX))
}

/// Runs `zkcohort-verify` and returns its exit code and standard output.
fn run_cli(args: &[&str]) -> (i32, String) {
    let output = Command::new(verifier_binary()).args(args).output().unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

/// Asserts that `report` is invalid and that check `name` failed for a
/// reason that contains `reason`.
fn assert_rejected(report: &BundleReport, name: &str, reason: &str) {
    assert!(!report.valid, "accepted: {report:#?}");
    let check = report.check(name).unwrap();
    assert!(!check.passed, "{name} passed: {report:#?}");
    assert!(
        check.detail.contains(reason),
        "{name}: {:?} does not say {reason:?}",
        check.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_study_bundle_verifies_offline_and_every_tampering_is_named() {
    let keys = CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(1)).unwrap();
    let researcher = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
    let marketplace_key = SigningKey::from_bytes(&AUDIT_KEY)
        .verifying_key()
        .to_bytes();
    let server = Server::start(&keys, researcher).await;

    let catalog = Catalog::bundled();
    let query = Query::parse(QUERY, catalog)
        .unwrap()
        .compile(catalog)
        .unwrap();
    let patients = eligible_patients(&query, 3);

    // The researcher posts the study and funds it twice.
    let study = study_body(5);
    let (status, created) = server.post("/studies", Some(RESEARCHER), &study).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let study_id = created["id"].as_u64().unwrap();
    server.mint(&researcher, 100).await;
    for amount in [25, 20] {
        server.fund(study_id, amount).await;
    }

    // Then the issuer registers the first patient, then the others: two roots, both
    // newer than the study, the first still within the window when its patient enrolls.
    let leaves: Vec<_> = patients
        .iter()
        .map(|(secret, record)| {
            record
                .registry_leaf(secret.commitment(), SHAPE.slot_depth)
                .unwrap()
        })
        .collect();
    let mut registry = RegistryTree::new(SHAPE.registry_depth).unwrap();
    let mut paths: Vec<MembershipPath> = Vec::new();
    let records: Vec<_> = patients
        .iter()
        .map(|(secret, record)| appended_record(secret, record))
        .collect();
    for (batch, batch_records) in [(&leaves[..1], &records[..1]), (&leaves[1..], &records[1..])] {
        let (status, body) = server
            .post(
                "/registry/records",
                Some(ISSUER),
                &records_body(batch_records),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        for leaf in batch {
            registry.append(*leaf).unwrap();
        }
        while paths.len() < registry.len() as usize {
            paths.push(registry.path(paths.len() as u64).unwrap());
        }
    }

    // Each patient proves and enrolls.
    let scope = StudyScope::for_study(&marketplace_key, study_id);
    let mut openings = Vec::new();
    for (number, ((secret, record), path)) in patients.iter().zip(&paths).enumerate() {
        let receiver = Fr::from(20 + number as u64);
        let request = ProofRequest {
            secret: secret.clone(),
            record: record.clone(),
            registry_path: path.clone(),
            issuers: test_issuers(),
            query: query.clone(),
            study_scope: scope,
            reward_receiver: receiver,
        };
        let proof = keys
            .prove_with_rng(&request, &mut StdRng::seed_from_u64(3 + number as u64))
            .unwrap();
        let body = json!({
            "proof": serde_json::from_str::<Value>(&proof_to_json(&proof.proof)).unwrap(),
            "registry_root": fr_to_hex(&proof.statement.registry_root),
            "nullifier": fr_to_hex(&proof.statement.nullifier.0),
            "reward_receiver": fr_to_hex(&receiver),
            "measure_opening": proof.measure_opening,
        });
        openings.push(proof.measure_opening.clone());
        let (status, answer) = server
            .post(&format!("/studies/{study_id}/enroll"), None, &body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let enrolled = patients.len();

    // Fetch, verify in-process and with the binary.
    let (bundle, text) = server.bundle(study_id).await;
    let (status, head) = server.get_text("/audit/head").await;
    assert_eq!(status, StatusCode::OK);
    let head: Value = serde_json::from_str(&head).unwrap();
    let report = verify_bundle(&bundle, Some(&marketplace_key), None);
    assert!(report.valid, "{report:#?}");
    assert_eq!(report.enrollments, enrolled);
    assert_eq!(report.proofs_verified, enrolled);
    assert_eq!(report.tokens_paid, REWARD * enrolled as u64);
    assert_eq!(report.tokens_funded, 45);
    assert_eq!(report.head_size, head["head"]["size"].as_u64().unwrap());
    assert_eq!(report.marketplace_key, hex::encode(marketplace_key));
    assert_eq!(report.failures().count(), 0);
    // study_created, 2 fundings, the enrollments, 2 registry entries.
    assert_eq!(report.audit_entries_verified, 3 + enrolled + 2);
    assert!(report.check("roots_used").unwrap().detail.starts_with("2 "));
    assert_eq!(StudyBundle::from_json(&bundle.to_json()).unwrap(), bundle);

    // The marketplace kept each enrollment's measure values (age band and sex, known for
    // every patient), apart from the public enrollments: no blinding is in the bundle, so
    // nobody can test a guess of someone's values against its commitment.
    let mut sent: Vec<Vec<u64>> = openings
        .iter()
        .map(|opening| opening.values.clone())
        .collect();
    assert!(
        sent.iter().all(|values| values[0] > 0 && values[1] > 0),
        "{sent:?}"
    );
    sent.sort();
    let mut stored = server.store().measure_values(study_id).unwrap();
    stored.sort();
    assert_eq!(stored, sent);
    for opening in &openings {
        let blinding = serde_json::to_value(opening).unwrap()["blinding"].clone();
        assert!(!text.contains(blinding.as_str().unwrap()));
    }

    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("bundle.json");
    std::fs::write(&file, &text).unwrap();
    let file = file.to_str().unwrap();
    let key_hex = hex::encode(marketplace_key);
    let (code, out) = run_cli(&["bundle", file, "--marketplace-key", &key_hex]);
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().any(|line| line == "VALID"), "{out}");
    // Unpinned, the bundle is only checked against the key it carries, which a forger
    // writes too: not accepted unless asked for.
    let (code, out) = run_cli(&[file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines().any(|line| line == "VALID")
            && out.lines().last().unwrap().starts_with("UNPINNED"),
        "{out}"
    );
    let (code, out) = run_cli(&[file, "--allow-unpinned"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("UNPINNED"), "{out}");
    let (code, out) = run_cli(&[file, "--json"]);
    assert_eq!(code, 1, "{out}");
    let (code, out) = run_cli(&[file, "--json", "--marketplace-key", &key_hex]);
    assert_eq!(code, 0, "{out}");
    let from_cli: BundleReport = serde_json::from_str(&out).unwrap();
    assert_eq!(from_cli.enrollments, enrolled);
    let (code, out) = run_cli(&[file, "--marketplace-key", &hex::encode([1u8; 32])]);
    assert_eq!(code, 1, "{out}");
    assert!(out.lines().any(|line| line == "INVALID"), "{out}");
    let garbage = folder.path().join("garbage.json");
    std::fs::write(&garbage, "{\"format\": 1}").unwrap();
    assert_eq!(run_cli(&[garbage.to_str().unwrap()]).0, 2);
    assert_eq!(run_cli(&["/nonexistent/bundle.json"]).0, 2);

    // The verifier tests its tamper cases on this bundle, committed as a vector.
    let vector =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../verifier/tests/vectors/bundle.json");
    if std::env::var_os("ZKCOHORT_WRITE_VECTORS").is_some() {
        std::fs::write(&vector, bundle.to_json() + "\n").unwrap();
    }
    let committed = StudyBundle::from_json(&std::fs::read_to_string(&vector).unwrap()).unwrap();
    assert_eq!(
        (committed.format, committed.study.query.clone(), committed.enrollments.len()),
        (bundle.format, bundle.study.query.clone(), bundle.enrollments.len()),
        "the committed bundle vector is of another form: rewrite it (see verifier/tests/vectors/README.md)"
    );
    assert!(
        verify_bundle(&committed, Some(&committed.marketplace_key), None).valid,
        "the committed bundle vector no longer verifies: rewrite it"
    );

    // Closed, with the remainder refunded: the new bundle still verifies.
    let (status, closed) = server
        .post(
            &format!("/studies/{study_id}/close"),
            Some(RESEARCHER),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let (closed_bundle, _) = server.bundle(study_id).await;
    let report = verify_bundle(&closed_bundle, Some(&marketplace_key), None);
    assert!(report.valid, "{report:#?}");
    assert_eq!(closed_bundle.study.status, StudyStatus::Closed);
    let report = verify_bundle(
        &StudyBundle {
            study: bundle.study.clone(),
            ..closed_bundle
        },
        Some(&marketplace_key),
        None,
    );
    assert_rejected(
        &report,
        "study_record",
        "open but the log records it closed",
    );

    let (status, error) = server.get_text("/studies/99/bundle").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");

    server.stop().await;
}

/// A one-file transcript whose final state is `keys`' (the `.zkey` the prover writes
/// for them, after a stand-in phase 1: the verifier hashes phase 1 and reads only the
/// zkey's verifying key).
fn transcript_of(keys: &CircuitKeys, phase1: &[u8]) -> (Vec<u8>, CeremonyTranscript) {
    let folder = tempfile::tempdir().unwrap();
    let files = zkcohort_prover::circom::export_circom(keys, folder.path(), None).unwrap();
    let file = transcript_file(phase1, &std::fs::read(files.zkey).unwrap());
    let transcript = CeremonyTranscript::read(&file).unwrap();
    (file, transcript)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_names_its_setup_and_is_checked_against_a_pinned_transcript() {
    let keys = crate::common::keys();
    let researcher = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
    let marketplace_key = SigningKey::from_bytes(&AUDIT_KEY)
        .verifying_key()
        .to_bytes();
    let server = Server::start(keys, researcher).await;
    let (status, created) = server
        .post("/studies", Some(RESEARCHER), &study_body(5))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let study_id = created["id"].as_u64().unwrap();

    // The verifier reads the key out of the prover's zkey: the same key.
    let (file, transcript) = transcript_of(keys, b"phase 1");
    assert_eq!(&transcript.verifying_key, keys.verifying_key());
    assert_eq!(
        transcript.id,
        TranscriptId::of(b"phase 1", split_transcript(&file).unwrap().1)
    );

    // The test server's keys are a development setup: its bundle says so, verifies
    // unpinned (reported), and fails against a transcript.
    let (development, text) = server.bundle(study_id).await;
    assert_eq!(development.setup, KeySetup::Development);
    let report = verify_bundle(&development, Some(&marketplace_key), None);
    assert!(report.valid, "{report:#?}");
    assert!(report
        .check("setup")
        .unwrap()
        .detail
        .contains("DEVELOPMENT SETUP"));
    assert_rejected(
        &verify_bundle(&development, Some(&marketplace_key), Some(&transcript)),
        "setup",
        "development setup, not ceremony",
    );

    // A ceremony bundle against its transcript, another transcript, another key's.
    let ceremony_bundle = |transcript_id| {
        let config = server.state.config();
        server
            .store()
            .study_bundle(
                study_id,
                &BundleContext {
                    audit_key: &config.audit_key,
                    shape: SHAPE,
                    verifying_key: keys.verifying_key(),
                    setup: KeySetup::Ceremony { transcript_id },
                },
            )
            .unwrap()
    };
    let bundle = ceremony_bundle(transcript.id);
    let report = verify_bundle(&bundle, Some(&marketplace_key), Some(&transcript));
    assert!(report.valid, "{report:#?}");
    let (_, other) = transcript_of(keys, b"another phase 1");
    assert_rejected(
        &verify_bundle(&bundle, Some(&marketplace_key), Some(&other)),
        "setup",
        &format!("the pinned transcript is {}", other.id),
    );
    let other_keys = CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(2)).unwrap();
    let (other_file, other_circuit) = transcript_of(&other_keys, b"phase 1");
    assert_rejected(
        &verify_bundle(
            &ceremony_bundle(other_circuit.id),
            Some(&marketplace_key),
            Some(&other_circuit),
        ),
        "setup",
        "is not the transcript's output",
    );

    // The binary: --transcript pins it; a development bundle is announced loudly.
    let folder = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = folder.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let bundle_file = write("ceremony.json", bundle.to_json().as_bytes());
    let transcript_path = write("transcript.bin", &file);
    let key_hex = hex::encode(marketplace_key);
    let pinned = |file: &str, transcript: &str| {
        run_cli(&[
            "bundle",
            file,
            "--marketplace-key",
            &key_hex,
            "--transcript",
            transcript,
        ])
    };
    let (code, out) = pinned(&bundle_file, &transcript_path);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("output of the pinned ceremony transcript") && !out.contains("WARNING"),
        "{out}"
    );
    let other_path = write("other.bin", &other_file);
    let (code, out) = pinned(&bundle_file, &other_path);
    assert_eq!(code, 1, "{out}");
    let development_file = write("development.json", text.as_bytes());
    let (code, out) = run_cli(&[&development_file, "--marketplace-key", &key_hex]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("WARNING: DEVELOPMENT SETUP")
            && out
                .trim_end()
                .ends_with("could forge every proof in this bundle"),
        "{out}"
    );
    let broken = write("broken.bin", &file[..file.len() - 1]);
    let output = Command::new(verifier_binary())
        .args(["bundle", &bundle_file, "--transcript", &broken])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("truncated"));
    server.stop().await;
}
