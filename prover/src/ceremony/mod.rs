//! The multi-party trusted setup: whoever runs [`CircuitKeys::setup`](crate::CircuitKeys::setup)
//! knows the trapdoor and can prove anything, so production keys come from a ceremony in
//! which one honest participant is enough.
//!
//! - [`phase1`]: powers of tau over BN254, shared by every circuit: contributions with
//!   proofs of knowledge of tau, alpha and beta, or a snarkjs `.ptau` imported as the
//!   start (the public Perpetual Powers of Tau), and the Lagrange bases phase 2 needs;
//! - [`phase2`]: per circuit (Bowe–Gabizon–Miers): each contribution multiplies delta by
//!   a secret it proves knowledge of, an optional random beacon, and the proving key;
//! - [`transcript`]: the verified transcript of a finished ceremony and its id.
//!
//! The files are snarkjs's own formats, so a second implementation checks every step:
//! phase 1 is a `.ptau` (our contribution records sit in a section snarkjs does not read)
//! and the phase-2 state is a Groth16 `.zkey` with its contributions section, which
//! `snarkjs zkey verify circuit.r1cs phase1.ptau state.zkey` verifies and `snarkjs zkey
//! contribute` extends. Hashes and proofs of knowledge follow snarkjs: BLAKE2b-512 over
//! uncompressed big-endian points (`toRprUncompressed`), the hash mapped to G2 by
//! seeding ChaCha20 with it and drawing a point as ffjavascript's `G2.fromRng` does
//! (`snarkjs/src/keypair.js`, `hashToG2`).
//!
//! Secrets come from the caller's RNG (the command line passes the OS RNG), live only in
//! local variables for the duration of one contribution, and are never written.

pub mod phase1;
pub mod phase2;
mod points;
pub mod transcript;

use std::fmt;

use ark_bn254::{Bn254, G1Affine, G2Affine};
use ark_ec::pairing::Pairing;
use ark_ec::AffineRepr;
use ark_ff::Zero;

pub use phase1::Phase1;
pub use phase2::{Circuit, Phase2};
pub use transcript::TranscriptId;

/// Everything that can go wrong in a ceremony.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CeremonyError {
    /// A `.ptau` or `.zkey` file cannot be read: wrong magic, a missing or short
    /// section, a point off the curve or outside the subgroup.
    #[error("{file}: {reason}")]
    Format {
        /// The kind of file (`ptau`, `zkey`).
        file: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The transcript does not verify: the step and the reason.
    #[error(transparent)]
    Invalid(#[from] InvalidTranscript),
    /// The circuit needs more powers of tau than phase 1 has.
    #[error("the circuit needs 2^{needed} powers of tau, phase 1 has 2^{available}")]
    TooSmall {
        /// The power the circuit needs.
        needed: u32,
        /// The power phase 1 has.
        available: u32,
    },
    /// Phase 1 has no Lagrange bases yet (`prepare` computes them).
    #[error("phase 1 is not prepared for phase 2: compute its Lagrange bases first")]
    NotPrepared,
    /// A parameter is out of range (a name longer than 64 bytes, a beacon's iterations).
    #[error("{0}")]
    Parameter(String),
}

/// Where in a transcript a check failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Phase 1 contribution `index` (1-based) and its participant's name.
    Phase1Contribution {
        /// 1-based position in the transcript.
        index: usize,
        /// The participant's name.
        name: String,
    },
    /// The final powers of tau and their Lagrange bases.
    Phase1Powers,
    /// Phase 2 contribution `index` (1-based) and its participant's name.
    Phase2Contribution {
        /// 1-based position in the transcript.
        index: usize,
        /// The participant's name (empty when none was given).
        name: String,
    },
    /// The phase-2 keys against the circuit and phase 1.
    Phase2Keys,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Phase1Contribution { index, name } => {
                write!(f, "phase 1 contribution {index} ({name})")
            }
            Step::Phase1Powers => write!(f, "phase 1 powers"),
            Step::Phase2Contribution { index, name } => {
                write!(f, "phase 2 contribution {index} ({name})")
            }
            Step::Phase2Keys => write!(f, "phase 2 keys"),
        }
    }
}

/// Why a step of a transcript does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// A phase has no contribution: its secrets are the known value 1.
    #[error("no contribution: the trapdoor is public")]
    NoContribution,
    /// The proof of knowledge of a secret does not verify.
    #[error("the proof of knowledge of {0} does not verify")]
    ProofOfKnowledge(&'static str),
    /// A value is not the previous one times the secret proven known.
    #[error("{0} does not follow from the previous value by the proven secret")]
    Update(&'static str),
    /// A value in G2 is not the same exponent as its G1 twin.
    #[error("{0} in G2 does not match its value in G1")]
    G2Mismatch(&'static str),
    /// The recorded hash a proof of knowledge is bound to is not the hash of what precedes it.
    #[error("the recorded transcript hash is not the hash of what precedes it")]
    TranscriptHash,
    /// The powers are not consecutive powers of one tau (random linear combination).
    #[error("{0} are not consecutive powers of one tau")]
    Powers(&'static str),
    /// A value differs from its value after the last contribution.
    #[error("{0} is not its value after the last contribution")]
    FinalValue(&'static str),
    /// A Lagrange basis does not interpolate the powers.
    #[error("the Lagrange basis {0} of size 2^{1} does not match the powers")]
    Lagrange(&'static str, u32),
    /// A part of the phase-2 keys that no contribution may change was changed.
    #[error("{0} is not the value the circuit and phase 1 give")]
    NotInitial(&'static str),
    /// A query is not the initial one divided by the final delta.
    #[error("the {0} query is not the initial one divided by delta")]
    Query(&'static str),
    /// A beacon contribution's key is not the one its beacon hash gives.
    #[error("the beacon's key does not follow from its beacon hash")]
    Beacon,
}

/// A transcript that does not verify: the first step that fails and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {fault}")]
pub struct InvalidTranscript {
    /// The first step that fails.
    pub step: Step,
    /// Why.
    pub fault: Fault,
}

/// A participant's public key for one secret `x` (snarkjs's `g1_s`, `g1_sx`, `g2_spx`):
/// `s` is a random G1 point, `sp` is the hash of the transcript so far mapped to G2, and
/// `e(s, sp·x) = e(s·x, sp)` proves knowledge of `x` bound to that transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// A random point `s`.
    pub g1_s: G1Affine,
    /// `s·x`.
    pub g1_sx: G1Affine,
    /// `sp·x`, `sp` the transcript hash mapped to G2.
    pub g2_spx: G2Affine,
}

impl PublicKey {
    /// Whether this key proves knowledge of the exponent for `g2_sp`.
    fn proves(&self, g2_sp: &G2Affine) -> bool {
        same_ratio(&self.g1_s, &self.g1_sx, g2_sp, &self.g2_spx)
    }
}

/// `e(a, d) = e(b, c)` with all four non-zero: `b/a` and `d/c` are the same exponent.
fn same_ratio(a: &G1Affine, b: &G1Affine, c: &G2Affine, d: &G2Affine) -> bool {
    if a.is_zero() || b.is_zero() || c.is_zero() || d.is_zero() {
        return false;
    }
    // The pairing group is written additively: zero is the identity.
    Bn254::multi_pairing([*a, -*b], [*d, *c]).is_zero()
}

/// The first step that fails, as an error.
fn invalid(step: Step, fault: Fault) -> InvalidTranscript {
    InvalidTranscript { step, fault }
}
