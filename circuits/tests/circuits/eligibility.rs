//! The eligibility circuit: honest witnesses satisfy it, and every false statement
//! leaves it unsatisfied. Records are real Synthea fixtures.

use crate::common::{
    compile, fixture, issuers, patient, statement, witness, MEASURE_BLINDING, OTHER_ISSUER, SCOPE,
    SHAPE,
};
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::prelude::*;
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, SynthesisMode,
};
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::{CircuitShape, EligibilityCircuit, EligibilityWitness};
use zkcohort_circuits::clause::gadget::{query_hash_gadget, ClauseVar, ClauseView};
use zkcohort_circuits::encoding::{encode_slot, SLOT_FIELDS};
use zkcohort_circuits::identity::{signal_hash, Nullifier, StudyScope};
use zkcohort_circuits::issuers::{IssuerId, IssuerSet};
use zkcohort_circuits::measure::gadget::MeasureVar;
use zkcohort_circuits::poseidon::gadget::poseidon_hash_gadget;
use zkcohort_circuits::poseidon::poseidon_hash_fixed;
use zkcohort_circuits::record::record_commitment;
use zkcohort_circuits::registry::gadget::MembershipPathVar;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::slots::gadget::slot_root_gadget;
use zkcohort_circuits::slots::{RecordSalt, SlotTree};
use zkcohort_circuits::statement::Statement;
use zkcohort_circuits::{CircuitError, Fr};
use zkcohort_cohort::Catalog;
use zkcohort_testkit::{Enrollee, TestRegistry, ISSUER};

pub(crate) fn satisfied(statement: Statement, witness: EligibilityWitness) -> bool {
    let cs = ConstraintSystem::<Fr>::new_ref();
    EligibilityCircuit::new(SHAPE, statement, witness)
        .generate_constraints(cs.clone())
        .unwrap();
    cs.is_satisfied().unwrap()
}

fn honest(summary: &str, query: &str) -> bool {
    let patient = patient(fixture(summary));
    let witness = witness(&patient, &compile(query));
    satisfied(statement(&witness), witness)
}

const ALI: &str = "Ali_Harris";
const README: &str = "index date 2020-01-01
require age between 40 and 75
require condition hypertension
require any of: lab systolic-bp latest >= 140 within 730 days; medication antihypertensive
exclude condition ckd";

#[test]
fn an_eligible_record_satisfies_the_circuit_and_the_native_check() {
    assert!(honest(ALI, README));
    let patient = patient(fixture(ALI));
    let path = patient.registry.path(patient.index).unwrap();
    assert!(EligibilityWitness::new(
        SHAPE,
        &patient.secret,
        &patient.record,
        path.clone(),
        &issuers(),
        &compile(README),
        MEASURE_BLINDING,
    )
    .is_ok());
    let too_young = README.replace("40 and 75", "60 and 75");
    let refused = EligibilityWitness::new(
        SHAPE,
        &patient.secret,
        &patient.record,
        path.clone(),
        &issuers(),
        &compile(&too_young),
        MEASURE_BLINDING,
    );
    assert!(matches!(refused, Err(CircuitError::NotEligible)));
    let elsewhere = IssuerSet::new(&[OTHER_ISSUER], SHAPE.issuer_depth).unwrap();
    let not_accepted = EligibilityWitness::new(
        SHAPE,
        &patient.secret,
        &patient.record,
        path,
        &elsewhere,
        &compile(README),
        MEASURE_BLINDING,
    );
    assert!(matches!(not_accepted, Err(CircuitError::Issuers(_))));
}

/// One proof per clause kind, each true for Ali Harris (born 1963-10-29, male, former
/// smoker, hypertension since 1981, hydrochlorothiazide, 9 HbA1c results max 6.3 %).
#[test]
fn every_clause_kind_proves_when_true() {
    let clauses = [
        "require age >= 56",
        "require sex male",
        "require smoking former",
        "require record issued within 365 days",
        "require condition hypertension first before index",
        "require condition hypertension active",
        "require medication antihypertensive count >= 1",
        "require lab hba1c count >= 9",
        "require lab hba1c max between 6.2 and 6.3",
        "require lab hba1c min <= 5.9",
        "require lab systolic-bp latest >= 185 within 400 days",
        "exclude condition ckd",
        "require not condition diabetes",
    ];
    for clause in clauses {
        let query = format!("index date 2021-01-01\n{clause}");
        assert!(honest(ALI, &query), "{clause}");
    }
}

// ---- soundness: one false statement per constraint family ------------------------

#[test]
fn false_clauses_are_unsatisfiable() {
    let cases = [
        ("count too low", "require condition hypertension count >= 2"),
        (
            "date outside window",
            "require lab systolic-bp latest >= 140 within 20 days",
        ),
        ("value outside range", "require lab hba1c latest >= 6.5"),
        ("max below bound", "require lab hba1c max >= 6.4"),
        ("satisfied exclusion", "exclude condition hypertension"),
        ("absent concept", "require condition ckd"),
        ("age", "require age < 57"),
        ("sex", "require sex female"),
        ("smoking", "require smoking current"),
        (
            "record freshness",
            "index date 2022-01-01\nrequire record issued within 10 days",
        ),
        (
            "negated present concept",
            "require not condition hypertension",
        ),
        (
            "AND across groups",
            "require condition hypertension\nrequire condition ckd",
        ),
        (
            "OR with no true clause",
            "require any of: condition ckd; condition copd",
        ),
    ];
    for (what, clause) in cases {
        let query = if clause.starts_with("index") {
            clause.to_string()
        } else {
            format!("index date 2021-01-01\n{clause}")
        };
        assert!(!honest(ALI, &query), "{what}: {clause}");
    }
}

#[test]
fn wrong_registry_path_root_or_leaf_is_unsatisfiable() {
    let patient = patient(fixture(ALI));
    let query = compile(README);
    let honest_witness = witness(&patient, &query);
    let honest_statement = statement(&honest_witness);
    assert!(satisfied(honest_statement, honest_witness.clone()));

    let mut wrong_path = honest_witness.clone();
    let mut siblings = wrong_path.registry_path.siblings().to_vec();
    siblings[3] += Fr::from(1u64);
    wrong_path.registry_path =
        zkcohort_circuits::registry::MembershipPath::new(patient.index, siblings).unwrap();
    assert!(!satisfied(honest_statement, wrong_path), "tampered sibling");

    let other_leaf = patient.registry.path(patient.index - 1).unwrap();
    let mut wrong_index = honest_witness.clone();
    wrong_index.registry_path = other_leaf;
    assert!(
        !satisfied(honest_statement, wrong_index),
        "another leaf's path"
    );

    let mut wrong_root = honest_statement;
    wrong_root.registry_root = RegistryTree::new(SHAPE.registry_depth).unwrap().root();
    assert!(
        !satisfied(wrong_root, honest_witness.clone()),
        "another registry root"
    );

    for (what, tamper) in [
        (
            "issuer",
            (|witness: &mut EligibilityWitness| witness.issuer_id += Fr::from(1u64))
                as fn(&mut EligibilityWitness),
        ),
        ("issue date", |witness| witness.issued_at += Fr::from(1u64)),
        ("catalog", |witness| witness.catalog_tag += Fr::from(1u64)),
        ("salt", |witness| witness.salt += Fr::from(1u64)),
        ("identity", |witness| {
            witness.identity_secret += Fr::from(1u64)
        }),
    ] {
        let mut tampered = honest_witness.clone();
        tamper(&mut tampered);
        assert!(!satisfied(honest_statement, tampered), "{what}");
    }
}

#[test]
fn tampered_slots_do_not_open_the_record() {
    let patient = patient(fixture(ALI));
    let query = compile("index date 2021-01-01\nrequire lab hba1c latest >= 6.5");
    let honest_witness = witness(&patient, &query);
    let statement = statement(&honest_witness);
    assert!(
        !satisfied(statement, honest_witness.clone()),
        "HbA1c 5.8 is below 6.5"
    );
    // Claim an HbA1c of 6.5 without changing the commitment.
    let mut tampered = honest_witness.clone();
    tampered.clauses[0].slot[3] = Fr::from(zkcohort_circuits::encoding::encode_value(65).unwrap());
    assert!(
        !satisfied(statement, tampered),
        "slot value changed under the same root"
    );
    // Open a different slot (diastolic-bp, latest 108) in place of HbA1c.
    let catalog = Catalog::bundled();
    let diastolic = catalog.index_of("diastolic-bp").unwrap();
    let tree = SlotTree::new(&patient.record.summary, SHAPE.slot_depth).unwrap();
    let mut swapped = honest_witness;
    swapped.clauses[0].slot = encode_slot(patient.record.summary.slot(diastolic)).unwrap();
    swapped.clauses[0].siblings = tree.open(diastolic).unwrap().siblings;
    assert!(!satisfied(statement, swapped), "another slot's opening");
}

/// A malicious issuer commits values no summary could hold: a field element p - 1
/// ("-1"), or one above the 41-bit width. The range checks refuse to compare them.
#[test]
fn field_overflow_slot_values_cannot_pass_comparisons() {
    let catalog = Catalog::bundled();
    let hba1c = catalog.index_of("hba1c").unwrap();
    let query = compile("index date 2021-01-01\nrequire lab hba1c latest <= 5");
    for (what, forged) in [
        ("p - 1", -Fr::from(1u64)),
        ("2^41", Fr::from(1u64 << 41)),
        ("2^41 + offset", Fr::from((1u64 << 41) + (1 << 40))),
    ] {
        let patient = patient(fixture(ALI));
        let mut witness = witness(&patient, &query);
        let mut fields = encode_slot(patient.record.summary.slot(hba1c)).unwrap();
        fields[3] = forged;
        let mut leaves: Vec<Fr> = patient
            .record
            .summary
            .slots()
            .iter()
            .map(|slot| zkcohort_circuits::slots::slot_leaf(slot).unwrap())
            .collect();
        leaves[hba1c] = poseidon_hash_fixed(&fields);
        let tree = SlotTree::from_leaves(leaves, SHAPE.slot_depth).unwrap();
        witness.slots_root = tree.root();
        for clause in &mut witness.clauses {
            let index = clause.clause.slot as usize;
            clause.siblings = tree.open(index).unwrap().siblings;
            if index == hba1c {
                clause.slot = fields;
            }
        }
        // Register the forged record so everything but the comparison is consistent.
        let record_root = zkcohort_circuits::slots::record_root(
            tree.root(),
            RecordSalt(witness.salt),
            witness.catalog_tag,
        );
        let leaf = poseidon_hash_fixed(&[
            record_commitment(patient.secret.commitment(), record_root),
            witness.issuer_id,
            witness.issued_at,
        ]);
        let mut registry = RegistryTree::new(SHAPE.registry_depth).unwrap();
        let index = registry.append(leaf).unwrap();
        witness.registry_path = registry.path(index).unwrap();
        let statement = witness.statement(SCOPE, signal_hash(Fr::from(3u64), SCOPE));
        assert_eq!(statement.registry_root, registry.root());
        assert!(!satisfied(statement, witness), "{what}");
    }
}

#[test]
fn query_hash_pins_the_clauses_and_group_logic() {
    let patient = patient(fixture(ALI));
    // Two groups: hypertension (true) AND ckd (false). Merging them into one OR group
    // would make the record eligible, but changes the query the proof is about.
    let query =
        compile("index date 2021-01-01\nrequire condition hypertension\nrequire condition ckd");
    let honest_witness = witness(&patient, &query);
    let statement = statement(&honest_witness);
    assert!(!satisfied(statement, honest_witness.clone()));
    let mut merged = honest_witness.clone();
    merged.clauses[1].clause.starts_group = false;
    assert!(
        !satisfied(statement, merged.clone()),
        "same query hash, different groups"
    );
    let claimed = merged.statement(SCOPE, statement.signal_hash);
    assert_ne!(claimed.query_hash, statement.query_hash);
    assert!(
        satisfied(claimed, merged),
        "it proves only the merged query, which has another hash"
    );

    let mut negated = honest_witness.clone();
    negated.clauses[1].clause.negated = true;
    assert!(
        !satisfied(statement, negated),
        "negating the failing clause changes the hash"
    );

    let mut loosened = honest_witness.clone();
    loosened.clauses[1].clause.min_count = 0;
    assert!(
        !satisfied(statement, loosened),
        "count >= 0 changes the hash"
    );

    let mut moved = honest_witness.clone();
    moved.index_date += Fr::from(1u64);
    let eligible_query = compile("index date 2021-01-01\nrequire condition hypertension");
    let eligible_witness = witness(&patient, &eligible_query);
    let eligible_statement = statement_of(&eligible_witness);
    let mut other_date = eligible_witness.clone();
    other_date.index_date += Fr::from(1u64);
    assert!(satisfied(eligible_statement, eligible_witness));
    assert!(
        !satisfied(eligible_statement, other_date),
        "index date is in the hash"
    );
    let mut wrong_hash = eligible_statement;
    wrong_hash.query_hash += Fr::from(1u64);
    assert!(!satisfied(wrong_hash, moved), "wrong query hash");
}

#[test]
fn only_an_accepted_issuer_s_record_proves() {
    let patient = patient(fixture(ALI));
    let query = compile(README);
    let honest_witness = witness(&patient, &query);
    let honest_statement = statement(&honest_witness);
    assert!(satisfied(honest_statement, honest_witness.clone()));

    let mut other_set = honest_statement;
    other_set.issuers_root = IssuerSet::new(&[OTHER_ISSUER], SHAPE.issuer_depth)
        .unwrap()
        .root();
    assert!(
        !satisfied(other_set, honest_witness.clone()),
        "a study accepting only another issuer"
    );
    let mut wider = honest_statement;
    wider.issuers_root = IssuerSet::new(&[ISSUER, OTHER_ISSUER], SHAPE.issuer_depth)
        .unwrap()
        .root();
    assert!(
        !satisfied(wider, honest_witness.clone()),
        "another study's issuers root"
    );

    // A record of an issuer the study does not accept, opened at the accepted
    // issuer's position of the study's set.
    let outsider = Enrollee::issue(fixture(ALI), OTHER_ISSUER, &mut StdRng::seed_from_u64(3));
    let mut registry = TestRegistry::new(SHAPE);
    let index = registry.register(&outsider);
    let outsider_witness = registry.witness(&outsider, index, &query);
    let mut outsider_statement = statement(&outsider_witness);
    assert_ne!(outsider_statement.issuers_root, issuers().root());
    outsider_statement.issuers_root = issuers().root();
    assert!(!satisfied(outsider_statement, outsider_witness));

    // Issuer id zero opens the empty position of the study's set: refused, even for a
    // leaf registered with that id.
    let mut zero_issuer = honest_witness;
    zero_issuer.issuer_id = Fr::from(0u64);
    let accepted = IssuerId::for_account(&ISSUER).0;
    let with_empty =
        RegistryTree::from_leaves(SHAPE.issuer_depth, &[accepted, Fr::from(0u64)]).unwrap();
    assert_eq!(with_empty.root(), issuers().root());
    zero_issuer.issuer_path = with_empty.path(1).unwrap();
    let record_root = zkcohort_circuits::slots::record_root(
        zero_issuer.slots_root,
        RecordSalt(zero_issuer.salt),
        zero_issuer.catalog_tag,
    );
    let leaf = poseidon_hash_fixed(&[
        record_commitment(patient.secret.commitment(), record_root),
        Fr::from(0u64),
        zero_issuer.issued_at,
    ]);
    let mut registry = RegistryTree::new(SHAPE.registry_depth).unwrap();
    let index = registry.append(leaf).unwrap();
    zero_issuer.registry_path = registry.path(index).unwrap();
    let zero_statement = statement(&zero_issuer);
    assert_eq!(zero_statement.registry_root, registry.root());
    assert_eq!(zero_statement.issuers_root, issuers().root());
    assert!(!satisfied(zero_statement, zero_issuer), "issuer id zero");
}

fn statement_of(witness: &EligibilityWitness) -> Statement {
    statement(witness)
}

#[test]
fn wrong_nullifier_is_unsatisfiable() {
    let patient = patient(fixture(ALI));
    let witness = witness(&patient, &compile(README));
    let honest_statement = statement(&witness);
    let mut reused = honest_statement;
    reused.nullifier = patient.secret.nullifier(StudyScope(Fr::from(12u64)));
    assert!(
        !satisfied(reused, witness.clone()),
        "a nullifier from another study"
    );
    let mut other_scope = honest_statement;
    other_scope.study_scope = StudyScope(Fr::from(12u64));
    assert!(
        !satisfied(other_scope, witness.clone()),
        "the same nullifier under another scope"
    );
    let mut random = honest_statement;
    random.nullifier = Nullifier(Fr::from(5u64));
    assert!(!satisfied(random, witness), "an arbitrary nullifier");
}

/// Pinned constraint counts: a change to the circuit shows here first.
const SMALL_TOTAL: usize = 23_022;
const REFERENCE_TOTAL: usize = 62_974;
const QUERY_HASH: usize = 4_935;
const ISSUER_SET: usize = 1_452;
const HASH3: usize = 261;
const MEASURE: usize = 345;
const MEASURE_COMMITMENT: usize = 459;
const GLUE: usize = 81;

fn setup_count(build: impl FnOnce(ConstraintSystemRef<Fr>)) -> usize {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(SynthesisMode::Setup);
    build(cs.clone());
    cs.num_constraints()
}

#[test]
fn constraint_counts_are_pinned() {
    let count = |shape: CircuitShape| {
        setup_count(|cs| {
            EligibilityCircuit::blank(shape)
                .generate_constraints(cs)
                .unwrap()
        })
    };
    assert_eq!(
        count(CircuitShape::SMALL),
        SMALL_TOTAL,
        "small shape (6 clauses, slot depth 8, registry depth 8, issuer depth 1, 4 measures of 8 bins)"
    );
    assert_eq!(
        count(CircuitShape::REFERENCE),
        REFERENCE_TOTAL,
        "reference shape (16, 10, 20, 6, 8 measures of 8 bins), under its 2^16 domain"
    );
}

/// What each part of the reference shape costs; the parts add up to the whole.
#[test]
fn reference_shape_cost_by_component() {
    let shape = CircuitShape::REFERENCE;
    let witness = |cs: &ConstraintSystemRef<Fr>| {
        FpVar::new_witness(cs.clone(), || Ok(Fr::from(0u64))).unwrap()
    };
    let clause = setup_count(|cs| {
        let clause = ClauseVar::new_witness(&cs, None, shape.slot_depth).unwrap();
        let slot: [FpVar<Fr>; SLOT_FIELDS] = std::array::from_fn(|_| witness(&cs));
        let siblings: Vec<[FpVar<Fr>; 3]> = (0..shape.slot_depth / 2)
            .map(|_| std::array::from_fn(|_| witness(&cs)))
            .collect();
        let leaf = poseidon_hash_gadget(&slot).unwrap();
        let _ = slot_root_gadget(&leaf, &clause.slot_bits, &siblings).unwrap();
        let _ = clause.holds(&slot).unwrap();
    });
    let clause_opening = setup_count(|cs| {
        let bits: Vec<Boolean<Fr>> = (0..shape.slot_depth)
            .map(|_| Boolean::new_witness(cs.clone(), || Ok(false)).unwrap())
            .collect();
        let slot: [FpVar<Fr>; SLOT_FIELDS] = std::array::from_fn(|_| witness(&cs));
        let siblings: Vec<[FpVar<Fr>; 3]> = (0..shape.slot_depth / 2)
            .map(|_| std::array::from_fn(|_| witness(&cs)))
            .collect();
        let _ = slot_root_gadget(&poseidon_hash_gadget(&slot).unwrap(), &bits, &siblings).unwrap();
    });
    let query_hash = setup_count(|cs| {
        let hashed = 2 + 2 * shape.clauses + shape.measures * (1 + shape.measure_bins);
        let elements: Vec<FpVar<Fr>> = (0..hashed).map(|_| witness(&cs)).collect();
        let _ = query_hash_gadget(Fr::from(0u64), &elements).unwrap();
    });
    // The clauses' views come from the clauses (their flags' booleanity is counted
    // there), so the measure's cost is what it adds to them.
    let views = |cs: &ConstraintSystemRef<Fr>| -> Vec<ClauseView> {
        let flag = || Boolean::new_witness(cs.clone(), || Ok(true)).unwrap();
        (0..shape.clauses)
            .map(|_| ClauseView {
                fields: std::array::from_fn(|_| witness(cs)),
                latest_present: flag(),
                count_exact: flag(),
                latest_exact: flag(),
            })
            .collect()
    };
    let measure = setup_count(|cs| {
        let opened = views(&cs);
        let measure =
            MeasureVar::new_witness(&cs, None, shape.clauses, shape.measure_bins).unwrap();
        let _ = measure.elements().unwrap();
        let _ = measure.value(&opened).unwrap();
    }) - setup_count(|cs| {
        let _ = views(&cs);
    });
    let registry = setup_count(|cs| {
        let path =
            MembershipPathVar::new_witness_with_depth(cs.clone(), shape.registry_depth, || {
                Err(ark_relations::gr1cs::SynthesisError::AssignmentMissing)
            })
            .unwrap();
        let _ = path.root(&witness(&cs)).unwrap();
    });
    let hash = |inputs: usize| {
        setup_count(|cs| {
            let inputs: Vec<FpVar<Fr>> = (0..inputs).map(|_| witness(&cs)).collect();
            let _ = poseidon_hash_gadget(&inputs).unwrap();
        })
    };
    let issuer_set = setup_count(|cs| {
        let path =
            MembershipPathVar::new_witness_with_depth(cs.clone(), shape.issuer_depth, || {
                Err(ark_relations::gr1cs::SynthesisError::AssignmentMissing)
            })
            .unwrap();
        let _ = path.root(&witness(&cs)).unwrap();
    });
    let (identity, nullifier, record_root, commitment, leaf) =
        (hash(1), hash(2), hash(3), hash(2), hash(3));
    let measure_commitment = hash(shape.measures + 2);
    println!("per clause {clause} (slot opening {clause_opening}, clause fields and tests {}), query hash {query_hash}, registry path {registry}, issuer set path {issuer_set}, nullifier {nullifier}, identity commitment {identity}, record root {record_root}, record commitment {commitment}, registry leaf {leaf}, per measure {measure}, measure commitment {measure_commitment}", clause - clause_opening);
    assert_eq!(clause, 2_952);
    assert_eq!(clause_opening, 2_039);
    assert_eq!(query_hash, QUERY_HASH);
    assert_eq!(registry, 4_840);
    assert_eq!(issuer_set, ISSUER_SET);
    assert_eq!(
        (identity, nullifier, record_root, commitment, leaf),
        (213, 240, HASH3, 240, HASH3)
    );
    assert_eq!((measure, measure_commitment), (MEASURE, MEASURE_COMMITMENT));
    // Group logic (4 per clause after the first), the final AND, the signal square, the
    // non-zero issuer id and seven equalities (nullifier, registry root, issuers root, query
    // hash, measure commitment, eligibility, slot roots per clause), less the three the
    // measure commitment's constant tag saves over the component count of free inputs.
    let glue = REFERENCE_TOTAL
        - (16 * clause
            + query_hash
            + registry
            + issuer_set
            + identity
            + nullifier
            + record_root
            + commitment
            + leaf
            + shape.measures * measure
            + measure_commitment);
    println!("glue {glue}");
    assert_eq!(glue, GLUE, "glue constraints");
}
