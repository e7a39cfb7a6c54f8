//! The circuit crate's integration tests, one binary: the eligibility circuit's
//! constraints (each false statement rejected), native/circuit equivalence, measures, and real
//! Groth16 proofs over the circuits.

mod common;
mod eligibility;
mod eligibility_groth16;
mod equivalence;
mod measure;
mod note;
mod poseidon_groth16;
