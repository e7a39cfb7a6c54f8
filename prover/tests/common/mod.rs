//! Fixtures shared by the prover's tests: the small shape, a fixture patient's request,
//! and snarkjs from the repository's `node_modules`.

#![allow(dead_code, unreachable_pub)] // each test binary uses its own part of the fixtures

use std::path::{Path, PathBuf};
use std::process::Command;

use ark_bn254::Fr;
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::identity::{IdentitySecret, StudyScope};
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::slots::RecordSalt;
use zkcohort_cohort::{import_bundle, Catalog, Day, Query};
use zkcohort_prover::ProofRequest;

pub const SHAPE: CircuitShape = CircuitShape::SMALL;
pub const SNARKJS: &str = "snarkjs@0.7.6";
const QUERY: &str = "index date 2021-01-01\nrequire age >= 40\nrequire condition hypertension\nexclude condition ckd";
/// Ali Harris (56, hypertension): eligible for `QUERY`.
const PATIENT: &str = "Ali_Harris_eed1d00b-7665-4da3-88b7-c37cfb2ed245.json";

/// A shape smaller than [`SHAPE`] for the ceremony tests (2¹² powers of tau instead of
/// 2¹⁴): one clause, so [`request_for`] with a one-clause query.
pub const TINY: CircuitShape = CircuitShape {
    clauses: 1,
    slot_depth: 8,
    registry_depth: 2,
};
/// A query that fits [`TINY`].
pub const TINY_QUERY: &str = "index date 2021-01-01\nrequire condition hypertension";

/// The fixture patient's request for [`SHAPE`].
pub fn request() -> ProofRequest {
    request_for(SHAPE, QUERY)
}

/// The fixture patient's request for `query`, registered in a registry of one of `shape`.
pub fn request_for(shape: CircuitShape, query: &str) -> ProofRequest {
    let catalog = Catalog::bundled();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/fhir")
        .join(PATIENT);
    let issued_at: Day = "2021-06-01".parse().unwrap();
    let summary = import_bundle(catalog, &std::fs::read_to_string(path).unwrap(), issued_at)
        .unwrap()
        .0;
    let mut rng = StdRng::seed_from_u64(2);
    let secret = IdentitySecret::random_with_rng(&mut rng);
    let record = IssuedRecord {
        summary,
        salt: RecordSalt::random_with_rng(&mut rng),
        issuer_id: 3,
        issued_at,
    };
    let mut registry = RegistryTree::new(shape.registry_depth).unwrap();
    let index = registry
        .append(
            record
                .registry_leaf(secret.commitment(), shape.slot_depth)
                .unwrap(),
        )
        .unwrap();
    ProofRequest {
        secret,
        record,
        registry_path: registry.path(index).unwrap(),
        query: Query::parse(query, catalog)
            .unwrap()
            .compile(catalog)
            .unwrap(),
        study_scope: StudyScope(Fr::from(77u64)),
        payout_account: [7; 32],
    }
}

/// What one snarkjs command did.
pub struct Outcome {
    pub success: bool,
    pub output: String,
}

/// Runs snarkjs from the repository's `node_modules` in `folder`.
pub fn snarkjs(folder: &Path, arguments: &[&str]) -> Outcome {
    let program: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/snarkjs");
    assert!(
        program.exists(),
        "snarkjs is not installed at {}: run `npm install --no-save --no-audit --no-fund {SNARKJS}` \
         at the repository root (.ci/run does)",
        program.display()
    );
    let output = Command::new(&program)
        .args(arguments)
        .current_dir(folder)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {}: {error} (is node installed?)",
                program.display()
            )
        });
    Outcome {
        success: output.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// The byte range of section `id` of an iden3 binfile.
pub fn section(bytes: &[u8], id: u32) -> std::ops::Range<usize> {
    let count = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    let mut position = 12;
    for _ in 0..count {
        let found = u32::from_le_bytes(bytes[position..position + 4].try_into().unwrap());
        let size = u64::from_le_bytes(bytes[position + 4..position + 12].try_into().unwrap());
        position += 12;
        if found == id {
            return position..position + size as usize;
        }
        position += size as usize;
    }
    panic!("no section {id}");
}
