//! Measures in the circuit: a study's compiled measures as field elements, the values
//! the proof computes from the opened slots, and the hiding commitment to them that is
//! the proof's seventh public input.
//!
//! A measure of a shape with `B` bins is a header word and `B` upper bounds
//! `u_1..u_B` (encoded as the slot field they bound). Bin `j` (1-based) holds
//! `u_{j-1} <= x < u_j` with `u_0 = 0`; a measure with `n` declared split points has
//! `u_{n+1} = TOP` (above every encoded field) and `u_j = 0` past it, so no later bin
//! can hold anything. Value 0 is the empty slot. The header packs one-hot selectors:
//!
//! ```text
//! header = 2^clause + 2^(C + field) + is_sum * 2^(C + 6) + active * 2^(C + 7)
//! ```
//!
//! for a shape of `C` clauses. `measure_commitment = Poseidon(tag, v_1..v_M, blinding)`
//! over every measure slot of the shape (inactive ones are 0), so a commitment reveals
//! nothing without the blinding, and the values are bound to the proven record.

#[cfg(feature = "r1cs")]
pub mod gadget;

use ark_ff::{Field, UniformRand};
use serde::{Deserialize, Serialize};
use zkcohort_cohort::query::{CompiledMeasure, CompiledQuery, MeasureField, MeasureKind};
use zkcohort_cohort::Day;

use crate::encoding::{encode_day, encode_value, EncodedView, VALUE_BITS};
use crate::poseidon::poseidon_hash;
use crate::{CircuitError, Fr};

/// Above every encoded slot field (all are below `2^41`): the open upper end of a
/// measure's last bin.
pub const TOP: u64 = 1 << VALUE_BITS;
/// The domain tag of the measure commitment ("zkmeasur" in ASCII).
const MEASURE_TAG: u64 = 0x7a6b_6d65_6173_7572;
/// The most measures a shape may have: the commitment hashes the tag, the values
/// and the blinding in one Poseidon call of at most 12 inputs.
pub const MAX_MEASURES: usize = 10;

/// One measure slot of a shape as the integers the circuit sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasureEncoding {
    /// Whether the slot holds a declared measure (an inactive one is always 0).
    pub active: bool,
    /// A clamped sum rather than bins.
    pub is_sum: bool,
    /// The clause whose opened slot it reads.
    pub clause: usize,
    /// The slot field it reads ([`MeasureField::position`]).
    pub field: usize,
    /// `u_1..u_B`, encoded.
    pub uppers: Vec<u64>,
}

fn encode_bound(field: MeasureField, bound: i64) -> Result<u64, CircuitError> {
    match field {
        MeasureField::Count => u64::try_from(bound)
            .ok()
            .filter(|count| *count < 1 << 32)
            .ok_or(CircuitError::OutOfRange {
                what: "count bound",
                value: bound.to_string(),
            }),
        MeasureField::FirstDate | MeasureField::LastDate => {
            let day = i32::try_from(bound).map_err(|_| CircuitError::OutOfRange {
                what: "day bound",
                value: bound.to_string(),
            })?;
            encode_day(Day(day))
        }
        MeasureField::LastValue | MeasureField::MinValue | MeasureField::MaxValue => {
            encode_value(bound)
        }
    }
}

impl MeasureEncoding {
    /// An inactive measure slot: one bin that holds every value, and value 0.
    pub fn padding(bins: usize) -> Self {
        let mut uppers = vec![0; bins];
        uppers[0] = TOP;
        MeasureEncoding {
            active: false,
            is_sum: false,
            clause: 0,
            field: 0,
            uppers,
        }
    }

    /// Encodes a compiled measure for a shape of `clauses` clauses and `bins` bins.
    ///
    /// # Errors
    /// [`CircuitError::Shape`] when the measure reads a clause past the shape or needs
    /// more bins; [`CircuitError::OutOfRange`] for bounds the circuit cannot represent.
    pub fn new(
        measure: &CompiledMeasure,
        clauses: usize,
        bins: usize,
    ) -> Result<Self, CircuitError> {
        if measure.clause >= clauses {
            return Err(CircuitError::Shape(format!(
                "measure {} reads clause {}; the circuit has {clauses}",
                measure.name, measure.clause
            )));
        }
        if measure.bins() > bins {
            return Err(CircuitError::Shape(format!(
                "measure {} has {} bins; the circuit takes at most {bins}",
                measure.name,
                measure.bins()
            )));
        }
        let mut uppers = measure
            .uppers
            .iter()
            .map(|bound| encode_bound(measure.field, *bound))
            .collect::<Result<Vec<_>, _>>()?;
        uppers.push(TOP);
        uppers.resize(bins, 0);
        Ok(MeasureEncoding {
            active: true,
            is_sum: measure.kind == MeasureKind::Sum,
            clause: measure.clause,
            field: measure.field.position(),
            uppers,
        })
    }

    /// The header word hashed into `query_hash`.
    pub fn header(&self, clauses: usize) -> Fr {
        let bit = |position: usize| Fr::from(2u64).pow([position as u64]);
        let mut header = bit(self.clause) + bit(clauses + self.field);
        if self.is_sum {
            header += bit(clauses + 6);
        }
        if self.active {
            header += bit(clauses + 7);
        }
        header
    }

    /// The header and the uppers, as `query_hash` absorbs them.
    pub fn elements(&self, clauses: usize) -> Vec<Fr> {
        let mut elements = vec![self.header(clauses)];
        elements.extend(self.uppers.iter().map(|upper| Fr::from(*upper)));
        elements
    }

    /// The value the circuit computes for its clause's encoded view, as
    /// [`CompiledMeasure::value`] on the raw view.
    pub fn value(&self, view: &EncodedView) -> u64 {
        let selected = self.selected(view) as u64;
        if !self.active || selected == 0 {
            return 0;
        }
        if !self.is_sum {
            return selected;
        }
        let (low, above) = (self.uppers[0], self.uppers[1]);
        match selected {
            1 => 1,
            2 => 1 + view.fields[self.field] - low,
            _ => above - low,
        }
    }

    /// Which one-hot position the circuit selects for its clause's encoded view: 0 when
    /// the read field is missing, else the bin.
    pub fn selected(&self, view: &EncodedView) -> usize {
        if missing(self.field, view) {
            return 0;
        }
        let x = view.fields[self.field];
        let lower = |bin: usize| if bin == 1 { 0 } else { self.uppers[bin - 2] };
        (1..=self.uppers.len())
            .find(|bin| lower(*bin) <= x && x < self.uppers[bin - 1])
            .unwrap_or(0)
    }
}

/// Whether a view has nothing for the field at `position`: no entry in the window, or
/// for the latest date and value no recent entry there.
fn missing(position: usize, view: &EncodedView) -> bool {
    let latest = [MeasureField::LastDate, MeasureField::LastValue]
        .iter()
        .any(|field| field.position() == position);
    view.fields[0] == 0 || (latest && !view.latest_present)
}

/// A query's measures padded to a shape's `measures` slots and encoded.
///
/// # Errors
/// [`CircuitError::Shape`] when the query declares more measures than the shape takes;
/// as [`MeasureEncoding::new`].
pub fn encode_measures(
    query: &CompiledQuery,
    clauses: usize,
    measures: usize,
    bins: usize,
) -> Result<Vec<MeasureEncoding>, CircuitError> {
    if query.measures.len() > measures {
        return Err(CircuitError::Shape(format!(
            "the query declares {} measures; the circuit takes at most {measures}",
            query.measures.len()
        )));
    }
    let mut encoded = query
        .measures
        .iter()
        .map(|measure| MeasureEncoding::new(measure, clauses, bins))
        .collect::<Result<Vec<_>, _>>()?;
    encoded.resize(measures, MeasureEncoding::padding(bins));
    Ok(encoded)
}

/// The values a proof commits to and the blinding that hides them: what a wallet
/// sends the marketplace beside the proof, and nobody else sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureOpening {
    /// One value per measure slot of the circuit, in order; 0 for unused slots.
    pub values: Vec<u64>,
    /// The blinding, a field element (64 hex digits).
    #[serde(with = "blinding_hex")]
    pub blinding: Fr,
}

mod blinding_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::statement::{fr_from_bytes, fr_to_bytes};
    use crate::Fr;

    pub(super) fn serialize<S: Serializer>(value: &Fr, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(fr_to_bytes(value)))
    }

    /// 64 hex digits of a canonical field element; anything else is refused.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Fr, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&text, &mut bytes)
            .map_err(|_| serde::de::Error::custom("the blinding is not 64 hex digits"))?;
        fr_from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

impl MeasureOpening {
    /// `Poseidon(tag, v_1..v_M, blinding)`.
    ///
    /// # Errors
    /// [`CircuitError::Shape`] for more than [`MAX_MEASURES`] values.
    pub fn commitment(&self) -> Result<Fr, CircuitError> {
        if self.values.len() > MAX_MEASURES {
            return Err(CircuitError::Shape(format!(
                "{} measure values; a commitment takes at most {MAX_MEASURES}",
                self.values.len()
            )));
        }
        let mut inputs = vec![Fr::from(MEASURE_TAG)];
        inputs.extend(self.values.iter().map(|value| Fr::from(*value)));
        inputs.push(self.blinding);
        poseidon_hash(&inputs)
    }
}

/// A fresh blinding for a measure commitment: a uniformly random field element, so the
/// commitment hides the values.
pub fn random_blinding<R: rand::RngCore>(rng: &mut R) -> Fr {
    Fr::rand(rng)
}
