//! The prover's integration tests, one binary: setup, key files and proofs on the small
//! shape, the checks on keys, the multi-party ceremony, and snarkjs as a second
//! implementation of the formats.

mod ceremony;
mod ceremony_snarkjs;
mod common;
mod key_checks;
mod note;
mod prove;
mod snarkjs;
