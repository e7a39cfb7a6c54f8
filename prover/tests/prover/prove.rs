//! Setup, key files, single and batch proofs on the small shape with real fixtures.

use crate::common::{keys, requests, SHAPE};
use std::sync::Mutex;

use ark_bn254::Bn254;
use ark_groth16::Groth16;
use ark_snark::SNARK;
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::{CircuitShape, EligibilityCircuit};
use zkcohort_prover::reduction::CircomReduction;
use zkcohort_prover::{CircuitKeys, ProverError};

fn verifies(keys: &CircuitKeys, proof: &zkcohort_prover::EligibilityProof) -> bool {
    Groth16::<Bn254, CircomReduction>::verify_with_processed_vk(
        keys.prepared_verifying_key(),
        &proof.statement.to_public_inputs(),
        &proof.proof,
    )
    .unwrap()
}

#[test]
fn proofs_verify_and_match_arkworks_own_prover() {
    let keys = keys();
    let requests = requests();
    // Fixture order: Ali Harris (56, hypertension) is eligible; Clemente Kreiger has no hypertension.
    let proof = keys
        .prove_with_rng(&requests[0], &mut StdRng::seed_from_u64(3))
        .unwrap();
    assert!(verifies(keys, &proof));
    let (statement, witness) = requests[0]
        .build(SHAPE, proof.measure_opening.blinding)
        .unwrap();
    assert_eq!(statement, proof.statement);
    let reference = Groth16::<Bn254, CircomReduction>::prove(
        keys.proving_key(),
        EligibilityCircuit::new(SHAPE, statement, witness),
        &mut StdRng::seed_from_u64(3),
    )
    .unwrap();
    assert!(Groth16::<Bn254, CircomReduction>::verify_with_processed_vk(
        keys.prepared_verifying_key(),
        &statement.to_public_inputs(),
        &reference
    )
    .unwrap());
    assert!(matches!(
        keys.prove(&requests[1]),
        Err(ProverError::Circuit(
            zkcohort_circuits::CircuitError::NotEligible
        ))
    ));
}

#[test]
fn key_files_round_trip_and_refuse_damage() {
    let keys = keys();
    let folder = tempfile::tempdir().unwrap();
    let path = keys.save(folder.path()).unwrap();
    let loaded = CircuitKeys::load(folder.path(), SHAPE).unwrap();
    assert_eq!(loaded.circuit_id(), keys.circuit_id());
    assert_eq!(loaded.circuit_id().to_string().len(), 64);
    let proof = loaded
        .prove_with_rng(&requests()[0], &mut StdRng::seed_from_u64(4))
        .unwrap();
    assert!(
        verifies(keys, &proof),
        "a proof from the loaded key verifies against the original"
    );

    let original = std::fs::read(&path).unwrap();
    let damage = |bytes: Vec<u8>| {
        std::fs::write(&path, bytes).unwrap();
        match CircuitKeys::load(folder.path(), SHAPE) {
            Err(ProverError::KeyFile { reason, .. }) => reason,
            Err(other) => panic!("expected a key file error, got {other}"),
            Ok(_) => panic!("a damaged key loaded"),
        }
    };
    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(damage(flipped).contains("checksum"));
    assert!(damage(original[..original.len() / 2].to_vec()).contains("checksum"));
    assert!(damage(b"not a key".to_vec()).contains("not a zkcohort proving key"));
    // A key file of an earlier format belongs to an earlier circuit: named as such.
    let mut older = original.clone();
    let format = u32::from_le_bytes(older[12..16].try_into().unwrap());
    older[12..16].copy_from_slice(&(format - 1).to_le_bytes());
    std::fs::write(&path, older).unwrap();
    match CircuitKeys::load(folder.path(), SHAPE) {
        Err(ProverError::KeyFormat {
            found, expected, ..
        }) => assert_eq!((found, expected), (format - 1, format)),
        other => panic!("expected a key format error, got {:?}", other.err()),
    }
    let mut other_id = original.clone();
    other_id[40] ^= 1;
    assert!(damage(other_id).contains("circuit id"));
    std::fs::write(&path, &original).unwrap();
    let other_shape = CircuitShape {
        clauses: 5,
        ..SHAPE
    };
    assert!(matches!(
        CircuitKeys::load(folder.path(), other_shape),
        Err(ProverError::Io { .. })
    ));
    std::fs::copy(
        &path,
        CircuitKeys::proving_key_path(folder.path(), other_shape),
    )
    .unwrap();
    assert!(
        matches!(CircuitKeys::load(folder.path(), other_shape), Err(ProverError::KeyFile { reason, .. }) if reason.contains("circuit shape"))
    );
}

#[test]
fn batches_stream_every_result_with_progress() {
    let keys = keys();
    let requests = requests();
    let total = requests.len();
    let results = Mutex::new(Vec::new());
    keys.prove_batch_with_seed(requests, 9, |progress, result| {
        results.lock().unwrap().push((progress, result));
    });
    let mut results = results.into_inner().unwrap();
    assert_eq!(results.len(), total);
    let mut done: Vec<usize> = results.iter().map(|(progress, _)| progress.done).collect();
    done.sort();
    assert_eq!(done, (1..=total).collect::<Vec<_>>());
    results.sort_by_key(|(progress, _)| progress.index);
    // Fixture order: Ali Harris, Clemente Kreiger, Estrella Daugherty, Geoffrey Abbott,
    // Lemuel Hodkiewicz, Renato Dare. Age >= 40 with hypertension on 2021-01-01: Ali, Estrella.
    let eligible: Vec<bool> = results.iter().map(|(_, result)| result.is_ok()).collect();
    assert_eq!(eligible, [true, false, true, false, false, false]);
    for (_, result) in &results {
        match result {
            Ok(proof) => assert!(verifies(keys, proof)),
            Err(error) => assert!(
                matches!(
                    error,
                    ProverError::Circuit(zkcohort_circuits::CircuitError::NotEligible)
                ),
                "{error}"
            ),
        }
    }
    let nullifiers: std::collections::HashSet<_> = results
        .iter()
        .filter_map(|(_, result)| result.as_ref().ok())
        .map(|proof| proof.statement.nullifier)
        .collect();
    assert_eq!(
        nullifiers.len(),
        2,
        "distinct patients, distinct nullifiers"
    );
}
