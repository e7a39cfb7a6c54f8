//! The cohort crate's integration tests, one binary (one link of the crate): FHIR
//! import on the Synthea fixtures, the query language, and the formats researchers
//! already write (OHDSI Circe in, FHIR ResearchStudy/Group out).

mod import;
mod interop;
mod query;
