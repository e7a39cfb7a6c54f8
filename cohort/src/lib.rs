//! zkcohort's cohort domain, with no cryptography.
//!
//! Hospitals turn a patient's FHIR R4 record into a [`RecordSummary`]: one integer
//! slot per concept of the versioned [`Catalog`]. Researchers describe cohorts in the
//! [`query`] language; the native evaluator [`eligible`] says whether a summary
//! matches and why not, and is the truth the eligibility circuit must match.
//!
//! Modules:
//! - [`catalog`]: concepts as value sets across SNOMED CT, ICD-10-CM, LOINC, RxNorm, ATC
//! - [`ingredient`]: the RxNorm ingredient table medication concepts draw on
//! - [`day`]: calendar days as integers
//! - [`summary`]: record summaries and their slots
//! - [`fhir`]: FHIR R4 bundle import with an import report
//! - [`query`]: the query AST, its text and JSON forms, and compilation to circuit clauses
//! - [`eval`]: the native evaluator with explanations

pub mod catalog;
pub mod day;
pub mod eval;
pub mod fhir;
pub mod ingredient;
pub mod query;
pub mod summary;

pub use catalog::Catalog;
pub use day::Day;
pub use eval::{eligible, Eligibility};
pub use fhir::{import_bundle, ImportReport};
pub use query::{CompiledQuery, Query, QueryError};
pub use summary::{Entry, RecordSummary, Slot, RECENT_ENTRIES};

/// Everything that can go wrong in the cohort domain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CohortError {
    /// The concept catalog is invalid.
    #[error("invalid catalog: {0}")]
    Catalog(String),
    /// A stored record summary is invalid.
    #[error("invalid record summary: {0}")]
    Summary(String),
    /// A FHIR bundle is malformed.
    #[error("malformed FHIR bundle: {0}")]
    Fhir(String),
    /// A query is invalid.
    #[error("invalid query: {0}")]
    Query(#[from] QueryError),
}
