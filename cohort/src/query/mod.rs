//! The cohort query language: one AST with a readable text form ([`text`]) and a JSON
//! form (serde on these types), compiled against the catalog into fixed-shape
//! clauses ([`compile`]) that both the native evaluator and the circuit check.
//!
//! Semantics: a query is satisfied when every criterion is. A `require` criterion
//! holds when any of its clauses holds (OR); an `exclude` criterion holds when none
//! of its clauses holds. A clause tests one concept's slot and may be negated.
//!
//! [`circe`] imports OHDSI ATLAS cohort definitions; [`export`] writes a study as FHIR
//! ResearchStudy and Group resources.

pub mod circe;
pub mod compile;
mod decimal;
pub mod export;
mod json;
pub mod measure;
pub mod text;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use compile::{CompiledClause, CompiledQuery, SlotView, ValueField};
pub use decimal::Decimal;
pub use measure::{CompiledMeasure, Measure, MeasureField, MeasureKind};

use crate::day::Day;

/// A cohort query: an index date and criteria that must all hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// The study's index date; ages and date windows are relative to it.
    pub index_date: Day,
    /// Criteria, all of which must hold.
    pub criteria: Vec<Criterion>,
    /// What the study measures of its enrolled cohort ([`measure`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measures: Vec<Measure>,
}

/// One line of a query: clauses joined by OR, required or excluded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Criterion {
    /// At least one clause holds.
    Require(Vec<Clause>),
    /// No clause holds.
    Exclude(Vec<Clause>),
}

impl Criterion {
    /// The clauses, whichever the kind.
    pub fn clauses(&self) -> &[Clause] {
        match self {
            Criterion::Require(clauses) | Criterion::Exclude(clauses) => clauses,
        }
    }

    /// Whether this criterion excludes.
    pub fn is_exclusion(&self) -> bool {
        matches!(self, Criterion::Exclude(_))
    }
}

/// A test of one concept, possibly negated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "json::ClauseJson", into = "json::ClauseJson")]
pub struct Clause {
    /// Whether the clause holds when the test fails.
    pub negated: bool,
    /// The test.
    pub test: Test,
}

/// What a clause tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Test {
    /// Age in whole years on the index date.
    Age(Comparison<i64>),
    /// Administrative sex, by answer name (`female`).
    Sex(String),
    /// Latest smoking status, by answer name (`never`, `former`, `current`).
    Smoking(String),
    /// The record summary was issued at most this many days before the index date (or after it).
    RecordIssuedWithin(u32),
    /// The record has no death on or before the index date.
    Alive,
    /// A condition, lab, medication, procedure, immunization or allergy concept.
    Concept(ConceptTest),
}

/// The kinds of concept a [`ConceptTest`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConceptWord {
    /// A condition group.
    Condition,
    /// A lab test or vital sign.
    Lab,
    /// A medication class.
    Medication,
    /// A procedure.
    Procedure,
    /// A vaccination.
    Immunization,
    /// An allergy or intolerance.
    Allergy,
}

impl ConceptWord {
    /// The keyword in the text form.
    pub fn word(self) -> &'static str {
        match self {
            ConceptWord::Condition => "condition",
            ConceptWord::Lab => "lab",
            ConceptWord::Medication => "medication",
            ConceptWord::Procedure => "procedure",
            ConceptWord::Immunization => "immunization",
            ConceptWord::Allergy => "allergy",
        }
    }
}

/// A test of a condition, lab, medication, procedure, immunization or allergy slot.
/// With no modifiers it tests presence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConceptTest {
    /// What kind of concept the query expects.
    pub kind: ConceptWord,
    /// The concept, by catalog id (`ckd`) or code (`icd10:N18`).
    pub concept: String,
    /// At least this many entries in the clause's window (`count >= n`).
    pub min_count: Option<u32>,
    /// The latest entry in the window is still active (conditions, medications and
    /// allergies).
    pub active: bool,
    /// A test of the values (labs).
    pub value: Option<ValueTest>,
    /// A window for the first or last date.
    pub window: Option<Window>,
}

/// Which value of a lab slot a [`ValueTest`] compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueWord {
    /// The latest value in the window (on or before the index date by default).
    Latest,
    /// The smallest value ever seen.
    Min,
    /// The largest value ever seen.
    Max,
}

impl ValueWord {
    /// The keyword in the text form.
    pub fn word(self) -> &'static str {
        match self {
            ValueWord::Latest => "latest",
            ValueWord::Min => "min",
            ValueWord::Max => "max",
        }
    }
}

/// A comparison of a lab value with constants, in an optional unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueTest {
    /// Which value.
    pub field: ValueWord,
    /// The comparison.
    pub compare: Comparison<Decimal>,
    /// The constants' unit; the lab's canonical unit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A comparison with constants. Bounds are inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison<T> {
    /// `>= x`
    #[serde(rename = ">=")]
    AtLeast(T),
    /// `> x`
    #[serde(rename = ">")]
    Above(T),
    /// `<= x`
    #[serde(rename = "<=")]
    AtMost(T),
    /// `< x`
    #[serde(rename = "<")]
    Below(T),
    /// `= x`
    #[serde(rename = "=")]
    Equal(T),
    /// `between x and y`
    #[serde(rename = "between")]
    Between(T, T),
}

/// What a window bounds: the entries a clause reads, or its first entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateWord {
    /// The first entry ever falls in the window (the entries read stay those on or
    /// before the index date, or every one for `first after index`).
    First,
    /// The entries the clause counts and whose latest value it compares (without a
    /// window: those on or before the index date).
    Last,
}

/// A window on a slot date, relative to the index date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Which date.
    pub date: DateWord,
    /// The window.
    pub span: Span,
}

/// Where a date must fall, relative to the index date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Span {
    /// In the `n` days up to and including the index date.
    WithinDays(u32),
    /// Strictly before the index date.
    BeforeIndex,
    /// Strictly after the index date.
    AfterIndex,
}

/// Where a query is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct QueryError {
    /// `line 3, column 9` in the text form, a JSON path in the JSON form.
    pub location: String,
    /// The reason.
    pub message: String,
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text::print(self))
    }
}

impl Query {
    /// Parses the text form and checks it against the catalog.
    ///
    /// # Errors
    /// [`QueryError`] with the line and column of the first problem.
    pub fn parse(text: &str, catalog: &crate::catalog::Catalog) -> Result<Query, QueryError> {
        let (query, positions) = text::parse(text)?;
        query.compile_located(catalog).map_err(|error| {
            let (line, column) = positions[error.criterion][error.clause];
            QueryError {
                location: format!("line {line}, column {column}"),
                message: error.message,
            }
        })?;
        Ok(query)
    }

    /// Reads the JSON form and checks it against the catalog.
    ///
    /// # Errors
    /// [`QueryError`] with the JSON path of the first problem (`criteria[2].require[0]`).
    pub fn from_json(json: &str, catalog: &crate::catalog::Catalog) -> Result<Query, QueryError> {
        let deserializer = &mut serde_json::Deserializer::from_str(json);
        let query: Query =
            serde_path_to_error::deserialize(deserializer).map_err(|error| QueryError {
                location: match error.path().to_string().as_str() {
                    "." => "JSON".to_string(),
                    path => format!("JSON at {path}"),
                },
                message: error.inner().to_string(),
            })?;
        query.compile_located(catalog).map_err(|error| {
            let location = match query.criteria.get(error.criterion) {
                None => format!(
                    "JSON at measures[{}]",
                    error.criterion - query.criteria.len()
                ),
                Some(criterion) => {
                    let keyword = if criterion.is_exclusion() {
                        "exclude"
                    } else {
                        "require"
                    };
                    format!(
                        "JSON at criteria[{}].{keyword}[{}]",
                        error.criterion, error.clause
                    )
                }
            };
            QueryError {
                location,
                message: error.message,
            }
        })?;
        Ok(query)
    }

    /// Reads either form: JSON when the text starts with `{`, else the text form.
    ///
    /// # Errors
    /// As [`Query::parse`] or [`Query::from_json`].
    pub fn parse_any(text: &str, catalog: &crate::catalog::Catalog) -> Result<Query, QueryError> {
        if text.trim_start().starts_with('{') {
            Query::from_json(text, catalog)
        } else {
            Query::parse(text, catalog)
        }
    }
}
