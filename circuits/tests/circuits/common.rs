//! Fixtures shared by the circuit tests: a Synthea patient with an issued record
//! registered among other leaves.

use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::{CircuitShape, EligibilityWitness};
use zkcohort_circuits::identity::{signal_hash, IdentitySecret, StudyScope};
use zkcohort_circuits::issuers::IssuerSet;
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::statement::Statement;
use zkcohort_circuits::Fr;
use zkcohort_cohort::query::CompiledQuery;
use zkcohort_cohort::RecordSummary;
use zkcohort_testkit::{Enrollee, TestRegistry, ISSUER};

pub(crate) use zkcohort_testkit::{compile, fixture, OTHER_ISSUER};

pub(crate) const SHAPE: CircuitShape = CircuitShape::SMALL;

/// A patient with an issued record registered among other leaves.
pub(crate) struct Patient {
    pub(crate) secret: IdentitySecret,
    pub(crate) record: IssuedRecord,
    pub(crate) registry: RegistryTree,
    pub(crate) index: u64,
}

/// `summary` issued by [`ISSUER`] (seed 42), registered after five other leaves and
/// before one more.
pub(crate) fn patient(summary: RecordSummary) -> Patient {
    let enrollee = Enrollee::issue(summary, ISSUER, &mut StdRng::seed_from_u64(42));
    let mut registry = TestRegistry::new(SHAPE);
    for other in 1..=5u64 {
        registry.other_leaf(other);
    }
    let index = registry.register(&enrollee);
    registry.other_leaf(99);
    Patient {
        secret: enrollee.secret,
        record: enrollee.record,
        registry: registry.tree,
        index,
    }
}

/// The measure blinding of the tests' witnesses.
pub(crate) const MEASURE_BLINDING: Fr = Fr::new(ark_ff::BigInt([77, 0, 0, 0]));

pub(crate) const SCOPE: StudyScope = StudyScope(Fr::new(ark_ff::BigInt([11, 0, 0, 0])));

/// The issuers the tests' studies accept: [`ISSUER`] alone.
pub(crate) fn issuers() -> IssuerSet {
    IssuerSet::new(&[ISSUER], SHAPE.issuer_depth).unwrap()
}

pub(crate) fn witness(patient: &Patient, query: &CompiledQuery) -> EligibilityWitness {
    let path = patient.registry.path(patient.index).unwrap();
    let issuer_path = issuers().path(&ISSUER).unwrap();
    EligibilityWitness::assemble(
        SHAPE,
        &patient.secret,
        &patient.record,
        path,
        issuer_path,
        query,
        MEASURE_BLINDING,
    )
    .unwrap()
}

pub(crate) fn statement(witness: &EligibilityWitness) -> Statement {
    witness.statement(SCOPE, signal_hash(Fr::from(3u64), SCOPE))
}
