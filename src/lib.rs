//! The library behind the `zkcohort` command line: what the commands do, kept out of
//! the thin binary so tests and benches can call it.
//!
//! - [`sample`]: patients' proof requests built from FHIR bundles, registered by one
//!   issuer in a fresh registry (the demo, the bench command and the benches use it).

pub mod sample;
