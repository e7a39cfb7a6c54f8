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
//!   (`registry_root, query_hash, study_scope, nullifier, signal_hash, issuers_root,
//!   measure_commitment`);
//! - **eligibility circuit**: the R1CS circuit that ties them together;
//! - **reward notes** ([`note`]): the shielded notes enrollments pay into and the
//!   note-transfer circuit that merges and withdraws them.
//!
//! Native code sits next to its in-circuit twin (`poseidon/mod.rs` and
//! `poseidon/gadget.rs`). The gadgets, and the `ark-relations` /
//! `ark-r1cs-std` dependencies they need, are behind the `r1cs` feature, so
//! the standalone verifier can use the native code without compiling the
//! constraint system.
//!
//! # Modules
//!
//! Each module holds native code; where the circuit needs the same computation, its
//! gadget sits beside it in a `gadget` submodule (feature `r1cs`), so the two are read
//! and changed together.
//!
//! - [`encoding`]: how slots and clauses become field elements, and their bit widths.
//! - [`poseidon`]: circomlib's `Poseidon(n)` (1 to [`poseidon::MAX_ARITY`] inputs);
//!   `poseidon::gadget` in the circuit.
//! - [`slots`]: the salted 4-ary slot tree over a record summary (the record root);
//!   `slots::gadget` opens slots against it.
//! - [`record`]: an issued record, the commitment its issuer posts and its registry leaf.
//! - [`issuers`]: issuer ids (fixed by the issuer's account) and a study's set of
//!   accepted issuers, a tree the circuit opens.
//! - [`registry`]: the issuers' append-only registry tree with revocation and membership
//!   paths; `registry::gadget` checks membership.
//! - [`identity`]: the identity secret, its commitment, study scopes, nullifiers and the
//!   signal hash.
//! - [`clause`]: compiled clauses as field elements and the query hash;
//!   `clause::gadget` evaluates a clause in the circuit.
//! - [`measure`]: a study's measures as field elements, the values a proof computes from
//!   the opened slots and the hiding commitment to them; `measure::gadget` in the circuit.
//! - [`note`]: shielded reward notes (spending key, receiver, commitment, nullifier) and the
//!   note transfer's public inputs; `note::circuit` is the transfer circuit.
//! - [`statement`]: the public inputs of one proof, in order, and how a verifier rebuilds
//!   them for an enrollment.
//! - [`circuit_id`]: the id that names a circuit's keys everywhere, and the id of the
//!   ceremony transcript they came from.
//! - `bits` (feature `r1cs`): range checks and comparisons by bit decomposition.
//! - [`shape`]: a circuit's dimensions (clauses, slot, registry and issuer depths).
//! - `circuit` (feature `r1cs`): the eligibility circuit and its witness.
//!
//! Errors: [`CircuitError`] for everything native this crate refuses.

#[cfg(feature = "r1cs")]
pub mod bits;
#[cfg(feature = "r1cs")]
pub mod circuit;
pub mod circuit_id;
pub mod clause;
pub mod encoding;
pub mod identity;
pub mod issuers;
pub mod measure;
pub mod note;
pub mod poseidon;
pub mod record;
pub mod registry;
pub mod shape;
pub mod slots;
pub mod statement;

/// The BN254 scalar field, in which every circuit value lives.
pub use ark_bn254::Fr;
pub use circuit_id::{CircuitId, TranscriptId};

/// Errors of the native (out-of-circuit) code of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CircuitError {
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
    /// A value does not fit the width the circuit gives it.
    #[error("{what} {value} is outside what the circuit can encode")]
    OutOfRange {
        /// What the value is (day, value, count, ...).
        what: &'static str,
        /// The value, encoded or raw.
        value: String,
    },
    /// Public inputs of the wrong number or shape.
    #[error("public inputs: {0}")]
    PublicInputs(String),
    /// A circuit id that is not 64 hex digits.
    #[error("circuit id: {0}")]
    CircuitId(String),
    /// A value that must be a canonical field element is not.
    #[error("non-canonical field element: {0}")]
    NonCanonical(String),
    /// The record does not satisfy the query, so there is nothing to prove.
    #[error("the record does not satisfy the query")]
    NotEligible,
    /// A circuit shape does not fit the data (too many clauses, slots or leaves).
    #[error("circuit shape: {0}")]
    Shape(String),
    /// A registry tree depth outside the supported range.
    #[error("registry tree depth must be {min} to {max}, got {got}")]
    RegistryDepth {
        /// The depth asked for.
        got: usize,
        /// The smallest supported depth.
        min: usize,
        /// The largest supported depth.
        max: usize,
    },
    /// The registry tree has no empty position left (or a leaf list is
    /// longer than the tree holds).
    #[error("registry tree of depth {depth} is full ({capacity} leaves)")]
    RegistryFull {
        /// The tree's depth.
        depth: usize,
        /// The number of leaves it holds, `2^depth`.
        capacity: u64,
    },
    /// The zero leaf marks an empty or revoked registry position and cannot
    /// be appended.
    #[error("the zero leaf marks an empty or revoked registry position and cannot be appended")]
    RegistryZeroLeaf,
    /// No registry leaf was appended at this index.
    #[error("registry leaf {index} does not exist (the tree has {len} leaves)")]
    RegistryLeafIndex {
        /// The index asked for.
        index: u64,
        /// The number of leaves appended so far.
        len: u64,
    },
    /// The registry leaf at this index is already revoked.
    #[error("registry leaf {index} is already revoked")]
    RegistryLeafRevoked {
        /// The revoked leaf's index.
        index: u64,
    },
    /// A study's issuer set is empty, too large, or lacks the record's issuer.
    #[error("issuers: {0}")]
    Issuers(String),
    /// A membership path index does not fit the path's depth.
    #[error("registry path index {index} does not fit depth {depth}")]
    RegistryPathIndex {
        /// The index given.
        index: u64,
        /// The path's depth (its number of siblings).
        depth: usize,
    },
}
