//! `zkcohort serve` and ceremony keys: development keys are refused without
//! `--dev-unsafe-setup`; ceremony keys start, are announced with their transcript id and
//! served; a wallet downloads, checks and caches them, and refuses a served key of
//! another circuit or with a point off the curve (real HTTP on 127.0.0.1).

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::SeedableRng;
use sha2::{Digest, Sha256};
use zkcohort::client::MarketClient;
use zkcohort::keys::{
    load_served_circuit, load_served_circuits, marketplace_keys, ServedCircuit, ServedCircuits,
    SetupPolicy,
};
use zkcohort::patient::RemoteMarketplace;
use zkcohort::serve::Marketplace;
use zkcohort_prover::CircuitKeys;
use zkcohort_verifier::{CeremonyTranscript, KeySetup};

use crate::common::{ceremony_folder, copy_folder, ServerProcess, SHAPE};

fn refused(data: &Path) -> String {
    let output = ServerProcess::serve_command(data, false).output().unwrap();
    assert!(!output.status.success(), "serve started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn serve_refuses_keys_without_a_ceremony_transcript_unless_started_for_development() {
    let data = tempfile::tempdir().unwrap();
    let no_keys = refused(data.path());
    assert!(
        no_keys.contains("no circuit keys")
            && no_keys.contains("--dev-unsafe-setup")
            && no_keys.contains("zkcohort ceremony finalize"),
        "{no_keys}"
    );

    let server = ServerProcess::start(data.path());
    let info = server.client().marketplace().unwrap();
    assert_eq!(info.setup, KeySetup::Development);
    let (status, log) = server.terminate();
    assert!(status.success());
    assert!(log.contains("DEVELOPMENT SETUP"), "{log}");

    let development_keys = refused(data.path());
    assert!(
        development_keys.contains("has no ceremony transcript")
            && development_keys.contains("--dev-unsafe-setup")
            && development_keys.contains("zkcohort ceremony finalize"),
        "{development_keys}"
    );
}

#[test]
fn serve_starts_on_ceremony_keys_and_a_wallet_downloads_checks_and_caches_them() {
    let data = tempfile::tempdir().unwrap();
    let keys_dir = data.path().join("keys");
    copy_folder(ceremony_folder(), &keys_dir);
    let served = load_served_circuit(SHAPE, &keys_dir, SetupPolicy::CeremonyOnly).unwrap();
    let KeySetup::Ceremony { transcript_id } = served.setup else {
        panic!("not ceremony keys");
    };

    let server = ServerProcess::start_command(ServerProcess::serve_command(data.path(), false));
    let client = server.client();
    let market = RemoteMarketplace::fetch(&client).unwrap();
    assert_eq!(market.info.setup, served.setup);
    assert_eq!(market.info.circuit_id, served.keys.circuit_id());

    let id = market.info.circuit_id;
    let key = client
        .download(&format!("/circuits/{id}/proving-key"), |_, _| {})
        .unwrap();
    assert_eq!(key.bytes, served.proving_key_file);
    assert_eq!(
        key.checksum.unwrap(),
        hex::encode(Sha256::digest(&key.bytes))
    );
    let transcript = client
        .download(&format!("/circuits/{id}/transcript"), |_, _| {})
        .unwrap();
    assert_eq!(
        CeremonyTranscript::read(&transcript.bytes).unwrap().id,
        transcript_id
    );

    let wallet = tempfile::tempdir().unwrap();
    let downloaded =
        marketplace_keys(&client, &market.eligibility_circuit(), wallet.path(), false).unwrap();
    assert_eq!(downloaded.circuit_id(), id);
    // The note-transfer circuit comes from the same ceremony path, and downloads the same way.
    assert!(matches!(market.info.note_setup, KeySetup::Ceremony { .. }));
    let note_keys =
        marketplace_keys(&client, &market.note_circuit(), wallet.path(), false).unwrap();
    assert_eq!(note_keys.circuit_id(), market.info.note_circuit_id);
    assert_ne!(market.info.note_circuit_id, id);
    let cache = wallet.path().join("keys").join(id.to_string());
    assert!(CircuitKeys::proving_key_path(&cache, SHAPE).exists());
    assert!(cache.join("transcript.bin").exists());
    let (status, log) = server.terminate();
    assert!(status.success());
    assert!(
        log.contains(&format!("ceremony transcript {transcript_id}")),
        "{log}"
    );
    // The server is gone: the cache answers.
    let cached =
        marketplace_keys(&client, &market.eligibility_circuit(), wallet.path(), false).unwrap();
    assert_eq!(cached.circuit_id(), id);

    // Keys that are not the transcript's output are refused at start.
    let other = CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(9)).unwrap();
    other.save(&keys_dir).unwrap();
    let mismatch = refused(data.path());
    assert!(mismatch.contains("not this ceremony's keys"), "{mismatch}");
}

/// The wallet's error when the marketplace serves `proving_key_file` for the
/// ceremony keys' circuit, and whether anything was cached.
fn refusal_of(proving_key_file: Vec<u8>) -> (String, bool) {
    let keys_dir = ceremony_folder();
    let served = load_served_circuits(SHAPE, keys_dir, SetupPolicy::CeremonyOnly).unwrap();
    let data = tempfile::tempdir().unwrap();
    let circuits = ServedCircuits {
        eligibility: ServedCircuit {
            proving_key_file,
            ..served.eligibility
        },
        ..served
    };
    let running =
        Marketplace::open_with_circuit(data.path(), &circuits, zkcohort::serve::Rules::default())
            .unwrap()
            .spawn("127.0.0.1:0")
            .unwrap();
    let client = MarketClient::new(running.url()).unwrap();
    let market = RemoteMarketplace::fetch(&client).unwrap();
    let wallet = tempfile::tempdir().unwrap();
    let error = marketplace_keys(&client, &market.eligibility_circuit(), wallet.path(), false)
        .err()
        .expect("the key was accepted");
    running.stop().unwrap();
    let cached = wallet
        .path()
        .join("keys")
        .join(market.info.circuit_id.to_string())
        .exists();
    (format!("{error:#}"), cached)
}

#[test]
fn a_wallet_refuses_a_served_key_of_another_circuit_or_with_a_point_off_the_curve() {
    let other_folder = tempfile::tempdir().unwrap();
    let other: PathBuf = CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(5))
        .unwrap()
        .save(other_folder.path())
        .unwrap();
    let (error, cached) = refusal_of(std::fs::read(other).unwrap());
    assert!(
        error.contains("is refused") && error.contains("the announced circuit is"),
        "{error}"
    );
    assert!(!cached);

    // α·G1 (the payload's first point, after the verifying key's length) moved off the
    // curve, the file's own checksum recomputed so only the point check can catch it.
    let mut file = std::fs::read(CircuitKeys::proving_key_path(ceremony_folder(), SHAPE)).unwrap();
    const HEADER: usize = zkcohort_prover::keys::HEADER;
    file[HEADER + 8] ^= 1;
    let checksum = Sha256::digest(&file[HEADER..]);
    file[HEADER - 32..HEADER].copy_from_slice(&checksum);
    let (error, cached) = refusal_of(file);
    assert!(
        error.contains("is refused") && error.contains("off the curve"),
        "{error}"
    );
    assert!(!cached);
}

/// `zkcohort ceremony verify`, piped: a line with its time for every step (each
/// contribution of each phase, the powers, the queries), then the verdict.
#[test]
fn a_piped_ceremony_verify_reports_each_step_on_a_timestamped_line() {
    let folder = ceremony_folder();
    let transcript = |extension: &str| {
        std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| {
                path.extension().is_some_and(|found| found == extension)
                    && path
                        .file_name()
                        .is_some_and(|name| name.to_string_lossy().starts_with("note-"))
            })
            .unwrap_or_else(|| panic!("no note-circuit .{extension} in {}", folder.display()))
    };
    let (phase1, zkey) = (transcript("ptau"), transcript("zkey"));
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "ceremony",
            "verify",
            "--circuit",
            "note",
            "--phase1",
            phase1.to_str().unwrap(),
            "--zkey",
            zkey.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        crate::common::zkcohort(&args)
    };
    let output = verify(&[]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("transcript OK"),
        "{log}"
    );
    let steps = [
        "phase 1: contribution 1 of 1 (\"test\") checked",
        "phase 1: checking the 2^",
        "phase 2: contribution 1 of 1 (\"test\") checked",
        "phase 2: checking the A, B, C, H and L queries",
    ];
    let mut at = 0;
    for step in steps {
        let found = log.lines().skip(at).position(|line| line.contains(step));
        let index = at + found.unwrap_or_else(|| panic!("no step {step:?} (in order) in:\n{log}"));
        let line = log.lines().nth(index).unwrap();
        assert!(
            line.starts_with("20") && line.contains('T'),
            "a step's line carries its time: {line}"
        );
        at = index + 1;
    }

    let verdict = verify(&["--json"]);
    assert!(verdict.status.success());
    let verdict: serde_json::Value = serde_json::from_slice(&verdict.stdout).unwrap();
    assert_eq!(
        (
            &verdict["valid"],
            &verdict["phase1_contributions"],
            &verdict["phase2_contributions"]
        ),
        (
            &serde_json::json!(true),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{verdict}"
    );
}
