//! Phase 1: powers of tau over BN254, `τⁱ·G1` for `i < 2ᴺ⁺¹ − 1` and `τⁱ·G2`, `ατⁱ·G1`,
//! `βτⁱ·G1` for `i < 2ᴺ`, and `β·G2`, made by a chain of contributions, each multiplying
//! in secrets `(τ', α', β')` it proves knowledge of.
//!
//! The file is a snarkjs `.ptau` (`snarkjs/src/powersoftau_new.js`): section 1 `n8 | q |
//! power | ceremony power`, 2–6 the powers above, 7 snarkjs's contribution records
//! (empty for a phase 1 started here, kept byte for byte from an imported file), and
//! after [`Phase1::prepare`] 12–15 the Lagrange bases of every size `2ᵏ`, `k ≤ N` (and
//! `N + 1` for `τ·G1`, its last power taken as zero), as `snarkjs powersoftau prepare
//! phase2` writes them. Section 100, which snarkjs does not read, holds ours: `u32
//! origin` (0 started here, 1 imported: then the 64-byte hash of the imported powers and
//! their first values), `u32 count`, and per contribution `u8 length | name | τ·G1 |
//! τ·G2 | α·G1 | β·G1 | β·G2 | three public keys (g1_s, g1_sx, g2_spx) for τ, α, β |
//! 64-byte response hash`.
//!
//! A contribution's proofs of knowledge are bound to the challenge, the hash of the
//! powers it started from (the previous response, or for the first one the hash of the
//! start), through snarkjs's `getG2sp`: `hashToG2(BLAKE2b(index | challenge | g1_s |
//! g1_sx))`, index 0, 1, 2 for τ, α, β. The response is BLAKE2b-512 over the powers in
//! arkworks' compressed form. [`Phase1::verify`] checks every proof of knowledge and
//! update, the chain of hashes, that the powers are powers of one τ (pairings over
//! random linear combinations) and that the Lagrange bases interpolate them.
//!
//! An imported `.ptau` (the public Perpetual Powers of Tau) is taken as a start whose
//! powers are checked here but whose own contributions are not: `snarkjs powersoftau
//! verify` checks those.

use ark_bn254::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::{BigInteger, Field, One, PrimeField, UniformRand, Zero};
use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
use ark_serialize::CanonicalSerialize;
use blake2::Digest;
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use super::points::{self, digest, hash_g1, hash_to_g2, Hash64, Hasher, Reader};
use super::{invalid, same_ratio, CeremonyError, Fault, InvalidTranscript, PublicKey, Step};
use crate::circom::{put_u32, write_binfile, MontgomeryForm, N8};

/// The largest power of tau a phase 1 here may have (snarkjs's limit for BN254 is 28).
pub const MAX_POWER: u32 = 28;

/// Our section of the `.ptau` file (see the module documentation).
const OUR_SECTION: u32 = 100;

/// The first values of the powers: what each contribution records after itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstValues {
    /// `τ·G1`.
    pub tau_g1: G1Affine,
    /// `τ·G2`.
    pub tau_g2: G2Affine,
    /// `α·G1`.
    pub alpha_g1: G1Affine,
    /// `β·G1`.
    pub beta_g1: G1Affine,
    /// `β·G2`.
    pub beta_g2: G2Affine,
}

impl FirstValues {
    fn generators() -> Self {
        FirstValues {
            tau_g1: G1Affine::generator(),
            tau_g2: G2Affine::generator(),
            alpha_g1: G1Affine::generator(),
            beta_g1: G1Affine::generator(),
            beta_g2: G2Affine::generator(),
        }
    }
}

/// One contribution's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase1Contribution {
    /// The participant's name (at most 64 bytes).
    pub name: String,
    /// The first values after this contribution.
    pub after: FirstValues,
    /// Public keys for τ', α', β'.
    pub keys: [PublicKey; 3],
    /// The hash of the powers after this contribution.
    pub response: Hash64,
}

/// Where the chain of contributions starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// From the generators (τ = α = β = 1), here.
    Fresh,
    /// From a snarkjs `.ptau`.
    Imported {
        /// The hash of its powers (the first challenge).
        hash: Hash64,
        /// Its first values.
        start: Box<FirstValues>,
    },
}

/// The powers of tau (see the module documentation for their sizes).
#[derive(Clone, Debug, PartialEq, Eq, CanonicalSerialize)]
pub struct Powers {
    /// `τⁱ·G1`, `i < 2ᴺ⁺¹ − 1`.
    pub tau_g1: Vec<G1Affine>,
    /// `τⁱ·G2`, `i < 2ᴺ`.
    pub tau_g2: Vec<G2Affine>,
    /// `ατⁱ·G1`, `i < 2ᴺ`.
    pub alpha_tau_g1: Vec<G1Affine>,
    /// `βτⁱ·G1`, `i < 2ᴺ`.
    pub beta_tau_g1: Vec<G1Affine>,
    /// `β·G2`.
    pub beta_g2: G2Affine,
}

impl Powers {
    fn hash(&self) -> Hash64 {
        let mut bytes = Vec::with_capacity(self.compressed_size());
        self.serialize_compressed(&mut bytes)
            .expect("writing to a Vec cannot fail");
        digest(Hasher::new().chain_update(&bytes))
    }

    fn first_values(&self) -> FirstValues {
        FirstValues {
            tau_g1: self.tau_g1[1],
            tau_g2: self.tau_g2[1],
            alpha_g1: self.alpha_tau_g1[0],
            beta_g1: self.beta_tau_g1[0],
            beta_g2: self.beta_g2,
        }
    }
}

/// The Lagrange bases of every size, each level `k` at offset `2ᵏ − 1` (snarkjs's layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LagrangeBases {
    /// `Lᵢ(τ)·G1`, levels `0..=N+1`.
    pub tau_g1: Vec<G1Affine>,
    /// `Lᵢ(τ)·G2`, levels `0..=N`.
    pub tau_g2: Vec<G2Affine>,
    /// `αLᵢ(τ)·G1`, levels `0..=N`.
    pub alpha_tau_g1: Vec<G1Affine>,
    /// `βLᵢ(τ)·G1`, levels `0..=N`.
    pub beta_tau_g1: Vec<G1Affine>,
}

/// A level of a basis laid out as [`LagrangeBases`].
pub(crate) fn level<T>(points: &[T], level: u32) -> &[T] {
    let start = (1usize << level) - 1;
    &points[start..start + (1usize << level)]
}

/// A phase 1 transcript: the powers, how the chain started, every contribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase1 {
    power: u32,
    ceremony_power: u32,
    powers: Powers,
    origin: Origin,
    contributions: Vec<Phase1Contribution>,
    snarkjs_contributions: Vec<u8>,
    lagrange: Option<LagrangeBases>,
}

impl Phase1 {
    /// A phase 1 of `2^power` from the generators (its trapdoor is 1 until someone contributes).
    ///
    /// # Errors
    /// [`CeremonyError::Parameter`] when `power` is 0 or above [`MAX_POWER`].
    pub fn new(power: u32) -> Result<Self, CeremonyError> {
        if power == 0 || power > MAX_POWER {
            return Err(CeremonyError::Parameter(format!(
                "the power must be between 1 and {MAX_POWER}"
            )));
        }
        let n = 1usize << power;
        let mut snarkjs_contributions = Vec::new();
        put_u32(&mut snarkjs_contributions, 0);
        Ok(Phase1 {
            power,
            ceremony_power: power,
            powers: Powers {
                tau_g1: vec![G1Affine::generator(); 2 * n - 1],
                tau_g2: vec![G2Affine::generator(); n],
                alpha_tau_g1: vec![G1Affine::generator(); n],
                beta_tau_g1: vec![G1Affine::generator(); n],
                beta_g2: G2Affine::generator(),
            },
            origin: Origin::Fresh,
            contributions: Vec::new(),
            snarkjs_contributions,
            lagrange: None,
        })
    }

    /// The power `N`: `2ᴺ` is the largest circuit domain this phase 1 serves.
    pub fn power(&self) -> u32 {
        self.power
    }

    /// The powers.
    pub fn powers(&self) -> &Powers {
        &self.powers
    }

    /// How the chain started.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The contributions made here, in order.
    pub fn contributions(&self) -> &[Phase1Contribution] {
        &self.contributions
    }

    /// The Lagrange bases, once [`Phase1::prepare`] has computed them.
    pub fn lagrange(&self) -> Option<&LagrangeBases> {
        self.lagrange.as_ref()
    }

    /// The hash the next contribution is bound to: the last response, or the start's hash.
    pub fn current_hash(&self) -> Hash64 {
        match self.contributions.last() {
            Some(last) => last.response,
            None => self.start_hash(),
        }
    }

    fn start_hash(&self) -> Hash64 {
        match &self.origin {
            Origin::Fresh => digest(
                Hasher::new()
                    .chain_update(b"zkcohort powers of tau")
                    .chain_update(self.power.to_le_bytes()),
            ),
            Origin::Imported { hash, .. } => *hash,
        }
    }

    fn start_values(&self) -> FirstValues {
        match &self.origin {
            Origin::Fresh => FirstValues::generators(),
            Origin::Imported { start, .. } => **start,
        }
    }

    /// Contributes secrets drawn from `rng` (the command line passes the OS RNG); they are
    /// dropped on return. Drops the Lagrange bases, which no longer match.
    ///
    /// # Errors
    /// [`CeremonyError::Parameter`] when the name is longer than 64 bytes.
    pub fn contribute<R: RngCore + CryptoRng>(
        &mut self,
        name: &str,
        rng: &mut R,
    ) -> Result<&Phase1Contribution, CeremonyError> {
        check_name(name)?;
        let challenge = self.current_hash();
        let secrets = [Fr::rand(rng), Fr::rand(rng), Fr::rand(rng)];
        let keys: Vec<PublicKey> = secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| {
                let g1_s = G1Projective::rand(rng).into_affine();
                let g1_sx = (g1_s * secret).into_affine();
                let g2_sp = g2_sp(index as u8, &challenge, &g1_s, &g1_sx);
                PublicKey {
                    g1_s,
                    g1_sx,
                    g2_spx: (g2_sp * secret).into_affine(),
                }
            })
            .collect();
        let [tau, alpha, beta] = secrets;
        tracing::info!(
            "phase 1: raising {} powers of tau in G1 and G2 to the contribution",
            self.powers.tau_g1.len()
        );
        let taus = powers_of(tau, self.powers.tau_g1.len());
        let powers = &mut self.powers;
        scale_g1(&mut powers.tau_g1, &taus, Fr::one());
        scale_g2(&mut powers.tau_g2, &taus);
        scale_g1(&mut powers.alpha_tau_g1, &taus, alpha);
        scale_g1(&mut powers.beta_tau_g1, &taus, beta);
        powers.beta_g2 = (powers.beta_g2 * beta).into_affine();
        self.lagrange = None;
        self.contributions.push(Phase1Contribution {
            name: name.to_string(),
            after: self.powers.first_values(),
            keys: keys.try_into().expect("three keys"),
            response: self.powers.hash(),
        });
        Ok(self.contributions.last().expect("just pushed"))
    }

    /// Computes the Lagrange bases of every size (a group FFT per size and basis, the
    /// costliest step of phase 1 after a contribution).
    pub fn prepare(&mut self) {
        let n = 1usize << self.power;
        let powers = &self.powers;
        let mut tau_top = powers.tau_g1.clone();
        // The largest τ·G1 level has one power too few; snarkjs takes it as zero, which the
        // odd bases phase 2 uses do not depend on (see `crate::reduction`).
        tau_top.push(G1Affine::zero());
        tracing::info!(
            "phase 1: Lagrange bases of every size up to 2^{} for tau·G1, tau·G2, alpha·tau·G1 \
             and beta·tau·G1",
            self.power
        );
        let done = std::sync::atomic::AtomicUsize::new(0);
        let reported = |basis: &str| {
            let count = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            tracing::info!("phase 1: Lagrange bases of {basis} done ({count} of 4)");
        };
        let ((tau_g1, tau_g2), (alpha_tau_g1, beta_tau_g1)) = rayon::join(
            || {
                rayon::join(
                    || {
                        let levels = all_levels::<G1Projective>(&tau_top, self.power + 1);
                        reported("tau·G1");
                        levels
                    },
                    || {
                        let levels = all_levels::<G2Projective>(&powers.tau_g2[..n], self.power);
                        reported("tau·G2");
                        levels
                    },
                )
            },
            || {
                rayon::join(
                    || {
                        let levels = all_levels::<G1Projective>(&powers.alpha_tau_g1, self.power);
                        reported("alpha·tau·G1");
                        levels
                    },
                    || {
                        let levels = all_levels::<G1Projective>(&powers.beta_tau_g1, self.power);
                        reported("beta·tau·G1");
                        levels
                    },
                )
            },
        );
        self.lagrange = Some(LagrangeBases {
            tau_g1,
            tau_g2,
            alpha_tau_g1,
            beta_tau_g1,
        });
    }

    /// Verifies the whole phase 1 (see the module documentation).
    ///
    /// # Errors
    /// The first step that fails and why.
    pub fn verify(&self) -> Result<(), InvalidTranscript> {
        let mut challenge = self.start_hash();
        let mut previous = self.start_values();
        if self.contributions.is_empty() && self.origin == Origin::Fresh {
            return Err(invalid(Step::Phase1Powers, Fault::NoContribution));
        }
        let g1 = G1Affine::generator();
        let g2 = G2Affine::generator();
        for (index, contribution) in self.contributions.iter().enumerate() {
            let step = Step::Phase1Contribution {
                index: index + 1,
                name: contribution.name.clone(),
            };
            let fail = |fault| Err(invalid(step.clone(), fault));
            let after = &contribution.after;
            let mut sp = [G2Affine::zero(); 3];
            for (index, (key, name)) in contribution
                .keys
                .iter()
                .zip(["tau", "alpha", "beta"])
                .enumerate()
            {
                sp[index] = g2_sp(index as u8, &challenge, &key.g1_s, &key.g1_sx);
                if !key.proves(&sp[index]) {
                    return fail(Fault::ProofOfKnowledge(name));
                }
            }
            let [tau, alpha, beta] = &contribution.keys;
            if !same_ratio(&previous.tau_g1, &after.tau_g1, &sp[0], &tau.g2_spx) {
                return fail(Fault::Update("tau·G1"));
            }
            if !same_ratio(&previous.alpha_g1, &after.alpha_g1, &sp[1], &alpha.g2_spx) {
                return fail(Fault::Update("alpha·G1"));
            }
            if !same_ratio(&previous.beta_g1, &after.beta_g1, &sp[2], &beta.g2_spx) {
                return fail(Fault::Update("beta·G1"));
            }
            if !same_ratio(&g1, &after.tau_g1, &g2, &after.tau_g2) {
                return fail(Fault::G2Mismatch("tau"));
            }
            if !same_ratio(&g1, &after.beta_g1, &g2, &after.beta_g2) {
                return fail(Fault::G2Mismatch("beta"));
            }
            challenge = contribution.response;
            previous = *after;
            tracing::info!(
                "phase 1: contribution {} of {} ({:?}) checked",
                index + 1,
                self.contributions.len(),
                contribution.name
            );
        }
        tracing::info!(
            "phase 1: checking the 2^{} powers and their Lagrange bases",
            self.power
        );
        let fail = |fault| Err(invalid(Step::Phase1Powers, fault));
        let powers = &self.powers;
        if powers.tau_g1[0] != g1 || powers.tau_g2[0] != g2 {
            return fail(Fault::FinalValue("the zeroth power"));
        }
        if powers.first_values() != previous {
            return fail(Fault::FinalValue("a first power"));
        }
        if let Some(fault) = self.powers_fault() {
            return fail(fault);
        }
        if let Some(fault) = self.lagrange_fault() {
            return fail(fault);
        }
        // Last, so that a changed power is named as such rather than as a hash mismatch.
        if powers.hash() != challenge {
            return fail(Fault::TranscriptHash);
        }
        Ok(())
    }

    /// Checks with random linear combinations that every power is the previous one times τ.
    fn powers_fault(&self) -> Option<Fault> {
        let powers = &self.powers;
        let g1 = G1Affine::generator();
        let g2 = G2Affine::generator();
        let tau_g2 = powers.tau_g2[1];
        let tau_g1 = powers.tau_g1[1];
        // Σ rᵢ·Pᵢ and Σ rᵢ·Pᵢ₊₁: equal ratios τ unless some Pᵢ₊₁ ≠ τ·Pᵢ (chance 2⁻¹²⁸).
        let shifted_g1 = |points: &[G1Affine]| {
            let r = random_scalars(points.len() - 1);
            (
                G1Projective::msm_unchecked(&points[..points.len() - 1], &r).into_affine(),
                G1Projective::msm_unchecked(&points[1..], &r).into_affine(),
            )
        };
        for (points, name) in [
            (&powers.tau_g1, "the tau·G1 powers"),
            (&powers.alpha_tau_g1, "the alpha·tau·G1 powers"),
            (&powers.beta_tau_g1, "the beta·tau·G1 powers"),
        ] {
            if points.len() < 2 {
                continue;
            }
            let (low, high) = shifted_g1(points);
            let both_zero = low.is_zero() && high.is_zero();
            if !both_zero && !same_ratio(&low, &high, &g2, &tau_g2) {
                return Some(Fault::Powers(name));
            }
        }
        let r = random_scalars(powers.tau_g2.len() - 1);
        let low = G2Projective::msm_unchecked(&powers.tau_g2[..powers.tau_g2.len() - 1], &r)
            .into_affine();
        let high = G2Projective::msm_unchecked(&powers.tau_g2[1..], &r).into_affine();
        if !same_ratio(&g1, &tau_g1, &low, &high) {
            return Some(Fault::Powers("the tau·G2 powers"));
        }
        None
    }

    /// Checks each Lagrange level against the powers: `Σ rᵢ·Lᵢ = Σ ifft(r)ⱼ·Pⱼ`.
    fn lagrange_fault(&self) -> Option<Fault> {
        let lagrange = self.lagrange.as_ref()?;
        let n = 1usize << self.power;
        let mut tau_top = self.powers.tau_g1.clone();
        tau_top.push(G1Affine::zero());
        let g1_checks = [
            (&lagrange.tau_g1, &tau_top, self.power + 1, "tau·G1"),
            (
                &lagrange.alpha_tau_g1,
                &self.powers.alpha_tau_g1,
                self.power,
                "alpha·tau·G1",
            ),
            (
                &lagrange.beta_tau_g1,
                &self.powers.beta_tau_g1,
                self.power,
                "beta·tau·G1",
            ),
        ];
        for (bases, powers, top, name) in g1_checks {
            for k in 0..=top {
                if !lagrange_level_matches::<G1Projective>(level(bases, k), &powers[..1 << k]) {
                    return Some(Fault::Lagrange(name, k));
                }
            }
        }
        for k in 0..=self.power {
            let powers = &self.powers.tau_g2[..n];
            if !lagrange_level_matches::<G2Projective>(
                level(&lagrange.tau_g2, k),
                &powers[..1 << k],
            ) {
                return Some(Fault::Lagrange("tau·G2", k));
            }
        }
        None
    }

    /// Reads a phase 1 file: ours, or any snarkjs `.ptau` (then imported: see the module
    /// documentation). Every point is checked on the curve and in the subgroup.
    ///
    /// # Errors
    /// [`CeremonyError::Format`] for anything that is not a well-formed `.ptau`.
    pub fn read(bytes: &[u8]) -> Result<Self, CeremonyError> {
        let file = Reader::new("ptau", b"ptau", 1, bytes)?;
        let header = file.section(1)?;
        if header.len() != 4 + N8 + 8
            || points::u32_at(header, 0) != Some(N8 as u32)
            || header[4..4 + N8] != ark_bn254::Fq::MODULUS.to_bytes_le()[..]
        {
            return Err(file.error("not a BN254 powers of tau file"));
        }
        let power = points::u32_at(header, 4 + N8).expect("checked length");
        let ceremony_power = points::u32_at(header, 8 + N8).expect("checked length");
        if power == 0 || power > MAX_POWER {
            return Err(file.error(format!("power {power} is out of range")));
        }
        let n = 1usize << power;
        let (tau_g1, (tau_g2, (alpha_tau_g1, beta_tau_g1))) = rayon::join(
            || file.g1_section(2, 2 * n - 1),
            || {
                rayon::join(
                    || file.g2_section(3, n),
                    || rayon::join(|| file.g1_section(4, n), || file.g1_section(5, n)),
                )
            },
        );
        let powers = Powers {
            tau_g1: tau_g1?,
            tau_g2: tau_g2?,
            alpha_tau_g1: alpha_tau_g1?,
            beta_tau_g1: beta_tau_g1?,
            beta_g2: file.g2_section(6, 1)?[0],
        };
        let lagrange = if file.has(12) {
            let sizes = [(2usize << (power + 1)) - 1, (2usize << power) - 1];
            Some(LagrangeBases {
                tau_g1: file.g1_section(12, sizes[0])?,
                tau_g2: file.g2_section(13, sizes[1])?,
                alpha_tau_g1: file.g1_section(14, sizes[1])?,
                beta_tau_g1: file.g1_section(15, sizes[1])?,
            })
        } else {
            None
        };
        let snarkjs_contributions = file.section(7)?.to_vec();
        let (origin, contributions) = if file.has(OUR_SECTION) {
            read_ours(&file, file.section(OUR_SECTION)?)?
        } else {
            (
                Origin::Imported {
                    hash: powers.hash(),
                    start: Box::new(powers.first_values()),
                },
                Vec::new(),
            )
        };
        Ok(Phase1 {
            power,
            ceremony_power,
            powers,
            origin,
            contributions,
            snarkjs_contributions,
            lagrange,
        })
    }

    /// Writes the phase 1 file (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let montgomery = MontgomeryForm::new();
        let g1s = |points: &[G1Affine]| {
            let mut bytes = Vec::with_capacity(2 * N8 * points.len());
            points
                .iter()
                .for_each(|point| montgomery.g1(&mut bytes, point));
            bytes
        };
        let g2s = |points: &[G2Affine]| {
            let mut bytes = Vec::with_capacity(4 * N8 * points.len());
            points
                .iter()
                .for_each(|point| montgomery.g2(&mut bytes, point));
            bytes
        };
        let mut header = Vec::new();
        put_u32(&mut header, N8 as u32);
        header.extend_from_slice(&ark_bn254::Fq::MODULUS.to_bytes_le());
        put_u32(&mut header, self.power);
        put_u32(&mut header, self.ceremony_power);
        let powers = &self.powers;
        let mut sections = vec![
            (1, header),
            (2, g1s(&powers.tau_g1)),
            (3, g2s(&powers.tau_g2)),
            (4, g1s(&powers.alpha_tau_g1)),
            (5, g1s(&powers.beta_tau_g1)),
            (6, g2s(&[powers.beta_g2])),
            (7, self.snarkjs_contributions.clone()),
        ];
        if let Some(lagrange) = &self.lagrange {
            sections.push((12, g1s(&lagrange.tau_g1)));
            sections.push((13, g2s(&lagrange.tau_g2)));
            sections.push((14, g1s(&lagrange.alpha_tau_g1)));
            sections.push((15, g1s(&lagrange.beta_tau_g1)));
        }
        let mut ours = Vec::new();
        match &self.origin {
            Origin::Fresh => put_u32(&mut ours, 0),
            Origin::Imported { hash, start } => {
                put_u32(&mut ours, 1);
                ours.extend_from_slice(hash);
                write_first_values(&montgomery, &mut ours, start);
            }
        }
        put_u32(&mut ours, self.contributions.len() as u32);
        for contribution in &self.contributions {
            ours.push(contribution.name.len() as u8);
            ours.extend_from_slice(contribution.name.as_bytes());
            write_first_values(&montgomery, &mut ours, &contribution.after);
            for key in &contribution.keys {
                montgomery.g1(&mut ours, &key.g1_s);
                montgomery.g1(&mut ours, &key.g1_sx);
                montgomery.g2(&mut ours, &key.g2_spx);
            }
            ours.extend_from_slice(&contribution.response);
        }
        sections.push((OUR_SECTION, ours));
        let mut bytes = Vec::new();
        write_binfile(&mut bytes, b"ptau", 1, &sections).expect("writing to a Vec cannot fail");
        bytes
    }
}

/// A name fits a contribution record (snarkjs keeps 64 bytes).
pub(crate) fn check_name(name: &str) -> Result<(), CeremonyError> {
    if name.len() > 64 {
        return Err(CeremonyError::Parameter(
            "a contribution's name has at most 64 bytes".into(),
        ));
    }
    Ok(())
}

/// snarkjs's `getG2sp`: the G2 point a proof of knowledge of secret `index` is made for.
fn g2_sp(index: u8, challenge: &Hash64, g1_s: &G1Affine, g1_sx: &G1Affine) -> G2Affine {
    let mut hasher = Hasher::new();
    hasher.update([index]);
    hasher.update(challenge);
    hash_g1(&mut hasher, g1_s);
    hash_g1(&mut hasher, g1_sx);
    hash_to_g2(&digest(hasher))
}

fn write_first_values(montgomery: &MontgomeryForm, bytes: &mut Vec<u8>, values: &FirstValues) {
    montgomery.g1(bytes, &values.tau_g1);
    montgomery.g2(bytes, &values.tau_g2);
    montgomery.g1(bytes, &values.alpha_g1);
    montgomery.g1(bytes, &values.beta_g1);
    montgomery.g2(bytes, &values.beta_g2);
}

/// A cursor over our section.
struct Cursor<'a, 'b> {
    file: &'b Reader<'a>,
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a, '_> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], CeremonyError> {
        let slice = self
            .bytes
            .get(self.position..self.position + count)
            .ok_or_else(|| self.file.error("our contributions section is truncated"))?;
        self.position += count;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, CeremonyError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn g1(&mut self) -> Result<G1Affine, CeremonyError> {
        let bytes = self.take(64)?;
        Ok(self.file.g1_points(bytes, 1, "a contribution")?[0])
    }

    fn g2(&mut self) -> Result<G2Affine, CeremonyError> {
        let bytes = self.take(128)?;
        Ok(self.file.g2_points(bytes, 1, "a contribution")?[0])
    }

    fn first_values(&mut self) -> Result<FirstValues, CeremonyError> {
        Ok(FirstValues {
            tau_g1: self.g1()?,
            tau_g2: self.g2()?,
            alpha_g1: self.g1()?,
            beta_g1: self.g1()?,
            beta_g2: self.g2()?,
        })
    }

    fn hash(&mut self) -> Result<Hash64, CeremonyError> {
        Ok(self.take(64)?.try_into().expect("64 bytes"))
    }
}

fn read_ours(
    file: &Reader<'_>,
    bytes: &[u8],
) -> Result<(Origin, Vec<Phase1Contribution>), CeremonyError> {
    let mut cursor = Cursor {
        file,
        bytes,
        position: 0,
    };
    let origin = match cursor.u32()? {
        0 => Origin::Fresh,
        1 => Origin::Imported {
            hash: cursor.hash()?,
            start: Box::new(cursor.first_values()?),
        },
        other => return Err(file.error(format!("unknown origin {other}"))),
    };
    let count = cursor.u32()?;
    let mut contributions = Vec::new();
    for _ in 0..count {
        let length = cursor.take(1)?[0] as usize;
        let name = String::from_utf8(cursor.take(length)?.to_vec())
            .map_err(|_| file.error("a contribution's name is not UTF-8"))?;
        let after = cursor.first_values()?;
        let mut keys = [PublicKey {
            g1_s: G1Affine::zero(),
            g1_sx: G1Affine::zero(),
            g2_spx: G2Affine::zero(),
        }; 3];
        for key in &mut keys {
            *key = PublicKey {
                g1_s: cursor.g1()?,
                g1_sx: cursor.g1()?,
                g2_spx: cursor.g2()?,
            };
        }
        contributions.push(Phase1Contribution {
            name,
            after,
            keys,
            response: cursor.hash()?,
        });
    }
    if cursor.position != bytes.len() {
        return Err(file.error("trailing bytes after our contributions"));
    }
    Ok((origin, contributions))
}

/// `1, x, x², …` (`count` values), computed in parallel chunks.
fn powers_of(x: Fr, count: usize) -> Vec<Fr> {
    const CHUNK: usize = 1 << 12;
    let mut values = vec![Fr::zero(); count];
    values
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, values)| {
            let mut value = x.pow([(chunk * CHUNK) as u64]);
            for slot in values {
                *slot = value;
                value *= x;
            }
        });
    values
}

fn scale_g1(points: &mut [G1Affine], scalars: &[Fr], factor: Fr) {
    let scaled: Vec<G1Projective> = points
        .par_iter()
        .zip(scalars)
        // Projective: bn254's G1 multiplies through GLV there, affine points do not.
        .map(|(point, scalar)| point.into_group() * (*scalar * factor))
        .collect();
    points.copy_from_slice(&G1Projective::normalize_batch(&scaled));
}

fn scale_g2(points: &mut [G2Affine], scalars: &[Fr]) {
    let scaled: Vec<G2Projective> = points
        .par_iter()
        .zip(scalars)
        .map(|(point, scalar)| *point * scalar)
        .collect();
    points.copy_from_slice(&G2Projective::normalize_batch(&scaled));
}

/// Every Lagrange level `0..=top` of powers (the first `2ᵏ` of them for level `k`).
fn all_levels<G: CurveGroup<ScalarField = Fr>>(powers: &[G::Affine], top: u32) -> Vec<G::Affine> {
    let mut all = Vec::with_capacity((2usize << top) - 1);
    for k in 0..=top {
        let mut values: Vec<G> = powers[..1 << k]
            .iter()
            .map(|point| point.into_group())
            .collect();
        let domain = Radix2EvaluationDomain::<Fr>::new(1 << k).expect("a power of two up to 2^28");
        domain.ifft_in_place(&mut values);
        all.extend(G::normalize_batch(&values));
    }
    all
}

fn lagrange_level_matches<G>(bases: &[G::Affine], powers: &[G::Affine]) -> bool
where
    G: CurveGroup<ScalarField = Fr> + VariableBaseMSM<MulBase = <G as CurveGroup>::Affine>,
{
    let r = random_scalars(bases.len());
    let domain = Radix2EvaluationDomain::<Fr>::new(bases.len()).expect("a power of two");
    let coefficients = domain.ifft(&r);
    G::msm_unchecked(bases, &r) == G::msm_unchecked(powers, &coefficients)
}

/// 128-bit random scalars for the random linear combinations (soundness error 2⁻¹²⁸ per check).
pub(crate) fn random_scalars(count: usize) -> Vec<Fr> {
    let mut rng = rand::rngs::OsRng;
    (0..count)
        .map(|_| {
            let mut bytes = [0u8; 16];
            rng.fill_bytes(&mut bytes);
            Fr::from_le_bytes_mod_order(&bytes)
        })
        .collect()
}
