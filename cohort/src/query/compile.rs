//! Queries compiled against the catalog into fixed-shape clauses: the exact form the
//! circuit checks and `query_hash` commits to.
//!
//! A compiled clause reads one slot through a date window `[date_min, date_max]`
//! (the index date and everything before it unless the query says otherwise). Its test
//! holds when
//! - at least `min_count` entries (days) fall in the window,
//! - the selected value lies in `[value_min, value_max]`: the latest entry in the window
//!   (`Last`; with no entry there, only an unbounded range holds), or the smallest or
//!   largest value of the whole record (`Min`, `Max`),
//! - the first entry ever lies in `[first_min, first_max]`;
//!
//! a negated clause holds when that fails. The record commits to the first entry's day
//! and the [`RECENT_ENTRIES`] most recent entries; the entries between them, on a record
//! that has more, are counted but not dated. A clause whose answer depends on them is
//! *undecidable* and no proof of it exists: a window that reaches some but not all of
//! those days, unless the committed entries already meet its count and its value test
//! is decided (a recent entry in the window, or a range that admits every value).
//! Presence, "first before the index date" and windows ending after the older of the
//! recent entries are always decidable.
//!
//! Clauses form groups (a clause with `starts_group` opens a new one): a group holds
//! when any of its clauses holds, the query when every group holds and every clause is
//! decidable. An `exclude` criterion with n clauses becomes n groups of one negated
//! clause each (not (A or B) = not A and not B).

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
use crate::summary::{Entry, RecordSummary, Slot, RECENT_ENTRIES};

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
    /// The latest entry in the clause's window.
    Last,
    /// `min_value`, over the whole record.
    Min,
    /// `max_value`, over the whole record.
    Max,
}

/// What one clause sees of a slot through its window: the values a measure reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotView {
    /// Entries in the window: exact when `count_exact`, else those the record dates.
    pub count: u32,
    /// The first entry's day, ever.
    pub first_date: Day,
    /// The latest entry in the window among the committed recent ones.
    pub latest: Option<Entry>,
    /// The smallest value, ever.
    pub min_value: i64,
    /// The largest value, ever.
    pub max_value: i64,
    /// Whether `count` is exact: the window reaches none of the undated days, or all.
    pub count_exact: bool,
    /// Whether `latest` is the window's latest entry, or the window holds none; else
    /// the window's latest entry is not among the committed recent ones.
    pub latest_exact: bool,
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
    /// At least this many entries must fall in the window.
    pub min_count: u32,
    /// Which value is compared.
    pub value_field: ValueField,
    /// Inclusive lower bound of the value.
    pub value_min: i64,
    /// Inclusive upper bound of the value.
    pub value_max: i64,
    /// The window's first day.
    pub date_min: Day,
    /// The window's last day.
    pub date_max: Day,
    /// Inclusive lower bound of the first entry's day.
    pub first_min: Day,
    /// Inclusive upper bound of the first entry's day.
    pub first_max: Day,
}

impl CompiledClause {
    /// A clause that holds for every record, in a group of its own: fills a query up
    /// to the circuit's fixed clause count.
    pub fn padding() -> Self {
        CompiledClause {
            starts_group: true,
            ..CompiledClause::unbounded(0, DAY_MAX)
        }
    }

    /// A clause on `slot` that tests nothing, its window ending on `until`.
    fn unbounded(slot: SlotIndex, until: Day) -> Self {
        CompiledClause {
            slot,
            starts_group: false,
            negated: false,
            min_count: 0,
            value_field: ValueField::Last,
            value_min: VALUE_MIN,
            value_max: VALUE_MAX,
            date_min: DAY_MIN,
            date_max: until,
            first_min: DAY_MIN,
            first_max: DAY_MAX,
        }
    }

    fn in_window(&self, day: Day) -> bool {
        (self.date_min..=self.date_max).contains(&day)
    }

    /// Whether the value range admits every value.
    fn value_unbounded(&self) -> bool {
        self.value_min == VALUE_MIN && self.value_max == VALUE_MAX
    }

    /// The slot as this clause's window sees it.
    pub fn view(&self, slot: &Slot) -> SlotView {
        let in_window: Vec<&Entry> = slot
            .entries()
            .filter(|entry| self.in_window(entry.day))
            .collect();
        let latest = in_window.last().copied().copied();
        let (gap, reaches, covers) = self.undated_days(slot);
        let undated_inside = if gap && covers {
            slot.count - RECENT_ENTRIES as u32 - 1
        } else {
            0
        };
        let count_exact = !gap || !reaches || covers;
        SlotView {
            count: in_window.len() as u32 + u32::from(self.first_counts(slot)) + undated_inside,
            first_date: slot.first_date,
            latest,
            min_value: slot.min_value,
            max_value: slot.max_value,
            count_exact,
            latest_exact: latest.is_some() || (count_exact && !self.first_counts(slot)),
        }
    }

    /// Whether the record has undated entries (strictly between its first entry and
    /// the oldest kept one), whether the window reaches their days, and whether it
    /// covers them all (it holds the first entry and the oldest kept one).
    fn undated_days(&self, slot: &Slot) -> (bool, bool, bool) {
        let gap = truncated(slot) && slot.count as usize != RECENT_ENTRIES + 1;
        let oldest = slot.recent[0].map_or(Day(i32::MIN), |entry| entry.day);
        let reaches = self.date_min < oldest && self.date_max > slot.first_date;
        let covers = self.date_min <= slot.first_date && oldest <= self.date_max;
        (gap, reaches, covers)
    }

    /// Whether the first entry lies before every kept entry (the record has more
    /// entries than it keeps), so it counts besides them, and it is in the window.
    fn first_counts(&self, slot: &Slot) -> bool {
        truncated(slot) && self.in_window(slot.first_date)
    }

    /// The test (before negation) for `slot`, or `None` when the committed entries do
    /// not decide it (see the module documentation): the count is decided when it is
    /// exact or the committed entries already reach it; the latest value when a recent
    /// entry is in the window, any value passes, or the window's entries are all known.
    pub fn test(&self, slot: &Slot) -> Option<bool> {
        let view = self.view(slot);
        let count_holds = view.count >= self.min_count;
        let in_range = |value: i64| (self.value_min..=self.value_max).contains(&value);
        let (value_known, value_holds) = match self.value_field {
            ValueField::Min => (true, in_range(slot.min_value)),
            ValueField::Max => (true, in_range(slot.max_value)),
            ValueField::Last => match view.latest {
                Some(entry) => (true, in_range(entry.value)),
                None => (
                    view.latest_exact || self.value_unbounded(),
                    self.value_unbounded(),
                ),
            },
        };
        let decidable = value_known && (view.count_exact || count_holds);
        let first_holds = (self.first_min..=self.first_max).contains(&slot.first_date);
        decidable.then_some(count_holds && value_holds && first_holds)
    }

    /// Whether the clause (after negation) holds for the summary, `None` when it is
    /// undecidable.
    pub fn holds(&self, summary: &RecordSummary) -> Option<bool> {
        self.test(&self.opened(summary))
            .map(|holds| holds != self.negated)
    }

    /// The summary's slot as this clause's window sees it.
    pub fn view_in(&self, summary: &RecordSummary) -> SlotView {
        self.view(&self.opened(summary))
    }

    /// The slot the clause opens; a slot past the catalog is empty, as in the
    /// circuit's padded slot tree.
    fn opened(&self, summary: &RecordSummary) -> Slot {
        summary.slots().get(self.slot).copied().unwrap_or_default()
    }
}

/// Whether the slot has more entries than it keeps: its oldest kept entry comes after
/// its first one.
fn truncated(slot: &Slot) -> bool {
    slot.recent[0].is_some_and(|oldest| oldest.day > slot.first_date)
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
    /// Whether the summary satisfies every group with every clause decidable: the
    /// truth the circuit must match.
    pub fn evaluate(&self, summary: &RecordSummary) -> bool {
        let mut all_groups = true;
        let mut group = false;
        for (index, clause) in self.clauses.iter().enumerate() {
            if clause.starts_group && index > 0 {
                all_groups &= group;
                group = false;
            }
            match clause.holds(summary) {
                Some(holds) => group |= holds,
                None => return false,
            }
        }
        let measures_readable = self
            .measures
            .iter()
            .all(|measure| measure.readable(&self.clauses[measure.clause].view_in(summary)));
        measures_readable && (self.clauses.is_empty() || (all_groups && group))
    }

    /// The value of each measure for the summary ([`CompiledMeasure::value`]): what the
    /// circuit commits to.
    pub fn measure_values(&self, summary: &RecordSummary) -> Vec<u64> {
        self.measures
            .iter()
            .map(|measure| measure.value(&self.clauses[measure.clause].view_in(summary)))
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
                    // Sex is undated; everything else is read as of the index date.
                    let until = match catalog.concept(slot).kind {
                        ConceptKind::Sex | ConceptKind::BirthDate => DAY_MAX,
                        _ => self.index_date,
                    };
                    clauses.push(CompiledClause {
                        starts_group: true,
                        ..CompiledClause::unbounded(slot, until)
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
            let mut compiled =
                CompiledClause::unbounded(catalog.special(ConceptKind::BirthDate), DAY_MAX);
            compiled.min_count = 1;
            // Age >= a on the index date: born on or before the index date a years back.
            // Age <= b: born after the index date b + 1 years back.
            // A bound before 1900 either excludes everyone (no one that old can be born
            // late enough) or no one (every supported birth date is young enough).
            if youngest > 0 {
                match index_date.years_before(youngest as u32) {
                    Some(latest_birth) => compiled.first_max = latest_birth,
                    None => (compiled.first_min, compiled.first_max) = (DAY_MAX, DAY_MIN),
                }
            }
            if oldest < MAX_AGE_YEARS {
                if let Some(too_old) = index_date.years_before((oldest + 1) as u32) {
                    compiled.first_min = compiled.first_min.max(too_old.offset(1));
                }
            }
            compiled
        }
        // Sex is recorded once, undated: every day of the record counts.
        Test::Sex(name) => answer_clause(catalog, ConceptKind::Sex, name, DAY_MAX)?,
        Test::Smoking(name) => {
            answer_clause(catalog, ConceptKind::SmokingStatus, name, index_date)?
        }
        Test::RecordIssuedWithin(days) => {
            let mut compiled =
                CompiledClause::unbounded(catalog.special(ConceptKind::RecordIssued), DAY_MAX);
            compiled.min_count = 1;
            compiled.date_min = index_date.offset(-i64::from(window_days(*days)?));
            compiled
        }
        Test::Alive => {
            // Alive on the index date: not (a death on or before it). An empty death
            // slot fails the count, so the negated clause holds.
            let mut compiled =
                CompiledClause::unbounded(catalog.special(ConceptKind::Death), index_date);
            compiled.min_count = 1;
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
            let mut compiled = CompiledClause::unbounded(slot, index_date);
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
                let bounds = match window.span {
                    Span::WithinDays(days) => (
                        index_date.offset(-i64::from(window_days(days)?)),
                        index_date,
                    ),
                    Span::BeforeIndex => (DAY_MIN, index_date.offset(-1)),
                    Span::AfterIndex => (index_date.offset(1), DAY_MAX),
                };
                match window.date {
                    // The entries counted, and the latest value, come from the window.
                    DateWord::Last => (compiled.date_min, compiled.date_max) = bounds,
                    // The first entry ever falls in it; a first entry after the index
                    // date is seen only by a window that reaches past it.
                    DateWord::First => {
                        (compiled.first_min, compiled.first_max) = bounds;
                        if window.span == Span::AfterIndex {
                            compiled.date_max = DAY_MAX;
                        }
                    }
                }
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
    until: Day,
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
    let mut compiled = CompiledClause::unbounded(slot, until);
    compiled.min_count = 1;
    (compiled.value_min, compiled.value_max) = (answer.value, answer.value);
    Ok(compiled)
}
