//! Measures: the attributes a study asks of its enrolled cohort (age band, sex, a lab's
//! value in bins or clamped for a sum, a concept's presence or count), each read from
//! a slot a clause of the query opens, so the eligibility proof computes it from the
//! same attested record and commits to it.
//!
//! A compiled measure maps its clause's view of a slot ([`SlotView`]: the entries in
//! the clause's window, so as of the index date unless the clause says otherwise) to
//! one small integer, its *value*:
//! - `0` when the window holds no entry (the attribute is missing), or for the latest
//!   date and value no recent entry;
//! - for bins, `j` in `1..=n+1` when `upper[j-2] <= x < upper[j-1]` for the selected
//!   field `x` and ascending `upper[0..n]` (the first bin has no lower bound, the last
//!   no upper one);
//! - for a sum over `[low, high]`, `1 + clamp(x, low, high) - low`.
//!
//! The circuit computes exactly [`CompiledMeasure::value`]; the marketplace only ever
//! sees values through their opening, and releases only noisy aggregates of them.

use serde::{Deserialize, Serialize};

use super::compile::LabConstants;
use super::compile::SlotView;
use super::{ConceptWord, Decimal, ValueWord};
use crate::catalog::{Catalog, ConceptKind, SlotIndex};
use crate::day::{Day, DAY_MIN};

/// The most bins a measure may declare (bins, not edges: `n` edges make `n + 1` bins).
pub const MAX_MEASURE_BINS: usize = 16;

/// A measure as the researcher writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Measure {
    /// Age in whole years on the index date, in bands split at these ages (ascending).
    AgeBands(Vec<u32>),
    /// Administrative sex, one bin per answer.
    Sex,
    /// Latest smoking status, one bin per answer.
    Smoking,
    /// A lab value in bins split at these values (ascending), in `unit` or the lab's own.
    LabBins {
        /// The lab, by catalog id or code.
        lab: String,
        /// Which value of the slot.
        field: ValueWord,
        /// The split points.
        edges: Vec<Decimal>,
        /// The edges' unit; the lab's canonical unit when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    /// A lab value clamped to `[low, high]`, for a bounded sum and mean.
    LabSum {
        /// The lab, by catalog id or code.
        lab: String,
        /// Which value of the slot.
        field: ValueWord,
        /// The clamp's lower bound.
        low: Decimal,
        /// The clamp's upper bound.
        high: Decimal,
        /// The bounds' unit; the lab's canonical unit when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    /// A concept's presence, or with `count_edges` its number of entries in bins split
    /// at these counts (ascending, at least 2).
    Concept {
        /// What kind of concept.
        kind: ConceptWord,
        /// The concept, by catalog id or code.
        concept: String,
        /// Count split points; empty for presence.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        count_edges: Vec<u32>,
    },
}

/// Which field of a slot a measure reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureField {
    /// The number of entries.
    Count,
    /// The first entry's day.
    FirstDate,
    /// The latest entry's day.
    LastDate,
    /// The latest value.
    LastValue,
    /// The smallest value.
    MinValue,
    /// The largest value.
    MaxValue,
}

impl MeasureField {
    /// Every field, in slot-leaf order (the circuit's selector order).
    pub const ALL: [MeasureField; 6] = [
        MeasureField::Count,
        MeasureField::FirstDate,
        MeasureField::LastDate,
        MeasureField::LastValue,
        MeasureField::MinValue,
        MeasureField::MaxValue,
    ];

    /// The field's position in a slot leaf.
    pub fn position(self) -> usize {
        Self::ALL
            .iter()
            .position(|field| *field == self)
            .expect("ALL lists every field")
    }

    /// The selected field of a clause's view, as an integer (days since 1970 for
    /// dates); `None` when there is nothing to read: no entry in the window, or for the
    /// latest date and value no recent entry there.
    pub fn of(self, view: &SlotView) -> Option<i64> {
        if view.count == 0 {
            return None;
        }
        match self {
            MeasureField::Count => Some(i64::from(view.count)),
            MeasureField::FirstDate => Some(i64::from(view.first_date.0)),
            MeasureField::LastDate => view.latest.map(|entry| i64::from(entry.day.0)),
            MeasureField::LastValue => view.latest.map(|entry| entry.value),
            MeasureField::MinValue => Some(view.min_value),
            MeasureField::MaxValue => Some(view.max_value),
        }
    }
}

/// Whether a measure's value is a bin or a clamped value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureKind {
    /// Values are bins, released as counts per bin.
    Bins,
    /// Values are clamped amounts, released as a bounded sum, a count and their mean.
    Sum,
}

/// A measure compiled against the catalog: what the circuit computes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompiledMeasure {
    /// The query clause whose opened slot the measure reads.
    pub clause: usize,
    /// Which field of the slot.
    pub field: MeasureField,
    /// Bins or a clamped sum.
    pub kind: MeasureKind,
    /// Ascending exclusive upper bounds of every bin but the last, in the field's units
    /// (days since 1970, stored values, counts). A sum over `[low, high]` has
    /// `[low, high + 1]`.
    pub uppers: Vec<i64>,
    /// A readable name (`age`, `lab hba1c latest`).
    pub name: String,
    /// The label of each value: `labels[0]` is the missing value, `labels[j]` bin `j`
    /// (for a sum: `labels[1]` the values below `low`, `labels[2]` those inside,
    /// `labels[3]` those above `high`).
    pub labels: Vec<String>,
    /// For a sum: stored units per `unit` (the mean is divided by it).
    pub units_per_display: i64,
    /// For a sum: the unit of the released sum and mean.
    pub unit: String,
}

impl CompiledMeasure {
    /// Whether the view gives the measure's value exactly: its count is exact, and for
    /// the latest date or value, the latest entry is known. A record whose measure is
    /// not readable cannot prove the query.
    pub fn readable(&self, view: &SlotView) -> bool {
        match self.field {
            MeasureField::LastDate | MeasureField::LastValue => view.latest_exact,
            _ => view.count_exact,
        }
    }

    /// The measure's value for its clause's view of the slot (see the module docs).
    pub fn value(&self, view: &SlotView) -> u64 {
        let Some(x) = self.field.of(view) else {
            return 0;
        };
        let bin = 1 + self.uppers.iter().take_while(|upper| **upper <= x).count();
        match self.kind {
            MeasureKind::Bins => bin as u64,
            MeasureKind::Sum => {
                let (low, high) = (self.uppers[0], self.uppers[1] - 1);
                (1 + x.clamp(low, high) - low) as u64
            }
        }
    }

    /// The number of values the measure can take, the missing one included: `n + 2`
    /// for bins, `high - low + 2` for a sum.
    pub fn value_count(&self) -> u64 {
        match self.kind {
            MeasureKind::Bins => self.uppers.len() as u64 + 2,
            MeasureKind::Sum => (self.uppers[1] - self.uppers[0] + 1) as u64,
        }
    }

    /// The number of bins the circuit needs: `n + 1` (3 for a sum).
    pub fn bins(&self) -> usize {
        self.uppers.len() + 1
    }

    /// For a sum: the clamped amount a value stands for (in stored units), `None` for
    /// the missing value.
    pub fn amount(&self, value: u64) -> Option<i64> {
        (value > 0).then(|| self.uppers[0] + value as i64 - 1)
    }

    /// How a value reads: its bin's label, or for a sum the clamped amount in the
    /// measure's unit (`6.3 %`); `none` for a sum's missing value.
    pub fn describe(&self, value: u64) -> String {
        match (self.kind, self.amount(value)) {
            (MeasureKind::Sum, Some(amount)) => format!(
                "{} {}",
                amount as f64 / self.units_per_display as f64,
                self.unit
            ),
            _ => self
                .labels
                .get(value as usize)
                .cloned()
                .unwrap_or_else(|| format!("value {value}")),
        }
    }
}

fn ascending<T: PartialOrd + std::fmt::Display>(values: &[T], what: &str) -> Result<(), String> {
    if let Some(pair) = values.windows(2).find(|pair| pair[0] >= pair[1]) {
        return Err(format!(
            "{what} must ascend strictly: {} then {}",
            pair[0], pair[1]
        ));
    }
    Ok(())
}

/// What [`Measure::compile`] needs of the query's clauses: the slot a measure reads,
/// and where that slot is opened.
pub(crate) struct MeasureSlot {
    pub(crate) slot: SlotIndex,
    pub(crate) compiled: CompiledMeasure,
}

impl Measure {
    /// Compiles the measure, with `clause` left for the caller to fill.
    pub(crate) fn compile(
        &self,
        index_date: Day,
        catalog: &Catalog,
    ) -> Result<MeasureSlot, String> {
        let bins = |slot, field, uppers: Vec<i64>, name: String, labels: Vec<String>| {
            if uppers.len() + 1 > MAX_MEASURE_BINS {
                return Err(format!(
                    "{} bins: a measure takes at most {MAX_MEASURE_BINS}",
                    uppers.len() + 1
                ));
            }
            Ok(MeasureSlot {
                slot,
                compiled: CompiledMeasure {
                    clause: 0,
                    field,
                    kind: MeasureKind::Bins,
                    uppers,
                    name,
                    labels,
                    units_per_display: 1,
                    unit: String::new(),
                },
            })
        };
        match self {
            Measure::AgeBands(edges) => {
                if edges.is_empty() {
                    return Err("age bands need at least one age to split at".into());
                }
                ascending(edges, "age bands")?;
                if let Some(bad) = edges.iter().find(|age| !(1..=150).contains(*age)) {
                    return Err(format!(
                        "age {bad} is out of range: split at 1 to 150 years"
                    ));
                }
                // Age >= a on the index date: born on or before the index date a years
                // back. Ascending birth dates are descending ages, so the bins run from
                // the oldest band to the youngest.
                let mut uppers = Vec::with_capacity(edges.len());
                for age in edges.iter().rev() {
                    // An age that reaches before the first supported day: nobody is that
                    // old, and the band above it is empty.
                    uppers.push(
                        index_date
                            .years_before(*age)
                            .map_or(i64::from(DAY_MIN.0), |latest_birth| {
                                i64::from(latest_birth.0) + 1
                            }),
                    );
                }
                let mut labels = vec!["unknown".to_string()];
                labels.push(format!("{}+", edges[edges.len() - 1]));
                for pair in edges.windows(2).rev() {
                    labels.push(format!("{}-{}", pair[0], pair[1] - 1));
                }
                labels.push(format!("<{}", edges[0]));
                bins(
                    catalog.special(ConceptKind::BirthDate),
                    MeasureField::FirstDate,
                    uppers,
                    "age".into(),
                    labels,
                )
            }
            Measure::Sex | Measure::Smoking => {
                let (kind, name) = match self {
                    Measure::Sex => (ConceptKind::Sex, "sex"),
                    _ => (ConceptKind::SmokingStatus, "smoking"),
                };
                let slot = catalog.special(kind);
                let mut answers: Vec<(i64, &str)> = catalog
                    .concept(slot)
                    .answers
                    .iter()
                    .map(|answer| (answer.value, answer.name.as_str()))
                    .collect();
                answers.sort();
                let uppers = answers.iter().skip(1).map(|(value, _)| *value).collect();
                let mut labels = vec!["unknown".to_string()];
                labels.extend(answers.iter().map(|(_, name)| name.to_string()));
                bins(slot, MeasureField::LastValue, uppers, name.into(), labels)
            }
            Measure::LabBins {
                lab,
                field,
                edges,
                unit,
            } => {
                if edges.is_empty() {
                    return Err("lab bins need at least one value to split at".into());
                }
                ascending(edges, "lab bins")?;
                let (slot, constants) = lab_slot(catalog, lab, unit.as_deref())?;
                let uppers = edges
                    .iter()
                    .map(|edge| constants.stored(*edge))
                    .collect::<Result<Vec<_>, _>>()?;
                let unit = unit
                    .clone()
                    .unwrap_or_else(|| constants.lab().unit.to_string());
                let mut labels = vec!["none".to_string()];
                labels.push(format!("<{} {unit}", edges[0]));
                for pair in edges.windows(2) {
                    labels.push(format!("[{}, {}) {unit}", pair[0], pair[1]));
                }
                labels.push(format!(">={} {unit}", edges[edges.len() - 1]));
                bins(
                    slot,
                    value_field(*field),
                    uppers,
                    format!("lab {lab} {}", field.word()),
                    labels,
                )
            }
            Measure::LabSum {
                lab,
                field,
                low,
                high,
                unit,
            } => {
                ascending(&[*low, *high], "a sum's bounds")?;
                let (slot, constants) = lab_slot(catalog, lab, unit.as_deref())?;
                if unit.is_some() {
                    return Err(format!(
                        "a sum is released in {}'s own unit ({}): give its bounds in it",
                        lab,
                        constants.lab().unit
                    ));
                }
                let (low, high) = (constants.stored(*low)?, constants.stored(*high)?);
                let display = constants.lab();
                Ok(MeasureSlot {
                    slot,
                    compiled: CompiledMeasure {
                        clause: 0,
                        field: value_field(*field),
                        kind: MeasureKind::Sum,
                        uppers: vec![low, high + 1],
                        name: format!("lab {lab} {}", field.word()),
                        labels: vec![
                            "none".into(),
                            format!("below {}", display.format(low)),
                            "inside".into(),
                            format!("above {}", display.format(high)),
                        ],
                        units_per_display: 2 * display.one(),
                        unit: display.unit.to_string(),
                    },
                })
            }
            Measure::Concept {
                kind,
                concept,
                count_edges,
            } => {
                let slot = catalog
                    .resolve(concept)
                    .map_err(|error| error.to_string())?;
                let found = catalog.concept(slot);
                if found.kind.word() != kind.word() {
                    return Err(format!(
                        "{concept} is a {} concept ({}), not a {}",
                        found.kind.word(),
                        found.id,
                        kind.word()
                    ));
                }
                let name = format!("{} {concept}", kind.word());
                if count_edges.is_empty() {
                    // Presence: every non-empty slot is bin 1.
                    return bins(
                        slot,
                        MeasureField::Count,
                        Vec::new(),
                        name,
                        vec!["absent".into(), "present".into()],
                    );
                }
                ascending(count_edges, "count bins")?;
                if count_edges[0] < 2 {
                    return Err(
                        "count bins split at 2 or more (a missing concept is its own bin)".into(),
                    );
                }
                let uppers = count_edges.iter().map(|edge| i64::from(*edge)).collect();
                let mut labels = vec!["0".to_string()];
                let mut lower = 1;
                for edge in count_edges {
                    labels.push(if edge - 1 == lower {
                        lower.to_string()
                    } else {
                        format!("{lower}-{}", edge - 1)
                    });
                    lower = *edge;
                }
                labels.push(format!("{lower}+"));
                bins(slot, MeasureField::Count, uppers, name, labels)
            }
        }
    }
}

fn value_field(field: ValueWord) -> MeasureField {
    match field {
        ValueWord::Latest => MeasureField::LastValue,
        ValueWord::Min => MeasureField::MinValue,
        ValueWord::Max => MeasureField::MaxValue,
    }
}

fn lab_slot<'c>(
    catalog: &'c Catalog,
    lab: &str,
    unit: Option<&str>,
) -> Result<(SlotIndex, LabConstants<'c>), String> {
    let slot = catalog.resolve(lab).map_err(|error| error.to_string())?;
    let concept = catalog.concept(slot);
    if concept.kind != ConceptKind::Lab {
        return Err(format!(
            "{lab} is a {} concept ({}), not a lab",
            concept.kind.word(),
            concept.id
        ));
    }
    Ok((slot, LabConstants::new(concept, unit)?))
}
