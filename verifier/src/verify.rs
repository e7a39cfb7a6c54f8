//! Groth16 verification of eligibility and note-transfer proofs: one at a time, or a batch for one
//! key with a random linear combination and a single final exponentiation.
//!
//! One proof `(A, B, C)` for inputs `x` verifies when
//! `e(A, B) = e(alpha, beta) · e(IC(x), gamma) · e(C, delta)`, with
//! `IC(x) = IC[0] + Σ x_j·IC[j]`. A batch draws a random 128-bit `r_i` per
//! proof and checks the product of the equations raised to the `r_i`:
//!
//! ```text
//! Π e(r_i·A_i, B_i) = e(Σ r_i·alpha, beta) · e(Σ r_i·IC(x_i), gamma) · e(Σ r_i·C_i, delta)
//! ```
//!
//! as one multi-Miller loop over `n + 3` pairs and one final exponentiation. The
//! `Σ r_i·IC(x_i)` term is one multi-scalar multiplication over the key's `IC`
//! with aggregated scalars `Σ r_i·x_ij`. If any proof is invalid, the batch
//! equation holds with probability at most about `2^-128` over the `r_i`; when
//! it fails, every proof is checked on its own to name the bad ones.
//!
//! Proofs must come with points on the curve and in the prime-order subgroup,
//! which the [`snarkjs`](crate::snarkjs) readers (and ark-serialize with
//! validation) guarantee; arkworks types built in memory are so by construction.

use ark_bn254::{Bn254, Fr, G1Affine, G1Projective};
use ark_ec::pairing::Pairing;
use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::Zero;
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, VerifyingKey};
use rand::rngs::OsRng;
use rand::{CryptoRng, Rng, RngCore};
use rayon::prelude::*;
use zkcohort_circuits::note::TransferStatement;
use zkcohort_circuits::statement::Statement;

use crate::VerifierError;

/// The outcome of verifying a batch of proofs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchReport {
    /// The number of proofs in the batch.
    pub total: usize,
    /// The indices of the proofs that do not verify, in increasing order.
    pub invalid: Vec<usize>,
    /// Whether the combined check passed (then `invalid` is empty).
    pub batch_passed: bool,
    /// How many final exponentiations were computed: one for a batch that
    /// passes, one more per proof when the batch fails and every proof is
    /// checked on its own. Zero for an empty batch.
    pub final_exponentiations: usize,
}

impl BatchReport {
    /// Whether every proof in the batch verifies.
    pub fn all_valid(&self) -> bool {
        self.invalid.is_empty()
    }
}

/// Verifies one eligibility proof.
///
/// Returns `Ok(false)` for a well-formed proof that does not verify.
///
/// # Errors
/// [`VerifierError::InputCount`] when the key does not take the statement's
/// [`PUBLIC_INPUTS`](zkcohort_circuits::statement::PUBLIC_INPUTS) public inputs.
pub fn verify(
    prepared: &PreparedVerifyingKey<Bn254>,
    statement: &Statement,
    proof: &Proof<Bn254>,
) -> Result<bool, VerifierError> {
    verify_inputs(prepared, &statement.to_public_inputs(), proof)
}

/// Verifies one note-transfer proof.
///
/// Returns `Ok(false)` for a well-formed proof that does not verify.
///
/// # Errors
/// [`VerifierError::InputCount`] when the key does not take a transfer's
/// [`TRANSFER_PUBLIC_INPUTS`](zkcohort_circuits::note::TRANSFER_PUBLIC_INPUTS) public inputs.
pub fn verify_transfer(
    prepared: &PreparedVerifyingKey<Bn254>,
    statement: &TransferStatement,
    proof: &Proof<Bn254>,
) -> Result<bool, VerifierError> {
    verify_inputs(prepared, &statement.to_public_inputs(), proof)
}

/// Verifies one proof for any number of public inputs (for keys of other
/// circuits, as in snarkjs test vectors).
///
/// # Errors
/// [`VerifierError::InputCount`] when `inputs` does not match the key.
pub fn verify_inputs(
    prepared: &PreparedVerifyingKey<Bn254>,
    inputs: &[Fr],
    proof: &Proof<Bn254>,
) -> Result<bool, VerifierError> {
    check_input_count(&prepared.vk, inputs.len())?;
    // ark-groth16 zips inputs with IC and would silently ignore extra or missing
    // ones: the count is checked above. Its pairing check cannot fail to run.
    Ok(Groth16::<Bn254>::verify_proof(prepared, proof, inputs).unwrap_or(false))
}

/// Verifies a batch of eligibility proofs for one key, with randomness from the
/// operating system.
///
/// # Errors
/// As [`verify_batch_with_rng`].
pub fn verify_batch(
    prepared: &PreparedVerifyingKey<Bn254>,
    items: &[(Statement, Proof<Bn254>)],
) -> Result<BatchReport, VerifierError> {
    verify_batch_with_rng(prepared, items, &mut OsRng)
}

/// Verifies a batch of eligibility proofs for one key with a random linear
/// combination of their equations (one final exponentiation), drawing the
/// 128-bit coefficients from `rng`. When the combined check fails, each proof
/// is checked on its own and the report names the invalid ones.
///
/// The coefficients must be unpredictable to whoever made the proofs: use a
/// cryptographic RNG; a seeded one is for tests and benchmarks only.
///
/// # Errors
/// [`VerifierError::InputCount`] when the key does not take the statement's public inputs.
pub fn verify_batch_with_rng<R: RngCore + CryptoRng>(
    prepared: &PreparedVerifyingKey<Bn254>,
    items: &[(Statement, Proof<Bn254>)],
    rng: &mut R,
) -> Result<BatchReport, VerifierError> {
    check_input_count(&prepared.vk, zkcohort_circuits::statement::PUBLIC_INPUTS)?;
    if items.is_empty() {
        return Ok(BatchReport {
            total: 0,
            invalid: Vec::new(),
            batch_passed: true,
            final_exponentiations: 0,
        });
    }
    if combined_check(prepared, items, rng) {
        return Ok(BatchReport {
            total: items.len(),
            invalid: Vec::new(),
            batch_passed: true,
            final_exponentiations: 1,
        });
    }
    let verdicts = items
        .par_iter()
        .map(|(statement, proof)| verify(prepared, statement, proof))
        .collect::<Result<Vec<bool>, VerifierError>>()?;
    let invalid = (0..items.len()).filter(|&index| !verdicts[index]).collect();
    Ok(BatchReport {
        total: items.len(),
        invalid,
        batch_passed: false,
        final_exponentiations: 1 + items.len(),
    })
}

fn check_input_count(vk: &VerifyingKey<Bn254>, got: usize) -> Result<(), VerifierError> {
    let expected = vk.gamma_abc_g1.len().saturating_sub(1);
    if vk.gamma_abc_g1.is_empty() || got != expected {
        return Err(VerifierError::InputCount { expected, got });
    }
    Ok(())
}

/// The random linear combination of the batch's Groth16 equations, checked
/// with one multi-Miller loop and one final exponentiation.
fn combined_check<R: RngCore + CryptoRng>(
    prepared: &PreparedVerifyingKey<Bn254>,
    items: &[(Statement, Proof<Bn254>)],
    rng: &mut R,
) -> bool {
    let vk = &prepared.vk;
    // Nonzero 128-bit coefficients: a zero one would drop its proof's equation.
    let coefficients: Vec<u128> = (0..items.len())
        .map(|_| loop {
            let r: u128 = rng.gen();
            if r != 0 {
                break r;
            }
        })
        .collect();
    let scalars: Vec<Fr> = coefficients.iter().map(|&r| Fr::from(r)).collect();

    // Σ r_i·IC(x_i) = (Σ r_i)·IC[0] + Σ_j (Σ_i r_i·x_ij)·IC[j].
    let mut ic_scalars = vec![Fr::zero(); vk.gamma_abc_g1.len()];
    for ((statement, _), r) in items.iter().zip(&scalars) {
        ic_scalars[0] += r;
        for (sum, x) in ic_scalars[1..].iter_mut().zip(statement.to_public_inputs()) {
            *sum += *r * x;
        }
    }
    let r_sum = ic_scalars[0];
    let ic = G1Projective::msm_unchecked(&vk.gamma_abc_g1, &ic_scalars);
    let c_points: Vec<G1Affine> = items.iter().map(|(_, proof)| proof.c).collect();
    let c = G1Projective::msm_unchecked(&c_points, &scalars);
    let alpha = vk.alpha_g1 * (-r_sum);

    // r_i·A_i with the 128-bit coefficient directly (half the doublings of a
    // full scalar).
    let mut g1: Vec<G1Projective> = items
        .par_iter()
        .zip(&coefficients)
        .map(|((_, proof), &r)| proof.a.mul_bigint([r as u64, (r >> 64) as u64]))
        .collect();
    g1.extend([ic, c, alpha]);
    let g1 = G1Projective::normalize_batch(&g1);

    // Preparing each B_i (its line coefficients) is a large share of the work:
    // spread it, and the scalar multiplications above, across threads.
    let mut g2: Vec<<Bn254 as Pairing>::G2Prepared> =
        items.par_iter().map(|(_, proof)| proof.b.into()).collect();
    g2.extend([
        prepared.gamma_g2_neg_pc.clone(),
        prepared.delta_g2_neg_pc.clone(),
        vk.beta_g2.into(),
    ]);
    let miller = Bn254::multi_miller_loop(g1, g2);
    Bn254::final_exponentiation(miller).is_some_and(|output| output.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_key_is_an_input_count_error() {
        let prepared = PreparedVerifyingKey::<Bn254>::default();
        let statement = Statement::from_public_inputs(
            &[Fr::zero(); zkcohort_circuits::statement::PUBLIC_INPUTS],
        )
        .unwrap();
        assert_eq!(
            verify(&prepared, &statement, &Proof::default()),
            Err(VerifierError::InputCount {
                expected: 0,
                got: zkcohort_circuits::statement::PUBLIC_INPUTS
            })
        );
        assert!(verify_batch(&prepared, &[]).is_err());
    }
}
