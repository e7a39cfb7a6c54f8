//! How record slots and query clauses become BN254 scalars, and the bit widths the
//! circuit range-checks them to.
//!
//! Signed integers are shifted by an offset so every encoded value is a small
//! non-negative integer: a comparison of two encoded values is a comparison of the
//! integers, with no field wrap-around. The circuit decomposes every compared value
//! into exactly these many bits, so a value outside its width cannot be committed
//! and compared.

use ark_ff::PrimeField;
use zkcohort_cohort::catalog::VALUE_BOUND;
use zkcohort_cohort::query::SlotView;
use zkcohort_cohort::{Day, Slot, RECENT_ENTRIES};

use crate::{CircuitError, Fr};

/// Bits of a slot's count and a clause's minimum count.
pub const COUNT_BITS: usize = 32;
/// Bits of an encoded day.
pub const DATE_BITS: usize = 17;
/// Added to a day count (days since 1970, negative before) to encode it: the supported
/// days 1900-01-01 ..= 2199-12-31 encode to 7,201 ..= 116,773, below 2^17.
pub const DATE_OFFSET: i64 = 1 << 15;
/// Bits of an encoded fixed-point value.
pub const VALUE_BITS: usize = 41;
/// Added to a fixed-point value (-2^40 <= v < 2^40) to encode it into [0, 2^41).
pub const VALUE_OFFSET: i64 = VALUE_BOUND;

/// The number of field elements a slot leaf hashes: count, first date, min value, max
/// value, then the days and the values of the [`RECENT_ENTRIES`] most recent entries.
pub const SLOT_FIELDS: usize = 4 + 2 * RECENT_ENTRIES;
/// Where the recent entries' days start among a slot's fields.
pub const RECENT_DAYS: usize = 4;
/// Where the recent entries' values start among a slot's fields.
pub const RECENT_VALUES: usize = RECENT_DAYS + RECENT_ENTRIES;
/// The fields of a clause's view of its slot, in [`zkcohort_cohort::query::MeasureField`]
/// order: what measures read.
pub const VIEW_FIELDS: usize = 6;

/// A catalog version as the circuit sees it: the first 31 bytes of
/// `SHA-256("zkcohort/catalog/" || version)` as a big-endian integer. The record root and
/// the query hash both take it, so a record is only ever proven against a query of its own
/// catalog version.
pub fn catalog_tag(version: &str) -> Fr {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"zkcohort/catalog/")
        .chain_update(version.as_bytes())
        .finalize();
    Fr::from_be_bytes_mod_order(&digest[..31])
}

/// A day as the circuit sees it.
///
/// # Errors
/// [`CircuitError::OutOfRange`] for a day outside the supported span.
pub fn encode_day(day: Day) -> Result<u64, CircuitError> {
    let encoded = i64::from(day.0) + DATE_OFFSET;
    check_width("day", encoded, DATE_BITS)
}

/// A fixed-point value as the circuit sees it.
///
/// # Errors
/// [`CircuitError::OutOfRange`] outside `-2^40 <= value < 2^40`.
pub fn encode_value(value: i64) -> Result<u64, CircuitError> {
    let encoded = value
        .checked_add(VALUE_OFFSET)
        .ok_or(CircuitError::OutOfRange {
            what: "value",
            value: value.to_string(),
        })?;
    check_width("value", encoded, VALUE_BITS)
}

fn check_width(what: &'static str, encoded: i64, bits: usize) -> Result<u64, CircuitError> {
    u64::try_from(encoded)
        .ok()
        .filter(|encoded| *encoded < 1 << bits)
        .ok_or(CircuitError::OutOfRange {
            what,
            value: encoded.to_string(),
        })
}

/// A slot's fields in leaf order: count, first date, min value, max value, the recent
/// entries' days, their values. A missing entry (the slot has fewer days) has value 0
/// and the day of its position, `1 + i`: below every supported day, so never inside a
/// window, and the days still rise strictly, as the circuit checks.
///
/// # Errors
/// [`CircuitError::OutOfRange`] for a date or value the circuit cannot represent.
pub fn encode_slot(slot: &Slot) -> Result<[Fr; SLOT_FIELDS], CircuitError> {
    let mut fields = [Fr::from(0u64); SLOT_FIELDS];
    fields[0] = Fr::from(slot.count);
    fields[1] = Fr::from(encode_day(slot.first_date)?);
    fields[2] = Fr::from(encode_value(slot.min_value)?);
    fields[3] = Fr::from(encode_value(slot.max_value)?);
    for (position, entry) in slot.recent.iter().enumerate() {
        let (day, value) = match entry {
            Some(entry) => (encode_day(entry.day)?, encode_value(entry.value)?),
            None => (1 + position as u64, 0),
        };
        fields[RECENT_DAYS + position] = Fr::from(day);
        fields[RECENT_VALUES + position] = Fr::from(value);
    }
    Ok(fields)
}

/// A clause's view of its slot as the circuit computes it: the fields in
/// [`zkcohort_cohort::query::MeasureField`] order (count in the window, first date,
/// latest date and value in the window or 0, min, max), and whether a recent entry is
/// in the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodedView {
    /// The fields, encoded.
    pub fields: [u64; VIEW_FIELDS],
    /// Whether the latest date and value are an entry's.
    pub latest_present: bool,
}

/// Encodes a clause's view of a slot.
///
/// # Errors
/// [`CircuitError::OutOfRange`] for a date or value the circuit cannot represent.
pub fn encode_view(view: &SlotView) -> Result<EncodedView, CircuitError> {
    let (latest_day, latest_value) = match view.latest {
        Some(entry) => (encode_day(entry.day)?, encode_value(entry.value)?),
        None => (0, 0),
    };
    Ok(EncodedView {
        fields: [
            u64::from(view.count),
            encode_day(view.first_date)?,
            latest_day,
            latest_value,
            encode_value(view.min_value)?,
            encode_value(view.max_value)?,
        ],
        latest_present: view.latest.is_some(),
    })
}

/// A field element as a `u64`, if it is one (for reading witness values back).
pub fn fr_to_u64(value: &Fr) -> Option<u64> {
    let bigint = value.into_bigint();
    let limbs = bigint.0;
    limbs[1..].iter().all(|limb| *limb == 0).then_some(limbs[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use zkcohort_cohort::day::{DAY_MAX, DAY_MIN};

    #[test]
    fn supported_days_and_values_fit_their_widths() {
        assert_eq!(encode_day(DAY_MIN).unwrap(), 7_201);
        assert_eq!(encode_day(DAY_MAX).unwrap(), 116_773);
        assert!(encode_day(Day(-40_000)).is_err());
        assert!(encode_day(Day(100_000)).is_err());
        assert_eq!(encode_value(-(VALUE_BOUND - 1)).unwrap(), 1);
        assert_eq!(encode_value(VALUE_BOUND - 1).unwrap(), (1 << 41) - 1);
        assert!(encode_value(VALUE_BOUND).is_err());
        assert_eq!(encode_value(-VALUE_BOUND).unwrap(), 0);
        assert!(encode_value(-VALUE_BOUND - 1).is_err());
        assert!(encode_value(i64::MAX).is_err());
    }

    #[test]
    fn empty_slot_encodes_to_offsets() {
        let fields = encode_slot(&Slot::default()).unwrap();
        assert_eq!(fields[0], Fr::from(0u64));
        assert_eq!(fields[1], Fr::from(DATE_OFFSET as u64));
        assert_eq!(fields[3], Fr::from(VALUE_OFFSET as u64));
        assert_eq!(fr_to_u64(&fields[3]), Some(VALUE_OFFSET as u64));
        let days: Vec<Fr> = (1..=RECENT_ENTRIES as u64).map(Fr::from).collect();
        assert_eq!(fields[RECENT_DAYS..RECENT_VALUES], days[..]);
        assert!(fields[RECENT_VALUES..]
            .iter()
            .all(|value| *value == Fr::from(0u64)));
        assert_eq!(fr_to_u64(&-Fr::from(1u64)), None);
    }
}
