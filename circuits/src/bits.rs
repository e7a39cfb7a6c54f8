//! Range checks and comparisons by bit decomposition: the circuit's defence against
//! field-overflow tricks. A value is only compared after it has been shown to fit
//! its width, so `a <= b` on field elements means `a <= b` on integers.

use ark_ff::{BigInteger, Field, PrimeField};
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::prelude::*;
use ark_relations::gr1cs::SynthesisError;

use crate::Fr;

/// The widest decomposition allowed: far below the field's 254 bits, so a sum of
/// bits can never wrap around the modulus.
const MAX_BITS: usize = 128;

/// Decomposes `value` into `bits` little-endian boolean witnesses and enforces that
/// they sum to it: the system is unsatisfiable unless `0 <= value < 2^bits`.
/// Costs `bits + 1` constraints.
///
/// # Errors
/// [`SynthesisError::Unsatisfiable`] for a width above 128 bits; the constraint system's errors.
pub fn to_bits_bounded(value: &FpVar<Fr>, bits: usize) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    if bits == 0 || bits > MAX_BITS {
        return Err(SynthesisError::Unsatisfiable);
    }
    let cs = value.cs();
    // In setup mode there is no value; the closures are then never called.
    let value_bits = value
        .value()
        .ok()
        .map(|value| value.into_bigint().to_bits_le());
    let decomposition = (0..bits)
        .map(|index| {
            let bit = value_bits.as_ref().map(|value_bits| value_bits[index]);
            if value.is_constant() {
                Ok(Boolean::constant(bit.unwrap_or(false)))
            } else {
                Boolean::new_witness(cs.clone(), || bit.ok_or(SynthesisError::AssignmentMissing))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Boolean::le_bits_to_fp(&decomposition)?.enforce_equal(value)?;
    Ok(decomposition)
}

/// Whether `a <= b`, for `a` and `b` already known to lie in `[0, 2^bits)`:
/// `b - a + 2^bits` lies in `[1, 2^(bits+1))`, and its top bit is set exactly when
/// `b >= a`. Costs `bits + 2` constraints.
///
/// # Errors
/// The constraint system's errors.
pub fn is_less_or_equal(
    a: &FpVar<Fr>,
    b: &FpVar<Fr>,
    bits: usize,
) -> Result<Boolean<Fr>, SynthesisError> {
    let shift = Fr::from(2u64).pow([bits as u64]);
    let shifted = b - a + FpVar::constant(shift);
    let decomposition = to_bits_bounded(&shifted, bits + 1)?;
    Ok(decomposition[bits].clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relations::gr1cs::{ConstraintSystem, ConstraintSystemRef};

    fn witness(cs: &ConstraintSystemRef<Fr>, value: Fr) -> FpVar<Fr> {
        FpVar::new_witness(cs.clone(), || Ok(value)).unwrap()
    }

    #[test]
    fn decomposition_accepts_exactly_the_width() {
        for (value, bits, fits) in [
            (Fr::from(0u64), 8, true),
            (Fr::from(255u64), 8, true),
            (Fr::from(256u64), 8, false),
            (-Fr::from(1u64), 8, false),
            (-Fr::from(1u64), 128, false),
            (Fr::from(u64::MAX), 64, true),
        ] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let decomposition = to_bits_bounded(&witness(&cs, value), bits).unwrap();
            assert_eq!(decomposition.len(), bits);
            assert_eq!(cs.num_constraints(), bits + 1);
            assert_eq!(cs.is_satisfied().unwrap(), fits, "{value} in {bits} bits");
        }
    }

    #[test]
    fn comparison_is_exact_at_the_edges() {
        let bits = 17;
        let top = (1u64 << bits) - 1;
        for (a, b) in [
            (0, 0),
            (0, 1),
            (1, 0),
            (top, top),
            (top - 1, top),
            (top, top - 1),
            (5, 7000),
            (7000, 5),
        ] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let result =
                is_less_or_equal(&witness(&cs, Fr::from(a)), &witness(&cs, Fr::from(b)), bits)
                    .unwrap();
            assert_eq!(result.value().unwrap(), a <= b, "{a} <= {b}");
            assert_eq!(cs.num_constraints(), bits + 2);
            assert!(cs.is_satisfied().unwrap());
        }
    }

    /// Why every operand is range-checked first: on an unchecked operand `p - 1`
    /// (a "negative" value, as a field element larger than any width) the comparison
    /// answers as if it were -1, claiming `p - 1 <= 3`. The range check refuses it.
    #[test]
    fn field_overflow_operands_are_caught_by_the_range_check() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let wrapped = witness(&cs, -Fr::from(1u64));
        let claim = is_less_or_equal(&wrapped, &witness(&cs, Fr::from(3u64)), 17).unwrap();
        assert!(
            claim.value().unwrap() && cs.is_satisfied().unwrap(),
            "the hazard, unchecked"
        );
        to_bits_bounded(&wrapped, 17).unwrap();
        assert!(!cs.is_satisfied().unwrap(), "p - 1 does not fit 17 bits");
        let cs = ConstraintSystem::<Fr>::new_ref();
        let beyond = witness(&cs, Fr::from(1u64 << 20));
        to_bits_bounded(&beyond, 17).unwrap();
        assert!(!cs.is_satisfied().unwrap(), "2^20 does not fit 17 bits");
    }

    #[test]
    fn oversized_widths_are_refused() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        assert!(to_bits_bounded(&witness(&cs, Fr::from(1u64)), 200).is_err());
        assert!(to_bits_bounded(&witness(&cs, Fr::from(1u64)), 0).is_err());
    }
}
