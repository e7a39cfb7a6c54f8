//! The standalone verifier's integration tests, one binary: Groth16 verification, the
//! snarkjs JSON formats, the pinned audit log vectors, and `zkcohort-verify` on files.

mod audit_events;
mod bundle_cli;
mod bundle_vector;
mod cli;
mod common;
mod setup;
mod snarkjs_json;
mod verify;
