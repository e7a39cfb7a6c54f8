//! Setup, single proofs and batches, and arkworks' own `Groth16::prove` on the same
//! circuit for comparison, per shape.
//!
//! `cargo bench --bench prover`. Long batches of the reference shape are measured by
//! `zkcohort bench batch` instead (32 reference proofs per sample would take minutes).

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use ark_bn254::Bn254;
use ark_groth16::Groth16;
use ark_snark::SNARK;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use zkcohort::sample::eligible_fixture_requests;
use zkcohort_circuits::circuit::{CircuitShape, EligibilityCircuit};
use zkcohort_prover::reduction::CircomReduction;
use zkcohort_prover::{CircuitKeys, ProofRequest};

const SHAPES: [(&str, CircuitShape); 2] = [
    ("small", CircuitShape::SMALL),
    ("reference", CircuitShape::REFERENCE),
];

fn eligible_requests(shape: CircuitShape) -> Vec<ProofRequest> {
    eligible_fixture_requests(shape, 7).expect("fixture patients")
}

fn setup(c: &mut Criterion) {
    let mut group = c.benchmark_group("setup");
    group.sample_size(10);
    group.bench_function(BenchmarkId::from_parameter("small"), |b| {
        b.iter(|| {
            CircuitKeys::setup_with_rng(CircuitShape::SMALL, &mut StdRng::seed_from_u64(1))
                .expect("setup")
        })
    });
    group.finish();
}

fn prove(c: &mut Criterion) {
    let mut group = c.benchmark_group("prove");
    group.sample_size(10);
    for (name, shape) in SHAPES {
        let keys =
            CircuitKeys::setup_with_rng(shape, &mut StdRng::seed_from_u64(1)).expect("setup");
        let requests = eligible_requests(shape);
        let mut rng = StdRng::seed_from_u64(2);
        group.bench_function(BenchmarkId::new("zkcohort", name), |b| {
            b.iter(|| keys.prove_with_rng(&requests[0], &mut rng).expect("proves"))
        });
        let (statement, witness) = requests[0].build(shape).expect("witness");
        group.bench_function(BenchmarkId::new("ark-groth16", name), |b| {
            b.iter(|| {
                let circuit = EligibilityCircuit::new(shape, statement, witness.clone());
                Groth16::<Bn254, CircomReduction>::prove(keys.proving_key(), circuit, &mut rng)
                    .expect("proves")
            })
        });
        let batches: &[usize] = if name == "small" { &[8, 32] } else { &[8] };
        for &count in batches {
            let batch: Vec<ProofRequest> = requests.iter().cycle().take(count).cloned().collect();
            group.throughput(Throughput::Elements(count as u64));
            group.bench_function(BenchmarkId::new(format!("batch-{count}"), name), |b| {
                b.iter(|| {
                    keys.prove_batch_with_seed(batch.clone(), 3, |_, result| {
                        assert!(result.is_ok(), "every batch request is eligible");
                    })
                })
            });
        }
        group.throughput(Throughput::Elements(1));
    }
    group.finish();
}

criterion_group!(benches, setup, prove);
criterion_main!(benches);
