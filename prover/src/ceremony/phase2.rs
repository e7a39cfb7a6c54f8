//! Phase 2 for one circuit (Bowe–Gabizon–Miers): the circuit's Groth16 key computed
//! from the Lagrange bases of phase 1 with `γ = δ = 1`, then contributions that each
//! multiply `δ` by a secret and divide the `L` and `H` queries by it.
//!
//! The state is a snarkjs Groth16 `.zkey` (see [`crate::circom`] for sections 1–9) whose
//! section 10 holds the circuit hash and the contributions (`snarkjs/src/zkey_utils.js`,
//! `writeMPCParams`): `csHash [64] | u32 count`, then per contribution `δ·G1 after |
//! g1_s | g1_sx | g2_spx | transcript [64] | u32 type (0 contribution, 1 beacon) | u32
//! length | parameters` (sorted: `1 | u8 length | name`, `2 | u8 iterations exponent`,
//! `3 | u8 length | beacon hash`). The initial key is the one `snarkjs zkey new` computes
//! (`zkey_new.js`), point for point, and so is the circuit hash: BLAKE2b-512 over `α·G1,
//! β·G1, β·G2, γ·G2, δ·G1, δ·G2` then, each preceded by its point count as a big-endian
//! `u32`, `IC`, the points `τⁱ(τᵈ − 1)·G1` from phase 1 (the count written is `d − 1`;
//! snarkjs hashes them in chunks of 2¹⁴ and so hashes `d` of them once `d > 2¹⁴`, which
//! reads `τ²ᵈ⁻¹` and needs a phase 1 larger than the circuit: with one exactly the
//! circuit's size we hash the `d − 1` the count names, and snarkjs's hash differs), `L`,
//! `A`, `B1`, `B2`, every point uncompressed.
//!
//! A contribution's transcript hash is BLAKE2b-512 over the circuit hash, each earlier
//! contribution (`δ after | g1_s | g1_sx | g2_spx | transcript`) and its own `g1_s |
//! g1_sx`; its proof of knowledge is made for `hashToG2(transcript)`. A beacon draws its
//! secret and `g1_s` from SHA-256 iterated over the beacon hash, as `snarkjs zkey beacon`.
//!
//! [`Phase2::verify`] checks, as `snarkjs zkey verify` does, every transcript hash,
//! proof of knowledge and update of δ, that α, β, γ and the `A`, `B` and `IC` queries are
//! those the circuit and phase 1 give, and that `L` and `H` are those divided by the final
//! δ; the queries are checked with random linear combinations against the Lagrange bases
//! of phase 1 (two MSMs each, instead of recomputing every point: see `query_fault`).
//! The circuit hash is not recomputed there (that needs every initial point): it is the
//! start of every transcript hash, which are checked, and what it summarizes is checked
//! directly; [`Phase2::new`] computes it, and `snarkjs zkey verify` compares it.
//!
use ark_bn254::{Bn254, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::{BigInteger, Field, One, PrimeField, UniformRand, Zero};
use ark_groth16::{ProvingKey, VerifyingKey};
use blake2::Digest;
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use zkcohort_circuits::circuit::CircuitShape;

use super::phase1::{check_name, level, random_scalars, Phase1};
use super::points::{
    self, digest, hash_g1, hash_g2, hash_to_g2, Hash64, Hasher, Reader, SnarkjsRng,
};
use super::{invalid, same_ratio, CeremonyError, Fault, PublicKey, Step};
use crate::circom::{put_u32, write_r1cs_parts, write_zkey_parts, MontgomeryForm, N8};
use crate::keys::{CircuitKeys, ConstraintMatrices, KeyedCircuit};
use crate::ProverError;

/// A circuit a ceremony is for: its R1CS, from the shape (the eligibility circuit's by
/// default, or the note transfer's: `Circuit<NoteShape>`).
pub struct Circuit<S: KeyedCircuit = CircuitShape> {
    shape: S,
    matrices: ConstraintMatrices,
    wires: usize,
}

impl<S: KeyedCircuit> Circuit<S> {
    /// Synthesizes the shape's constraint system.
    ///
    /// # Errors
    /// [`ProverError::Circuit`] for an invalid shape, [`ProverError::Synthesis`].
    pub fn of(shape: S) -> Result<Self, ProverError> {
        shape.validate()?;
        let (matrices, wires) = ConstraintMatrices::with_wires(shape)?;
        Ok(Circuit {
            shape,
            matrices,
            wires,
        })
    }

    /// The shape.
    pub fn shape(&self) -> S {
        self.shape
    }

    /// `log₂` of the QAP domain, the power of tau phase 1 needs (snarkjs's `cirPower`).
    pub fn domain_power(&self) -> u32 {
        (self.matrices.num_constraints + self.matrices.num_inputs)
            .next_power_of_two()
            .trailing_zeros()
    }

    /// The number of wires.
    pub fn wires(&self) -> usize {
        self.wires
    }

    fn public(&self) -> usize {
        self.matrices.num_inputs - 1
    }

    /// Writes the circuit as an iden3 `.r1cs` (what `snarkjs zkey verify` reads).
    ///
    /// # Errors
    /// As `out`'s writes.
    pub fn write_r1cs(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        write_r1cs_parts(&self.matrices, self.wires, out)
    }
}

/// A beacon contribution's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Beacon {
    /// The public random value (a block hash, a drand round).
    pub hash: Vec<u8>,
    /// SHA-256 is iterated `2^iterations_exp` times over it (10 to 63, as snarkjs).
    pub iterations_exp: u8,
}

/// One phase-2 contribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase2Contribution {
    /// `δ·G1` after this contribution.
    pub delta_after: G1Affine,
    /// The public key of the secret.
    pub key: PublicKey,
    /// The transcript hash the proof of knowledge is made for.
    pub transcript: Hash64,
    /// The participant's name, if given.
    pub name: Option<String>,
    /// Set for a beacon.
    pub beacon: Option<Beacon>,
}

impl Phase2Contribution {
    /// snarkjs's contribution hash: BLAKE2b-512 of the public key record.
    pub fn hash(&self) -> Hash64 {
        let mut hasher = Hasher::new();
        self.hash_into(&mut hasher);
        digest(hasher)
    }

    fn hash_into(&self, hasher: &mut Hasher) {
        hash_g1(hasher, &self.delta_after);
        hash_g1(hasher, &self.key.g1_s);
        hash_g1(hasher, &self.key.g1_sx);
        hash_g2(hasher, &self.key.g2_spx);
        hasher.update(self.transcript);
    }
}

/// The phase-2 state of one circuit.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase2 {
    key: ProvingKey<Bn254>,
    cs_hash: Hash64,
    contributions: Vec<Phase2Contribution>,
}

impl Phase2 {
    /// The initial state of `circuit` over a prepared `phase1`, as `snarkjs zkey new`.
    ///
    /// # Errors
    /// [`CeremonyError::TooSmall`], [`CeremonyError::NotPrepared`].
    pub fn new<S: KeyedCircuit>(
        circuit: &Circuit<S>,
        phase1: &Phase1,
    ) -> Result<Self, CeremonyError> {
        let Bases {
            tau,
            tau_g2,
            alpha_tau,
            beta_tau,
            h_query,
        } = Bases::of(circuit, phase1)?;
        let d = tau.len();
        tracing::info!(
            "phase 2: computing the A, B, C, H and L queries of {} wires over {d} points",
            circuit.wires
        );
        // Per wire, the (basis, row, coefficient) terms of its polynomials.
        let matrices = &circuit.matrices;
        let m = matrices.num_constraints;
        let columns = |matrix: usize| {
            let mut columns = vec![Vec::new(); circuit.wires];
            for row in 0..m {
                for (coefficient, wire) in matrices.row(matrix, row) {
                    columns[wire].push((row, coefficient));
                }
            }
            columns
        };
        let [mut a, b, c] = [0, 1, 2].map(columns);
        // snarkjs's input rows: A[m + i][i] = 1 for the constant and every public input.
        for (wire, column) in a.iter_mut().enumerate().take(circuit.public() + 1) {
            column.push((m + wire, Fr::one()));
        }
        let single = |columns: &[Vec<(usize, Fr)>]| -> Vec<Vec<(usize, usize, Fr)>> {
            columns
                .iter()
                .map(|terms| terms.iter().map(|(row, value)| (0, *row, *value)).collect())
                .collect()
        };
        // IC and L: β·A + α·B + C.
        let abc: Vec<Vec<(usize, usize, Fr)>> = (0..circuit.wires)
            .map(|wire| {
                let mut terms: Vec<(usize, usize, Fr)> = a[wire]
                    .iter()
                    .map(|(row, value)| (0, *row, *value))
                    .collect();
                terms.extend(b[wire].iter().map(|(row, value)| (1, *row, *value)));
                terms.extend(c[wire].iter().map(|(row, value)| (2, *row, *value)));
                terms
            })
            .collect();
        let public = circuit.public();
        let combined = combine::<G1Projective>(&abc, &[beta_tau, alpha_tau, tau]);
        let a_query = combine::<G1Projective>(&single(&a), &[tau]);
        let b_g1_query = combine::<G1Projective>(&single(&b), &[tau]);
        let b_g2_query = combine::<G2Projective>(&single(&b), &[tau_g2]);
        let powers = phase1.powers();
        let key = ProvingKey {
            vk: VerifyingKey {
                alpha_g1: powers.alpha_tau_g1[0],
                beta_g2: powers.beta_g2,
                gamma_g2: G2Affine::generator(),
                delta_g2: G2Affine::generator(),
                gamma_abc_g1: combined[..=public].to_vec(),
            },
            beta_g1: powers.beta_tau_g1[0],
            delta_g1: G1Affine::generator(),
            a_query,
            b_g1_query,
            b_g2_query,
            h_query,
            l_query: combined[public + 1..].to_vec(),
        };
        let cs_hash = circuit_hash(&key, &powers.tau_g1, d);
        Ok(Phase2 {
            key,
            cs_hash,
            contributions: Vec::new(),
        })
    }

    /// The circuit hash (snarkjs's `csHash`).
    pub fn circuit_hash(&self) -> &Hash64 {
        &self.cs_hash
    }

    /// The contributions, in order.
    pub fn contributions(&self) -> &[Phase2Contribution] {
        &self.contributions
    }

    /// The proving key as it stands.
    pub fn proving_key(&self) -> &ProvingKey<Bn254> {
        &self.key
    }

    /// A hasher over the circuit hash and every contribution so far.
    fn transcript_hasher(&self) -> Hasher {
        let mut hasher = Hasher::new();
        hasher.update(self.cs_hash);
        for contribution in &self.contributions {
            contribution.hash_into(&mut hasher);
        }
        hasher
    }

    /// Contributes a secret drawn from `rng` (the command line passes the OS RNG), dropped
    /// on return; returns the contribution's hash.
    ///
    /// # Errors
    /// [`CeremonyError::Parameter`] when the name is longer than 64 bytes.
    pub fn contribute<R: RngCore + CryptoRng>(
        &mut self,
        name: &str,
        rng: &mut R,
    ) -> Result<Hash64, CeremonyError> {
        check_name(name)?;
        let delta = loop {
            let delta = Fr::rand(rng);
            if !delta.is_zero() {
                break delta;
            }
        };
        let g1_s = G1Projective::rand(rng).into_affine();
        Ok(self.apply(delta, g1_s, Some(name.to_string()), None))
    }

    /// The random beacon's contribution, as `snarkjs zkey beacon`: everyone can recompute
    /// its secret, so it adds no secrecy; it makes the final δ depend on a value no
    /// participant knew in advance.
    ///
    /// # Errors
    /// [`CeremonyError::Parameter`] for an empty or too long hash, or an exponent outside 10..=63.
    pub fn beacon(
        &mut self,
        name: &str,
        hash: &[u8],
        iterations_exp: u8,
    ) -> Result<Hash64, CeremonyError> {
        check_name(name)?;
        if hash.is_empty() || hash.len() > 255 || !(10..=63).contains(&iterations_exp) {
            return Err(CeremonyError::Parameter(
                "a beacon hash has 1 to 255 bytes and an iterations exponent from 10 to 63".into(),
            ));
        }
        let mut rng = SnarkjsRng::from_beacon(hash, iterations_exp);
        let delta = rng.scalar();
        let g1_s = rng.g1();
        let beacon = Beacon {
            hash: hash.to_vec(),
            iterations_exp,
        };
        Ok(self.apply(delta, g1_s, Some(name.to_string()), Some(beacon)))
    }

    fn apply(
        &mut self,
        delta: Fr,
        g1_s: G1Affine,
        name: Option<String>,
        beacon: Option<Beacon>,
    ) -> Hash64 {
        tracing::info!(
            "phase 2: updating delta in {} H and L points",
            self.key.h_query.len() + self.key.l_query.len()
        );
        let g1_sx = (g1_s * delta).into_affine();
        let mut hasher = self.transcript_hasher();
        hash_g1(&mut hasher, &g1_s);
        hash_g1(&mut hasher, &g1_sx);
        let transcript = digest(hasher);
        let g2_spx = (hash_to_g2(&transcript) * delta).into_affine();
        let key = &mut self.key;
        key.delta_g1 = (key.delta_g1 * delta).into_affine();
        key.vk.delta_g2 = (key.vk.delta_g2 * delta).into_affine();
        let inverse = delta.inverse().expect("delta is not zero");
        for query in [&mut key.l_query, &mut key.h_query] {
            let scaled: Vec<G1Projective> =
                query.par_iter().map(|point| *point * inverse).collect();
            *query = G1Projective::normalize_batch(&scaled);
        }
        let contribution = Phase2Contribution {
            delta_after: key.delta_g1,
            key: PublicKey {
                g1_s,
                g1_sx,
                g2_spx,
            },
            transcript,
            name: name.filter(|name| !name.is_empty()),
            beacon,
        };
        let hash = contribution.hash();
        self.contributions.push(contribution);
        hash
    }

    /// Verifies the state against the circuit and phase 1 (see the module documentation).
    /// Phase 1 itself is checked by [`Phase1::verify`].
    ///
    /// # Errors
    /// [`CeremonyError::Invalid`] with the first step that fails and why; as
    /// [`Phase2::new`] for a phase 1 that does not serve the circuit.
    pub fn verify<S: KeyedCircuit>(
        &self,
        circuit: &Circuit<S>,
        phase1: &Phase1,
    ) -> Result<(), CeremonyError> {
        let mut hasher = Hasher::new();
        hasher.update(self.cs_hash);
        let mut delta = G1Affine::generator();
        for (index, contribution) in self.contributions.iter().enumerate() {
            let step = Step::Phase2Contribution {
                index: index + 1,
                name: contribution.name.clone().unwrap_or_default(),
            };
            let fail = |fault| Err(CeremonyError::from(invalid(step.clone(), fault)));
            let key = &contribution.key;
            let mut ours = hasher.clone();
            hash_g1(&mut ours, &key.g1_s);
            hash_g1(&mut ours, &key.g1_sx);
            if digest(ours) != contribution.transcript {
                return fail(Fault::TranscriptHash);
            }
            let g2_sp = hash_to_g2(&contribution.transcript);
            if !key.proves(&g2_sp) {
                return fail(Fault::ProofOfKnowledge("delta"));
            }
            if !same_ratio(&delta, &contribution.delta_after, &g2_sp, &key.g2_spx) {
                return fail(Fault::Update("delta·G1"));
            }
            if let Some(beacon) = &contribution.beacon {
                let mut rng = SnarkjsRng::from_beacon(&beacon.hash, beacon.iterations_exp);
                let secret = rng.scalar();
                let g1_s = rng.g1();
                if g1_s != key.g1_s || (g1_s * secret).into_affine() != key.g1_sx {
                    return fail(Fault::Beacon);
                }
            }
            contribution.hash_into(&mut hasher);
            delta = contribution.delta_after;
            tracing::info!(
                "phase 2: contribution {} of {} ({:?}) checked",
                index + 1,
                self.contributions.len(),
                contribution.name.as_deref().unwrap_or_default()
            );
        }
        let fail = |fault| Err(CeremonyError::from(invalid(Step::Phase2Keys, fault)));
        if self.contributions.is_empty() {
            return fail(Fault::NoContribution);
        }
        tracing::info!(
            "phase 2: checking the A, B, C, H and L queries against the circuit's {} wires",
            circuit.wires
        );
        let bases = Bases::of(circuit, phase1)?;
        let key = &self.key;
        let powers = phase1.powers();
        if key.vk.alpha_g1 != powers.alpha_tau_g1[0] {
            return fail(Fault::NotInitial("alpha·G1"));
        }
        if key.beta_g1 != powers.beta_tau_g1[0] || key.vk.beta_g2 != powers.beta_g2 {
            return fail(Fault::NotInitial("beta"));
        }
        if key.vk.gamma_g2 != G2Affine::generator() {
            return fail(Fault::NotInitial("gamma·G2"));
        }
        if key.delta_g1 != delta {
            return fail(Fault::FinalValue("delta·G1"));
        }
        if !same_ratio(
            &G1Affine::generator(),
            &delta,
            &G2Affine::generator(),
            &key.vk.delta_g2,
        ) {
            return fail(Fault::G2Mismatch("delta"));
        }
        match self.query_fault(circuit, &bases) {
            Some(fault) => fail(fault),
            None => Ok(()),
        }
    }

    /// Checks every query against the circuit and phase 1 with one random linear
    /// combination each: for wire weights `r`, `Σ rⱼ·Aⱼ` must be `Σᵢ (Σⱼ rⱼ·Aᵢⱼ)·Lᵢ(τ)`,
    /// and so on (a wrong point survives with probability 2⁻¹²⁸). `L` and `H` are
    /// compared through `e(initial, G2) = e(final, δ·G2)`.
    fn query_fault<S: KeyedCircuit>(
        &self,
        circuit: &Circuit<S>,
        bases: &Bases<'_>,
    ) -> Option<Fault> {
        let key = &self.key;
        let matrices = &circuit.matrices;
        let (m, public, d) = (matrices.num_constraints, circuit.public(), bases.tau.len());
        let r = random_scalars(circuit.wires);
        // Row weights per matrix, split by public (IC) and private (L) wires.
        let mut weights = vec![[vec![Fr::zero(); d], vec![Fr::zero(); d]]; 3];
        for (matrix, [public_rows, private_rows]) in weights.iter_mut().enumerate() {
            let rows = public_rows.iter_mut().zip(private_rows.iter_mut());
            for (row, (public_weight, private_weight)) in rows.enumerate().take(m) {
                for (value, wire) in matrices.row(matrix, row) {
                    let weight = if wire > public {
                        &mut *private_weight
                    } else {
                        &mut *public_weight
                    };
                    *weight += r[wire] * value;
                }
            }
        }
        for (wire, weight) in r.iter().enumerate().take(public + 1) {
            weights[0][0][m + wire] += weight;
        }
        let all = |split: &[Vec<Fr>; 2]| -> Vec<Fr> {
            split[0]
                .iter()
                .zip(&split[1])
                .map(|(a, b)| *a + b)
                .collect()
        };
        let g1 = |points: &[G1Affine], scalars: &[Fr]| G1Projective::msm_unchecked(points, scalars);
        let (a, b) = (all(&weights[0]), all(&weights[1]));
        if g1(&key.a_query, &r) != g1(bases.tau, &a) {
            return Some(Fault::NotInitial("the A query"));
        }
        if g1(&key.b_g1_query, &r) != g1(bases.tau, &b) {
            return Some(Fault::NotInitial("the B·G1 query"));
        }
        if G2Projective::msm_unchecked(&key.b_g2_query, &r)
            != G2Projective::msm_unchecked(bases.tau_g2, &b)
        {
            return Some(Fault::NotInitial("the B·G2 query"));
        }
        // β·A + α·B + C, over the public wires (IC) or the private ones (L).
        let combined = |side: usize| {
            g1(bases.beta_tau, &weights[0][side])
                + g1(bases.alpha_tau, &weights[1][side])
                + g1(bases.tau, &weights[2][side])
        };
        if g1(&key.vk.gamma_abc_g1, &r[..=public]) != combined(0) {
            return Some(Fault::NotInitial("IC"));
        }
        let r_h = random_scalars(d);
        for (before, after, name) in [
            (combined(1), g1(&key.l_query, &r[public + 1..]), "L"),
            (g1(&bases.h_query, &r_h), g1(&key.h_query, &r_h), "H"),
        ] {
            let (before, after) = (before.into_affine(), after.into_affine());
            let both_zero = before.is_zero() && after.is_zero();
            if !both_zero && !same_ratio(&before, &after, &key.vk.delta_g2, &G2Affine::generator())
            {
                return Some(Fault::Query(name));
            }
        }
        None
    }

    /// The state as a snarkjs `.zkey` (see the module documentation).
    pub fn to_zkey<S: KeyedCircuit>(&self, circuit: &Circuit<S>) -> Vec<u8> {
        let montgomery = MontgomeryForm::new();
        let mut section = Vec::new();
        section.extend_from_slice(&self.cs_hash);
        put_u32(&mut section, self.contributions.len() as u32);
        for contribution in &self.contributions {
            montgomery.g1(&mut section, &contribution.delta_after);
            montgomery.g1(&mut section, &contribution.key.g1_s);
            montgomery.g1(&mut section, &contribution.key.g1_sx);
            montgomery.g2(&mut section, &contribution.key.g2_spx);
            section.extend_from_slice(&contribution.transcript);
            put_u32(&mut section, contribution.beacon.is_some() as u32);
            let mut parameters = Vec::new();
            if let Some(name) = &contribution.name {
                parameters.push(1);
                parameters.push(name.len() as u8);
                parameters.extend_from_slice(name.as_bytes());
            }
            if let Some(beacon) = &contribution.beacon {
                parameters.push(2);
                parameters.push(beacon.iterations_exp);
                parameters.push(3);
                parameters.push(beacon.hash.len() as u8);
                parameters.extend_from_slice(&beacon.hash);
            }
            put_u32(&mut section, parameters.len() as u32);
            section.extend_from_slice(&parameters);
        }
        let mut bytes = Vec::new();
        write_zkey_parts(&self.key, &circuit.matrices, section, &mut bytes)
            .expect("the key has the circuit's sizes and writing to a Vec cannot fail");
        bytes
    }

    /// Reads a `.zkey` of `circuit` (ours, or one snarkjs extended). Every point is
    /// checked on the curve and in the subgroup; the coefficients must be the circuit's.
    ///
    /// # Errors
    /// [`CeremonyError::Format`] for a malformed file or one for another circuit.
    pub fn from_zkey<S: KeyedCircuit>(
        circuit: &Circuit<S>,
        bytes: &[u8],
    ) -> Result<Self, CeremonyError> {
        let file = Reader::new("zkey", b"zkey", 1, bytes)?;
        if points::u32_at(file.section(1)?, 0) != Some(1) {
            return Err(file.error("not a Groth16 zkey"));
        }
        let header = file.section(2)?;
        let fixed = 4 + N8 + 4 + N8 + 12;
        if header.len() != fixed + 3 * 64 + 3 * 128 {
            return Err(file.error("the Groth16 header has the wrong size"));
        }
        let word = |offset| points::u32_at(header, offset).expect("checked length") as usize;
        let (wires, public, domain) = (word(fixed - 12), word(fixed - 8), word(fixed - 4));
        if header[4..4 + N8] != ark_bn254::Fq::MODULUS.to_bytes_le()[..]
            || wires != circuit.wires
            || public != circuit.public()
            || domain != 1 << circuit.domain_power()
        {
            return Err(file.error("the zkey is for another circuit or curve"));
        }
        let mut position = fixed;
        let take_g1 = |position: &mut usize| {
            let point = file.g1_points(&header[*position..], 1, "the header");
            *position += 64;
            point.map(|points| points[0])
        };
        let alpha_g1 = take_g1(&mut position)?;
        let beta_g1 = take_g1(&mut position)?;
        let take_g2 = |position: &mut usize| {
            let point = file.g2_points(&header[*position..], 1, "the header");
            *position += 128;
            point.map(|points| points[0])
        };
        let beta_g2 = take_g2(&mut position)?;
        let gamma_g2 = take_g2(&mut position)?;
        let delta_g1 = file.g1_points(&header[position..], 1, "the header")?[0];
        position += 64;
        let delta_g2 = take_g2(&mut position)?;
        let exact = |id: u32, count: usize, size: usize| -> Result<&[u8], CeremonyError> {
            let section = file.section(id)?;
            if section.len() != count * size {
                return Err(file.error(format!("section {id} has the wrong size")));
            }
            Ok(section)
        };
        exact(3, public + 1, 64)?;
        exact(5, wires, 64)?;
        exact(6, wires, 64)?;
        exact(7, wires, 128)?;
        exact(8, wires - public - 1, 64)?;
        exact(9, domain, 64)?;
        let key = ProvingKey {
            vk: VerifyingKey {
                alpha_g1,
                beta_g2,
                gamma_g2,
                delta_g2,
                gamma_abc_g1: file.g1_section(3, public + 1)?,
            },
            beta_g1,
            delta_g1,
            a_query: file.g1_section(5, wires)?,
            b_g1_query: file.g1_section(6, wires)?,
            b_g2_query: file.g2_section(7, wires)?,
            l_query: file.g1_section(8, wires - public - 1)?,
            h_query: file.g1_section(9, domain)?,
        };
        let (cs_hash, contributions) = read_contributions(&file, file.section(10)?)?;
        let state = Phase2 {
            key,
            cs_hash,
            contributions,
        };
        // The coefficients section (4) is the circuit's own: compare it with ours.
        let ours = state.to_zkey(circuit);
        let our_file = Reader::new("zkey", b"zkey", 1, &ours)?;
        if our_file.section(4)? != file.section(4)? {
            return Err(file.error("the coefficients are not this circuit's"));
        }
        Ok(state)
    }

    /// The circuit keys this state gives (call [`Phase2::verify`] first).
    ///
    /// # Errors
    /// [`ProverError::Synthesis`] if the verifying key cannot be prepared.
    pub fn into_keys<S: KeyedCircuit>(
        self,
        circuit: Circuit<S>,
    ) -> Result<CircuitKeys<S>, ProverError> {
        CircuitKeys::from_parts(circuit.shape, self.key, circuit.matrices)
    }
}

/// The Lagrange bases of a circuit's domain in a prepared phase 1.
struct Bases<'a> {
    tau: &'a [G1Affine],
    tau_g2: &'a [G2Affine],
    alpha_tau: &'a [G1Affine],
    beta_tau: &'a [G1Affine],
    /// The odd bases of the doubled domain: the initial `H` query.
    h_query: Vec<G1Affine>,
}

impl<'a> Bases<'a> {
    fn of<S: KeyedCircuit>(
        circuit: &Circuit<S>,
        phase1: &'a Phase1,
    ) -> Result<Self, CeremonyError> {
        let power = circuit.domain_power();
        if power > phase1.power() {
            return Err(CeremonyError::TooSmall {
                needed: power,
                available: phase1.power(),
            });
        }
        let lagrange = phase1.lagrange().ok_or(CeremonyError::NotPrepared)?;
        let doubled = level(&lagrange.tau_g1, power + 1);
        Ok(Bases {
            tau: level(&lagrange.tau_g1, power),
            tau_g2: level(&lagrange.tau_g2, power),
            alpha_tau: level(&lagrange.alpha_tau_g1, power),
            beta_tau: level(&lagrange.beta_tau_g1, power),
            h_query: (0..1usize << power).map(|i| doubled[2 * i + 1]).collect(),
        })
    }
}

fn read_contributions(
    file: &Reader<'_>,
    bytes: &[u8],
) -> Result<(Hash64, Vec<Phase2Contribution>), CeremonyError> {
    let truncated = || file.error("the contributions section is truncated");
    let mut position = 0usize;
    let mut take = |count: usize| -> Result<&[u8], CeremonyError> {
        let slice = bytes
            .get(position..position + count)
            .ok_or_else(truncated)?;
        position += count;
        Ok(slice)
    };
    let cs_hash: Hash64 = take(64)?.try_into().expect("64 bytes");
    let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut contributions = Vec::new();
    for _ in 0..count {
        let g1 = |bytes: &[u8]| file.g1_points(bytes, 1, "a contribution").map(|p| p[0]);
        let delta_after = g1(take(64)?)?;
        let g1_s = g1(take(64)?)?;
        let g1_sx = g1(take(64)?)?;
        let g2_spx = file.g2_points(take(128)?, 1, "a contribution")?[0];
        let transcript: Hash64 = take(64)?.try_into().expect("64 bytes");
        let kind = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
        let length = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let parameters = take(length)?;
        let (mut name, mut iterations_exp, mut beacon_hash) = (None, None, None);
        let mut at = 0usize;
        let mut last = 0u8;
        while at < parameters.len() {
            let id = parameters[at];
            if id <= last {
                return Err(file.error("contribution parameters are not sorted"));
            }
            last = id;
            let value = |at: usize| parameters.get(at).copied().ok_or_else(truncated);
            match id {
                1 | 3 => {
                    let length = value(at + 1)? as usize;
                    let content = parameters
                        .get(at + 2..at + 2 + length)
                        .ok_or_else(truncated)?
                        .to_vec();
                    at += 2 + length;
                    if id == 1 {
                        name = Some(
                            String::from_utf8(content)
                                .map_err(|_| file.error("a contribution's name is not UTF-8"))?,
                        );
                    } else {
                        beacon_hash = Some(content);
                    }
                }
                2 => {
                    iterations_exp = Some(value(at + 1)?);
                    at += 2;
                }
                _ => return Err(file.error(format!("unknown contribution parameter {id}"))),
            }
        }
        let beacon = match (kind, iterations_exp, beacon_hash) {
            (0, None, None) => None,
            (1, Some(iterations_exp), Some(hash)) => Some(Beacon {
                hash,
                iterations_exp,
            }),
            _ => return Err(file.error("a contribution's type does not match its parameters")),
        };
        contributions.push(Phase2Contribution {
            delta_after,
            key: PublicKey {
                g1_s,
                g1_sx,
                g2_spx,
            },
            transcript,
            name,
            beacon,
        });
    }
    if position != bytes.len() {
        return Err(file.error("trailing bytes after the contributions"));
    }
    Ok((cs_hash, contributions))
}

/// Combines Lagrange bases per wire: `Σ coefficient · basis[row]` over the wire's terms.
/// Most wires have a few terms, most coefficients are ±1: a sum per wire, in parallel
/// across wires (an MSM per wire would nest rayon inside rayon for a handful of points).
fn combine<G>(terms: &[Vec<(usize, usize, Fr)>], bases: &[&[G::Affine]]) -> Vec<G::Affine>
where
    G: CurveGroup<ScalarField = Fr>,
{
    let minus_one = -Fr::one();
    let sums: Vec<G> = terms
        .par_iter()
        .map(|terms| {
            terms
                .iter()
                .map(|(basis, row, value)| {
                    let point = bases[*basis][*row];
                    if value.is_one() {
                        point.into_group()
                    } else if *value == minus_one {
                        -point.into_group()
                    } else {
                        // Projective: bn254's G1 multiplies through GLV there.
                        point.into_group() * value
                    }
                })
                .sum()
        })
        .collect();
    G::normalize_batch(&sums)
}

/// snarkjs's circuit hash (see the module documentation).
fn circuit_hash(key: &ProvingKey<Bn254>, tau_g1: &[G1Affine], d: usize) -> Hash64 {
    let mut hasher = Hasher::new();
    hash_g1(&mut hasher, &key.vk.alpha_g1);
    hash_g1(&mut hasher, &key.beta_g1);
    hash_g2(&mut hasher, &key.vk.beta_g2);
    hash_g2(&mut hasher, &key.vk.gamma_g2);
    hash_g1(&mut hasher, &key.delta_g1);
    hash_g2(&mut hasher, &key.vk.delta_g2);
    let points = |hasher: &mut Hasher, count: usize, points: &[G1Affine]| {
        hasher.update((count as u32).to_be_bytes());
        points.iter().for_each(|point| hash_g1(hasher, point));
    };
    points(&mut hasher, key.vk.gamma_abc_g1.len(), &key.vk.gamma_abc_g1);
    const CHUNK: usize = 1 << 14;
    let snarkjs_count = (d - 1).div_ceil(CHUNK) * CHUNK;
    let count = if d - 1 <= CHUNK || snarkjs_count + d > tau_g1.len() {
        d - 1
    } else {
        snarkjs_count
    };
    let h: Vec<G1Projective> = (0..count)
        .into_par_iter()
        .map(|i| tau_g1[i + d].into_group() - tau_g1[i])
        .collect();
    points(&mut hasher, d - 1, &G1Projective::normalize_batch(&h));
    points(&mut hasher, key.l_query.len(), &key.l_query);
    points(&mut hasher, key.a_query.len(), &key.a_query);
    points(&mut hasher, key.b_g1_query.len(), &key.b_g1_query);
    hasher.update((key.b_g2_query.len() as u32).to_be_bytes());
    key.b_g2_query
        .iter()
        .for_each(|point| hash_g2(&mut hasher, point));
    digest(hasher)
}
