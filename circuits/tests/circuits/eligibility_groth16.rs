//! Real Groth16 proofs of eligibility on the small shape: one per clause kind, and
//! a valid proof that does not verify once any public input is swapped.

use crate::common::{compile, fixture, patient, statement, witness, SCOPE, SHAPE};
use ark_bn254::Bn254;
use ark_groth16::Groth16;
use ark_snark::SNARK;
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::EligibilityCircuit;
use zkcohort_circuits::identity::{signal_hash, StudyScope};
use zkcohort_circuits::Fr;

#[test]
fn proofs_verify_and_bind_every_public_input() {
    let mut rng = StdRng::seed_from_u64(0x2026_1121);
    let (proving_key, verifying_key) =
        Groth16::<Bn254>::circuit_specific_setup(EligibilityCircuit::blank(SHAPE), &mut rng)
            .unwrap();
    let prepared = Groth16::<Bn254>::process_vk(&verifying_key).unwrap();
    let patient = patient(fixture("Ali_Harris"));

    // One proof per clause kind, each true for Ali Harris.
    let clauses = [
        "require age between 40 and 75",
        "require sex male",
        "require smoking former",
        "require record issued within 365 days",
        "require condition hypertension active",
        "require medication antihypertensive count >= 1",
        "require lab hba1c max >= 6.2",
        "require lab systolic-bp latest >= 185 within 400 days",
        "exclude condition ckd",
        "require any of: condition ckd; not condition copd",
    ];
    for clause in clauses {
        let query = compile(&format!("index date 2021-01-01\n{clause}"));
        let witness = witness(&patient, &query);
        let statement = statement(&witness);
        let proof = Groth16::<Bn254>::prove(
            &proving_key,
            EligibilityCircuit::new(SHAPE, statement, witness),
            &mut rng,
        )
        .unwrap();
        let inputs = statement.to_public_inputs();
        assert!(
            Groth16::<Bn254>::verify_with_processed_vk(&prepared, &inputs, &proof).unwrap(),
            "{clause}"
        );

        // Each public input is bound: a copied proof with any one swapped fails.
        for position in 0..inputs.len() {
            let mut swapped = inputs;
            swapped[position] += Fr::from(1u64);
            assert!(
                !Groth16::<Bn254>::verify_with_processed_vk(&prepared, &swapped, &proof).unwrap(),
                "{clause}: input {position}"
            );
        }
    }

    // The reward receiver is bound through signal_hash: the same proof cannot pay another note.
    let query = compile("index date 2021-01-01\nrequire condition hypertension");
    let witness = witness(&patient, &query);
    let statement = statement(&witness);
    let proof = Groth16::<Bn254>::prove(
        &proving_key,
        EligibilityCircuit::new(SHAPE, statement, witness),
        &mut rng,
    )
    .unwrap();
    let mut thief = statement;
    thief.signal_hash = signal_hash(Fr::from(4u64), SCOPE);
    assert!(!Groth16::<Bn254>::verify_with_processed_vk(
        &prepared,
        &thief.to_public_inputs(),
        &proof
    )
    .unwrap());
    let mut other_study = statement;
    other_study.study_scope = StudyScope(Fr::from(12u64));
    assert!(!Groth16::<Bn254>::verify_with_processed_vk(
        &prepared,
        &other_study.to_public_inputs(),
        &proof
    )
    .unwrap());
}
