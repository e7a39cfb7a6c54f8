//! End to end: a Groth16 proof over BN254 of knowing a Poseidon preimage,
//! through the `ark-snark` `SNARK` trait (arkworks 0.6).

use ark_bn254::{Bn254, Fr};
use ark_groth16::Groth16;
use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, fields::fp::FpVar};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, SynthesisError,
};
use ark_snark::SNARK;
use ark_std::rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::poseidon::{
    gadget::{constraint_count, poseidon_hash2_gadget},
    poseidon_hash2,
};

/// Public: `hash`. Private: `(left, right)` with `Poseidon(left, right) = hash`.
#[derive(Clone)]
struct PreimageCircuit {
    hash: Option<Fr>,
    left: Option<Fr>,
    right: Option<Fr>,
}

impl ConstraintSynthesizer<Fr> for PreimageCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let hash = FpVar::new_input(cs.clone(), || {
            self.hash.ok_or(SynthesisError::AssignmentMissing)
        })?;
        let left = FpVar::new_witness(cs.clone(), || {
            self.left.ok_or(SynthesisError::AssignmentMissing)
        })?;
        let right = FpVar::new_witness(cs.clone(), || {
            self.right.ok_or(SynthesisError::AssignmentMissing)
        })?;
        poseidon_hash2_gadget(&left, &right)?.enforce_equal(&hash)
    }
}

#[test]
fn groth16_proves_a_poseidon_preimage() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0005);
    let (left, right) = (Fr::from(1u64), Fr::from(2u64));
    let hash = poseidon_hash2(left, right);
    let circuit = PreimageCircuit {
        hash: Some(hash),
        left: Some(left),
        right: Some(right),
    };

    // Shape: the gadget's constraints plus one for the equality.
    let cs = ConstraintSystem::<Fr>::new_ref();
    circuit.clone().generate_constraints(cs.clone()).unwrap();
    assert!(cs.is_satisfied().unwrap());
    assert_eq!(cs.num_constraints(), constraint_count(2).unwrap() + 1);

    let blank = PreimageCircuit {
        hash: None,
        left: None,
        right: None,
    };
    let (pk, vk) = Groth16::<Bn254>::circuit_specific_setup(blank, &mut rng).unwrap();
    let proof = Groth16::<Bn254>::prove(&pk, circuit, &mut rng).unwrap();
    assert!(Groth16::<Bn254>::verify(&vk, &[hash], &proof).unwrap());
    let pvk = Groth16::<Bn254>::process_vk(&vk).unwrap();
    assert!(Groth16::<Bn254>::verify_with_processed_vk(&pvk, &[hash], &proof).unwrap());
    assert!(!Groth16::<Bn254>::verify(&vk, &[hash + Fr::from(1u64)], &proof).unwrap());

    // A wrong preimage gives an unsatisfied system.
    let cs = ConstraintSystem::<Fr>::new_ref();
    PreimageCircuit {
        hash: Some(hash),
        left: Some(right),
        right: Some(left),
    }
    .generate_constraints(cs.clone())
    .unwrap();
    assert!(!cs.is_satisfied().unwrap());
}
