//! Constraint synthesis and witness generation for the eligibility circuit, per shape.
//!
//! `cargo bench --bench circuit` (set `RAYON_NUM_THREADS` for scaling runs).

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use std::path::Path;

use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem, SynthesisMode};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::{CircuitShape, EligibilityCircuit, EligibilityWitness};
use zkcohort_circuits::identity::{signal_hash, IdentitySecret, StudyScope};
use zkcohort_circuits::issuers::IssuerSet;
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::registry::MembershipPath;
use zkcohort_circuits::Fr;
use zkcohort_cohort::query::CompiledQuery;
use zkcohort_testkit::{ali_harris, compile, Enrollee, TestRegistry, ISSUER};

const SHAPES: [(&str, CircuitShape); 2] = [
    ("small", CircuitShape::SMALL),
    ("reference", CircuitShape::REFERENCE),
];

struct Inputs {
    secret: IdentitySecret,
    record: IssuedRecord,
    path: MembershipPath,
    issuers: IssuerSet,
    query: CompiledQuery,
}

fn inputs(shape: CircuitShape) -> Inputs {
    let query_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/hypertension.query"),
    )
    .expect("query");
    let enrollee = Enrollee::issue(ali_harris(), ISSUER, &mut StdRng::seed_from_u64(1));
    let mut registry = TestRegistry::new(shape);
    let index = registry.register(&enrollee);
    Inputs {
        path: registry.path(index),
        issuers: registry.issuers.clone(),
        secret: enrollee.secret,
        record: enrollee.record,
        query: compile(&query_text),
    }
}

fn witness_generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("witness");
    for (name, shape) in SHAPES {
        let inputs = inputs(shape);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                EligibilityWitness::new(
                    shape,
                    &inputs.secret,
                    &inputs.record,
                    inputs.path.clone(),
                    &inputs.issuers,
                    &inputs.query,
                    Fr::from(7u64),
                )
                .expect("eligible")
            })
        });
    }
    group.finish();
}

fn synthesis(c: &mut Criterion) {
    let mut group = c.benchmark_group("synthesis");
    group.sample_size(10);
    for (name, shape) in SHAPES {
        let inputs = inputs(shape);
        let witness = EligibilityWitness::new(
            shape,
            &inputs.secret,
            &inputs.record,
            inputs.path.clone(),
            &inputs.issuers,
            &inputs.query,
            Fr::from(7u64),
        )
        .expect("eligible");
        let scope = StudyScope(Fr::from(1u64));
        let statement = witness.statement(scope, signal_hash(Fr::from(0u64), scope));
        group.bench_function(BenchmarkId::new("setup-mode", name), |b| {
            b.iter(|| {
                let cs = ConstraintSystem::<Fr>::new_ref();
                cs.set_mode(SynthesisMode::Setup);
                EligibilityCircuit::blank(shape)
                    .generate_constraints(cs.clone())
                    .expect("synthesizes");
                cs.num_constraints()
            })
        });
        group.bench_function(BenchmarkId::new("with-witness", name), |b| {
            b.iter(|| {
                let cs = ConstraintSystem::<Fr>::new_ref();
                EligibilityCircuit::new(shape, statement, witness.clone())
                    .generate_constraints(cs.clone())
                    .expect("synthesizes");
                cs.num_constraints()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, witness_generation, synthesis);
criterion_main!(benches);
