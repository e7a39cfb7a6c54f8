//! Fixtures shared by the circuit tests: a Synthea patient with an issued record
//! registered among other leaves.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::{CircuitShape, EligibilityWitness};
use zkcohort_circuits::identity::{signal_hash, IdentitySecret, StudyScope};
use zkcohort_circuits::poseidon::poseidon_hash_fixed;
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::slots::RecordSalt;
use zkcohort_circuits::statement::Statement;
use zkcohort_circuits::Fr;
use zkcohort_cohort::query::CompiledQuery;
use zkcohort_cohort::{import_bundle, Catalog, Day, Query, RecordSummary};

pub const SHAPE: CircuitShape = CircuitShape::SMALL;

pub fn day(text: &str) -> Day {
    text.parse().unwrap()
}

pub fn fixture(prefix: &str) -> RecordSummary {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fhir");
    let path = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(prefix)
        })
        .unwrap();
    import_bundle(
        Catalog::bundled(),
        &std::fs::read_to_string(path).unwrap(),
        day("2021-06-01"),
    )
    .unwrap()
    .0
}

pub fn compile(text: &str) -> CompiledQuery {
    let catalog = Catalog::bundled();
    Query::parse(text, catalog)
        .unwrap()
        .compile(catalog)
        .unwrap()
}

/// A patient with an issued record registered among other leaves.
pub struct Patient {
    pub secret: IdentitySecret,
    pub record: IssuedRecord,
    pub registry: RegistryTree,
    pub index: u64,
}

pub fn patient(summary: RecordSummary) -> Patient {
    let mut rng = StdRng::seed_from_u64(42);
    let secret = IdentitySecret::random_with_rng(&mut rng);
    let record = IssuedRecord {
        summary,
        salt: RecordSalt::random_with_rng(&mut rng),
        issuer_id: 7,
        issued_at: day("2021-06-01"),
    };
    let mut registry = RegistryTree::new(SHAPE.registry_depth).unwrap();
    for other in 1..=5u64 {
        registry
            .append(poseidon_hash_fixed(&[Fr::from(other)]))
            .unwrap();
    }
    let index = registry
        .append(
            record
                .registry_leaf(secret.commitment(), SHAPE.slot_depth)
                .unwrap(),
        )
        .unwrap();
    registry
        .append(poseidon_hash_fixed(&[Fr::from(99u64)]))
        .unwrap();
    Patient {
        secret,
        record,
        registry,
        index,
    }
}

pub const SCOPE: StudyScope = StudyScope(Fr::new(ark_ff::BigInt([11, 0, 0, 0])));

pub fn witness(patient: &Patient, query: &CompiledQuery) -> EligibilityWitness {
    let path = patient.registry.path(patient.index).unwrap();
    EligibilityWitness::assemble(SHAPE, &patient.secret, &patient.record, path, query).unwrap()
}

pub fn statement(witness: &EligibilityWitness) -> Statement {
    witness.statement(SCOPE, signal_hash(&[3; 32], SCOPE))
}
