//! The cryptographic core of zkcohort: everything that must agree bit for bit
//! between the patient's prover, the marketplace and a trial sponsor's offline
//! verifier.
//!
//! A patient proves, with a Groth16 proof over BN254, that an issuer-attested
//! record summary satisfies a researcher's cohort query. This crate defines
//! what that proof is about:
//!
//! - **field encoding**: how record slots, query clauses, dates and fixed-point
//!   values become BN254 scalar field elements, and the rule that every public
//!   value is canonical (`x < r`);
//! - **Poseidon** ([`poseidon`]): the circomlib-compatible Poseidon hash, native
//!   and as an R1CS gadget, used for every commitment, tree node, nullifier and
//!   query hash;
//! - **slot and registry trees**: the salted Poseidon Merkle tree over a
//!   record's concept slots, and the issuers' registry tree of record leaves;
//! - **public statement**: the public inputs of one proof, in order
//!   (`registry_root, query_hash, study_scope, nullifier, signal_hash`);
//! - **eligibility circuit**: the R1CS circuit that ties them together.
//!
//! Native code sits next to its in-circuit twin (`poseidon/mod.rs` and
//! `poseidon/constraints.rs`). The gadgets, and the `ark-relations` /
//! `ark-r1cs-std` dependencies they need, are behind the `r1cs` feature, so
//! the standalone verifier can use the native code without compiling the
//! constraint system.
//!
//! # Modules
//!
//! - [`poseidon`]: Poseidon hash (circomlib's `Poseidon(n)`, 1 to
//!   [`poseidon::MAX_ARITY`] inputs); `poseidon::constraints` holds the gadget
//!   (feature `r1cs`).

pub mod poseidon;

/// The BN254 scalar field, in which every circuit value lives.
pub use ark_bn254::Fr;

/// Errors of the native (out-of-circuit) code of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Poseidon hash was asked for a number of inputs it has no parameters
    /// for.
    #[error("Poseidon takes {min} to {max} inputs, got {got}")]
    PoseidonArity {
        /// The number of inputs given.
        got: usize,
        /// The smallest supported number of inputs.
        min: usize,
        /// The largest supported number of inputs.
        max: usize,
    },
}
