//! The public statement of one eligibility proof, shared by prover and verifier:
//! `registry_root, query_hash, study_scope, nullifier, signal_hash, issuers_root,
//! measure_commitment`, in that order.
//!
//! The order is fixed for good: what later proofs add is appended after
//! `measure_commitment`, so existing positions keep their meaning in every tool that
//! reads `public.json`.
//!
//! Every public value must be a canonical field element (`0 <= x < r`). Accepting
//! `x + r` as well as `x` would let one proof carry two different-looking
//! nullifiers (the double-spend bug Semaphore once had), so every decoder here
//! refuses non-canonical input.

use ark_ff::{BigInteger, BigInteger256, PrimeField};

use crate::identity::{Nullifier, StudyScope};
use crate::{CircuitError, Fr};

/// The number of public inputs.
pub const PUBLIC_INPUTS: usize = 7;

/// The names of the public inputs, in order.
pub const PUBLIC_INPUT_NAMES: [&str; PUBLIC_INPUTS] = [
    "registry_root",
    "query_hash",
    "study_scope",
    "nullifier",
    "signal_hash",
    "issuers_root",
    "measure_commitment",
];

/// The public inputs of an eligibility proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Statement {
    /// A registry root the patient's leaf is under.
    pub registry_root: Fr,
    /// The hash of the study's compiled query.
    pub query_hash: Fr,
    /// The study's scope.
    pub study_scope: StudyScope,
    /// The patient's nullifier for this study.
    pub nullifier: Nullifier,
    /// The hash binding the reward note's receiver and the study.
    pub signal_hash: Fr,
    /// The root of the study's accepted issuers ([`crate::issuers::IssuerSet`]).
    pub issuers_root: Fr,
    /// The hiding commitment to the record's measure values
    /// ([`crate::measure::MeasureOpening::commitment`]).
    pub measure_commitment: Fr,
}

/// What an enrollment's statement is rebuilt from: the study's public values and the
/// ones its enrollment request carries.
#[derive(Clone, Copy, Debug)]
pub struct EnrollmentInputs<'a> {
    /// The marketplace's audit key (part of the study scope).
    pub marketplace_key: &'a [u8; 32],
    /// The study's id.
    pub study_id: u64,
    /// The study's query hash.
    pub query_hash: Fr,
    /// The study's issuers root.
    pub issuers_root: Fr,
    /// The registry root the proof is against.
    pub registry_root: Fr,
    /// The nullifier.
    pub nullifier: Fr,
    /// The reward note's one-time receiver.
    pub reward_receiver: Fr,
    /// The measure commitment (the hash of the enrollment's measure opening).
    pub measure_commitment: Fr,
}

impl Statement {
    /// The statement of an enrollment, as the marketplace and every sponsor
    /// recompute it from public data: the study's scope from the marketplace
    /// key and study id, and the signal binding the reward note's receiver to it.
    pub fn for_enrollment(inputs: EnrollmentInputs<'_>) -> Self {
        let study_scope = StudyScope::for_study(inputs.marketplace_key, inputs.study_id);
        Statement {
            registry_root: inputs.registry_root,
            query_hash: inputs.query_hash,
            study_scope,
            nullifier: Nullifier(inputs.nullifier),
            signal_hash: crate::identity::signal_hash(inputs.reward_receiver, study_scope),
            issuers_root: inputs.issuers_root,
            measure_commitment: inputs.measure_commitment,
        }
    }

    /// The public inputs in circuit order.
    pub fn to_public_inputs(&self) -> [Fr; PUBLIC_INPUTS] {
        [
            self.registry_root,
            self.query_hash,
            self.study_scope.0,
            self.nullifier.0,
            self.signal_hash,
            self.issuers_root,
            self.measure_commitment,
        ]
    }

    /// The statement from public inputs in circuit order.
    ///
    /// # Errors
    /// [`CircuitError::PublicInputs`] when there are not exactly [`PUBLIC_INPUTS`].
    pub fn from_public_inputs(inputs: &[Fr]) -> Result<Self, CircuitError> {
        let [registry_root, query_hash, study_scope, nullifier, signal_hash, issuers_root, measure_commitment]: [Fr;
            PUBLIC_INPUTS] = inputs.try_into().map_err(|_| {
            CircuitError::PublicInputs(format!(
                "expected {PUBLIC_INPUTS} public inputs, got {}",
                inputs.len()
            ))
        })?;
        Ok(Statement {
            registry_root,
            query_hash,
            study_scope: StudyScope(study_scope),
            nullifier: Nullifier(nullifier),
            signal_hash,
            issuers_root,
            measure_commitment,
        })
    }

    /// The public inputs as decimal strings (snarkjs `public.json`).
    pub fn to_decimal_strings(&self) -> Vec<String> {
        self.to_public_inputs().iter().map(fr_to_decimal).collect()
    }

    /// Reads public inputs from decimal strings.
    ///
    /// # Errors
    /// [`CircuitError::PublicInputs`] for a wrong count, [`CircuitError::NonCanonical`] for a value
    /// that is not a canonical field element in plain decimal.
    pub fn from_decimal_strings<S: AsRef<str>>(inputs: &[S]) -> Result<Self, CircuitError> {
        let values = inputs
            .iter()
            .map(|input| fr_from_decimal(input.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_public_inputs(&values)
    }
}

/// A field element in decimal.
pub fn fr_to_decimal(value: &Fr) -> String {
    value.into_bigint().to_string()
}

/// A canonical field element from plain decimal digits (no sign, no leading zeros
/// except `0` itself, below the modulus).
///
/// # Errors
/// [`CircuitError::NonCanonical`] naming the problem.
pub fn fr_from_decimal(text: &str) -> Result<Fr, CircuitError> {
    field_from_decimal(text).map_err(|why| CircuitError::NonCanonical(format!("{text:?}: {why}")))
}

/// A canonical element of any 256-bit prime field (BN254's scalar or base field)
/// from plain decimal digits.
///
/// # Errors
/// Why the text is refused: not decimal digits, leading zeros, wider than 256 bits,
/// or not below the field's modulus.
pub fn field_from_decimal<F: PrimeField<BigInt = BigInteger256>>(
    text: &str,
) -> Result<F, &'static str> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err("not a decimal number");
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err("leading zeros");
    }
    let mut limbs = [0u64; 4];
    for digit in text.bytes().map(|byte| u64::from(byte - b'0')) {
        let mut carry = u128::from(digit);
        for limb in &mut limbs {
            let product = u128::from(*limb) * 10 + carry;
            *limb = product as u64;
            carry = product >> 64;
        }
        if carry != 0 {
            return Err("larger than 256 bits");
        }
    }
    F::from_bigint(BigInteger256::new(limbs)).ok_or("not below the field modulus")
}

/// A field element as 32 big-endian bytes.
pub fn fr_to_bytes(value: &Fr) -> [u8; 32] {
    value
        .into_bigint()
        .to_bytes_be()
        .try_into()
        .expect("256-bit integers are 32 bytes")
}

/// A canonical field element from 32 big-endian bytes.
///
/// # Errors
/// [`CircuitError::NonCanonical`] when the integer is not below the field modulus.
pub fn fr_from_bytes(bytes: &[u8; 32]) -> Result<Fr, CircuitError> {
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.rchunks(8)) {
        *limb = u64::from_be_bytes(chunk.try_into().expect("8 bytes"));
    }
    Fr::from_bigint(BigInteger256::new(limbs)).ok_or_else(|| {
        CircuitError::NonCanonical("32-byte value is not below the field modulus".into())
    })
}

/// A field element as the API writes it: 64 hex digits of its 32 big-endian bytes.
pub fn fr_to_hex(value: &Fr) -> String {
    hex::encode(fr_to_bytes(value))
}

/// A canonical field element from 64 hex digits (32 big-endian bytes).
///
/// # Errors
/// [`CircuitError::NonCanonical`] for text that is not 64 hex digits or an integer not
/// below the field modulus.
pub fn fr_from_hex(text: &str) -> Result<Fr, CircuitError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes)
        .map_err(|_| CircuitError::NonCanonical(format!("{text:?} is not 64 hex digits")))?;
    fr_from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MODULUS: &str =
        "21888242871839275222246405745257275088548364400416034343698204186575808495617";

    #[test]
    fn hex_rejects_everything_but_64_digits_below_the_modulus() {
        let below = "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000000";
        assert_eq!(fr_from_hex(below).unwrap(), -Fr::from(1u64));
        assert_eq!(fr_to_hex(&-Fr::from(1u64)), below);
        for bad in [
            "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001",
            "ff".repeat(32).as_str(),
            &below[1..],
            &format!("0x{}", &below[2..]),
            &format!("{below}00"),
            "",
            &"g".repeat(64),
        ] {
            assert!(
                matches!(fr_from_hex(bad), Err(CircuitError::NonCanonical(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn decimal_rejects_everything_but_canonical_digits() {
        assert_eq!(fr_from_decimal("0").unwrap(), Fr::from(0u64));
        let below = "21888242871839275222246405745257275088548364400416034343698204186575808495616";
        assert_eq!(fr_from_decimal(below).unwrap(), -Fr::from(1u64));
        for bad in [
            MODULUS,
            "21888242871839275222246405745257275088548364400416034343698204186575808495618",
            "",
            "-1",
            "+1",
            "1e3",
            "0x10",
            "01",
            " 1",
            &"9".repeat(80),
        ] {
            assert!(
                matches!(fr_from_decimal(bad), Err(CircuitError::NonCanonical(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bytes_reject_the_modulus_and_above() {
        let modulus_bytes = fr_to_bytes(&-Fr::from(1u64));
        let mut at_modulus = modulus_bytes;
        at_modulus[31] += 1;
        assert!(fr_from_bytes(&at_modulus).is_err());
        assert!(fr_from_bytes(&[0xff; 32]).is_err());
        assert_eq!(fr_from_bytes(&modulus_bytes).unwrap(), -Fr::from(1u64));
    }

    #[test]
    fn statement_needs_exactly_seven_inputs() {
        let inputs = ["1", "2", "3", "4", "5", "6", "7"];
        let statement = Statement::from_decimal_strings(&inputs).unwrap();
        assert_eq!(statement.nullifier, Nullifier(Fr::from(4u64)));
        assert_eq!(statement.issuers_root, Fr::from(6u64));
        assert_eq!(statement.measure_commitment, Fr::from(7u64));
        assert_eq!(statement.to_decimal_strings(), inputs);
        for count in [5, 6] {
            assert!(matches!(
                Statement::from_decimal_strings(&inputs[..count]),
                Err(CircuitError::PublicInputs(_))
            ));
        }
        assert!(matches!(
            Statement::from_decimal_strings(&["1", "2", "3", "4", "5", "6", MODULUS]),
            Err(CircuitError::NonCanonical(_))
        ));
    }

    proptest! {
        #[test]
        fn encodings_round_trip(limbs in proptest::array::uniform4(any::<u64>())) {
            let value = Fr::from_bigint(BigInteger256::new(limbs)).unwrap_or(Fr::from(limbs[0]));
            prop_assert_eq!(fr_from_decimal(&fr_to_decimal(&value)).unwrap(), value);
            prop_assert_eq!(fr_from_hex(&fr_to_hex(&value)).unwrap(), value);
            prop_assert_eq!(fr_from_bytes(&fr_to_bytes(&value)).unwrap(), value);
        }
    }
}
