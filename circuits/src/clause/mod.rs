//! Compiled query clauses as field elements, and `query_hash`, the public input that
//! pins the exact query a proof is about.
//!
//! A clause packs into two words (bit offsets, little-endian):
//!
//! ```text
//! word a: slot [0,16) | starts_group 16 | negated 17 | value_is_min 18 | value_is_max 19
//!         | min_count [20,52) | date_min [52,69) | date_max [69,86)
//! word b: value_min [0,41) | value_max [41,82) | first_min [82,99) | first_max [99,116)
//! ```
//!
//! `[date_min, date_max]` is the window whose entries the clause counts and whose
//! latest value it compares; `[first_min, first_max]` bounds the first entry's day
//! (see [`zkcohort_cohort::query::compile`]).
//!
//! Every field is range-checked to its width in the circuit, so a word determines
//! its fields uniquely. `query_hash` absorbs the dimensions, the catalog tag, the
//! encoded index date, the clause words and the measures' elements
//! ([`crate::measure::MeasureEncoding::elements`]), eleven elements per Poseidon call:
//! `acc = K + 2^16 M + 2^32 B; for chunk in [tag, index_date, a_1, b_1, …, a_K, b_K,
//! measure_1…, measure_M].chunks(11): acc = Poseidon(acc, chunk…)`.

#[cfg(feature = "r1cs")]
pub mod gadget;

use zkcohort_cohort::query::{CompiledClause, CompiledQuery, ValueField};

use crate::encoding::{encode_day, encode_value, COUNT_BITS, DATE_BITS, VALUE_BITS};
use crate::measure::{encode_measures, MeasureEncoding};
use crate::poseidon::poseidon_hash;
use crate::shape::CircuitShape;
use crate::{CircuitError, Fr};

/// Bits reserved for the slot index in word a.
pub const SLOT_BITS_RESERVED: usize = 16;
const STARTS_GROUP_SHIFT: u32 = 16;
const NEGATED_SHIFT: u32 = 17;
const VALUE_IS_MIN_SHIFT: u32 = 18;
const VALUE_IS_MAX_SHIFT: u32 = 19;
const MIN_COUNT_SHIFT: u32 = 20;
const DATE_MIN_SHIFT: u32 = MIN_COUNT_SHIFT + COUNT_BITS as u32;
const DATE_MAX_SHIFT: u32 = DATE_MIN_SHIFT + DATE_BITS as u32;
const VALUE_MAX_SHIFT: u32 = VALUE_BITS as u32;
const FIRST_MIN_SHIFT: u32 = 2 * VALUE_BITS as u32;
const FIRST_MAX_SHIFT: u32 = FIRST_MIN_SHIFT + DATE_BITS as u32;
/// Elements absorbed per Poseidon call of the query hash (plus the accumulator).
const QUERY_HASH_CHUNK: usize = 11;

/// One compiled clause as the integers the circuit sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClauseEncoding {
    /// The slot opened.
    pub slot: u64,
    /// Whether the clause opens a new OR group.
    pub starts_group: bool,
    /// Whether the clause is negated.
    pub negated: bool,
    /// Compare `min_value` instead of the window's latest value.
    pub value_is_min: bool,
    /// Compare `max_value` instead of the window's latest value.
    pub value_is_max: bool,
    /// Minimum count of entries in the window.
    pub min_count: u64,
    /// The window's encoded first day.
    pub date_min: u64,
    /// The window's encoded last day.
    pub date_max: u64,
    /// Encoded inclusive bounds of the first entry's day.
    pub first_min: u64,
    /// Encoded inclusive bounds of the first entry's day.
    pub first_max: u64,
    /// Encoded inclusive value bounds.
    pub value_min: u64,
    /// Encoded inclusive value bounds.
    pub value_max: u64,
}

impl ClauseEncoding {
    /// Encodes a compiled clause for a circuit whose slot tree holds `2^slot_depth` slots.
    ///
    /// # Errors
    /// [`CircuitError::Shape`] for a slot past the tree; [`CircuitError::OutOfRange`] for bounds the
    /// circuit cannot represent.
    pub fn new(clause: &CompiledClause, slot_depth: usize) -> Result<Self, CircuitError> {
        let slot = u64::try_from(clause.slot).unwrap_or(u64::MAX);
        if slot >= 1 << slot_depth.min(SLOT_BITS_RESERVED) {
            return Err(CircuitError::Shape(format!(
                "slot {slot} does not fit slot depth {slot_depth}"
            )));
        }
        Ok(ClauseEncoding {
            slot,
            starts_group: clause.starts_group,
            negated: clause.negated,
            value_is_min: clause.value_field == ValueField::Min,
            value_is_max: clause.value_field == ValueField::Max,
            min_count: u64::from(clause.min_count),
            date_min: encode_day(clause.date_min)?,
            date_max: encode_day(clause.date_max)?,
            first_min: encode_day(clause.first_min)?,
            first_max: encode_day(clause.first_max)?,
            value_min: encode_value(clause.value_min)?,
            value_max: encode_value(clause.value_max)?,
        })
    }

    /// The two packed words hashed into `query_hash`.
    pub fn words(&self) -> [Fr; 2] {
        let flag = |set: bool, shift: u32| u128::from(set) << shift;
        let a = u128::from(self.slot)
            | flag(self.starts_group, STARTS_GROUP_SHIFT)
            | flag(self.negated, NEGATED_SHIFT)
            | flag(self.value_is_min, VALUE_IS_MIN_SHIFT)
            | flag(self.value_is_max, VALUE_IS_MAX_SHIFT)
            | u128::from(self.min_count) << MIN_COUNT_SHIFT
            | u128::from(self.date_min) << DATE_MIN_SHIFT
            | u128::from(self.date_max) << DATE_MAX_SHIFT;
        let b = u128::from(self.value_min)
            | u128::from(self.value_max) << VALUE_MAX_SHIFT
            | u128::from(self.first_min) << FIRST_MIN_SHIFT
            | u128::from(self.first_max) << FIRST_MAX_SHIFT;
        [Fr::from(a), Fr::from(b)]
    }
}

/// A query padded to `clauses` clauses and encoded, with its encoded index date.
///
/// # Errors
/// [`CircuitError::Shape`] when the query has more clauses than the shape or a slot past
/// the tree; [`CircuitError::OutOfRange`] for unrepresentable bounds.
pub fn encode_query(
    query: &CompiledQuery,
    clauses: usize,
    slot_depth: usize,
) -> Result<(u64, Vec<ClauseEncoding>), CircuitError> {
    let padded = query
        .padded(clauses)
        .map_err(|error| CircuitError::Shape(error.message))?;
    let encoded = padded
        .clauses
        .iter()
        .map(|clause| ClauseEncoding::new(clause, slot_depth))
        .collect::<Result<_, _>>()?;
    Ok((encode_day(query.index_date)?, encoded))
}

/// The first accumulator of `query_hash`: the shape's clause, measure and bin counts.
pub fn query_hash_dimensions(clauses: usize, measures: usize, bins: usize) -> Fr {
    Fr::from(clauses as u64 | (measures as u64) << 16 | (bins as u64) << 32)
}

/// `query_hash` over a catalog tag ([`crate::encoding::catalog_tag`]), an encoded index
/// date, clauses and measures (each of `bins` bins).
pub fn query_hash_of(
    catalog_tag: Fr,
    index_date: u64,
    clauses: &[ClauseEncoding],
    measures: &[MeasureEncoding],
    bins: usize,
) -> Fr {
    let mut elements = vec![catalog_tag, Fr::from(index_date)];
    elements.extend(clauses.iter().flat_map(ClauseEncoding::words));
    elements.extend(
        measures
            .iter()
            .flat_map(|measure| measure.elements(clauses.len())),
    );
    let mut accumulator = query_hash_dimensions(clauses.len(), measures.len(), bins);
    for chunk in elements.chunks(QUERY_HASH_CHUNK) {
        let mut inputs = Vec::with_capacity(chunk.len() + 1);
        inputs.push(accumulator);
        inputs.extend_from_slice(chunk);
        accumulator = poseidon_hash(&inputs).expect("at most 12 inputs");
    }
    accumulator
}

/// `query_hash` of a compiled query, measures included, in a circuit of `shape`.
///
/// # Errors
/// As [`encode_query`] and [`encode_measures`].
pub fn query_hash(query: &CompiledQuery, shape: &CircuitShape) -> Result<Fr, CircuitError> {
    let (index_date, encoded) = encode_query(query, shape.clauses, shape.slot_depth)?;
    let measures = encode_measures(query, shape.clauses, shape.measures, shape.measure_bins)?;
    Ok(query_hash_of(
        crate::encoding::catalog_tag(&query.catalog_version),
        index_date,
        &encoded,
        &measures,
        shape.measure_bins,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zkcohort_cohort::{Catalog, Query};

    fn compiled(text: &str) -> CompiledQuery {
        let catalog = Catalog::bundled();
        Query::parse(text, catalog)
            .unwrap()
            .compile(catalog)
            .unwrap()
    }

    #[test]
    fn words_place_every_field_at_its_offset() {
        let clause = ClauseEncoding {
            slot: 0xABC,
            starts_group: true,
            negated: false,
            value_is_min: true,
            value_is_max: false,
            min_count: 3,
            date_min: 1,
            date_max: (1 << 17) - 1,
            value_min: 5,
            value_max: (1 << 41) - 1,
            first_min: 2,
            first_max: (1 << 17) - 2,
        };
        let expected_a = 0xABC_u128 | 1 << 16 | 1 << 18 | 3 << 20 | 1 << 52 | ((1 << 17) - 1) << 69;
        let expected_b = 5_u128 | ((1_u128 << 41) - 1) << 41 | 2 << 82 | ((1_u128 << 17) - 2) << 99;
        assert_eq!(clause.words(), [Fr::from(expected_a), Fr::from(expected_b)]);
    }

    fn shape(clauses: usize, slot_depth: usize) -> CircuitShape {
        CircuitShape {
            clauses,
            slot_depth,
            ..CircuitShape::REFERENCE
        }
    }

    #[test]
    fn query_hash_depends_on_every_clause_field_and_the_index_date() {
        let text = "index date 2020-01-01\nrequire age between 40 and 75\nrequire lab hba1c latest >= 6.5 within 365 days\nexclude condition ckd";
        let base = query_hash(&compiled(text), &shape(16, 10)).unwrap();
        let variants = [
            text.replace("2020-01-01", "2020-01-02"),
            text.replace("40", "41"),
            text.replace("6.5", "6.6"),
            text.replace("latest", "max"),
            text.replace("within 365", "within 366"),
            text.replace("within", "first within"),
            text.replace("exclude condition ckd", "exclude condition ckd count >= 2"),
            text.replace(
                "2020-01-01\nrequire age between 40",
                "2020-01-01\nrequire age between 41",
            ),
            text.replace("exclude", "require"),
            text.replace("ckd", "copd"),
            text.replace("require lab", "require any of: condition copd; lab"),
        ];
        for variant in variants {
            assert_ne!(
                query_hash(&compiled(&variant), &shape(16, 10)).unwrap(),
                base,
                "{variant}"
            );
        }
        assert_ne!(
            query_hash(&compiled(text), &shape(8, 10)).unwrap(),
            base,
            "the clause count is absorbed"
        );
        assert_eq!(
            query_hash(&compiled(text), &shape(16, 10)).unwrap(),
            base,
            "deterministic"
        );
        let mut other_catalog = compiled(text);
        other_catalog.catalog_version.push_str("-next");
        assert_ne!(
            query_hash(&other_catalog, &shape(16, 10)).unwrap(),
            base,
            "the catalog version is absorbed"
        );
    }

    #[test]
    fn queries_that_do_not_fit_the_shape_are_refused() {
        let query = compiled("index date 2020-01-01\nrequire any of: condition ckd; condition copd; condition asthma");
        assert!(matches!(
            query_hash(&query, &shape(2, 10)),
            Err(CircuitError::Shape(_))
        ));
        let mut far = query.clone();
        far.clauses[0].slot = 300;
        assert!(matches!(
            query_hash(&far, &shape(4, 8)),
            Err(CircuitError::Shape(_))
        ));
        far.clauses[0].slot = 0;
        far.clauses[0].value_min = i64::MIN;
        assert!(matches!(
            query_hash(&far, &shape(4, 8)),
            Err(CircuitError::OutOfRange { .. })
        ));
    }
}
