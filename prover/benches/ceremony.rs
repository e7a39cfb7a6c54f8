//! The ceremony's costs per participant and per verifier: a phase-1 contribution and a
//! phase-1 verification at the power each shape needs (2¹⁴ small, 2¹⁶ reference), a
//! phase-2 contribution and a phase-2 verification for each shape.
//!
//! ```text
//! cargo bench -p zkcohort-prover --bench ceremony                        # everything
//! cargo bench -p zkcohort-prover --bench ceremony -- 'phase1/contribute/14'
//! ```
//!
//! Setting up a phase-2 benchmark prepares a phase 1 of the shape's power first (group
//! FFTs, minutes at 2¹⁶ on a small machine); a filter that skips it skips that too.
//! Samples are few (10, criterion's minimum) because one iteration takes seconds.

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_prover::ceremony::{Circuit, Phase1, Phase2};

const SHAPES: [(&str, CircuitShape); 2] = [
    ("small", CircuitShape::SMALL),
    ("reference", CircuitShape::REFERENCE),
];

/// A phase 1 of `power` with one contribution, prepared when asked (cached per power).
fn phase1(power: u32, prepared: bool) -> Phase1 {
    static CACHE: OnceLock<Mutex<HashMap<(u32, bool), Phase1>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap();
    cache
        .entry((power, prepared))
        .or_insert_with(|| {
            let mut phase1 = Phase1::new(power).unwrap();
            phase1
                .contribute("bench", &mut StdRng::seed_from_u64(1))
                .unwrap();
            if prepared {
                phase1.prepare();
            }
            phase1
        })
        .clone()
}

fn phase1_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("phase1");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for power in [14u32, 16] {
        group.bench_with_input(
            BenchmarkId::new("contribute", power),
            &power,
            |b, &power| {
                let start = phase1(power, false);
                let mut rng = StdRng::seed_from_u64(2);
                b.iter_batched(
                    || start.clone(),
                    |mut phase1| {
                        phase1.contribute("participant", &mut rng).unwrap();
                        phase1
                    },
                    criterion::BatchSize::LargeInput,
                );
            },
        );
        group.bench_with_input(BenchmarkId::new("verify", power), &power, |b, &power| {
            let phase1 = phase1(power, false);
            b.iter(|| phase1.verify().unwrap());
        });
    }
    group.finish();
}

fn phase2_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("phase2");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for (name, shape) in SHAPES {
        let state = OnceLock::new();
        let setup = || {
            state.get_or_init(|| {
                let circuit = Circuit::of(shape).unwrap();
                let phase1 = phase1(circuit.domain_power(), true);
                let mut phase2 = Phase2::new(&circuit, &phase1).unwrap();
                phase2
                    .contribute("first", &mut StdRng::seed_from_u64(3))
                    .unwrap();
                (circuit, phase1, phase2)
            })
        };
        group.bench_function(BenchmarkId::new("contribute", name), |b| {
            let (_, _, start) = setup();
            let mut rng = StdRng::seed_from_u64(4);
            b.iter_batched(
                || start.clone(),
                |mut phase2| {
                    phase2.contribute("participant", &mut rng).unwrap();
                    phase2
                },
                criterion::BatchSize::LargeInput,
            );
        });
        group.bench_function(BenchmarkId::new("verify", name), |b| {
            let (circuit, phase1, phase2) = setup();
            b.iter(|| phase2.verify(circuit, phase1).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, phase1_benches, phase2_benches);
criterion_main!(benches);
