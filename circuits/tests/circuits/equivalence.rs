//! Native/circuit equivalence: for random summaries and random compiled queries with
//! random measures, the circuit is satisfied exactly when the native evaluator says
//! eligible (all other checks being honest), and the measure values it commits to are
//! the native evaluator's.

use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem};
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::{CircuitShape, EligibilityCircuit, EligibilityWitness};
use zkcohort_circuits::identity::{signal_hash, IdentitySecret, StudyScope};
use zkcohort_circuits::issuers::IssuerSet;
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::slots::RecordSalt;
use zkcohort_circuits::Fr;
use zkcohort_cohort::query::{
    CompiledClause, CompiledMeasure, CompiledQuery, MeasureField, MeasureKind, ValueField,
};
use zkcohort_cohort::{Catalog, Day, RecordSummary, Slot};
use zkcohort_testkit::ISSUER;

const SHAPE: CircuitShape = CircuitShape::SMALL;
const INDEX_DATE: Day = Day(18_262); // 2020-01-01
const CONCEPTS: [&str; 6] = [
    "birth-date",
    "sex",
    "hypertension",
    "hba1c",
    "statin",
    "systolic-bp",
];

/// Slots of up to 8 entries on distinct days: some keep every entry, some only the
/// first and the 4 latest (truncated), so clauses are also undecidable.
pub(crate) fn slot_strategy() -> impl Strategy<Value = Slot> {
    prop_oneof![
        1 => Just(Slot::default()),
        3 => (
            -400_i32..400,
            proptest::collection::btree_map(0_i32..300, -5_i64..5, 1..8),
        )
            .prop_map(|(first, entries)| {
                let mut slot = Slot::default();
                for (offset, value) in entries {
                    slot.record(Day(INDEX_DATE.0 + first + offset), value);
                }
                slot
            }),
    ]
}

fn clause_strategy() -> impl Strategy<Value = CompiledClause> {
    let bound = prop_oneof![Just(None), (-6_i64..6).prop_map(Some)];
    let day_bound = prop_oneof![Just(None), (-450_i32..750).prop_map(Some)];
    (
        0..CONCEPTS.len(),
        any::<(bool, bool)>(),
        0_u32..4,
        0_usize..3,
        (bound.clone(), bound),
        (day_bound.clone(), day_bound.clone()),
        (day_bound.clone(), day_bound),
    )
        .prop_map(
            |(
                concept,
                (starts_group, negated),
                min_count,
                field,
                (low, high),
                (first_from, first_to),
                (from, to),
            )| {
                let catalog = Catalog::bundled();
                CompiledClause {
                    slot: catalog.index_of(CONCEPTS[concept]).unwrap(),
                    starts_group,
                    negated,
                    min_count,
                    value_field: [ValueField::Last, ValueField::Min, ValueField::Max][field],
                    value_min: low.unwrap_or(zkcohort_cohort::query::compile::VALUE_MIN),
                    value_max: high.unwrap_or(zkcohort_cohort::query::compile::VALUE_MAX),
                    date_min: from.map_or(zkcohort_cohort::day::DAY_MIN, |offset| {
                        Day(INDEX_DATE.0 + offset)
                    }),
                    date_max: to.map_or(zkcohort_cohort::day::DAY_MAX, |offset| {
                        Day(INDEX_DATE.0 + offset)
                    }),
                    first_min: first_from.map_or(zkcohort_cohort::day::DAY_MIN, |offset| {
                        Day(INDEX_DATE.0 + offset)
                    }),
                    first_max: first_to.map_or(zkcohort_cohort::day::DAY_MAX, |offset| {
                        Day(INDEX_DATE.0 + offset)
                    }),
                }
            },
        )
}

/// A random measure of a random clause (`clause` is reduced modulo the query's clauses),
/// with bounds around the values [`slot_strategy`] draws, so every bin gets hit.
pub(crate) fn measure_strategy() -> impl Strategy<Value = CompiledMeasure> {
    (
        0..SHAPE.clauses,
        0..MeasureField::ALL.len(),
        any::<bool>(),
        proptest::collection::btree_set(-7_i64..7, 1..SHAPE.measure_bins),
    )
        .prop_map(|(clause, field, sum, bounds)| {
            let field = MeasureField::ALL[field];
            let scale = |bound: i64| match field {
                MeasureField::Count => bound.abs(),
                MeasureField::FirstDate | MeasureField::LastDate => {
                    i64::from(INDEX_DATE.0) + 60 * bound
                }
                _ => bound,
            };
            let mut uppers: Vec<i64> = bounds.into_iter().map(scale).collect();
            uppers.sort();
            uppers.dedup();
            let kind = if sum && uppers.len() >= 2 {
                uppers.truncate(2);
                MeasureKind::Sum
            } else {
                MeasureKind::Bins
            };
            CompiledMeasure {
                clause,
                field,
                kind,
                uppers,
                name: "random".into(),
                labels: Vec::new(),
                units_per_display: 1,
                unit: String::new(),
            }
        })
}

fn satisfied(summary: RecordSummary, query: &CompiledQuery) -> bool {
    let mut rng = StdRng::seed_from_u64(5);
    let secret = IdentitySecret::random_with_rng(&mut rng);
    let record = IssuedRecord {
        summary,
        salt: RecordSalt::random_with_rng(&mut rng),
        issuer: ISSUER,
        issued_at: INDEX_DATE,
    };
    let mut registry = RegistryTree::new(SHAPE.registry_depth).unwrap();
    let index = registry
        .append(
            record
                .registry_leaf(secret.commitment(), SHAPE.slot_depth)
                .unwrap(),
        )
        .unwrap();
    let witness = EligibilityWitness::assemble(
        SHAPE,
        &secret,
        &record,
        registry.path(index).unwrap(),
        IssuerSet::new(&[ISSUER], SHAPE.issuer_depth)
            .unwrap()
            .path(&ISSUER)
            .unwrap(),
        query,
        Fr::from(9u64),
    )
    .unwrap();
    let mut native = query.measure_values(&record.summary);
    native.resize(SHAPE.measures, 0);
    assert_eq!(
        witness.measure_opening().values,
        native,
        "the witness's measure values are the native evaluator's"
    );
    let scope = StudyScope(Fr::from(3u64));
    let statement = witness.statement(scope, signal_hash(Fr::from(1u64), scope));
    let cs = ConstraintSystem::<Fr>::new_ref();
    EligibilityCircuit::new(SHAPE, statement, witness)
        .generate_constraints(cs.clone())
        .unwrap();
    cs.is_satisfied().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn circuit_agrees_with_the_native_evaluator(
        slots in proptest::collection::vec(slot_strategy(), CONCEPTS.len()),
        clauses in proptest::collection::vec(clause_strategy(), 1..=SHAPE.clauses),
        measures in proptest::collection::vec(measure_strategy(), 0..=SHAPE.measures),
    ) {
        let catalog = Catalog::bundled();
        let mut summary = RecordSummary::empty(catalog);
        for (id, slot) in CONCEPTS.iter().zip(slots) {
            *summary.slot_mut(catalog.index_of(id).unwrap()) = slot;
        }
        let clause_count = clauses.len();
        let measures = measures
            .into_iter()
            .map(|measure| CompiledMeasure { clause: measure.clause % clause_count, ..measure })
            .collect();
        let query = CompiledQuery { catalog_version: catalog.version().to_string(), index_date: INDEX_DATE, clauses, measures };
        let native = query.evaluate(&summary);
        prop_assert_eq!(satisfied(summary, &query), native);
    }
}
