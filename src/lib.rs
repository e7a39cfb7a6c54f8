//! The library behind the `zkcohort` command line: what the commands do, kept out of
//! the thin binary so tests and benches can call it.
//!
//! - [`sample`]: patients' proof requests built from FHIR bundles, registered by one
//!   issuer in a fresh registry (the demo, the bench command and the benches use it).
//! - [`keys`]: circuit keys on disk: the development setup, load or create.
//! - [`serve`]: the marketplace server over a data folder (`zkcohort serve`), also
//!   runnable in process on a background thread.
//! - [`client`]: a blocking client of the marketplace API for the role commands.

pub mod client;
pub mod keys;
pub mod sample;
pub mod serve;
