//! Verification: one proof at a time against a batch checked with a random linear
//! combination (one final exponentiation), per shape and batch size.
//!
//! Proofs in a batch are real eligibility proofs of the fixture patients, repeated to
//! the batch size: each item gets its own random weight, so the work per item is the
//! same as for distinct proofs.

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use zkcohort::sample::eligible_fixture_requests;
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::statement::Statement;
use zkcohort_prover::CircuitKeys;
use zkcohort_verifier::verify::{verify, verify_batch_with_rng};
use zkcohort_verifier::Proof;

const SHAPES: [(&str, CircuitShape); 2] = [
    ("small", CircuitShape::SMALL),
    ("reference", CircuitShape::REFERENCE),
];

fn proofs(keys: &CircuitKeys, shape: CircuitShape) -> Vec<(Statement, Proof<ark_bn254::Bn254>)> {
    let requests = eligible_fixture_requests(shape, 7).expect("fixture patients");
    let mut rng = StdRng::seed_from_u64(5);
    requests
        .iter()
        .map(|request| {
            let proof = keys.prove_with_rng(request, &mut rng).expect("proves");
            (proof.statement, proof.proof)
        })
        .collect()
}

fn verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    for (name, shape) in SHAPES {
        let keys =
            CircuitKeys::setup_with_rng(shape, &mut StdRng::seed_from_u64(1)).expect("setup");
        let prepared = keys.prepared_verifying_key();
        let distinct = proofs(&keys, shape);
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("one", name), |b| {
            b.iter(|| assert!(verify(prepared, &distinct[0].0, &distinct[0].1).expect("verifies")))
        });
        for size in [100, 1000] {
            let batch: Vec<_> = distinct.iter().cycle().take(size).cloned().collect();
            group.throughput(Throughput::Elements(size as u64));
            group.bench_function(BenchmarkId::new(format!("one-by-one-{size}"), name), |b| {
                b.iter(|| {
                    assert!(batch
                        .iter()
                        .all(|(statement, proof)| verify(prepared, statement, proof)
                            .expect("verifies")))
                })
            });
            let mut rng = StdRng::seed_from_u64(9);
            group.bench_function(BenchmarkId::new(format!("batch-{size}"), name), |b| {
                b.iter(|| {
                    assert!(verify_batch_with_rng(prepared, &batch, &mut rng)
                        .expect("checks")
                        .all_valid())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, verification);
criterion_main!(benches);
