//! The library behind the `zkcohort` command line: what the commands do, kept out of
//! the thin binary so tests and benches can call it.
//!
//! - [`sample`]: patients' proof requests built from FHIR bundles, registered by one
//!   issuer in a fresh registry (the demo, the bench command and the benches use it).
//! - [`issued`]: the record file an issuer hands a patient, and the issuer's import.
//! - [`wallet`]: the patient's wallet folder: identity, payout key, records,
//!   registry copy, eligibility previews and proof requests.

pub mod client;
pub mod demo;
pub mod issued;
pub mod issuer;
pub mod patient;
pub mod researcher;
pub mod sample;
pub mod wallet;
