//! Shared test fixtures: a small Groth16 circuit with as many public inputs as the
//! eligibility statement, so tests and timings can make many real proofs quickly.

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError,
};
use ark_snark::SNARK;
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_verifier::{Proof, Statement, PUBLIC_INPUTS};

/// Proves knowledge of `w` with public inputs `w^2, w^3, ...`, one per input of the
/// eligibility statement.
#[derive(Clone)]
pub(crate) struct PowersCircuit {
    pub(crate) w: Option<Fr>,
}

pub(crate) fn powers(w: Fr) -> [Fr; PUBLIC_INPUTS] {
    let mut out = [Fr::from(0u64); PUBLIC_INPUTS];
    let mut power = w * w;
    for slot in &mut out {
        *slot = power;
        power *= w;
    }
    out
}

impl ConstraintSynthesizer<Fr> for PowersCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let values = self.w.map(powers);
        let inputs = (0..PUBLIC_INPUTS)
            .map(|index| {
                cs.new_input_variable(|| {
                    values
                        .map(|values| values[index])
                        .ok_or(SynthesisError::AssignmentMissing)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let w = cs.new_witness_variable(|| self.w.ok_or(SynthesisError::AssignmentMissing))?;
        let mut previous = LinearCombination::from(w);
        for input in inputs {
            cs.enforce_r1cs_constraint(
                || previous.clone(),
                || LinearCombination::from(w),
                || LinearCombination::from(input),
            )?;
            previous = LinearCombination::from(input);
        }
        Ok(())
    }
}

pub(crate) fn setup(seed: u64) -> (ProvingKey<Bn254>, VerifyingKey<Bn254>) {
    let mut rng = StdRng::seed_from_u64(seed);
    Groth16::<Bn254>::circuit_specific_setup(PowersCircuit { w: None }, &mut rng).unwrap()
}

pub(crate) fn prove(
    key: &ProvingKey<Bn254>,
    w: u64,
    rng: &mut StdRng,
) -> (Statement, Proof<Bn254>) {
    let w = Fr::from(w);
    let proof = Groth16::<Bn254>::prove(key, PowersCircuit { w: Some(w) }, rng).unwrap();
    (Statement::from_public_inputs(&powers(w)).unwrap(), proof)
}

pub(crate) fn proofs(
    key: &ProvingKey<Bn254>,
    count: usize,
    seed: u64,
) -> Vec<(Statement, Proof<Bn254>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|index| prove(key, 3 + index as u64, &mut rng))
        .collect()
}
