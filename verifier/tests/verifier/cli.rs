//! `zkcohort-verify` on files: a real eligibility proof (small circuit shape,
//! Synthea fixture) written as snarkjs JSON verifies with exit status 0; a
//! changed input exits 1; malformed files exit 2 with an error naming the file
//! and field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ark_bn254::Bn254;
use ark_groth16::Groth16;
use ark_snark::SNARK;
use rand::{rngs::StdRng, SeedableRng};
use serde_json::{json, Value};
use zkcohort_circuits::circuit::{CircuitShape, EligibilityCircuit};
use zkcohort_circuits::identity::{signal_hash, StudyScope};
use zkcohort_circuits::Fr;
use zkcohort_testkit::{compile, fixture, Enrollee, TestRegistry, ISSUER};
use zkcohort_verifier::snarkjs::{proof_to_json, statement_to_json, verifying_key_to_json};
use zkcohort_verifier::{Proof, Statement, VerifyingKey};

const SHAPE: CircuitShape = CircuitShape::SMALL;

/// A real eligibility proof: Ali Harris (Synthea) has hypertension, his issued
/// record sits in a registry among other leaves.
fn eligibility_proof() -> (VerifyingKey<Bn254>, Statement, Proof<Bn254>) {
    let query = compile("index date 2021-01-01\nrequire condition hypertension");
    let mut rng = StdRng::seed_from_u64(42);
    let enrollee = Enrollee::issue(fixture("Ali_Harris"), ISSUER, &mut rng);
    let mut registry = TestRegistry::new(SHAPE);
    for other in 1..=5u64 {
        registry.other_leaf(other);
    }
    let index = registry.register(&enrollee);
    registry.other_leaf(99);
    let witness = registry.witness(&enrollee, index, &query);
    let scope = StudyScope(Fr::from(11u64));
    let statement = witness.statement(scope, signal_hash(Fr::from(3u64), scope));

    let (proving_key, vk) =
        Groth16::<Bn254>::circuit_specific_setup(EligibilityCircuit::blank(SHAPE), &mut rng)
            .unwrap();
    let proof = Groth16::<Bn254>::prove(
        &proving_key,
        EligibilityCircuit::new(SHAPE, statement, witness),
        &mut rng,
    )
    .unwrap();
    (vk, statement, proof)
}

struct Files {
    _dir: tempfile::TempDir,
    vk: PathBuf,
    proof: PathBuf,
    public: PathBuf,
}

fn write(vk: &str, proof: &str, public: &str) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Files {
        vk: path("verification_key.json", vk),
        proof: path("proof.json", proof),
        public: path("public.json", public),
        _dir: dir,
    }
}

fn run(files: &Files) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkcohort-verify"))
        .arg("proof")
        .arg("--vk")
        .arg(&files.vk)
        .arg("--proof")
        .arg(&files.proof)
        .arg("--public")
        .arg(&files.public)
        .output()
        .unwrap()
}

fn edit(text: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(text).unwrap();
    change(&mut value);
    value.to_string()
}

#[test]
fn the_binary_checks_a_real_eligibility_proof() {
    let (vk, statement, proof) = eligibility_proof();
    let (vk, proof, public) = (
        verifying_key_to_json(&vk),
        proof_to_json(&proof),
        statement_to_json(&statement),
    );

    let output = run(&write(&vk, &proof, &public));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.trim_end().ends_with("VALID"), "{stdout}");
    for (name, value) in zkcohort_verifier::PUBLIC_INPUT_NAMES
        .iter()
        .zip(statement.to_decimal_strings())
    {
        assert!(
            stdout.contains(name) && stdout.contains(&value),
            "{name}: {stdout}"
        );
    }

    // Another nullifier: a well-formed statement the proof does not prove.
    let mut other = statement;
    other.nullifier.0 += Fr::from(1u64);
    let output = run(&write(&vk, &proof, &statement_to_json(&other)));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.trim_end().ends_with("INVALID"), "{stdout}");

    // Malformed input: exit 2, the error names the file and the field.
    let off_curve = edit(&proof, |json| {
        json["pi_a"][1] = json!("1");
    });
    let short = edit(&public, |json| {
        json.as_array_mut().unwrap().pop();
    });
    let wrong_key = edit(&vk, |json| json["nPublic"] = json!(4));
    let cases = [
        (write(&vk, &off_curve, &public), vec!["proof.json", "pi_a"]),
        (
            write(&vk, &proof, &short),
            vec!["public.json", "6 public signals"],
        ),
        (
            write(&wrong_key, &proof, &public),
            vec!["verification_key.json", "nPublic"],
        ),
        (write(&vk, "{", &public), vec!["proof.json", "JSON"]),
    ];
    for (files, words) in cases {
        let output = run(&files);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        for word in words {
            assert!(stderr.contains(word), "{word}: {stderr}");
        }
    }
    let mut missing = write(&vk, &proof, &public);
    missing.proof = missing.vk.with_file_name("absent.json");
    assert_eq!(run(&missing).status.code(), Some(2));
}

#[test]
fn the_binary_accepts_the_snarkjs_vector_files_only_as_eligibility_statements() {
    // A snarkjs key for two inputs is well-formed, but not for our statement.
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let read = |name: &str| std::fs::read_to_string(vectors.join(name)).unwrap();
    let files = write(
        &read("snarkjs_verification_key.json"),
        &read("snarkjs_proof.json"),
        &read("snarkjs_public.json"),
    );
    let output = run(&files);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not an eligibility statement"), "{stderr}");
}
