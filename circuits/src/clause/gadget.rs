//! Clauses in the circuit: allocate a clause's fields (range-checked), pack its words,
//! test an opened slot against it, and hash the query.

use ark_ff::Field;
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::prelude::*;
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

use super::{ClauseEncoding, QUERY_HASH_CHUNK};
use crate::bits::{is_less_or_equal, to_bits_bounded};
use crate::encoding::{COUNT_BITS, DATE_BITS, SLOT_FIELDS, VALUE_BITS};
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
    /// Compare `first_date`.
    pub date_is_first: Boolean<Fr>,
    /// Minimum count (32 bits).
    pub min_count: FpVar<Fr>,
    /// Date bounds (17 bits each).
    pub date_min: FpVar<Fr>,
    /// Date bounds (17 bits each).
    pub date_max: FpVar<Fr>,
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
            date_is_first: flag(cs, clause.map(|clause| clause.date_is_first))?,
            min_count: bounded_witness(cs, clause.map(|clause| clause.min_count), COUNT_BITS)?,
            date_min: bounded_witness(cs, clause.map(|clause| clause.date_min), DATE_BITS)?,
            date_max: bounded_witness(cs, clause.map(|clause| clause.date_max), DATE_BITS)?,
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
            + bit(&self.date_is_first, super::DATE_IS_FIRST_SHIFT)
            + scaled(&self.min_count, super::MIN_COUNT_SHIFT)
            + scaled(&self.date_min, super::DATE_MIN_SHIFT)
            + scaled(&self.date_max, super::DATE_MAX_SHIFT);
        let b = &self.value_min + scaled(&self.value_max, super::VALUE_MAX_SHIFT);
        Ok([a, b])
    }

    /// Whether the opened slot satisfies the clause, after negation:
    /// `count >= min_count`, the selected value in `[value_min, value_max]`, the
    /// selected date in `[date_min, date_max]`. The compared slot values are
    /// range-checked first, so field-overflow values cannot pass.
    ///
    /// # Errors
    /// The constraint system's errors.
    pub fn holds(&self, slot: &[FpVar<Fr>; SLOT_FIELDS]) -> Result<Boolean<Fr>, SynthesisError> {
        let [count, first_date, last_date, last_value, min_value, max_value] = slot;
        let value = last_value
            + FpVar::from(self.value_is_min.clone()) * (min_value - last_value)
            + FpVar::from(self.value_is_max.clone()) * (max_value - last_value);
        let date = last_date + FpVar::from(self.date_is_first.clone()) * (first_date - last_date);
        to_bits_bounded(count, COUNT_BITS)?;
        to_bits_bounded(&value, VALUE_BITS)?;
        to_bits_bounded(&date, DATE_BITS)?;
        let tests = [
            is_less_or_equal(&self.min_count, count, COUNT_BITS)?,
            is_less_or_equal(&self.value_min, &value, VALUE_BITS)?,
            is_less_or_equal(&value, &self.value_max, VALUE_BITS)?,
            is_less_or_equal(&self.date_min, &date, DATE_BITS)?,
            is_less_or_equal(&date, &self.date_max, DATE_BITS)?,
        ];
        Ok(Boolean::kary_and(&tests)? ^ &self.negated)
    }
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
    use ark_relations::gr1cs::ConstraintSystem;

    fn sample() -> ClauseEncoding {
        ClauseEncoding {
            slot: 37,
            starts_group: true,
            negated: false,
            value_is_min: false,
            value_is_max: true,
            date_is_first: false,
            min_count: 2,
            date_min: 40_000,
            date_max: 60_000,
            value_min: 1 << 40,
            value_max: (1 << 40) + 100,
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
                &clause.date_is_first,
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
