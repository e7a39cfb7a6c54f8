//! The Groth16 prover over our MSM ([`crate::msm`]): the same proof arkworks'
//! `create_proof_with_reduction_and_matrices` makes, with the five MSMs and the witness
//! map run side by side on rayon, so that no core waits at the end of one step.

use ark_bn254::{Bn254, Fr, G1Projective, G2Projective};
use ark_ec::CurveGroup;
use ark_ff::PrimeField;
use ark_groth16::{Proof, ProvingKey};
use ark_relations::gr1cs::SynthesisError;
use rayon::prelude::*;

use crate::keys::ConstraintMatrices;
use crate::msm::msm;
use crate::reduction::witness_map;

/// A proof of `full_assignment` (`[1, public inputs…, witnesses…]`) with the blinding
/// factors `r` and `s`.
pub(crate) fn create_proof(
    key: &ProvingKey<Bn254>,
    matrices: &ConstraintMatrices,
    full_assignment: &[Fr],
    r: Fr,
    s: Fr,
) -> Result<Proof<Bn254>, SynthesisError> {
    let num_inputs = matrices.num_inputs;
    let scalars: Vec<_> = full_assignment
        .par_iter()
        .map(|x| x.into_bigint())
        .collect();
    let witness_scalars = &scalars[num_inputs..];
    let (h, (a, (b_g1, (b_g2, l)))) = rayon::join(
        || -> Result<G1Projective, SynthesisError> {
            let h = witness_map(matrices, full_assignment)?;
            let h: Vec<_> = h.par_iter().map(|x| x.into_bigint()).collect();
            Ok(msm(&key.h_query, &h))
        },
        || {
            rayon::join(
                || msm(&key.a_query, &scalars),
                || {
                    rayon::join(
                        || msm(&key.b_g1_query, &scalars),
                        || {
                            rayon::join(
                                || msm(&key.b_g2_query, &scalars),
                                || msm(&key.l_query, witness_scalars),
                            )
                        },
                    )
                },
            )
        },
    );
    let h = h?;
    let delta_g1 = G1Projective::from(key.delta_g1);
    let g_a = a + key.vk.alpha_g1 + delta_g1 * r;
    let g1_b = b_g1 + key.beta_g1 + delta_g1 * s;
    let g2_b: G2Projective = b_g2 + key.vk.beta_g2 + key.vk.delta_g2 * s;
    let g_c = g_a * s + g1_b * r - delta_g1 * (r * s) + l + h;
    Ok(Proof {
        a: g_a.into_affine(),
        b: g2_b.into_affine(),
        c: g_c.into_affine(),
    })
}
