//! Clauses in the circuit: allocate a clause's fields (range-checked), pack its words,
//! test an opened slot against it, and hash the query.

use ark_ff::Field;
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::prelude::*;
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

use zkcohort_cohort::query::compile::{VALUE_MAX, VALUE_MIN};
use zkcohort_cohort::RECENT_ENTRIES;

use super::{ClauseEncoding, QUERY_HASH_CHUNK};
use crate::bits::{is_less_or_equal, to_bits_bounded};
use crate::encoding::{
    encode_value, COUNT_BITS, DATE_BITS, RECENT_DAYS, RECENT_VALUES, SLOT_FIELDS, VALUE_BITS,
    VIEW_FIELDS,
};
use crate::poseidon::gadget::poseidon_hash_gadget;
use crate::Fr;

/// A clause's fields as circuit variables; every field is range-checked to its width.
pub struct ClauseVar {
    /// The slot index, little-endian, `slot_depth` bits.
    pub slot_bits: Vec<Boolean<Fr>>,
    /// Opens a new OR group.
    pub starts_group: Boolean<Fr>,
    /// Negated.
    pub negated: Boolean<Fr>,
    /// Compare `min_value`.
    pub value_is_min: Boolean<Fr>,
    /// Compare `max_value`.
    pub value_is_max: Boolean<Fr>,
    /// Minimum count in the window (32 bits).
    pub min_count: FpVar<Fr>,
    /// The window (17 bits each).
    pub date_min: FpVar<Fr>,
    /// The window (17 bits each).
    pub date_max: FpVar<Fr>,
    /// Bounds of the first entry's day (17 bits each).
    pub first_min: FpVar<Fr>,
    /// Bounds of the first entry's day (17 bits each).
    pub first_max: FpVar<Fr>,
    /// Value bounds (41 bits each).
    pub value_min: FpVar<Fr>,
    /// Value bounds (41 bits each).
    pub value_max: FpVar<Fr>,
}

fn bounded_witness(
    cs: &ConstraintSystemRef<Fr>,
    value: Option<u64>,
    bits: usize,
) -> Result<FpVar<Fr>, SynthesisError> {
    let variable = FpVar::new_witness(cs.clone(), || {
        value.map(Fr::from).ok_or(SynthesisError::AssignmentMissing)
    })?;
    to_bits_bounded(&variable, bits)?;
    Ok(variable)
}

fn flag(cs: &ConstraintSystemRef<Fr>, value: Option<bool>) -> Result<Boolean<Fr>, SynthesisError> {
    Boolean::new_witness(cs.clone(), || {
        value.ok_or(SynthesisError::AssignmentMissing)
    })
}

impl ClauseVar {
    /// Allocates a clause as private witnesses (`None` in setup mode). The query hash,
    /// a public input, pins them.
    ///
    /// # Errors
    /// The constraint system's errors.
    pub fn new_witness(
        cs: &ConstraintSystemRef<Fr>,
        clause: Option<&ClauseEncoding>,
        slot_depth: usize,
    ) -> Result<Self, SynthesisError> {
        let slot_bits = (0..slot_depth)
            .map(|bit| flag(cs, clause.map(|clause| (clause.slot >> bit) & 1 == 1)))
            .collect::<Result<Vec<_>, _>>()?;
        let value_is_min = flag(cs, clause.map(|clause| clause.value_is_min))?;
        let value_is_max = flag(cs, clause.map(|clause| clause.value_is_max))?;
        // At most one of min/max: `last_value` is the default.
        (&value_is_min & &value_is_max).enforce_equal(&Boolean::FALSE)?;
        Ok(ClauseVar {
            slot_bits,
            starts_group: flag(cs, clause.map(|clause| clause.starts_group))?,
            negated: flag(cs, clause.map(|clause| clause.negated))?,
            value_is_min,
            value_is_max,
            min_count: bounded_witness(cs, clause.map(|clause| clause.min_count), COUNT_BITS)?,
            date_min: bounded_witness(cs, clause.map(|clause| clause.date_min), DATE_BITS)?,
            date_max: bounded_witness(cs, clause.map(|clause| clause.date_max), DATE_BITS)?,
            first_min: bounded_witness(cs, clause.map(|clause| clause.first_min), DATE_BITS)?,
            first_max: bounded_witness(cs, clause.map(|clause| clause.first_max), DATE_BITS)?,
            value_min: bounded_witness(cs, clause.map(|clause| clause.value_min), VALUE_BITS)?,
            value_max: bounded_witness(cs, clause.map(|clause| clause.value_max), VALUE_BITS)?,
        })
    }

    /// The packed words, as in [`ClauseEncoding::words`]: linear, no constraints.
    ///
    /// # Errors
    /// The constraint system's errors.
    pub fn words(&self) -> Result<[FpVar<Fr>; 2], SynthesisError> {
        let scaled = |value: &FpVar<Fr>, shift: u32| value * Fr::from(2u64).pow([u64::from(shift)]);
        let bit = |value: &Boolean<Fr>, shift: u32| scaled(&FpVar::from(value.clone()), shift);
        let slot = Boolean::le_bits_to_fp(&self.slot_bits)?;
        let a = slot
            + bit(&self.starts_group, super::STARTS_GROUP_SHIFT)
            + bit(&self.negated, super::NEGATED_SHIFT)
            + bit(&self.value_is_min, super::VALUE_IS_MIN_SHIFT)
            + bit(&self.value_is_max, super::VALUE_IS_MAX_SHIFT)
            + scaled(&self.min_count, super::MIN_COUNT_SHIFT)
            + scaled(&self.date_min, super::DATE_MIN_SHIFT)
            + scaled(&self.date_max, super::DATE_MAX_SHIFT);
        let b = &self.value_min
            + scaled(&self.value_max, super::VALUE_MAX_SHIFT)
            + scaled(&self.first_min, super::FIRST_MIN_SHIFT)
            + scaled(&self.first_max, super::FIRST_MAX_SHIFT);
        Ok([a, b])
    }

    /// Whether the opened slot satisfies the clause, after negation, as
    /// [`zkcohort_cohort::query::CompiledClause::test`], and the clause's view of the
    /// slot for measures. Enforces that the clause is decidable (the committed entries
    /// answer it) and that the recent entries' days rise strictly, so the entries in
    /// the window are consecutive and the last of them is the latest. Every compared
    /// slot value is range-checked first, so field-overflow values cannot pass.
    ///
    /// # Errors
    /// The constraint system's errors.
    pub fn holds(&self, slot: &[FpVar<Fr>; SLOT_FIELDS]) -> Result<ClauseOutcome, SynthesisError> {
        let count = &slot[0];
        let first_date = &slot[1];
        let (min_value, max_value) = (&slot[2], &slot[3]);
        let days = &slot[RECENT_DAYS..RECENT_VALUES];
        let values = &slot[RECENT_VALUES..];
        to_bits_bounded(count, COUNT_BITS)?;
        to_bits_bounded(first_date, DATE_BITS)?;
        for day in days {
            to_bits_bounded(day, DATE_BITS)?;
        }
        let before = |a: &FpVar<Fr>, b: &FpVar<Fr>| is_less_or_equal(&(a + Fr::ONE), b, DATE_BITS);
        for pair in days.windows(2) {
            before(&pair[0], &pair[1])?.enforce_equal(&Boolean::TRUE)?;
        }
        let within = |day: &FpVar<Fr>, low: &FpVar<Fr>, high: &FpVar<Fr>| {
            Ok::<_, SynthesisError>(
                is_less_or_equal(low, day, DATE_BITS)? & is_less_or_equal(day, high, DATE_BITS)?,
            )
        };
        let in_window = days
            .iter()
            .map(|day| within(day, &self.date_min, &self.date_max))
            .collect::<Result<Vec<_>, _>>()?;
        let oldest_kept = &days[0];
        let truncated = before(first_date, oldest_kept)?;
        let first_counts = &truncated & &within(first_date, &self.date_min, &self.date_max)?;
        // Uncommitted entries lie strictly between the first entry and the oldest kept
        // one: on a truncated record with more than one entry beyond those kept.
        let one_beyond = count.is_eq(&FpVar::constant(Fr::from(RECENT_ENTRIES as u64 + 1)))?;
        let gap = &truncated & &!one_beyond;
        let reaches_gap =
            before(&self.date_min, oldest_kept)? & before(first_date, &self.date_max)?;
        let covers_gap = is_less_or_equal(&self.date_min, first_date, DATE_BITS)?
            & is_less_or_equal(oldest_kept, &self.date_max, DATE_BITS)?;
        let undated_inside = &gap & &covers_gap;
        let count_exact = !(&gap & &reaches_gap) | &covers_gap;
        let mut window_count = FpVar::from(first_counts.clone())
            + FpVar::from(undated_inside)
                * (count - FpVar::constant(Fr::from(RECENT_ENTRIES as u64 + 1)));
        for inside in &in_window {
            window_count += FpVar::from(inside.clone());
        }
        // The window's entries are consecutive, so the latest is the one whose
        // successor is outside.
        let mut latest_day = FpVar::zero();
        let mut latest_value = FpVar::zero();
        for position in 0..RECENT_ENTRIES {
            let is_latest = match in_window.get(position + 1) {
                Some(next) => &in_window[position] & &!next,
                None => in_window[position].clone(),
            };
            let is_latest = FpVar::from(is_latest);
            latest_day += &is_latest * &days[position];
            latest_value += &is_latest * &values[position];
        }
        let latest_present = Boolean::kary_or(&in_window)?;

        let encoded = |value: i64| Fr::from(encode_value(value).expect("the bounds encode"));
        let value_unbounded = self.value_min.is_eq(&FpVar::constant(encoded(VALUE_MIN)))?
            & self.value_max.is_eq(&FpVar::constant(encoded(VALUE_MAX)))?;
        let aggregate = &self.value_is_min | &self.value_is_max;
        let value = &latest_value
            + FpVar::from(self.value_is_min.clone()) * (min_value - &latest_value)
            + FpVar::from(self.value_is_max.clone()) * (max_value - &latest_value);
        to_bits_bounded(&value, VALUE_BITS)?;
        let in_range = is_less_or_equal(&self.value_min, &value, VALUE_BITS)?
            & is_less_or_equal(&value, &self.value_max, VALUE_BITS)?;
        let value_holds = (&aggregate | &latest_present).select(&in_range, &value_unbounded)?;

        let count_holds = is_less_or_equal(&self.min_count, &window_count, COUNT_BITS)?;
        let first_holds = within(first_date, &self.first_min, &self.first_max)?;
        let latest_exact = &latest_present | &(&count_exact & &!&first_counts);
        let value_known = Boolean::kary_or(&[aggregate, latest_exact.clone(), value_unbounded])?;
        let decidable = &value_known & &(&count_exact | &count_holds);
        decidable.enforce_equal(&Boolean::TRUE)?;

        let test = Boolean::kary_and(&[count_holds, value_holds, first_holds])?;
        Ok(ClauseOutcome {
            holds: test ^ &self.negated,
            view: ClauseView {
                fields: [
                    window_count,
                    first_date.clone(),
                    latest_day,
                    latest_value,
                    min_value.clone(),
                    max_value.clone(),
                ],
                latest_present,
                count_exact,
                latest_exact,
            },
        })
    }
}

/// What [`ClauseVar::holds`] finds: whether the clause holds, and its view of the slot.
pub struct ClauseOutcome {
    /// Whether the clause holds, after negation.
    pub holds: Boolean<Fr>,
    /// What measures read.
    pub view: ClauseView,
}

/// A clause's view of its slot, as [`zkcohort_cohort::query::SlotView`]: what the
/// measures that read the clause see ([`crate::encoding::EncodedView`] natively).
pub struct ClauseView {
    /// The fields, in [`zkcohort_cohort::query::MeasureField`] order.
    pub fields: [FpVar<Fr>; VIEW_FIELDS],
    /// Whether a recent entry is in the window.
    pub latest_present: Boolean<Fr>,
    /// Whether the window's count is exact (it reaches no undated day).
    pub count_exact: Boolean<Fr>,
    /// Whether the latest entry read is the window's, or the window holds none.
    pub latest_exact: Boolean<Fr>,
}

/// `query_hash` in the circuit, as [`super::query_hash_of`]: `dimensions` is
/// [`super::query_hash_dimensions`], `elements` the catalog tag, the index date, the
/// clause words and the measures' elements, in that order.
///
/// # Errors
/// The constraint system's errors.
pub fn query_hash_gadget(
    dimensions: Fr,
    elements: &[FpVar<Fr>],
) -> Result<FpVar<Fr>, SynthesisError> {
    let mut accumulator = FpVar::constant(dimensions);
    for chunk in elements.chunks(QUERY_HASH_CHUNK) {
        let mut inputs = Vec::with_capacity(chunk.len() + 1);
        inputs.push(accumulator);
        inputs.extend_from_slice(chunk);
        accumulator = poseidon_hash_gadget(&inputs)?;
    }
    Ok(accumulator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::encode_slot;
    use ark_relations::gr1cs::ConstraintSystem;
    use zkcohort_cohort::query::CompiledClause;
    use zkcohort_cohort::{Day, Slot};

    fn sample() -> ClauseEncoding {
        ClauseEncoding {
            slot: 37,
            starts_group: true,
            negated: false,
            value_is_min: false,
            value_is_max: true,
            min_count: 2,
            date_min: 40_000,
            date_max: 60_000,
            value_min: 1 << 40,
            value_max: (1 << 40) + 100,
            first_min: 7_201,
            first_max: 50_000,
        }
    }

    #[test]
    fn words_match_the_native_packing() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let clause = ClauseVar::new_witness(&cs, Some(&sample()), 8).unwrap();
        let words: Vec<Fr> = clause
            .words()
            .unwrap()
            .iter()
            .map(|word| word.value().unwrap())
            .collect();
        assert_eq!(words, sample().words());
        assert!(cs.is_satisfied().unwrap());
    }

    /// A selector bit set to 2 in the witness (as a cheating prover could) breaks its
    /// booleanity constraint.
    #[test]
    fn non_boolean_selector_is_unsatisfiable() {
        for pick in [0, 1, 2, 3] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let clause = ClauseVar::new_witness(&cs, Some(&sample()), 8).unwrap();
            // Inline the linear combinations and drop their cached values, so the check
            // re-evaluates every constraint from the tampered witness.
            cs.finalize();
            assert!(cs.is_satisfied().unwrap());
            let selector = [
                &clause.negated,
                &clause.value_is_max,
                &clause.value_is_min,
                &clause.slot_bits[0],
            ][pick];
            let Boolean::Var(allocated) = selector else {
                panic!("selectors are witnesses")
            };
            let index = allocated
                .variable()
                .get_variable_index(0)
                .expect("a witness variable");
            let mut system = cs.borrow_mut().unwrap();
            system.assignments.witness_assignment[index] = Fr::from(2u64);
            system.assignments.lc_assignment.clear();
            drop(system);
            assert!(!cs.is_satisfied().unwrap(), "selector {pick}");
        }
    }

    /// Runs a compiled clause over slot fields (tampered as a cheating prover could),
    /// returning whether the constraints hold and the clause's verdict.
    fn run(clause: &CompiledClause, fields: &[Fr; SLOT_FIELDS]) -> (bool, bool) {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let encoding = ClauseEncoding::new(clause, 8).unwrap();
        let clause = ClauseVar::new_witness(&cs, Some(&encoding), 8).unwrap();
        let slot: [FpVar<Fr>; SLOT_FIELDS] = std::array::from_fn(|field| {
            FpVar::new_witness(cs.clone(), || Ok(fields[field])).unwrap()
        });
        let outcome = clause.holds(&slot).unwrap();
        (cs.is_satisfied().unwrap(), outcome.holds.value().unwrap())
    }

    fn slot_of(days: &[i32], values: &[i64]) -> Slot {
        let mut slot = Slot::default();
        for (day, value) in days.iter().zip(values) {
            slot.record(Day(*day), *value);
        }
        slot
    }

    fn latest_at_least(value: i64, until: i32) -> CompiledClause {
        CompiledClause {
            min_count: 1,
            value_min: value,
            date_max: Day(until),
            ..CompiledClause::padding()
        }
    }

    #[test]
    fn the_latest_value_is_the_last_entry_on_or_before_the_window_s_end() {
        let slot = slot_of(&[100, 200, 300], &[9, 5, 9]);
        let fields = encode_slot(&slot).unwrap();
        assert_eq!(run(&latest_at_least(9, 250), &fields), (true, false));
        assert_eq!(run(&latest_at_least(9, 300), &fields), (true, true));
        assert_eq!(run(&latest_at_least(9, 150), &fields), (true, true));
        // A value from after the window does not count, whatever the prover claims: the
        // latest is computed from the committed entries.
        assert_eq!(
            run(&latest_at_least(9, 250), &fields).1,
            latest_at_least(9, 250).test(&slot).unwrap()
        );
    }

    #[test]
    fn entries_out_of_date_order_or_on_one_day_are_unsatisfiable() {
        let slot = slot_of(&[100, 200, 300, 400], &[1, 2, 3, 4]);
        let honest = encode_slot(&slot).unwrap();
        let clause = CompiledClause {
            min_count: 2,
            ..CompiledClause::padding()
        };
        assert!(run(&clause, &honest).0);
        let mut swapped = honest;
        swapped.swap(RECENT_DAYS + 1, RECENT_DAYS + 2);
        swapped.swap(RECENT_VALUES + 1, RECENT_VALUES + 2);
        assert!(!run(&clause, &swapped).0, "out of order");
        let mut repeated = honest;
        repeated[RECENT_DAYS + 2] = repeated[RECENT_DAYS + 1];
        assert!(!run(&clause, &repeated).0, "one day twice");
        let mut padding_last = honest;
        padding_last[RECENT_DAYS + 3] = Fr::from(4u64);
        assert!(
            !run(&clause, &padding_last).0,
            "a missing entry after a present one"
        );
    }

    #[test]
    fn a_count_is_exact_or_the_clause_is_unsatisfiable() {
        // The first entry, two undated ones, the four latest (days 500..=800).
        let slot = slot_of(&[100, 200, 300, 500, 600, 700, 800], &[1, 1, 1, 1, 1, 1, 1]);
        let fields = encode_slot(&slot).unwrap();
        let window = |from: i32, to: i32, min_count: u32| CompiledClause {
            min_count,
            date_min: Day(from),
            date_max: Day(to),
            ..CompiledClause::padding()
        };
        assert_eq!(run(&window(0, 900, 7), &fields), (true, true), "covers all");
        assert_eq!(run(&window(0, 900, 8), &fields), (true, false));
        assert_eq!(
            run(&window(550, 900, 3), &fields),
            (true, true),
            "recent only"
        );
        assert_eq!(run(&window(550, 900, 4), &fields), (true, false));
        assert_eq!(
            run(&window(150, 650, 2), &fields),
            (true, true),
            "the committed entries already meet the count"
        );
        assert!(
            !run(&window(150, 450, 1), &fields).0,
            "only undated days: no verdict either way"
        );
        assert!(window(150, 450, 1).test(&slot).is_none());
        // Claiming fewer entries than the record has is a change to the committed
        // count: here it would make the window look exact.
        let mut fewer = fields;
        fewer[0] = Fr::from(5u64);
        assert_eq!(run(&window(150, 450, 1), &fewer), (true, false));
        assert_ne!(
            crate::slots::slot_leaf(&slot).unwrap(),
            poseidon_leaf(&fewer)
        );
    }

    fn poseidon_leaf(fields: &[Fr; SLOT_FIELDS]) -> Fr {
        crate::poseidon::poseidon_hash_fixed(fields)
    }

    #[test]
    fn min_and_max_selectors_are_exclusive() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let both = ClauseEncoding {
            value_is_min: true,
            ..sample()
        };
        ClauseVar::new_witness(&cs, Some(&both), 8).unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }

    #[test]
    fn constants_wider_than_their_fields_are_unsatisfiable() {
        for wide in [
            ClauseEncoding {
                min_count: 1 << 32,
                ..sample()
            },
            ClauseEncoding {
                date_min: 1 << 17,
                ..sample()
            },
            ClauseEncoding {
                first_max: 1 << 17,
                ..sample()
            },
            ClauseEncoding {
                value_max: 1 << 41,
                ..sample()
            },
            ClauseEncoding {
                slot: 1 << 8,
                ..sample()
            },
        ] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let clause = ClauseVar::new_witness(&cs, Some(&wide), 8).unwrap();
            let packed: Vec<Fr> = clause
                .words()
                .unwrap()
                .iter()
                .map(|word| word.value().unwrap())
                .collect();
            assert!(
                !cs.is_satisfied().unwrap() || packed != wide.words(),
                "{wide:?}"
            );
        }
    }
}
