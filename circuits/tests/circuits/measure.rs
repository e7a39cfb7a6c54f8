//! Measures in the circuit: the value the gadget computes is the native evaluator's on
//! random slots, no other bin (outside the declared ones, or a sum's value outside its
//! bounds) satisfies it, and the eligibility proof's commitment binds the record's values
//! under the query hash.

use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::prelude::*;
use ark_relations::gr1cs::ConstraintSystem;
use proptest::prelude::*;
use zkcohort_circuits::clause::gadget::{ClauseVar, ClauseView};
use zkcohort_circuits::clause::ClauseEncoding;
use zkcohort_circuits::encoding::{encode_slot, encode_view, SLOT_FIELDS};
use zkcohort_circuits::measure::gadget::MeasureVar;
use zkcohort_circuits::measure::{MeasureEncoding, MeasureOpening};
use zkcohort_circuits::Fr;
use zkcohort_cohort::query::{CompiledClause, CompiledMeasure};
use zkcohort_cohort::Slot;

use crate::common::{compile, fixture, patient, statement, witness, SHAPE};
use crate::eligibility::satisfied;
use crate::equivalence::{measure_strategy, slot_strategy};

/// Opened slots a measure reads from, as many as the gadget test's clauses.
const CLAUSES: usize = 3;

/// The clause each opened slot is read through: no test, every day in its window.
fn reading_clause() -> CompiledClause {
    CompiledClause::padding()
}

/// Whether the gadget, given `opened` slots (read through [`reading_clause`]) and the
/// selection `selected`, is satisfied, and the value it computes.
fn gadget(encoding: &MeasureEncoding, opened: &[Slot], selected: usize) -> (bool, Fr) {
    let cs = ConstraintSystem::<Fr>::new_ref();
    let clause = ClauseEncoding::new(&reading_clause(), SHAPE.slot_depth).unwrap();
    let views: Vec<ClauseView> = opened
        .iter()
        .map(|slot| {
            let fields = encode_slot(slot).unwrap();
            let slot: [FpVar<Fr>; SLOT_FIELDS] = std::array::from_fn(|field| {
                FpVar::new_witness(cs.clone(), || Ok(fields[field])).unwrap()
            });
            let clause = ClauseVar::new_witness(&cs, Some(&clause), SHAPE.slot_depth).unwrap();
            clause.holds(&slot).unwrap().view
        })
        .collect();
    let measure =
        MeasureVar::new_witness(&cs, Some((encoding, selected)), CLAUSES, SHAPE.measure_bins)
            .unwrap();
    let value = measure.value(&views).unwrap();
    (cs.is_satisfied().unwrap(), value.value().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_gadget_computes_the_native_value_and_no_other_bin_satisfies_it(
        opened in proptest::collection::vec(slot_strategy(), CLAUSES),
        measure in measure_strategy(),
    ) {
        let measure = CompiledMeasure { clause: measure.clause % CLAUSES, ..measure };
        let encoding = MeasureEncoding::new(&measure, CLAUSES, SHAPE.measure_bins).unwrap();
        let view = reading_clause().view(&opened[measure.clause]);
        let encoded = encode_view(&view).unwrap();
        let honest = encoding.selected(&encoded);
        let native = measure.value(&view);
        prop_assert_eq!(encoding.value(&encoded), native);
        let (holds, value) = gadget(&encoding, &opened, honest);
        if !measure.readable(&view) {
            prop_assert!(!holds, "a measure over undated days proves nothing");
            return Ok(());
        }
        prop_assert!(holds, "the honest selection {} satisfies the gadget", honest);
        prop_assert_eq!(value, Fr::from(native));
        for other in (0..=SHAPE.measure_bins).filter(|other| *other != honest) {
            let (holds, _) = gadget(&encoding, &opened, other);
            prop_assert!(!holds, "selection {} (honest {}) satisfies the gadget", other, honest);
        }
    }
}

/// Ali Harris (born 1963-10-29, male, hypertension since 1981) in the README query
/// with four measures: age bands, hypertension's presence, sex (a clause of its own)
/// and the latest systolic blood pressure in bins.
const MEASURED: &str = "index date 2020-01-01
require age between 40 and 75
require condition hypertension
require any of: lab systolic-bp latest >= 140 within 730 days; medication antihypertensive
exclude condition ckd
measure age bands 40 60
measure condition hypertension
measure sex
measure lab systolic-bp latest bins 120 140";

#[test]
fn an_honest_proof_commits_to_the_records_measure_values() {
    let patient = patient(fixture("Ali_Harris"));
    let query = compile(MEASURED);
    let witness = witness(&patient, &query);
    let opening = witness.measure_opening();
    assert_eq!(
        opening.values,
        query.measure_values(&patient.record.summary)
    );
    let labels: Vec<&str> = query
        .measures
        .iter()
        .zip(&opening.values)
        .map(|(measure, value)| measure.labels[*value as usize].as_str())
        .collect();
    assert_eq!(labels[..3], ["40-59", "present", "male"]);
    assert_ne!(opening.values[3], 0, "Ali has blood pressure readings");
    let statement = statement(&witness);
    assert_eq!(statement.measure_commitment, opening.commitment().unwrap());
    assert!(satisfied(statement, witness));
}

#[test]
fn a_commitment_to_other_values_or_another_blinding_is_rejected() {
    let patient = patient(fixture("Ali_Harris"));
    let witness = witness(&patient, &compile(MEASURED));
    let honest = witness.measure_opening();
    let mut others = Vec::new();
    for position in 0..honest.values.len() {
        for delta in [1, 2] {
            let mut values = honest.values.clone();
            values[position] += delta;
            others.push(values);
        }
    }
    // Another age band, as a patient who wanted to look younger would claim.
    let mut younger = honest.values.clone();
    younger[0] = 3;
    others.push(younger);
    for values in others {
        let mut forged = statement(&witness);
        forged.measure_commitment = MeasureOpening {
            values: values.clone(),
            blinding: honest.blinding,
        }
        .commitment()
        .unwrap();
        assert!(!satisfied(forged, witness.clone()), "values {values:?}");
    }
    let mut reblinded = statement(&witness);
    reblinded.measure_commitment = MeasureOpening {
        values: honest.values.clone(),
        blinding: honest.blinding + Fr::from(1u64),
    }
    .commitment()
    .unwrap();
    assert!(!satisfied(reblinded, witness));
}

#[test]
fn a_wrong_selection_or_a_measure_other_than_the_querys_is_rejected() {
    let patient = patient(fixture("Ali_Harris"));
    let witness = witness(&patient, &compile(MEASURED));
    let statement = statement(&witness);
    // Each measure's bin moved to each other position, the statement's commitment
    // recomputed for the values the forged selection would give.
    for index in 0..SHAPE.measures {
        for selected in 0..=SHAPE.measure_bins {
            if selected == witness.measures[index].1 {
                continue;
            }
            let mut forged = witness.clone();
            forged.measures[index].1 = selected;
            let mut values = witness.measure_opening().values;
            values[index] = selected as u64;
            let mut claimed = statement;
            claimed.measure_commitment = MeasureOpening {
                values,
                blinding: witness.measure_blinding,
            }
            .commitment()
            .unwrap();
            assert!(
                !satisfied(claimed, forged),
                "measure {index} in position {selected}"
            );
        }
    }
    // Measures the query does not declare: other bounds, another clause, another field,
    // a sum instead of bins, an inactive slot. The query hash refuses each, even with
    // the commitment made to fit.
    let edits: [fn(&mut MeasureEncoding); 5] = [
        |measure| measure.uppers[0] += 1,
        |measure| measure.clause = (measure.clause + 1) % SHAPE.clauses,
        |measure| measure.field = (measure.field + 1) % 6,
        |measure| measure.is_sum = !measure.is_sum,
        |measure| measure.active = false,
    ];
    for (number, edit) in edits.iter().enumerate() {
        let mut forged = witness.clone();
        let (measure, selected) = &mut forged.measures[0];
        edit(measure);
        *selected = measure.selected(&witness.clauses[measure.clause].view);
        let mut claimed = statement;
        claimed.measure_commitment = forged.measure_opening().commitment().unwrap();
        assert!(!satisfied(claimed, forged.clone()), "edit {number}");
        // Declared in the study (its own query hash), the same measure proves: the hash
        // is what refused it.
        assert!(
            satisfied(crate::common::statement(&forged), forged),
            "edit {number}"
        );
    }
}
