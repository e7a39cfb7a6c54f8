//! Measures in the circuit: allocate a measure (pinned by `query_hash`), compute its
//! value from the clauses' opened slots, and commit to the values.

use ark_ff::Field;
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::prelude::*;
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

use super::{MeasureEncoding, MEASURE_TAG, TOP};
use crate::bits::{is_less_or_equal, to_bits_bounded};
use crate::clause::gadget::ClauseView;
use crate::encoding::{VALUE_BITS, VIEW_FIELDS};
use crate::poseidon::gadget::poseidon_hash_gadget;
use crate::Fr;
use zkcohort_cohort::query::MeasureField;

/// Bits of a measure comparison: operands reach [`TOP`] = `2^41`.
const COMPARE_BITS: usize = VALUE_BITS + 1;

/// One measure slot's variables.
pub struct MeasureVar {
    clause: Vec<Boolean<Fr>>,
    field: Vec<Boolean<Fr>>,
    is_sum: Boolean<Fr>,
    active: Boolean<Fr>,
    uppers: Vec<FpVar<Fr>>,
    /// The selected position: 0 for an empty slot, else the bin.
    selected: Vec<Boolean<Fr>>,
}

fn flag(cs: &ConstraintSystemRef<Fr>, value: Option<bool>) -> Result<Boolean<Fr>, SynthesisError> {
    Boolean::new_witness(cs.clone(), || {
        value.ok_or(SynthesisError::AssignmentMissing)
    })
}

fn one_hot(
    cs: &ConstraintSystemRef<Fr>,
    length: usize,
    hot: Option<usize>,
) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    let bits = (0..length)
        .map(|position| flag(cs, hot.map(|hot| hot == position)))
        .collect::<Result<Vec<_>, _>>()?;
    let total = bits
        .iter()
        .fold(FpVar::zero(), |sum, bit| sum + FpVar::from(bit.clone()));
    total.enforce_equal(&FpVar::one())?;
    Ok(bits)
}

fn select(selectors: &[Boolean<Fr>], values: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    let mut sum = FpVar::zero();
    for (selector, value) in selectors.iter().zip(values) {
        sum += FpVar::from(selector.clone()) * value;
    }
    Ok(sum)
}

impl MeasureVar {
    /// Allocates a measure slot and the position its witness selects (`None` in setup
    /// mode), for a shape of `clauses` clauses and `bins` bins.
    ///
    /// # Errors
    /// The constraint system's errors.
    pub fn new_witness(
        cs: &ConstraintSystemRef<Fr>,
        measure: Option<(&MeasureEncoding, usize)>,
        clauses: usize,
        bins: usize,
    ) -> Result<Self, SynthesisError> {
        let encoding = measure.map(|(encoding, _)| encoding);
        let uppers = (0..bins)
            .map(|bin| {
                FpVar::new_witness(cs.clone(), || {
                    encoding
                        .map(|encoding| Fr::from(encoding.uppers[bin]))
                        .ok_or(SynthesisError::AssignmentMissing)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MeasureVar {
            clause: one_hot(cs, clauses, encoding.map(|encoding| encoding.clause))?,
            field: one_hot(cs, VIEW_FIELDS, encoding.map(|encoding| encoding.field))?,
            is_sum: flag(cs, encoding.map(|encoding| encoding.is_sum))?,
            active: flag(cs, encoding.map(|encoding| encoding.active))?,
            uppers,
            selected: one_hot(cs, bins + 1, measure.map(|(_, selected)| selected))?,
        })
    }

    /// The header and the uppers, as [`MeasureEncoding::elements`]: the header is a
    /// sum of selector bits, so it determines them (each is boolean, each one-hot
    /// sums to 1).
    ///
    /// # Errors
    /// The constraint system's errors.
    pub fn elements(&self) -> Result<Vec<FpVar<Fr>>, SynthesisError> {
        let clauses = self.clause.len();
        let power = |position: usize| Fr::from(2u64).pow([position as u64]);
        let mut header = FpVar::zero();
        for (position, bit) in self.clause.iter().enumerate() {
            header += FpVar::from(bit.clone()) * power(position);
        }
        for (position, bit) in self.field.iter().enumerate() {
            header += FpVar::from(bit.clone()) * power(clauses + position);
        }
        header += FpVar::from(self.is_sum.clone()) * power(clauses + 6);
        header += FpVar::from(self.active.clone()) * power(clauses + 7);
        let mut elements = vec![header];
        elements.extend(self.uppers.iter().cloned());
        Ok(elements)
    }

    /// The measure's value for the clauses' views of their slots, as
    /// [`zkcohort_cohort::query::CompiledMeasure::value`]: the selected position is 0
    /// exactly when the read field is missing, else a bin whose bounds hold it
    /// (range-checked first, so no field-overflow value sits in a bin). Enforces that
    /// an active measure reads an exact view
    /// ([`zkcohort_cohort::query::CompiledMeasure::readable`]).
    ///
    /// # Errors
    /// The constraint system's errors.
    pub fn value(&self, views: &[ClauseView]) -> Result<FpVar<Fr>, SynthesisError> {
        let column = |read: &dyn Fn(&ClauseView) -> FpVar<Fr>| {
            let column: Vec<FpVar<Fr>> = views.iter().map(read).collect();
            select(&self.clause, &column)
        };
        let fields = (0..VIEW_FIELDS)
            .map(|field| column(&|view: &ClauseView| view.fields[field].clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let latest_present = column(&|view: &ClauseView| view.latest_present.clone().into())?;
        let count_exact = column(&|view: &ClauseView| view.count_exact.clone().into())?;
        let latest_exact = column(&|view: &ClauseView| view.latest_exact.clone().into())?;
        let x = select(&self.field, &fields)?;
        to_bits_bounded(&x, VALUE_BITS)?;
        let reads_latest = FpVar::from(self.field[MeasureField::LastDate.position()].clone())
            + FpVar::from(self.field[MeasureField::LastValue.position()].clone());
        let active = FpVar::from(self.active.clone());
        // The latest date and value need the latest entry known, the other fields an
        // exact count (their emptiness is the count's).
        let exact = &count_exact + &reads_latest * (&latest_exact - &count_exact);
        (&active * (FpVar::one() - exact)).enforce_equal(&FpVar::zero())?;
        // Missing: nothing in the window, or the latest asked for and none recent there.
        let empty = FpVar::from(fields[0].is_zero()?);
        let no_latest = FpVar::one() - &latest_present;
        let missing = &empty + &reads_latest * (&no_latest - &empty * &no_latest);
        missing.enforce_equal(&FpVar::from(self.selected[0].clone()))?;

        let top = Fr::from(TOP);
        let mut lower = FpVar::zero();
        let mut upper = FpVar::from(self.selected[0].clone()) * top;
        for bin in 1..self.selected.len() {
            let chosen = FpVar::from(self.selected[bin].clone());
            if bin > 1 {
                lower += &chosen * &self.uppers[bin - 2];
            }
            upper += &chosen * &self.uppers[bin - 1];
        }
        is_less_or_equal(&lower, &x, COMPARE_BITS)?.enforce_equal(&Boolean::TRUE)?;
        is_less_or_equal(&(&x + Fr::ONE), &upper, COMPARE_BITS)?.enforce_equal(&Boolean::TRUE)?;

        let mut bin_value = FpVar::zero();
        for (bin, chosen) in self.selected.iter().enumerate().skip(1) {
            bin_value += FpVar::from(chosen.clone()) * Fr::from(bin as u64);
        }
        // A sum's bins are [.., low), [low, high], (high, ..): 1, 1 + x - low, 1 + high - low.
        let at = |bin: usize| {
            self.selected
                .get(bin)
                .map_or(FpVar::zero(), |chosen| FpVar::from(chosen.clone()))
        };
        let low = &self.uppers[0];
        let above_low = self.uppers.get(1).map_or(FpVar::zero(), |high| high - low);
        let sum_value = at(1) + at(2) + at(2) * (&x - low) + at(3) * above_low;
        let value = self.is_sum.select(&sum_value, &bin_value)?;
        Ok(FpVar::from(self.active.clone()) * value)
    }
}

/// `Poseidon(tag, v_1..v_M, blinding)` in the circuit, as
/// [`super::MeasureOpening::commitment`].
///
/// # Errors
/// The constraint system's errors.
pub fn measure_commitment_gadget(
    values: &[FpVar<Fr>],
    blinding: &FpVar<Fr>,
) -> Result<FpVar<Fr>, SynthesisError> {
    let mut inputs = vec![FpVar::constant(Fr::from(MEASURE_TAG))];
    inputs.extend_from_slice(values);
    inputs.push(blinding.clone());
    poseidon_hash_gadget(&inputs)
}
