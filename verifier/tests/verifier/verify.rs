//! Verification of real Groth16 proofs, one at a time and in batches: valid
//! proofs pass, any changed proof element or public input fails, a batch names
//! exactly its bad proofs.

use ark_bn254::{Fr, G1Affine, G2Affine};
use ark_ec::{AffineRepr, CurveGroup};
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_verifier::{
    prepare_verifying_key, verify, verify_batch, verify_batch_with_rng, verify_inputs, Proof,
    Statement, VerifierError, PUBLIC_INPUTS,
};

#[test]
fn a_valid_proof_verifies_and_any_change_is_caught() {
    let (proving_key, vk) = crate::common::setup(10);
    let prepared = prepare_verifying_key(&vk);
    let mut rng = StdRng::seed_from_u64(11);
    let (statement, proof) = crate::common::prove(&proving_key, 5, &mut rng);
    assert_eq!(verify(&prepared, &statement, &proof), Ok(true));

    // Each proof element moved to another valid point of its group.
    let g1 = G1Affine::generator();
    let tampered = [
        Proof {
            a: (proof.a + g1).into_affine(),
            ..proof.clone()
        },
        Proof {
            b: (proof.b + G2Affine::generator()).into_affine(),
            ..proof.clone()
        },
        Proof {
            c: (proof.c + g1).into_affine(),
            ..proof.clone()
        },
        // A valid proof of another statement.
        crate::common::prove(&proving_key, 6, &mut rng).1,
    ];
    for (index, bad) in tampered.iter().enumerate() {
        assert_eq!(verify(&prepared, &statement, bad), Ok(false), "{index}");
    }

    // Each public input changed.
    let inputs = statement.to_public_inputs();
    for position in 0..inputs.len() {
        let mut changed = inputs;
        changed[position] += Fr::from(1u64);
        let changed = Statement::from_public_inputs(&changed).unwrap();
        assert_eq!(verify(&prepared, &changed, &proof), Ok(false), "{position}");
    }

    // The wrong number of inputs is an error, not a verdict.
    for count in [PUBLIC_INPUTS - 1, PUBLIC_INPUTS + 1] {
        let inputs = vec![Fr::from(1u64); count];
        assert_eq!(
            verify_inputs(&prepared, &inputs, &proof),
            Err(VerifierError::InputCount {
                expected: PUBLIC_INPUTS,
                got: count
            })
        );
    }
    let mut short_key = vk.clone();
    short_key.gamma_abc_g1.pop();
    let short_key = prepare_verifying_key(&short_key);
    assert_eq!(
        verify(&short_key, &statement, &proof),
        Err(VerifierError::InputCount {
            expected: PUBLIC_INPUTS - 1,
            got: PUBLIC_INPUTS
        })
    );
    assert!(verify_batch(&short_key, &[(statement, proof)]).is_err());
}

#[test]
fn a_batch_of_valid_proofs_passes_with_one_final_exponentiation() {
    let (proving_key, vk) = crate::common::setup(20);
    let prepared = prepare_verifying_key(&vk);
    let items = crate::common::proofs(&proving_key, 20, 21);
    let report = verify_batch(&prepared, &items).unwrap();
    assert!(report.all_valid() && report.batch_passed);
    assert_eq!((report.total, report.final_exponentiations), (20, 1));

    let mut rng = StdRng::seed_from_u64(22);
    let report = verify_batch_with_rng(&prepared, &items[..1], &mut rng).unwrap();
    assert!(report.batch_passed);
    let empty = verify_batch(&prepared, &[]).unwrap();
    assert!(empty.all_valid());
    assert_eq!(empty.final_exponentiations, 0);
}

#[test]
fn a_failing_batch_names_exactly_its_bad_proofs() {
    let (proving_key, vk) = crate::common::setup(30);
    let prepared = prepare_verifying_key(&vk);
    let mut items = crate::common::proofs(&proving_key, 20, 31);
    // Proof 3 carries another proof's statement; proof 17's C is moved.
    items[3].0 = items[4].0;
    items[17].1.c = (items[17].1.c + G1Affine::generator()).into_affine();
    let report = verify_batch(&prepared, &items).unwrap();
    assert!(!report.batch_passed);
    assert_eq!(report.invalid, vec![3, 17]);
    assert_eq!(report.final_exponentiations, 21);

    // Two bad proofs whose errors cancel in an unweighted product (C moved by
    // +G and -G: e(G, delta)·e(-G, delta) = 1) are still caught.
    let mut items = crate::common::proofs(&proving_key, 4, 32);
    let g1 = G1Affine::generator();
    items[0].1.c = (items[0].1.c + g1).into_affine();
    items[1].1.c = (items[1].1.c - g1).into_affine();
    let report = verify_batch(&prepared, &items).unwrap();
    assert_eq!(report.invalid, vec![0, 1]);
}
