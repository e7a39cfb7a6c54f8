//! The library behind the `zkcohort` command line: what the commands do, kept out of
//! the thin binary so tests and benches can call it.
//!
//! - [`sample`]: patients' proof requests built from FHIR bundles, registered by one
//!   issuer in a fresh registry (the demo, the bench command and the benches use it).
//! - [`keys`]: circuit keys on disk: the development setup, ceremony keys with their
//!   transcript (what `serve` loads and serves), the demo's ceremony, and the
//!   marketplace's key as a wallet downloads, checks and caches it.
//! - [`serve`]: the marketplace server over a data folder (`zkcohort serve`), also
//!   runnable in process on a background thread.
//! - [`client`]: a blocking client of the marketplace API for the role commands.
//! - [`issued`]: the record file an issuer hands a patient, and the issuer's import.
//! - [`issuer`], [`patient`], [`researcher`]: each role's calls to the marketplace.
//! - [`wallet`]: the patient's wallet folder: identity, payout key, records,
//!   registry copy, eligibility previews and proof requests.
//! - [`demo`]: every role end to end against an in-process marketplace.
//! - [`progress`]: progress of long work, a bar on a terminal and lines when piped.

pub mod account;
pub mod client;
pub mod demo;
pub mod issued;
pub mod issuer;
pub mod keys;
pub mod patient;
pub mod plot;
pub mod progress;
pub mod researcher;
pub mod sample;
pub mod serve;
pub mod wallet;
