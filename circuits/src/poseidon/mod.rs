//! The Poseidon hash exactly as circomlib's `Poseidon(n)` template computes it.
//!
//! Poseidon over the BN254 scalar field with the x^5 S-box, 8 full rounds and
//! the number of partial rounds circomlib uses for each state width
//! (`t = n + 1`), the round constants and MDS matrices circomlib generated with
//! the reference Grain script. The state starts as `[0, inputs...]`; the hash
//! is `state[0]` after the permutation (not a sponge squeeze, so it differs
//! from ark-crypto-primitives' `PoseidonSponge`).
//!
//! Constants come from [`light_poseidon`] (its `new_circom` parameters), which
//! is tested against circomlibjs. They are converted into field elements once
//! per width and cached ([`parameters`]). The permutation is our own: the
//! light-poseidon hasher reallocates its state every round, and Merkle trees
//! call the hash millions of times. Tests check it against light-poseidon and
//! against circomlib's published vectors
//! (`circuits/tests/vectors/poseidon_circomlib.json`).
//!
//! The R1CS twin of this module is `constraints` (feature `r1cs`).

#[cfg(feature = "r1cs")]
pub mod gadget;

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_ff::{Field, Zero};

use crate::CircuitError;

/// The smallest number of inputs Poseidon accepts.
pub const MIN_ARITY: usize = 1;
/// The largest number of inputs Poseidon accepts (state width 13, the widest
/// circom-compatible parameters light-poseidon ships).
pub const MAX_ARITY: usize = light_poseidon::MAX_X5_LEN - 1;
/// Number of full rounds, for every width (4 before and 4 after the partial
/// rounds).
pub const FULL_ROUNDS: usize = 8;
/// The S-box exponent: `x -> x^5`.
pub const SBOX_ALPHA: u64 = 5;

/// Poseidon parameters for one state width: round constants and MDS matrix.
///
/// Obtained through [`parameters`], which builds each width once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoseidonParameters {
    width: usize,
    full_rounds: usize,
    partial_rounds: usize,
    /// `(full_rounds + partial_rounds) * width` constants, round after round.
    round_constants: Vec<Fr>,
    /// The `width * width` MDS matrix, row after row.
    mds: Vec<Fr>,
}

impl PoseidonParameters {
    fn for_arity(arity: usize) -> Self {
        let width = arity + 1;
        let width_u8 = u8::try_from(width).expect("Poseidon widths are below 256");
        let p = light_poseidon::parameters::bn254_x5::get_poseidon_parameters::<Fr>(width_u8)
            .expect("light-poseidon has circom parameters for every supported arity");
        assert_eq!(p.width, width, "light-poseidon width");
        assert_eq!(p.alpha, SBOX_ALPHA, "light-poseidon S-box");
        assert_eq!(p.full_rounds, FULL_ROUNDS, "light-poseidon full rounds");
        assert_eq!(
            p.ark.len(),
            (p.full_rounds + p.partial_rounds) * width,
            "light-poseidon round constants"
        );
        assert!(
            p.mds.len() == width && p.mds.iter().all(|row| row.len() == width),
            "light-poseidon MDS matrix shape"
        );
        Self {
            width,
            full_rounds: p.full_rounds,
            partial_rounds: p.partial_rounds,
            round_constants: p.ark,
            mds: p.mds.into_iter().flatten().collect(),
        }
    }

    /// The state width `t`: the number of inputs plus one.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The number of inputs these parameters hash.
    pub fn arity(&self) -> usize {
        self.width - 1
    }

    /// The number of full rounds (always [`FULL_ROUNDS`]).
    pub fn full_rounds(&self) -> usize {
        self.full_rounds
    }

    /// The number of partial rounds (circomlib's `N_ROUNDS_P[t - 2]`).
    pub fn partial_rounds(&self) -> usize {
        self.partial_rounds
    }

    /// The total number of rounds.
    pub fn rounds(&self) -> usize {
        self.full_rounds + self.partial_rounds
    }

    /// Whether `round` (counted from 0) is a full round: the first and last
    /// `full_rounds / 2` rounds are.
    pub fn is_full_round(&self, round: usize) -> bool {
        let half = self.full_rounds / 2;
        round < half || round >= half + self.partial_rounds
    }

    /// The `width` round constants added at the start of `round`.
    ///
    /// # Panics
    ///
    /// Panics if `round >= self.rounds()`.
    pub fn round_constants(&self, round: usize) -> &[Fr] {
        &self.round_constants[round * self.width..(round + 1) * self.width]
    }

    /// Row `i` of the MDS matrix: `new_state[i] = sum_j mds[i][j] * state[j]`.
    ///
    /// # Panics
    ///
    /// Panics if `i >= self.width()`.
    pub fn mds_row(&self, i: usize) -> &[Fr] {
        &self.mds[i * self.width..(i + 1) * self.width]
    }
}

/// The cached Poseidon parameters for hashing `arity` inputs.
///
/// Each width is built from light-poseidon's constants on first use and kept
/// for the life of the process.
///
/// # Errors
///
/// [`CircuitError::PoseidonArity`] if `arity` is not in `MIN_ARITY..=MAX_ARITY`.
pub fn parameters(arity: usize) -> Result<&'static PoseidonParameters, CircuitError> {
    static CACHE: [OnceLock<PoseidonParameters>; MAX_ARITY] =
        [const { OnceLock::new() }; MAX_ARITY];
    if !(MIN_ARITY..=MAX_ARITY).contains(&arity) {
        return Err(CircuitError::PoseidonArity {
            got: arity,
            min: MIN_ARITY,
            max: MAX_ARITY,
        });
    }
    Ok(CACHE[arity - MIN_ARITY].get_or_init(|| PoseidonParameters::for_arity(arity)))
}

/// Poseidon hash of `inputs`, as circomlib's `Poseidon(inputs.len())`.
///
/// # Errors
///
/// [`CircuitError::PoseidonArity`] if there are no inputs or more than
/// [`MAX_ARITY`].
pub fn poseidon_hash(inputs: &[Fr]) -> Result<Fr, CircuitError> {
    let params = parameters(inputs.len())?;
    Ok(match params.width {
        2 => hash_with::<2>(params, inputs),
        3 => hash_with::<3>(params, inputs),
        4 => hash_with::<4>(params, inputs),
        5 => hash_with::<5>(params, inputs),
        6 => hash_with::<6>(params, inputs),
        7 => hash_with::<7>(params, inputs),
        8 => hash_with::<8>(params, inputs),
        9 => hash_with::<9>(params, inputs),
        10 => hash_with::<10>(params, inputs),
        11 => hash_with::<11>(params, inputs),
        12 => hash_with::<12>(params, inputs),
        13 => hash_with::<13>(params, inputs),
        width => unreachable!("no Poseidon parameters of width {width}"),
    })
}

/// Poseidon hash of exactly `N` inputs; the arity is checked at compile time,
/// so this cannot fail.
pub fn poseidon_hash_fixed<const N: usize>(inputs: &[Fr; N]) -> Fr {
    const {
        assert!(
            N >= MIN_ARITY && N <= MAX_ARITY,
            "Poseidon takes 1 to 12 inputs"
        )
    };
    match poseidon_hash(inputs) {
        Ok(hash) => hash,
        Err(_) => unreachable!("the arity was checked at compile time"),
    }
}

/// Two-to-one Poseidon hash (`Poseidon(2)`), the Merkle tree node hash.
pub fn poseidon_hash2(left: Fr, right: Fr) -> Fr {
    match parameters(2) {
        Ok(params) => hash_with::<3>(params, &[left, right]),
        Err(_) => unreachable!("Poseidon(2) has parameters"),
    }
}

/// Loads `[0, inputs...]` into a width-`T` state, permutes, returns `state[0]`.
fn hash_with<const T: usize>(params: &PoseidonParameters, inputs: &[Fr]) -> Fr {
    debug_assert_eq!(params.width, T);
    debug_assert_eq!(inputs.len() + 1, T);
    let mut state = [Fr::zero(); T];
    state[1..].copy_from_slice(inputs);
    permute(params, &mut state);
    state[0]
}

/// The Poseidon permutation on a width-`T` state, in place.
fn permute<const T: usize>(params: &PoseidonParameters, state: &mut [Fr; T]) {
    for round in 0..params.rounds() {
        for (s, c) in state.iter_mut().zip(params.round_constants(round)) {
            *s += c;
        }
        if params.is_full_round(round) {
            state.iter_mut().for_each(sbox);
        } else {
            sbox(&mut state[0]);
        }
        let before = *state;
        for (i, s) in state.iter_mut().enumerate() {
            let row =
                <&[Fr; T]>::try_from(params.mds_row(i)).expect("MDS rows have the state width");
            *s = Fr::sum_of_products(row, &before);
        }
    }
}

/// `x -> x^5`.
#[inline(always)]
fn sbox(x: &mut Fr) {
    let x2 = x.square();
    let x4 = x2.square();
    *x *= x4;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{BigInteger, PrimeField, UniformRand};
    use light_poseidon::{Poseidon, PoseidonHasher};
    use rand::{rngs::StdRng, SeedableRng};

    /// A field element from a decimal or `0x`-prefixed hexadecimal string.
    pub(crate) fn fr_from_str(s: &str) -> Fr {
        let s = s.trim();
        if let Some(hex) = s.strip_prefix("0x") {
            let hex = if hex.len() % 2 == 1 {
                format!("0{hex}")
            } else {
                hex.to_string()
            };
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
                .collect();
            let x = Fr::from_be_bytes_mod_order(&bytes);
            assert_eq!(
                x.into_bigint()
                    .to_bytes_be()
                    .iter()
                    .skip_while(|b| **b == 0)
                    .count(),
                bytes.iter().skip_while(|b| **b == 0).count(),
                "{s} is not a canonical field element"
            );
            x
        } else {
            s.parse::<Fr>()
                .unwrap_or_else(|_| panic!("{s} is not a field element"))
        }
    }

    #[derive(serde::Deserialize)]
    struct VectorFile {
        vectors: Vec<Vector>,
    }

    #[derive(serde::Deserialize)]
    struct Vector {
        inputs: Vec<String>,
        output: String,
        source: String,
    }

    pub(crate) fn circomlib_vectors() -> Vec<(Vec<Fr>, Fr, String)> {
        let text = include_str!("../../tests/vectors/poseidon_circomlib.json");
        let file: VectorFile = serde_json::from_str(text).expect("vector file parses");
        file.vectors
            .into_iter()
            .map(|v| {
                (
                    v.inputs.iter().map(|s| fr_from_str(s)).collect(),
                    fr_from_str(&v.output),
                    v.source,
                )
            })
            .collect()
    }

    #[test]
    fn matches_circomlib_vectors() {
        let vectors = circomlib_vectors();
        assert!(vectors.len() >= 20);
        for (inputs, expected, source) in vectors {
            assert_eq!(
                poseidon_hash(&inputs).unwrap(),
                expected,
                "Poseidon({} inputs) from {source}",
                inputs.len()
            );
        }
    }

    #[test]
    fn vectors_cover_every_arity() {
        let vectors = circomlib_vectors();
        for arity in MIN_ARITY..=MAX_ARITY {
            assert!(
                vectors.iter().any(|(inputs, _, _)| inputs.len() == arity),
                "no vector for arity {arity}"
            );
        }
    }

    #[test]
    fn circomlib_one_two() {
        // circomlibjs test/poseidon.js, poseidonperm_x5_254_3 and _5.
        let one = Fr::from(1u64);
        let two = Fr::from(2u64);
        let expected =
            fr_from_str("0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a");
        assert_eq!(poseidon_hash(&[one, two]).unwrap(), expected);
        assert_eq!(poseidon_hash2(one, two), expected);
        assert_eq!(poseidon_hash_fixed(&[one, two]), expected);
        let four: Vec<Fr> = (1..=4u64).map(Fr::from).collect();
        assert_eq!(
            poseidon_hash(&four).unwrap(),
            fr_from_str("0x299c867db6c1fdd79dcefa40e4510b9837e60ebb1ce0663dbaa525df65250465")
        );
    }

    #[test]
    fn matches_light_poseidon_on_random_inputs() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0001);
        for arity in MIN_ARITY..=MAX_ARITY {
            let mut reference = Poseidon::<Fr>::new_circom(arity).unwrap();
            for _ in 0..8 {
                let inputs: Vec<Fr> = (0..arity).map(|_| Fr::rand(&mut rng)).collect();
                assert_eq!(
                    poseidon_hash(&inputs).unwrap(),
                    reference.hash(&inputs).unwrap(),
                    "arity {arity}"
                );
            }
        }
    }

    #[test]
    fn bad_arity_is_an_error() {
        let expected = |got| CircuitError::PoseidonArity {
            got,
            min: MIN_ARITY,
            max: MAX_ARITY,
        };
        assert_eq!(poseidon_hash(&[]), Err(expected(0)));
        let too_many = vec![Fr::from(1u64); MAX_ARITY + 1];
        assert_eq!(poseidon_hash(&too_many), Err(expected(MAX_ARITY + 1)));
        assert_eq!(parameters(0), Err(expected(0)));
        assert_eq!(parameters(100), Err(expected(100)));
        assert!(!expected(0).to_string().is_empty());
    }

    #[test]
    fn parameters_match_circomlib_round_counts() {
        // circomlib poseidon.circom: N_ROUNDS_P = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, ...]
        let partial = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65];
        for arity in MIN_ARITY..=MAX_ARITY {
            let p = parameters(arity).unwrap();
            assert_eq!(p.width(), arity + 1);
            assert_eq!(p.arity(), arity);
            assert_eq!(p.full_rounds(), FULL_ROUNDS);
            assert_eq!(p.partial_rounds(), partial[arity - 1]);
            assert_eq!(p.rounds(), FULL_ROUNDS + partial[arity - 1]);
            assert_eq!((0..p.rounds()).filter(|r| p.is_full_round(*r)).count(), 8);
            // Cached: the same allocation every time.
            assert!(std::ptr::eq(p, parameters(arity).unwrap()));
        }
    }
}
