//! The circomlib Poseidon hash as an R1CS gadget over [`FpVar<Fr>`], the
//! in-circuit twin of [`super::poseidon_hash`].
//!
//! The same constants and rounds as the native permutation
//! ([`super::parameters`]). Cost:
//!
//! - each S-box `x^5` is 3 constraints (`x2 = x*x`, `x4 = x2*x2`,
//!   `x5 = x4*x`), each adding one witness variable;
//! - the round constants and the MDS matrix are linear: each state element
//!   after a round is one linear combination (MDS row plus the next round's
//!   constants), with no constraint and no variable;
//! - constants are folded: the first full round's S-box on the capacity
//!   element (`0 + c`) is a constant and costs nothing, as does any S-box on a
//!   constant input.
//!
//! So with all inputs allocated, `Poseidon(n)` (width `t = n + 1`, `P`
//! partial rounds) costs `3 * (8 * t - 1 + P)` constraints: 240 for two inputs
//! (circom reports 243 for `Poseidon(2)`, as it does not fold the constant
//! capacity S-box). The count per arity is pinned in the tests below; the
//! table is [`constraint_count`].

use ark_bn254::Fr;
use ark_ff::Zero;
use ark_r1cs_std::fields::{
    fp::{AllocatedFp, FpVar},
    FieldVar,
};
use ark_relations::gr1cs::{ConstraintSystemRef, LinearCombination, SynthesisError, Variable};

use super::parameters;

/// The number of constraints [`poseidon_hash_gadget`] adds for `arity`
/// allocated (non-constant) inputs, or `None` for an unsupported arity.
pub fn constraint_count(arity: usize) -> Option<usize> {
    let params = parameters(arity).ok()?;
    let t = params.width();
    let sboxes = params.full_rounds() * t - 1 + params.partial_rounds();
    Some(3 * sboxes)
}

/// Poseidon hash of `inputs` in the constraint system, as circomlib's
/// `Poseidon(inputs.len())`: the output equals
/// [`super::poseidon_hash`] of the inputs' values.
///
/// # Errors
///
/// [`SynthesisError::ArityMismatch`] if there are no inputs or more than
/// [`super::MAX_ARITY`]; otherwise the constraint system's errors.
pub fn poseidon_hash_gadget(inputs: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    let params = parameters(inputs.len()).map_err(|_| SynthesisError::ArityMismatch)?;
    let width = params.width();
    let rounds = params.rounds();

    // state = [0, inputs...] + round constants of round 0
    let initial = std::iter::once(FpVar::Constant(Fr::zero())).chain(inputs.iter().cloned());
    let mut state = initial
        .zip(params.round_constants(0))
        .map(|(x, c)| affine(&[Fr::from(1u64)], std::slice::from_ref(&x), *c))
        .collect::<Result<Vec<_>, _>>()?;

    for round in 0..rounds {
        if params.is_full_round(round) {
            for x in state.iter_mut() {
                *x = sbox(x)?;
            }
        } else {
            state[0] = sbox(&state[0])?;
        }
        // MDS, then the next round's constants, as one linear combination per element.
        let next_constants = (round + 1 < rounds).then(|| params.round_constants(round + 1));
        state = (0..width)
            .map(|i| {
                let c = next_constants.map_or(Fr::zero(), |cs| cs[i]);
                affine(params.mds_row(i), &state, c)
            })
            .collect::<Result<Vec<_>, _>>()?;
    }
    Ok(state.swap_remove(0))
}

/// Two-to-one Poseidon hash in the constraint system, the twin of
/// [`super::poseidon_hash2`] (Merkle tree nodes).
///
/// # Errors
///
/// The constraint system's errors.
pub fn poseidon_hash2_gadget(
    left: &FpVar<Fr>,
    right: &FpVar<Fr>,
) -> Result<FpVar<Fr>, SynthesisError> {
    poseidon_hash_gadget(&[left.clone(), right.clone()])
}

/// `x^5` in 3 constraints (none if `x` is a constant).
fn sbox(x: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    let x2 = x.square()?;
    let x4 = x2.square()?;
    Ok(x4 * x)
}

/// `sum_j coeffs[j] * vars[j] + constant` as a single linear combination: no
/// constraint, no variable. Constant terms are folded into the constant; the
/// result is a constant if every term is.
fn affine(coeffs: &[Fr], vars: &[FpVar<Fr>], constant: Fr) -> Result<FpVar<Fr>, SynthesisError> {
    debug_assert_eq!(coeffs.len(), vars.len());
    let mut constant = constant;
    let mut value = Some(Fr::zero());
    let mut terms: Vec<(Fr, Variable)> = Vec::with_capacity(vars.len() + 1);
    let mut cs = ConstraintSystemRef::None;
    for (coeff, var) in coeffs.iter().zip(vars) {
        match var {
            FpVar::Constant(x) => constant += *coeff * x,
            FpVar::Var(v) => {
                cs = cs.or(v.cs.clone());
                terms.push((*coeff, v.variable));
                value = match (value, v.value()) {
                    (Some(acc), Ok(x)) => Some(acc + *coeff * x),
                    _ => None,
                };
            }
        }
    }
    if terms.is_empty() {
        return Ok(FpVar::Constant(constant));
    }
    if !constant.is_zero() {
        terms.push((constant, Variable::One));
    }
    let variable = cs.new_lc(|| {
        let mut lc = LinearCombination(terms);
        lc.compactify();
        lc
    })?;
    let value = value.map(|v| v + constant);
    Ok(FpVar::Var(AllocatedFp::new(value, variable, cs)))
}

#[cfg(test)]
mod tests {
    use super::super::{poseidon_hash, tests::circomlib_vectors, MAX_ARITY, MIN_ARITY};
    use super::*;
    use ark_ff::UniformRand;
    use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, GR1CSVar};
    use ark_relations::gr1cs::{ConstraintSystem, SynthesisMode};
    use rand::{rngs::StdRng, SeedableRng};

    /// Constraints for `Poseidon(n)`, n = 1..=12, all inputs allocated.
    /// Pinned so that growth is seen in review.
    const PINNED_CONSTRAINTS: [usize; MAX_ARITY] =
        [213, 240, 261, 297, 321, 354, 381, 402, 417, 459, 465, 504];

    fn witnesses(cs: &ConstraintSystemRef<Fr>, values: &[Fr]) -> Vec<FpVar<Fr>> {
        values
            .iter()
            .map(|x| FpVar::new_witness(cs.clone(), || Ok(*x)).unwrap())
            .collect()
    }

    #[test]
    fn gadget_matches_native_on_random_inputs() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0002);
        for arity in MIN_ARITY..=MAX_ARITY {
            for _ in 0..3 {
                let values: Vec<Fr> = (0..arity).map(|_| Fr::rand(&mut rng)).collect();
                let cs = ConstraintSystem::<Fr>::new_ref();
                let inputs = witnesses(&cs, &values);
                let out = poseidon_hash_gadget(&inputs).unwrap();
                assert_eq!(out.value().unwrap(), poseidon_hash(&values).unwrap());
                // Bind the output to a public input so the whole chain is checked.
                let expected =
                    FpVar::new_input(cs.clone(), || Ok(poseidon_hash(&values).unwrap())).unwrap();
                out.enforce_equal(&expected).unwrap();
                assert!(cs.is_satisfied().unwrap(), "arity {arity}");
            }
        }
    }

    #[test]
    fn gadget_matches_circomlib_vectors() {
        for (values, expected, source) in circomlib_vectors() {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let inputs = witnesses(&cs, &values);
            let out = poseidon_hash_gadget(&inputs).unwrap();
            assert_eq!(out.value().unwrap(), expected, "{source}");
            assert!(cs.is_satisfied().unwrap());
        }
    }

    #[test]
    fn constraint_counts_are_pinned() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0003);
        for arity in MIN_ARITY..=MAX_ARITY {
            let values: Vec<Fr> = (0..arity).map(|_| Fr::rand(&mut rng)).collect();
            let cs = ConstraintSystem::<Fr>::new_ref();
            let inputs = witnesses(&cs, &values);
            let _ = poseidon_hash_gadget(&inputs).unwrap();
            let pinned = PINNED_CONSTRAINTS[arity - 1];
            assert_eq!(cs.num_constraints(), pinned, "arity {arity}");
            assert_eq!(constraint_count(arity), Some(pinned));
            // One new witness per constraint (the S-box products); constants and
            // linear layers allocate nothing.
            assert_eq!(cs.num_witness_variables(), arity + pinned, "arity {arity}");
            assert_eq!(cs.num_instance_variables(), 1);
        }
        assert_eq!(PINNED_CONSTRAINTS[1], 240);
        assert_eq!(constraint_count(0), None);
        assert_eq!(constraint_count(MAX_ARITY + 1), None);
    }

    #[test]
    fn setup_mode_has_the_same_shape() {
        // Key generation synthesizes without values: same constraints, no panic.
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_mode(SynthesisMode::Setup);
        let inputs: Vec<FpVar<Fr>> = (0..2)
            .map(|_| FpVar::new_witness(cs.clone(), || -> Result<Fr, _> { unreachable!() }))
            .collect::<Result<_, _>>()
            .unwrap();
        let out = poseidon_hash_gadget(&inputs).unwrap();
        assert!(out.value().is_err());
        assert_eq!(cs.num_constraints(), 240);
    }

    #[test]
    fn constant_inputs_cost_nothing() {
        let values = [Fr::from(1u64), Fr::from(2u64)];
        let inputs = values.map(FpVar::Constant);
        let out = poseidon_hash_gadget(&inputs).unwrap();
        assert!(out.is_constant());
        assert_eq!(out.value().unwrap(), poseidon_hash(&values).unwrap());

        // One constant, one witness: still right, and cheaper than two witnesses.
        let cs = ConstraintSystem::<Fr>::new_ref();
        let mixed = [
            FpVar::Constant(values[0]),
            FpVar::new_witness(cs.clone(), || Ok(values[1])).unwrap(),
        ];
        let out = poseidon_hash2_gadget(&mixed[0], &mixed[1]).unwrap();
        assert_eq!(out.value().unwrap(), poseidon_hash(&values).unwrap());
        assert!(cs.is_satisfied().unwrap());
        assert!(cs.num_constraints() < 240);
    }

    #[test]
    fn wrong_output_is_unsatisfied() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0004);
        for arity in [1, 2, 4, MAX_ARITY] {
            let values: Vec<Fr> = (0..arity).map(|_| Fr::rand(&mut rng)).collect();
            let right = poseidon_hash(&values).unwrap();
            for claimed in [right + Fr::from(1u64), Fr::zero(), values[0]] {
                let cs = ConstraintSystem::<Fr>::new_ref();
                let inputs = witnesses(&cs, &values);
                let out = poseidon_hash_gadget(&inputs).unwrap();
                let claimed = FpVar::new_input(cs.clone(), || Ok(claimed)).unwrap();
                out.enforce_equal(&claimed).unwrap();
                assert!(!cs.is_satisfied().unwrap(), "arity {arity}");
                assert!(cs.which_is_unsatisfied().unwrap().is_some());
            }
        }
    }

    #[test]
    fn tampered_sbox_witness_is_unsatisfied() {
        // A prover who changes one intermediate S-box value (and whatever follows)
        // must not satisfy the system: corrupt each witness in turn.
        let values = [Fr::from(3u64), Fr::from(4u64)];
        let cs = ConstraintSystem::<Fr>::new_ref();
        let inputs = witnesses(&cs, &values);
        let _ = poseidon_hash_gadget(&inputs).unwrap();
        assert!(cs.is_satisfied().unwrap());
        let n = cs.num_witness_variables();
        for i in [2, 3, n / 2, n - 1] {
            let mut inner = cs.borrow_mut().unwrap();
            inner.assignments.witness_assignment[i] += Fr::from(1u64);
            drop(inner);
            assert!(!cs.is_satisfied().unwrap(), "witness {i}");
            let mut inner = cs.borrow_mut().unwrap();
            inner.assignments.witness_assignment[i] -= Fr::from(1u64);
        }
        assert!(cs.is_satisfied().unwrap());
    }

    #[test]
    fn bad_arity_is_an_error() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        assert_eq!(
            poseidon_hash_gadget(&[]).unwrap_err(),
            SynthesisError::ArityMismatch
        );
        let too_many = witnesses(&cs, &vec![Fr::from(1u64); MAX_ARITY + 1]);
        assert_eq!(
            poseidon_hash_gadget(&too_many).unwrap_err(),
            SynthesisError::ArityMismatch
        );
        assert_eq!(cs.num_constraints(), 0);
    }
}
