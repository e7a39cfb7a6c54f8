//! zkcohort-prover: keys and proofs for the eligibility and note-transfer circuits, the
//! performance-critical core of zkcohort. Patients prove on their own machines.
//!
//! - [`keys`]: single-party development setup per circuit (eligibility of a shape, or
//!   note transfer), proving key files
//!   that load without re-validation (checksummed), and the circuit id;
//! - [`note`]: note-transfer proofs (merging and withdrawing reward notes) with the
//!   note circuit's keys;
//! - [`prove`]: witness building from a wallet's data, one proof, and rayon batches
//!   with results streamed to a callback;
//! - `groth16`: the Groth16 prover, its five MSMs and the witness map run side by side;
//! - [`msm`]: multi-scalar multiplication with batched affine buckets, skipping what a
//!   witness makes free (zero scalars, points at infinity) or cheap (±1, small values);
//! - [`reduction`]: snarkjs's R1CS-to-QAP reduction, so our keys and proofs are
//!   interchangeable with snarkjs and rapidsnark;
//! - [`ceremony`]: the multi-party trusted setup (powers of tau, phase 2 per circuit,
//!   verification of the whole transcript), in snarkjs's file formats;
//! - [`circom`]: the circuit as an iden3 `.r1cs`, a witness as `.wtns` and the
//!   proving key as a snarkjs `.zkey`, for snarkjs and rapidsnark.

pub mod ceremony;
pub mod circom;
mod codec;
mod groth16;
pub mod keys;
mod matrices;
pub mod msm;
pub mod note;
pub mod prove;
pub mod reduction;

use std::path::PathBuf;

pub use keys::{CircuitId, CircuitKeys, KeyedCircuit};
pub use note::TransferProof;
pub use prove::{BatchProgress, EligibilityProof, ProofRequest};

/// Everything that can go wrong while setting up or proving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProverError {
    /// The witness could not be built (not eligible, or does not fit the shape).
    #[error(transparent)]
    Circuit(#[from] zkcohort_circuits::CircuitError),
    /// Constraint synthesis or the Groth16 prover failed.
    #[error("proving failed: {0}")]
    Synthesis(#[from] ark_relations::gr1cs::SynthesisError),
    /// A key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A ceremony file is malformed or its transcript does not verify.
    #[error(transparent)]
    Ceremony(#[from] ceremony::CeremonyError),
    /// A key fails a check it must pass before it is trusted.
    #[error("key check failed: {0}")]
    Key(String),
    /// A key file of another key format: made by another version of zkcohort,
    /// whose circuit (and so the stored matrices and verifying key) differs.
    #[error(
        "{path}: made by another version of zkcohort (key format {found}, this build reads {expected}): \
         its circuit differs; make the keys again (a ceremony, or `setup` for development)"
    )]
    KeyFormat {
        /// The file.
        path: PathBuf,
        /// The format it has.
        found: u32,
        /// The format this build reads.
        expected: u32,
    },
    /// A key file is not what it should be.
    #[error("{path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
