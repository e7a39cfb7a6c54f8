//! Setup, single proofs and batches, and arkworks' own `Groth16::prove` on the same
//! circuit for comparison, per shape; the note-transfer proof beside them (each circuit's
//! constraint count is printed first); what measures add to a proof (`measures`); and
//! our MSM against arkworks' on the reference shape's five queries with a real witness
//! (`msm`).
//!
//! `cargo bench --bench prover`. Long batches of the reference shape are measured by
//! `zkcohort bench batch` instead (32 reference proofs per sample would take minutes).

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use ark_bn254::{Bn254, G1Projective, G2Projective};
use ark_ec::VariableBaseMSM;
use ark_ff::{PrimeField, UniformRand};
use ark_groth16::Groth16;
use ark_snark::SNARK;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use zkcohort::sample::eligible_fixture_requests;
use zkcohort_circuits::circuit::{CircuitShape, EligibilityCircuit};
use zkcohort_circuits::note::{
    CreatedNote, SpendingKey, SpentNote, TransferWitness, NOTE_TREE_DEPTH,
};
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::shape::NoteShape;
use zkcohort_circuits::Fr;
use zkcohort_prover::msm::msm;
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
        eprintln!("eligibility {name}: {} constraints", keys.constraints());
        let requests = eligible_requests(shape);
        let mut rng = StdRng::seed_from_u64(2);
        group.bench_function(BenchmarkId::new("zkcohort", name), |b| {
            b.iter(|| keys.prove_with_rng(&requests[0], &mut rng).expect("proves"))
        });
        let (statement, witness) = requests[0].build(shape, Fr::from(7u64)).expect("witness");
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
    let note_keys = CircuitKeys::setup_with_rng(NoteShape::STANDARD, &mut StdRng::seed_from_u64(1))
        .expect("setup");
    eprintln!("note transfer: {} constraints", note_keys.constraints());
    let mut rng = StdRng::seed_from_u64(4);
    let (root, witness) = merge_of_two_notes(&mut rng);
    group.bench_function(BenchmarkId::new("zkcohort", "note-transfer"), |b| {
        b.iter(|| {
            note_keys
                .prove_transfer(&witness, root, 10, Fr::from(1u64), &mut rng)
                .expect("proves")
        })
    });
    group.finish();
}

/// What measures cost: the small shape with 0, 1 and 3 measure slots, each proving the
/// sample query with that many of its measures (the constraint counts printed first).
fn measures(c: &mut Criterion) {
    let mut group = c.benchmark_group("measures");
    group.sample_size(10);
    let sample = eligible_requests(CircuitShape::SMALL);
    for count in [0, 1, 3] {
        let shape = CircuitShape {
            measures: count,
            ..CircuitShape::SMALL
        };
        let keys =
            CircuitKeys::setup_with_rng(shape, &mut StdRng::seed_from_u64(1)).expect("setup");
        eprintln!(
            "small shape, {count} measures: {} constraints",
            keys.constraints()
        );
        let mut request = sample[0].clone();
        request.query.measures.truncate(count);
        let mut rng = StdRng::seed_from_u64(2);
        group.bench_function(BenchmarkId::new("prove", count), |b| {
            b.iter(|| keys.prove_with_rng(&request, &mut rng).expect("proves"))
        });
    }
    group.finish();
}

/// Two notes of one wallet among a hundred others, merged into one with 10 withdrawn.
fn merge_of_two_notes(rng: &mut StdRng) -> (Fr, TransferWitness) {
    let key = SpendingKey::random_with_rng(rng);
    let mut tree = RegistryTree::new(NOTE_TREE_DEPTH).expect("depth");
    let others: Vec<Fr> = (0..100)
        .map(|_| SpendingKey::random_with_rng(rng).note(5, rng).commitment())
        .collect();
    tree.extend(&others).expect("room");
    let notes = [key.note(20, rng), key.note(30, rng)];
    let spent = notes.map(|note| {
        let index = tree.append(note.commitment()).expect("room");
        (note, index)
    });
    let inputs = spent.map(|(note, index)| SpentNote {
        key: key.clone(),
        note,
        path: tree.path(index).expect("appended"),
    });
    let outputs = [CreatedNote::of(&key.note(40, rng)), CreatedNote::zero(rng)];
    let witness =
        TransferWitness::new(NOTE_TREE_DEPTH, tree.root(), inputs, outputs, 10).expect("balances");
    (tree.root(), witness)
}

/// The reference shape's queries with a fixture patient's witness (the H query with
/// random scalars, as the quotient polynomial's coefficients are), per MSM.
fn msm_levers(c: &mut Criterion) {
    let mut group = c.benchmark_group("msm");
    group.sample_size(10);
    let shape = CircuitShape::REFERENCE;
    let keys = CircuitKeys::setup_with_rng(shape, &mut StdRng::seed_from_u64(1)).expect("setup");
    let (statement, witness) = eligible_requests(shape)[0]
        .build(shape, Fr::from(7u64))
        .expect("witness");
    let assignment = keys
        .full_assignment(statement, witness)
        .expect("assignment");
    let scalars: Vec<Fr> = assignment.clone();
    let ints: Vec<_> = scalars.iter().map(|x| x.into_bigint()).collect();
    let witness_from = assignment.len() - keys.proving_key().l_query.len();
    let mut rng = StdRng::seed_from_u64(5);
    let h_scalars: Vec<Fr> = (0..keys.proving_key().h_query.len())
        .map(|_| Fr::rand(&mut rng))
        .collect();
    let h_ints: Vec<_> = h_scalars.iter().map(|x| x.into_bigint()).collect();
    let key = keys.proving_key();
    let g1 = [
        ("a", &key.a_query, &scalars[..], &ints[..]),
        ("b-g1", &key.b_g1_query, &scalars[..], &ints[..]),
        ("h", &key.h_query, &h_scalars[..], &h_ints[..]),
        (
            "l",
            &key.l_query,
            &scalars[witness_from..],
            &ints[witness_from..],
        ),
    ];
    for (name, bases, scalars, ints) in g1 {
        group.bench_function(BenchmarkId::new("arkworks", name), |b| {
            b.iter(|| G1Projective::msm(bases, scalars).expect("lengths"))
        });
        group.bench_function(BenchmarkId::new("zkcohort", name), |b| {
            b.iter(|| msm(bases, ints))
        });
    }
    let bases = &key.b_g2_query;
    group.bench_function(BenchmarkId::new("arkworks", "b-g2"), |b| {
        b.iter(|| G2Projective::msm(bases, &scalars).expect("lengths"))
    });
    group.bench_function(BenchmarkId::new("zkcohort", "b-g2"), |b| {
        b.iter(|| msm(bases, &ints))
    });
    group.finish();
}

criterion_group!(benches, setup, prove, measures, msm_levers);
criterion_main!(benches);
