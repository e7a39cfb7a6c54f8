//! Queries compiled against the catalog into fixed-shape clauses: the exact form the
//! circuit checks and `query_hash` commits to.
//!
//! A compiled clause holds for a slot when `count >= min_count`, the selected value
//! lies in `[value_min, value_max]` and the selected date lies in `[date_min, date_max]`;
//! a negated clause holds when that fails. Clauses form groups (a clause with
//! `starts_group` opens a new one): a group holds when any of its clauses holds, the
//! query when every group holds. An `exclude` criterion with n clauses becomes n
//! groups of one negated clause each (not (A or B) = not A and not B).

use serde::{Deserialize, Serialize};

use super::measure::{CompiledMeasure, MeasureSlot};
use super::Decimal;
use super::{
    Clause, Comparison, ConceptWord, Criterion, DateWord, Query, QueryError, Span, Test, ValueWord,
};
use crate::catalog::{
    Catalog, Concept, ConceptKind, Exact, LabSpec, SlotIndex, UnitConversion, VALUE_BOUND,
};
use crate::day::{Day, DAY_MAX, DAY_MIN};
use crate::summary::{RecordSummary, Slot};

/// The lowest value a compiled clause can name.
pub const VALUE_MIN: i64 = -(VALUE_BOUND - 1);
/// The highest value a compiled clause can name.
pub const VALUE_MAX: i64 = VALUE_BOUND - 1;
/// The oldest age a query may ask about.
const MAX_AGE_YEARS: i64 = 150;
/// The longest window a query may ask about (200 years).
const MAX_WINDOW_DAYS: u32 = 73_050;

/// Which value of a slot a compiled clause compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueField {
    /// `last_value`
    Last,
    /// `min_value`
    Min,
    /// `max_value`
    Max,
}

impl ValueField {
    /// The selected value of `slot`.
    pub fn of(self, slot: &Slot) -> i64 {
        match self {
            ValueField::Last => slot.last_value,
            ValueField::Min => slot.min_value,
            ValueField::Max => slot.max_value,
        }
    }
}

/// Which date of a slot a compiled clause compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateField {
    /// `first_date`
    First,
    /// `last_date`
    Last,
}

impl DateField {
    /// The selected date of `slot`.
    pub fn of(self, slot: &Slot) -> Day {
        match self {
            DateField::First => slot.first_date,
            DateField::Last => slot.last_date,
        }
    }
}

/// One clause in the circuit's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompiledClause {
    /// The slot the clause opens.
    pub slot: SlotIndex,
    /// Whether this clause opens a new OR group.
    pub starts_group: bool,
    /// Whether the clause holds when its test fails.
    pub negated: bool,
    /// The slot's count must be at least this.
    pub min_count: u32,
    /// Which value is compared.
    pub value_field: ValueField,
    /// Inclusive lower bound of the value.
    pub value_min: i64,
    /// Inclusive upper bound of the value.
    pub value_max: i64,
    /// Which date is compared.
    pub date_field: DateField,
    /// Inclusive lower bound of the date.
    pub date_min: Day,
    /// Inclusive upper bound of the date.
    pub date_max: Day,
}

impl CompiledClause {
    /// A clause that holds for every record, in a group of its own: fills a query up
    /// to the circuit's fixed clause count.
    pub fn padding() -> Self {
        CompiledClause {
            starts_group: true,
            ..CompiledClause::unbounded(0)
        }
    }

    fn unbounded(slot: SlotIndex) -> Self {
        CompiledClause {
            slot,
            starts_group: false,
            negated: false,
            min_count: 0,
            value_field: ValueField::Last,
            value_min: VALUE_MIN,
            value_max: VALUE_MAX,
            date_field: DateField::Last,
            date_min: DAY_MIN,
            date_max: DAY_MAX,
        }
    }

    /// Whether the test (before negation) holds for `slot`.
    pub fn test(&self, slot: &Slot) -> bool {
        let value = self.value_field.of(slot);
        let date = self.date_field.of(slot);
        slot.count >= self.min_count
            && (self.value_min..=self.value_max).contains(&value)
            && (self.date_min..=self.date_max).contains(&date)
    }

    /// Whether the clause (after negation) holds for the summary.
    pub fn holds(&self, summary: &RecordSummary) -> bool {
        // A slot past the catalog is empty, as in the circuit's padded slot tree.
        let slot = summary.slots().get(self.slot).copied().unwrap_or_default();
        self.test(&slot) != self.negated
    }
}

/// A query compiled against one catalog version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompiledQuery {
    /// The catalog version whose slot order the clauses follow.
    pub catalog_version: String,
    /// The study's index date.
    pub index_date: Day,
    /// The clauses, grouped by `starts_group`.
    pub clauses: Vec<CompiledClause>,
    /// The study's measures, each reading the slot one of the clauses opens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measures: Vec<CompiledMeasure>,
}

impl CompiledQuery {
    /// Whether the summary satisfies every group: the truth the circuit must match.
    pub fn evaluate(&self, summary: &RecordSummary) -> bool {
        let mut all_groups = true;
        let mut group = false;
        for (index, clause) in self.clauses.iter().enumerate() {
            if clause.starts_group && index > 0 {
                all_groups &= group;
                group = false;
            }
            group |= clause.holds(summary);
        }
        self.clauses.is_empty() || (all_groups && group)
    }

    /// The value of each measure for the summary ([`CompiledMeasure::value`]): what the
    /// circuit commits to.
    pub fn measure_values(&self, summary: &RecordSummary) -> Vec<u64> {
        self.measures
            .iter()
            .map(|measure| {
                let slot = self.clauses[measure.clause].slot;
                measure.value(&summary.slots().get(slot).copied().unwrap_or_default())
            })
            .collect()
    }

    /// The query filled with [`CompiledClause::padding`] up to `clauses` clauses.
    ///
    /// # Errors
    /// When the query has more clauses than that.
    pub fn padded(&self, clauses: usize) -> Result<CompiledQuery, QueryError> {
        if self.clauses.len() > clauses {
            return Err(QueryError {
                location: "query".into(),
                message: format!(
                    "the query compiles to {} clauses; the circuit takes at most {clauses}",
                    self.clauses.len()
                ),
            });
        }
        let mut padded = self.clone();
        padded.clauses.resize(clauses, CompiledClause::padding());
        Ok(padded)
    }
}

/// Where a compile error sits: criterion and clause, 0-based; a measure's error has
/// `criterion` = the number of criteria + the measure's index.
pub(crate) struct CompileError {
    pub(crate) criterion: usize,
    pub(crate) clause: usize,
    pub(crate) message: String,
}

impl Query {
    /// Compiles the query against the catalog.
    ///
    /// # Errors
    /// [`QueryError`] naming the criterion and clause: unknown concept or code, a
    /// concept of the wrong kind, unknown answers or units, out-of-range constants.
    pub fn compile(&self, catalog: &Catalog) -> Result<CompiledQuery, QueryError> {
        self.compile_located(catalog).map_err(|error| QueryError {
            location: match error.criterion.checked_sub(self.criteria.len()) {
                Some(measure) => format!("measure {}", measure + 1),
                None => format!(
                    "criterion {}, clause {}",
                    error.criterion + 1,
                    error.clause + 1
                ),
            },
            message: error.message,
        })
    }

    pub(crate) fn compile_located(&self, catalog: &Catalog) -> Result<CompiledQuery, CompileError> {
        let mut clauses = Vec::new();
        for (criterion_index, criterion) in self.criteria.iter().enumerate() {
            if criterion.clauses().is_empty() {
                return Err(CompileError {
                    criterion: criterion_index,
                    clause: 0,
                    message: "a criterion needs at least one clause".into(),
                });
            }
            for (clause_index, clause) in criterion.clauses().iter().enumerate() {
                let mut compiled =
                    compile_clause(clause, self.index_date, catalog).map_err(|message| {
                        CompileError {
                            criterion: criterion_index,
                            clause: clause_index,
                            message,
                        }
                    })?;
                match criterion {
                    Criterion::Require(_) => compiled.starts_group = clause_index == 0,
                    Criterion::Exclude(_) => {
                        compiled.starts_group = true;
                        compiled.negated = !compiled.negated;
                    }
                }
                clauses.push(compiled);
            }
        }
        let mut measures = Vec::with_capacity(self.measures.len());
        for (index, measure) in self.measures.iter().enumerate() {
            let MeasureSlot { slot, mut compiled } = measure
                .compile(self.index_date, catalog)
                .map_err(|message| CompileError {
                    criterion: self.criteria.len() + index,
                    clause: 0,
                    message,
                })?;
            // A measure reads a slot some clause opens; a slot no clause opens gets a
            // clause that always holds, in a group of its own.
            compiled.clause = match clauses.iter().position(|clause| clause.slot == slot) {
                Some(clause) => clause,
                None => {
                    clauses.push(CompiledClause {
                        starts_group: true,
                        ..CompiledClause::unbounded(slot)
                    });
                    clauses.len() - 1
                }
            };
            measures.push(compiled);
        }
        Ok(CompiledQuery {
            catalog_version: catalog.version().to_string(),
            index_date: self.index_date,
            clauses,
            measures,
        })
    }
}

fn integer_bounds(comparison: Comparison<i64>) -> (i64, i64) {
    match comparison {
        Comparison::AtLeast(x) => (x, i64::MAX),
        Comparison::Above(x) => (x.saturating_add(1), i64::MAX),
        Comparison::AtMost(x) => (i64::MIN, x),
        Comparison::Below(x) => (i64::MIN, x.saturating_sub(1)),
        Comparison::Equal(x) => (x, x),
        Comparison::Between(low, high) => (low, high),
    }
}

/// Compiles one clause (its own negation only; the caller applies `exclude`).
pub(crate) fn compile_clause(
    clause: &Clause,
    index_date: Day,
    catalog: &Catalog,
) -> Result<CompiledClause, String> {
    let mut compiled = match &clause.test {
        Test::Age(comparison) => {
            let constants = match *comparison {
                Comparison::Between(low, high) => vec![low, high],
                Comparison::AtLeast(x)
                | Comparison::Above(x)
                | Comparison::AtMost(x)
                | Comparison::Below(x)
                | Comparison::Equal(x) => vec![x],
            };
            if let Some(bad) = constants
                .iter()
                .find(|age| !(0..=MAX_AGE_YEARS).contains(*age))
            {
                return Err(format!(
                    "age {bad} is out of range: ages run from 0 to {MAX_AGE_YEARS} years"
                ));
            }
            let (youngest, oldest) = integer_bounds(*comparison);
            let mut compiled = CompiledClause::unbounded(catalog.special(ConceptKind::BirthDate));
            compiled.min_count = 1;
            compiled.date_field = DateField::First;
            // Age >= a on the index date: born on or before the index date a years back.
            // Age <= b: born after the index date b + 1 years back.
            // A bound before 1900 either excludes everyone (no one that old can be born
            // late enough) or no one (every supported birth date is young enough).
            if youngest > 0 {
                match index_date.years_before(youngest as u32) {
                    Some(latest_birth) => compiled.date_max = latest_birth,
                    None => (compiled.date_min, compiled.date_max) = (DAY_MAX, DAY_MIN),
                }
            }
            if oldest < MAX_AGE_YEARS {
                if let Some(too_old) = index_date.years_before((oldest + 1) as u32) {
                    compiled.date_min = compiled.date_min.max(too_old.offset(1));
                }
            }
            compiled
        }
        Test::Sex(name) => answer_clause(catalog, ConceptKind::Sex, name)?,
        Test::Smoking(name) => answer_clause(catalog, ConceptKind::SmokingStatus, name)?,
        Test::RecordIssuedWithin(days) => {
            let mut compiled =
                CompiledClause::unbounded(catalog.special(ConceptKind::RecordIssued));
            compiled.min_count = 1;
            compiled.date_min = index_date.offset(-i64::from(window_days(*days)?));
            compiled
        }
        Test::Alive => {
            // Alive on the index date: not (a death on or before it). An empty death
            // slot fails the count, so the negated clause holds.
            let mut compiled = CompiledClause::unbounded(catalog.special(ConceptKind::Death));
            compiled.min_count = 1;
            compiled.date_field = DateField::First;
            compiled.date_max = index_date;
            compiled.negated = true;
            compiled
        }
        Test::Concept(test) => {
            let slot = catalog
                .resolve(&test.concept)
                .map_err(|error| error.to_string())?;
            let concept = catalog.concept(slot);
            let expected = match test.kind {
                ConceptWord::Condition => ConceptKind::Condition,
                ConceptWord::Lab => ConceptKind::Lab,
                ConceptWord::Medication => ConceptKind::Medication,
                ConceptWord::Procedure => ConceptKind::Procedure,
                ConceptWord::Immunization => ConceptKind::Immunization,
                ConceptWord::Allergy => ConceptKind::Allergy,
            };
            if concept.kind != expected {
                return Err(format!(
                    "{} is a {} concept ({}), not a {}: write `{} {}`",
                    test.concept,
                    concept.kind.word(),
                    concept.id,
                    test.kind.word(),
                    concept.kind.word(),
                    test.concept
                ));
            }
            let mut compiled = CompiledClause::unbounded(slot);
            compiled.min_count = match test.min_count {
                Some(0) => {
                    return Err("`count >= 0` always holds: use a count of at least 1".into())
                }
                Some(count) => count,
                None => 1,
            };
            if test.active {
                if !matches!(
                    expected,
                    ConceptKind::Condition | ConceptKind::Medication | ConceptKind::Allergy
                ) {
                    return Err(format!(
                        "`active` applies to conditions, medications and allergies, not {}s",
                        expected.word()
                    ));
                }
                (compiled.value_min, compiled.value_max) = (1, 1);
            }
            if let Some(value) = &test.value {
                let constants = LabConstants::new(concept, value.unit.as_deref())?;
                let to_stored = |constant: Decimal| constants.stored(constant);
                // Stored values count half grid steps: `2k` is exactly grid point k, `2k ± 1`
                // strictly beside it (see `LabSpec::to_stored`).
                let (low, high) = match value.compare {
                    Comparison::AtLeast(x) => (to_stored(x)?, VALUE_MAX),
                    Comparison::Above(x) => (to_stored(x)? + 1, VALUE_MAX),
                    Comparison::AtMost(x) => (VALUE_MIN, to_stored(x)?),
                    Comparison::Below(x) => (VALUE_MIN, to_stored(x)? - 1),
                    Comparison::Equal(x) => (to_stored(x)?, to_stored(x)?),
                    Comparison::Between(low, high) => (to_stored(low)?, to_stored(high)?),
                };
                if low > high {
                    return Err("the value range is empty".into());
                }
                compiled.value_field = match value.field {
                    ValueWord::Latest => ValueField::Last,
                    ValueWord::Min => ValueField::Min,
                    ValueWord::Max => ValueField::Max,
                };
                (compiled.value_min, compiled.value_max) = (low, high);
            }
            if let Some(window) = test.window {
                compiled.date_field = match window.date {
                    DateWord::First => DateField::First,
                    DateWord::Last => DateField::Last,
                };
                (compiled.date_min, compiled.date_max) = match window.span {
                    Span::WithinDays(days) => (
                        index_date.offset(-i64::from(window_days(days)?)),
                        index_date,
                    ),
                    Span::BeforeIndex => (DAY_MIN, index_date.offset(-1)),
                    Span::AfterIndex => (index_date.offset(1), DAY_MAX),
                };
            }
            compiled
        }
    };
    compiled.negated ^= clause.negated;
    Ok(compiled)
}

/// Converts a lab's query constants (in its canonical unit or another accepted one) to
/// stored values, as clauses and measures compare them.
pub(crate) struct LabConstants<'a> {
    concept: &'a Concept,
    lab: LabSpec<'a>,
    conversion: Option<&'a UnitConversion>,
}

impl<'a> LabConstants<'a> {
    pub(crate) fn new(concept: &'a Concept, unit: Option<&str>) -> Result<Self, String> {
        let lab = concept.lab().ok_or_else(|| {
            format!(
                "{} has no values to compare: latest/min/max apply to labs",
                concept.id
            )
        })?;
        let conversion = match unit {
            None => None,
            Some(unit) => Some(lab.conversion(unit).ok_or_else(|| {
                let accepted: Vec<&str> = lab
                    .units
                    .iter()
                    .map(|conversion| conversion.unit.as_str())
                    .collect();
                format!(
                    "unit {unit} is not accepted for {}: use {}",
                    concept.id,
                    accepted.join(", ")
                )
            })?),
        }
        .filter(|conversion| {
            conversion.factor != Decimal::new(1, 0) || !conversion.offset.is_zero()
        });
        Ok(LabConstants {
            concept,
            lab,
            conversion,
        })
    }

    pub(crate) fn lab(&self) -> LabSpec<'a> {
        self.lab
    }

    /// A constant in the canonical unit must sit on the lab's grid; one in another unit
    /// is converted exactly, then rounded to the grid.
    pub(crate) fn stored(&self, constant: Decimal) -> Result<i64, String> {
        let lab = &self.lab;
        let canonical = match self.conversion {
            None => Exact::from(constant),
            Some(conversion) => conversion
                .apply(Exact::from(constant))
                .ok_or_else(|| format!("{constant} is too large"))?,
        };
        let (low, high) = lab.range;
        if !(low..=high).contains(&canonical.to_f64()) {
            return Err(format!(
                "{constant} is out of range for {}: plausible values run from {low} to {high} {}",
                self.concept.id, lab.unit
            ));
        }
        let stored = match self.conversion {
            None => constant
                .to_fixed(lab.scale)
                .ok_or_else(|| {
                    format!(
                        "{constant} has more decimal places than {} keeps ({})",
                        self.concept.id, lab.scale
                    )
                })?
                .checked_mul(2),
            Some(_) => lab.constant_to_stored(canonical),
        };
        stored.ok_or_else(|| format!("{constant} is too large"))
    }
}

fn window_days(days: u32) -> Result<u32, String> {
    if days > MAX_WINDOW_DAYS {
        return Err(format!(
            "a window of {days} days is out of range: at most {MAX_WINDOW_DAYS}"
        ));
    }
    Ok(days)
}

fn answer_clause(
    catalog: &Catalog,
    kind: ConceptKind,
    name: &str,
) -> Result<CompiledClause, String> {
    let slot = catalog.special(kind);
    let concept = catalog.concept(slot);
    let answer = concept.answer_named(name).ok_or_else(|| {
        let names: Vec<&str> = concept
            .answers
            .iter()
            .map(|answer| answer.name.as_str())
            .collect();
        format!(
            "unknown {} `{name}`: use one of {}",
            kind.word(),
            names.join(", ")
        )
    })?;
    let mut compiled = CompiledClause::unbounded(slot);
    compiled.min_count = 1;
    (compiled.value_min, compiled.value_max) = (answer.value, answer.value);
    Ok(compiled)
}
