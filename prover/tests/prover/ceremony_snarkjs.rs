//! snarkjs as a second implementation of the ceremony: it verifies our phase-2 state
//! against our `.r1cs` and `.ptau`, extends it with `snarkjs zkey contribute` and `zkey
//! beacon` (our verifier accepts those and the keys prove), and its own powers of tau
//! import as our phase 1. A tiny shape (one clause); needs snarkjs in `node_modules` (see `snarkjs.rs`).

use std::path::Path;

use crate::common::{request_for, section, snarkjs, TINY as SHAPE, TINY_QUERY};
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_prover::ceremony::phase1::Origin;
use zkcohort_prover::ceremony::{transcript, Circuit, Phase1, Phase2};

fn write(folder: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(folder.join(name), bytes).unwrap();
}

fn read(folder: &Path, name: &str) -> Vec<u8> {
    std::fs::read(folder.join(name)).unwrap()
}

/// `snarkjs zkey verify circuit.r1cs phase1.ptau <zkey>` in `folder`.
fn snarkjs_accepts(folder: &Path, zkey: &str) -> bool {
    let outcome = snarkjs(
        folder,
        &["zkey", "verify", "circuit.r1cs", "phase1.ptau", zkey],
    );
    let accepted = outcome.output.contains("ZKey Ok!");
    assert_eq!(
        accepted,
        outcome.success && !outcome.output.contains("INVALID"),
        "{}",
        outcome.output
    );
    if !accepted {
        eprintln!("snarkjs zkey verify {zkey}:\n{}", outcome.output);
    }
    accepted
}

#[test]
fn snarkjs_verifies_our_ceremony_and_its_contributions_verify_here() {
    let circuit = Circuit::of(SHAPE).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let mut rng = StdRng::seed_from_u64(31);
    let mut phase1 = Phase1::new(circuit.domain_power()).unwrap();
    phase1.contribute("one", &mut rng).unwrap();
    phase1.prepare();
    let mut phase2 = Phase2::new(&circuit, &phase1).unwrap();
    phase2.contribute("alice", &mut rng).unwrap();
    phase2.contribute("bob", &mut rng).unwrap();
    let mut r1cs = Vec::new();
    circuit.write_r1cs(&mut r1cs).unwrap();
    write(dir, "circuit.r1cs", &r1cs);
    write(dir, "phase1.ptau", &phase1.to_bytes());
    write(dir, "ours.zkey", &phase2.to_zkey(&circuit));

    assert!(
        snarkjs_accepts(dir, "ours.zkey"),
        "snarkjs accepts our transcript"
    );
    // An L point replaced by another: snarkjs refuses it too.
    let mut tampered = phase2.to_zkey(&circuit);
    let l = section(&tampered, 8);
    tampered.copy_within(l.start + 64..l.start + 128, l.start);
    write(dir, "tampered.zkey", &tampered);
    assert!(!snarkjs_accepts(dir, "tampered.zkey"));

    // snarkjs contributes, then applies a beacon; our verifier accepts both.
    let contributed = snarkjs(
        dir,
        &[
            "zkey",
            "contribute",
            "ours.zkey",
            "theirs.zkey",
            "--name=carol (snarkjs)",
            "-e=entropy typed by carol",
        ],
    );
    assert!(contributed.success, "{}", contributed.output);
    let beacon = snarkjs(
        dir,
        &[
            "zkey",
            "beacon",
            "theirs.zkey",
            "final.zkey",
            "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
            "10",
            "-n=final beacon",
        ],
    );
    assert!(beacon.success, "{}", beacon.output);
    let phase1_bytes = read(dir, "phase1.ptau");
    for name in ["theirs.zkey", "final.zkey"] {
        let zkey = read(dir, name);
        let (_, state) = transcript::verify(&circuit, &phase1_bytes, &zkey)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(
            state.contributions()[2].name.as_deref(),
            Some("carol (snarkjs)")
        );
    }
    let zkey = read(dir, "final.zkey");
    let state = Phase2::from_zkey(&circuit, &zkey).unwrap();
    assert_eq!(state.contributions().len(), 4);
    assert!(state.contributions()[3].beacon.is_some());
    // We write back exactly the file snarkjs wrote.
    assert_eq!(state.to_zkey(&circuit), zkey);

    let (keys, _) = transcript::finalize(circuit, &phase1_bytes, &zkey).unwrap();
    let proof = keys
        .prove_with_rng(
            &request_for(SHAPE, TINY_QUERY),
            &mut StdRng::seed_from_u64(32),
        )
        .unwrap();
    let prepared = zkcohort_verifier::prepare_verifying_key(keys.verifying_key());
    assert!(zkcohort_verifier::verify(&prepared, &proof.statement, &proof.proof).unwrap());

    // A contribution we add after snarkjs's verifies in snarkjs.
    let mut state = state;
    state
        .contribute("dave", &mut StdRng::seed_from_u64(33))
        .unwrap();
    write(
        dir,
        "after.zkey",
        &state.to_zkey(&Circuit::of(SHAPE).unwrap()),
    );
    assert!(snarkjs_accepts(dir, "after.zkey"));
}

#[test]
fn a_snarkjs_powers_of_tau_imports_as_phase1() {
    let circuit = Circuit::of(SHAPE).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let power = circuit.domain_power().to_string();
    for arguments in [
        vec!["powersoftau", "new", "bn128", power.as_str(), "pot0.ptau"],
        vec![
            "powersoftau",
            "contribute",
            "pot0.ptau",
            "pot1.ptau",
            "--name=snarkjs",
            "-e=some entropy",
        ],
        vec!["powersoftau", "prepare", "phase2", "pot1.ptau", "pot.ptau"],
    ] {
        let outcome = snarkjs(dir, &arguments);
        assert!(outcome.success, "{arguments:?}: {}", outcome.output);
    }
    let mut phase1 = Phase1::read(&read(dir, "pot.ptau")).unwrap();
    assert!(matches!(phase1.origin(), Origin::Imported { .. }));
    assert!(phase1.contributions().is_empty());
    // Its powers and snarkjs's Lagrange bases check here.
    phase1.verify().unwrap();

    // A contribution here on top of it, then phase 2, which snarkjs verifies.
    phase1
        .contribute("ours", &mut StdRng::seed_from_u64(41))
        .unwrap();
    phase1.prepare();
    phase1.verify().unwrap();
    let mut phase2 = Phase2::new(&circuit, &phase1).unwrap();
    phase2
        .contribute("alice", &mut StdRng::seed_from_u64(42))
        .unwrap();
    let mut r1cs = Vec::new();
    circuit.write_r1cs(&mut r1cs).unwrap();
    write(dir, "circuit.r1cs", &r1cs);
    write(dir, "phase1.ptau", &phase1.to_bytes());
    write(dir, "state.zkey", &phase2.to_zkey(&circuit));
    assert!(snarkjs_accepts(dir, "state.zkey"));
    transcript::verify(&circuit, &phase1.to_bytes(), &phase2.to_zkey(&circuit)).unwrap();
}
