//! zkcohort-verifier: the trial sponsor's standalone check of eligibility proofs
//! and study bundles.
//!
//! A patient proves with a Groth16 proof over BN254 that they belong to a study's
//! cohort; the marketplace accepts the proof and pays the reward. A trial sponsor
//! trusts neither the patients nor the marketplace, so this crate re-checks every
//! proof offline, on its own: it depends on no prover and no constraint system
//! (`zkcohort-circuits` without its `r1cs` feature, for the public statement
//! only) and on no async runtime. Keys and proofs travel in the snarkjs JSON
//! formats, so a sponsor can check the same files with snarkjs as a second,
//! independent implementation.
//!
//! Everything read from files is untrusted: coordinates must be canonical field
//! elements, points must lie on the curve and in the prime-order subgroup, and the
//! number of public inputs must match the key. Such input is an [`VerifierError`], never a
//! panic; a well-formed proof that does not verify is `Ok(false)`.
//!
//! # Modules
//!
//! - [`snarkjs`]: `proof.json`, `verification_key.json` and `public.json` in the
//!   snarkjs Groth16 formats for BN254 (`bn128`), read and written, with
//!   conversions to and from ark-groth16's [`Proof`] and [`VerifyingKey`].
//! - [`verify`](mod@verify): one proof against a prepared verifying key, and a batch of proofs
//!   for one key with a random linear combination (one final exponentiation for
//!   the whole batch) that names the bad proofs when the batch fails.
//!
//! - [`audit`]: the marketplace's audit log: entry hashes, RFC 9162 Merkle
//!   roots and inclusion proofs, signed heads (the marketplace store uses
//!   these very types and functions).
//! - [`records`]: the marketplace's records as the log carries them (ledger
//!   entries, accounts, studies, API key roles, DP release parameters); the
//!   marketplace stores these very types.
//! - [`events`]: [`AuditEvent`], what each audit entry records, typed.
//! - [`release_budgets`]: the privacy budgets of a log's DP releases, replayed.
//! - [`bundle`]: study bundles and [`verify_bundle`], the end-to-end check of
//!   one study: signed head, audit entries, circuit id, query hash, every
//!   statement and proof, nullifiers and payouts.
//! - [`setup`]: where the keys came from ([`KeySetup`]: a ceremony's transcript id, or a
//!   development setup), and the ceremony transcript file a bundle's key is checked
//!   against.
//!
//! The binary `zkcohort-verify` is a thin command line over them.
//!
//! [`Proof`]: ark_groth16::Proof
//! [`VerifyingKey`]: ark_groth16::VerifyingKey

pub mod audit;
pub mod bundle;
pub mod events;
#[doc(hidden)]
pub mod hex_serde;
pub mod records;
pub mod release_budgets;
pub mod setup;
pub mod snarkjs;
pub mod verify;

pub use ark_groth16::{prepare_verifying_key, PreparedVerifyingKey, Proof, VerifyingKey};
pub use bundle::{verify_bundle, BundleReport, StudyBundle};
pub use events::AuditEvent;
pub use setup::{CeremonyTranscript, KeySetup, TranscriptId};
pub use snarkjs::{SnarkjsProof, SnarkjsVerifyingKey};
pub use verify::{verify, verify_batch, verify_batch_with_rng, verify_inputs, BatchReport};
pub use zkcohort_circuits::statement::{Statement, PUBLIC_INPUTS, PUBLIC_INPUT_NAMES};

/// Errors of the verifier: malformed or inconsistent input. A well-formed proof
/// that simply does not verify is not an error but `Ok(false)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierError {
    /// The text is not JSON of the expected shape.
    #[error("malformed JSON at {path}: {message}")]
    Json {
        /// Where in the document (`pi_b[1]`, `IC[3][0]`, `.` for the root).
        path: String,
        /// What serde found wrong there.
        message: String,
    },
    /// A `protocol` or `curve` field names something this verifier does not check.
    #[error("{field}: expected {expected:?}, found {found:?}")]
    Unsupported {
        /// The field (`protocol`, `curve`).
        field: &'static str,
        /// The value this verifier checks.
        expected: &'static str,
        /// The value found.
        found: String,
    },
    /// A coordinate is not a canonical base-field element in plain decimal, or a
    /// projective `z` is neither 1 nor the point at infinity.
    #[error("{field}: {reason}")]
    Coordinate {
        /// The coordinate (`pi_a[0]`, `vk_beta_2[1][0]`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The coordinates do not satisfy the curve equation.
    #[error("{field}: point is not on the curve")]
    NotOnCurve {
        /// The point (`pi_a`, `IC[2]`).
        field: String,
    },
    /// The point is on the curve but outside the prime-order subgroup (BN254's G2
    /// has a cofactor).
    #[error("{field}: point is not in the prime-order subgroup")]
    NotInSubgroup {
        /// The point (`pi_b`, `vk_delta_2`).
        field: String,
    },
    /// The point at infinity where a proof or key must not have it.
    #[error("{field}: the point at infinity is not allowed here")]
    Infinity {
        /// The point.
        field: String,
    },
    /// A verifying key that is internally inconsistent or insecure (`nPublic` not
    /// matching `IC`, `vk_gamma_2 == vk_delta_2`, a wrong `vk_alphabeta_12`).
    #[error("verifying key: {0}")]
    Key(String),
    /// The number of public inputs does not match the verifying key.
    #[error("the verifying key takes {expected} public inputs, got {got}")]
    InputCount {
        /// The key's number of public inputs (`IC` length minus one).
        expected: usize,
        /// The number given.
        got: usize,
    },
    /// A ceremony transcript file that is malformed (see [`setup`]).
    #[error("ceremony transcript: {0}")]
    Transcript(String),
    /// A public input that is not a canonical scalar-field element, or the wrong
    /// number of them for the eligibility statement.
    #[error("public inputs: {0}")]
    Statement(#[from] zkcohort_circuits::CircuitError),
}
