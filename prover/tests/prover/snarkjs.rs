//! snarkjs as a second implementation: it reads our `.r1cs`, `.wtns` and `.zkey`,
//! proves with our key and witness (the proof verifies in `zkcohort-verifier`), and
//! verifies our proofs with the verifying key it exports from our `.zkey`.
//!
//! Needs snarkjs in `node_modules` at the repository root: `.ci/run` installs it
//! with `npm install --no-save --no-audit --no-fund snarkjs@0.7.6`. Small shape.

use std::path::Path;
use std::time::Instant;

use crate::common::{keys, request, snarkjs, SHAPE};
use ark_bn254::Fr;
use ark_groth16::Proof;
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, SynthesisError, SynthesisMode,
};
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::EligibilityCircuit;
use zkcohort_circuits::identity::Nullifier;
use zkcohort_circuits::statement::{Statement, PUBLIC_INPUTS};
use zkcohort_prover::circom::{export_circom, full_assignment, CircomFiles};
use zkcohort_prover::ProverError;
use zkcohort_verifier::snarkjs;

/// The files for the fixture request in a fresh folder.
fn export(folder: &Path) -> (Statement, CircomFiles) {
    let (statement, witness) = request().build(SHAPE, Fr::from(7u64)).unwrap();
    let files = export_circom(keys(), folder, Some((statement, witness))).unwrap();
    (statement, files)
}

/// The wire and constraint counts of the shape, from arkworks directly.
fn circuit_size() -> (usize, usize) {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Setup);
    EligibilityCircuit::blank(SHAPE)
        .generate_constraints(cs.clone())
        .unwrap();
    cs.finalize();
    (
        cs.num_instance_variables() + cs.num_witness_variables(),
        cs.num_constraints(),
    )
}

#[test]
fn snarkjs_reads_our_r1cs_and_checks_our_witness() {
    let folder = tempfile::tempdir().unwrap();
    let (statement, files) = export(folder.path());
    let (wires, constraints) = circuit_size();

    let info = snarkjs(folder.path(), &["r1cs", "info", "circuit.r1cs"]);
    assert!(info.success, "{}", info.output);
    eprintln!("snarkjs r1cs info:\n{}", info.output.trim_end());
    for line in [
        "Curve: bn-128".to_string(),
        format!("# of Wires: {wires}"),
        format!("# of Constraints: {constraints}"),
        "# of Private Inputs: 0".to_string(),
        format!("# of Public Inputs: {PUBLIC_INPUTS}"),
        format!("# of Labels: {wires}"),
        "# of Outputs: 0".to_string(),
    ] {
        assert!(
            info.output.contains(&line),
            "no {line:?} in\n{}",
            info.output
        );
    }

    let check = snarkjs(
        folder.path(),
        &["wtns", "check", "circuit.r1cs", "witness.wtns"],
    );
    assert!(check.success, "{}", check.output);
    assert!(
        check.output.contains("WITNESS IS CORRECT"),
        "{}",
        check.output
    );

    // The nullifier (wire 4) plus one: snarkjs must find a violated constraint.
    let witness_path = files.witness.unwrap();
    let mut tampered = std::fs::read(&witness_path).unwrap();
    let values = tampered.len() - wires * 32;
    tampered[values + 4 * 32] ^= 1;
    std::fs::write(&witness_path, tampered).unwrap();
    let check = snarkjs(
        folder.path(),
        &["wtns", "check", "circuit.r1cs", "witness.wtns"],
    );
    assert!(!check.success, "{}", check.output);
    assert!(
        check.output.contains("WITNESS IS NOT CORRECT"),
        "{}",
        check.output
    );

    // A statement that is not the witness's writes no witness file at all.
    let (_, witness) = request().build(SHAPE, Fr::from(7u64)).unwrap();
    let wrong = Statement {
        nullifier: Nullifier(statement.nullifier.0 + Fr::from(1u64)),
        ..statement
    };
    assert!(matches!(
        full_assignment(keys(), wrong, witness),
        Err(ProverError::Synthesis(SynthesisError::Unsatisfiable))
    ));
}

#[test]
fn snarkjs_proves_with_our_zkey_and_verifies_our_proofs() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let (statement, _) = export(dir);
    let keys = keys();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();

    // snarkjs reads our key and exports the verifying key we have.
    let exported = snarkjs(
        dir,
        &[
            "zkey",
            "export",
            "verificationkey",
            "circuit.zkey",
            "vk.json",
        ],
    );
    assert!(exported.success, "{}", exported.output);
    let vk = snarkjs::verifying_key_from_json(&read("vk.json")).unwrap();
    assert_eq!(&vk, keys.verifying_key());

    // snarkjs proves with our key and witness; the proof verifies in zkcohort-verifier.
    let started = Instant::now();
    let proved = snarkjs(
        dir,
        &[
            "groth16",
            "prove",
            "circuit.zkey",
            "witness.wtns",
            "proof.json",
            "public.json",
        ],
    );
    let snarkjs_time = started.elapsed();
    assert!(proved.success, "{}", proved.output);
    assert_eq!(
        snarkjs::statement_from_json(&read("public.json")).unwrap(),
        statement
    );
    let theirs = snarkjs::proof_from_json(&read("proof.json")).unwrap();
    let prepared = zkcohort_verifier::prepare_verifying_key(&vk);
    assert!(zkcohort_verifier::verify(&prepared, &statement, &theirs).unwrap());

    // snarkjs verifies our proof, and refuses a tampered proof or statement.
    let (_, witness) = request().build(SHAPE, Fr::from(7u64)).unwrap();
    let started = Instant::now();
    let ours = keys
        .prove_witness(statement, witness, &mut StdRng::seed_from_u64(3))
        .unwrap();
    let our_time = started.elapsed();
    eprintln!(
        "small shape: snarkjs groth16 prove {:.2} s (whole process), ours {:.3} s (prove_witness)",
        snarkjs_time.as_secs_f64(),
        our_time.as_secs_f64()
    );
    let verify = |proof: &Proof<ark_bn254::Bn254>, statement: &Statement| {
        std::fs::write(dir.join("ours.json"), snarkjs::proof_to_json(proof)).unwrap();
        std::fs::write(
            dir.join("ours-public.json"),
            snarkjs::statement_to_json(statement),
        )
        .unwrap();
        let outcome = snarkjs(
            dir,
            &[
                "groth16",
                "verify",
                "vk.json",
                "ours-public.json",
                "ours.json",
            ],
        );
        assert_eq!(
            outcome.success,
            outcome.output.contains("OK!"),
            "{}",
            outcome.output
        );
        outcome.success
    };
    assert!(verify(&ours, &statement));
    let mixed = Proof {
        a: theirs.a,
        ..ours.clone()
    };
    assert!(!verify(&mixed, &statement));
    let other_nullifier = Statement {
        nullifier: Nullifier(statement.nullifier.0 + Fr::from(1u64)),
        ..statement
    };
    assert!(!verify(&ours, &other_nullifier));

    // A tampered verifying key (alpha replaced by another valid curve point) is refused
    // by both verifiers.
    assert!(verify(&ours, &statement), "the honest files again");
    let mut tampered: serde_json::Value = serde_json::from_str(&read("vk.json")).unwrap();
    tampered["vk_alpha_1"] = tampered["IC"][1].clone();
    tampered.as_object_mut().unwrap().remove("vk_alphabeta_12");
    std::fs::write(dir.join("vk-tampered.json"), tampered.to_string()).unwrap();
    let outcome = snarkjs(
        dir,
        &[
            "groth16",
            "verify",
            "vk-tampered.json",
            "ours-public.json",
            "ours.json",
        ],
    );
    assert!(
        !outcome.success && !outcome.output.contains("OK!"),
        "{}",
        outcome.output
    );
    let tampered_key = snarkjs::verifying_key_from_json(&tampered.to_string()).unwrap();
    let prepared = zkcohort_verifier::prepare_verifying_key(&tampered_key);
    assert!(!zkcohort_verifier::verify(&prepared, &statement, &ours).unwrap());
}
