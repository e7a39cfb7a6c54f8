//! The native evaluator: whether a record summary satisfies a query, and why not.
//! It is the truth the eligibility circuit must match.

use crate::catalog::{Catalog, Concept, ConceptKind};
use crate::day::Day;
use crate::query::compile::compile_clause;
use crate::query::text::print_criterion;
use crate::query::{Query, QueryError};
use crate::summary::{RecordSummary, Slot, RECENT_ENTRIES};

/// The verdict of [`eligible`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eligibility {
    /// Whether every criterion holds.
    pub eligible: bool,
    /// The criteria that do not hold, in query order.
    pub failed: Vec<FailedCriterion>,
}

/// A criterion that does not hold, and the facts of the record behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedCriterion {
    /// The criterion's position in the query, 0-based (past the criteria: a measure
    /// whose value the record cannot give).
    pub index: usize,
    /// The criterion in the text form.
    pub text: String,
    /// For a `require`, what the record holds for each clause's concept; for an
    /// `exclude`, the clauses that matched.
    pub reasons: Vec<String>,
}

/// Evaluates `query` against `summary`, naming the failed criteria.
///
/// # Errors
/// When the query does not compile against the catalog (see [`Query::compile`]).
pub fn eligible(
    catalog: &Catalog,
    summary: &RecordSummary,
    query: &Query,
) -> Result<Eligibility, QueryError> {
    let compiled = query.compile(catalog)?;
    let mut failed = Vec::new();
    for (index, criterion) in query.criteria.iter().enumerate() {
        let mut matched = Vec::new();
        let mut undecidable = Vec::new();
        for clause in criterion.clauses() {
            let compiled_clause =
                compile_clause(clause, query.index_date, catalog).map_err(|message| {
                    QueryError {
                        location: format!("criterion {}", index + 1),
                        message,
                    }
                })?;
            // An exclude criterion negates each clause; whether the test holds is the same.
            match compiled_clause.holds(summary) {
                Some(true) => matched.push(compiled_clause),
                Some(false) => {}
                None => undecidable.push(compiled_clause),
            }
        }
        let holds = if criterion.is_exclusion() {
            matched.is_empty()
        } else {
            !matched.is_empty()
        };
        if holds && undecidable.is_empty() {
            continue;
        }
        let reasons = if !undecidable.is_empty() {
            undecidable
                .iter()
                .map(|clause| {
                    format!(
                        "undecidable: {}; the record dates only its first and {RECENT_ENTRIES} \
                         most recent {} entries and the window reaches the days between",
                        describe_slot(
                            catalog.concept(clause.slot),
                            summary.slot(clause.slot),
                            query.index_date,
                        ),
                        catalog.concept(clause.slot).id
                    )
                })
                .collect()
        } else if criterion.is_exclusion() {
            matched
                .iter()
                .map(|clause| {
                    describe_slot(
                        catalog.concept(clause.slot),
                        summary.slot(clause.slot),
                        query.index_date,
                    )
                })
                .collect()
        } else {
            criterion
                .clauses()
                .iter()
                .map(|clause| {
                    let slot = compile_clause(clause, query.index_date, catalog)
                        .expect("compiled above")
                        .slot;
                    describe_slot(catalog.concept(slot), summary.slot(slot), query.index_date)
                })
                .collect()
        };
        failed.push(FailedCriterion {
            index,
            text: print_criterion(criterion),
            reasons,
        });
    }
    for (position, measure) in compiled.measures.iter().enumerate() {
        let clause = &compiled.clauses[measure.clause];
        if !measure.readable(&clause.view_in(summary)) {
            failed.push(FailedCriterion {
                index: query.criteria.len() + position,
                text: format!("measure {}", measure.name),
                reasons: vec![format!(
                    "undecidable: the record dates only its first and {RECENT_ENTRIES} most \
                     recent {} entries and the measure reads the days between",
                    catalog.concept(clause.slot).id
                )],
            });
        }
    }
    let eligible = failed.is_empty();
    debug_assert_eq!(
        eligible,
        compiled.evaluate(summary),
        "the explanation agrees with the compiled query"
    );
    Ok(Eligibility { eligible, failed })
}

/// What a slot says, in words; ages are given on the day `on`.
pub fn describe_slot(concept: &Concept, slot: &Slot, on: Day) -> String {
    let id = &concept.id;
    if slot.is_empty() {
        return format!("no {id} on record");
    }
    match concept.kind {
        ConceptKind::BirthDate => {
            format!(
                "born {}, age {} on {on}",
                slot.first_date,
                slot.first_date.years_until(on)
            )
        }
        ConceptKind::Sex => format!(
            "sex {}",
            concept.answer_name(slot.last_value).unwrap_or("unrecorded")
        ),
        ConceptKind::SmokingStatus => format!(
            "latest smoking status {} on {}",
            concept.answer_name(slot.last_value).unwrap_or("unrecorded"),
            slot.last_date
        ),
        ConceptKind::RecordIssued => format!("record issued {}", slot.last_date),
        ConceptKind::Death => format!("died {}", slot.first_date),
        ConceptKind::Lab => {
            let lab = concept.lab().expect("lab concepts have lab fields");
            format!(
                "{id} latest {} {} on {} ({} results, min {}, max {})",
                lab.format(slot.last_value),
                lab.unit,
                slot.last_date,
                slot.count,
                lab.format(slot.min_value),
                lab.format(slot.max_value)
            )
        }
        ConceptKind::Procedure | ConceptKind::Immunization => format!(
            "{id} on {} day(s) from {} to {}",
            slot.count, slot.first_date, slot.last_date
        ),
        ConceptKind::Condition | ConceptKind::Medication | ConceptKind::Allergy => {
            let state = match (concept.kind, slot.last_value) {
                (_, 1) => "active",
                (ConceptKind::Medication, _) => "stopped",
                _ => "resolved",
            };
            format!(
                "{id} on {} day(s) from {} to {}, latest {state}",
                slot.count, slot.first_date, slot.last_date
            )
        }
    }
}
