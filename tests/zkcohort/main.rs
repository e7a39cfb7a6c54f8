//! The `zkcohort` binary's tests, one binary: the record commands, `serve` and the role
//! commands against a served data folder, and the demo end to end.

mod ceremony;
mod cli;
mod common;
mod e2e;
mod fhir_circe;
mod linkage;
mod schemathesis;
mod serve;
