//! The R1CS-to-QAP reduction snarkjs and rapidsnark use, so a `.zkey` made from our
//! keys proves and verifies with them.
//!
//! Adapted from ark-circom 0.6 (`src/circom/qap.rs`, MIT OR Apache-2.0): depending on
//! ark-circom would compile a WebAssembly runtime (wasmer) we never run, for these
//! few lines. snarkjs computes `H·Z` as the odd coefficients of `A·B - C` on a coset
//! of twice the domain, and its `h_query` holds the matching Lagrange bases.

use ark_bn254::Fr;
use ark_ff::PrimeField;
use ark_groth16::r1cs_to_qap::{evaluate_constraint, LibsnarkReduction, R1CSToQAP};
use ark_poly::{EvaluationDomain, GeneralEvaluationDomain};
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};
use rayon::prelude::*;

use crate::keys::ConstraintMatrices;

/// snarkjs's witness map (see the module documentation).
pub struct CircomReduction;

impl R1CSToQAP for CircomReduction {
    #[allow(clippy::type_complexity)]
    fn instance_map_with_evaluation<F: PrimeField, D: EvaluationDomain<F>>(
        cs: ConstraintSystemRef<F>,
        t: &F,
    ) -> Result<(Vec<F>, Vec<F>, Vec<F>, F, usize, usize), SynthesisError> {
        LibsnarkReduction::instance_map_with_evaluation::<F, D>(cs, t)
    }

    fn witness_map_from_matrices<F: PrimeField, D: EvaluationDomain<F>>(
        matrices: &[Vec<Vec<(F, usize)>>],
        num_inputs: usize,
        num_constraints: usize,
        full_assignment: &[F],
    ) -> Result<Vec<F>, SynthesisError> {
        quotient_on_coset::<F, D>(num_constraints, &full_assignment[..num_inputs], |row| {
            (
                evaluate_constraint(&matrices[0][row], full_assignment),
                evaluate_constraint(&matrices[1][row], full_assignment),
            )
        })
    }

    fn h_query_scalars<F: PrimeField, D: EvaluationDomain<F>>(
        max_power: usize,
        t: F,
        _: F,
        delta_inverse: F,
    ) -> Result<Vec<F>, SynthesisError> {
        // H·Z has 2·domain − 1 powers; keep the odd Lagrange coefficients.
        let mut scalars: Vec<F> = (0..2 * max_power + 1)
            .into_par_iter()
            .map(|i| delta_inverse * t.pow([i as u64]))
            .collect();
        let domain = D::new(scalars.len()).ok_or(SynthesisError::PolynomialDegreeTooLarge)?;
        domain.ifft_in_place(&mut scalars);
        Ok(scalars.into_par_iter().skip(1).step_by(2).collect())
    }
}

/// snarkjs's witness map over our sparse matrices: the same values as
/// [`CircomReduction`]'s `witness_map_from_matrices`.
pub(crate) fn witness_map(
    matrices: &ConstraintMatrices,
    full_assignment: &[Fr],
) -> Result<Vec<Fr>, SynthesisError> {
    quotient_on_coset::<Fr, GeneralEvaluationDomain<Fr>>(
        matrices.num_constraints,
        &full_assignment[..matrices.num_inputs],
        |row| {
            (
                matrices.evaluate(0, row, full_assignment),
                matrices.evaluate(1, row, full_assignment),
            )
        },
    )
}

/// From `A·w` and `B·w` of each constraint row (`rows`): the input rows `A[m + i][i] = 1`
/// added, `C·w = A·w ∘ B·w` (the assignment satisfies the constraints), and `A·B − C`
/// on the coset of twice the domain, its three polynomials carried there side by side.
fn quotient_on_coset<F: PrimeField, D: EvaluationDomain<F>>(
    num_constraints: usize,
    inputs: &[F],
    rows: impl Fn(usize) -> (F, F) + Sync,
) -> Result<Vec<F>, SynthesisError> {
    let domain =
        D::new(num_constraints + inputs.len()).ok_or(SynthesisError::PolynomialDegreeTooLarge)?;
    let mut a = vec![F::zero(); domain.size()];
    let mut b = vec![F::zero(); domain.size()];
    a[..num_constraints]
        .par_iter_mut()
        .zip(&mut b[..num_constraints])
        .enumerate()
        .for_each(|(row, (a, b))| (*a, *b) = rows(row));
    a[num_constraints..num_constraints + inputs.len()].clone_from_slice(inputs);
    let mut c = vec![F::zero(); domain.size()];
    c[..num_constraints]
        .par_iter_mut()
        .zip(&a)
        .zip(&b)
        .for_each(|((c, a), b)| *c = *a * b);
    let coset_generator = D::new(2 * domain.size())
        .ok_or(SynthesisError::PolynomialDegreeTooLarge)?
        .element(1);
    let to_coset = |mut values: Vec<F>| {
        domain.ifft_in_place(&mut values);
        D::distribute_powers_and_mul_by_const(&mut values, coset_generator, F::one());
        domain.fft_in_place(&mut values);
        values
    };
    let (mut ab, c) = rayon::join(
        || {
            let (a, b) = rayon::join(|| to_coset(a), || to_coset(b));
            domain.mul_polynomials_in_evaluation_domain(&a, &b)
        },
        || to_coset(c),
    );
    ab.par_iter_mut().zip(c).for_each(|(ab, c)| *ab -= &c);
    Ok(ab)
}
