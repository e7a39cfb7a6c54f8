//! The R1CS-to-QAP reduction snarkjs and rapidsnark use, so a `.zkey` made from our
//! keys proves and verifies with them.
//!
//! Adapted from ark-circom 0.6 (`src/circom/qap.rs`, MIT OR Apache-2.0): depending on
//! ark-circom would compile a WebAssembly runtime (wasmer) we never run, for these
//! few lines. snarkjs computes `H·Z` as the odd coefficients of `A·B - C` on a coset
//! of twice the domain, and its `h_query` holds the matching Lagrange bases.

use ark_ff::PrimeField;
use ark_groth16::r1cs_to_qap::{evaluate_constraint, LibsnarkReduction, R1CSToQAP};
use ark_poly::EvaluationDomain;
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};
use rayon::prelude::*;

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
        let domain =
            D::new(num_constraints + num_inputs).ok_or(SynthesisError::PolynomialDegreeTooLarge)?;
        let domain_size = domain.size();
        let mut a = vec![F::zero(); domain_size];
        let mut b = vec![F::zero(); domain_size];
        a[..num_constraints]
            .par_iter_mut()
            .zip(&mut b[..num_constraints])
            .zip(&matrices[0])
            .zip(&matrices[1])
            .for_each(|(((a, b), a_row), b_row)| {
                *a = evaluate_constraint(a_row, full_assignment);
                *b = evaluate_constraint(b_row, full_assignment);
            });
        a[num_constraints..num_constraints + num_inputs]
            .clone_from_slice(&full_assignment[..num_inputs]);
        let mut c = vec![F::zero(); domain_size];
        c[..num_constraints]
            .par_iter_mut()
            .zip(&a)
            .zip(&b)
            .for_each(|((c, a), b)| *c = *a * b);

        let coset_generator = D::new(2 * domain_size)
            .ok_or(SynthesisError::PolynomialDegreeTooLarge)?
            .element(1);
        for values in [&mut a, &mut b] {
            domain.ifft_in_place(values);
            D::distribute_powers_and_mul_by_const(values, coset_generator, F::one());
            domain.fft_in_place(values);
        }
        let mut ab = domain.mul_polynomials_in_evaluation_domain(&a, &b);
        drop((a, b));
        domain.ifft_in_place(&mut c);
        D::distribute_powers_and_mul_by_const(&mut c, coset_generator, F::one());
        domain.fft_in_place(&mut c);
        ab.par_iter_mut().zip(c).for_each(|(ab, c)| *ab -= &c);
        Ok(ab)
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
