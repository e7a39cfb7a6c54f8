//! Fixtures shared by the prover's tests: the small shape and its keys, fixture patients'
//! requests, and snarkjs from the repository's `node_modules`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ark_bn254::Fr;
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::identity::StudyScope;
use zkcohort_prover::{CircuitKeys, ProofRequest};
use zkcohort_testkit::{
    ali_harris, compile, fixture_paths, import, Enrollee, TestRegistry, ISSUER,
};

pub(crate) const SHAPE: CircuitShape = CircuitShape::SMALL;
pub(crate) const SNARKJS: &str = "snarkjs@0.7.6";
/// [`zkcohort_testkit::ALI_HARRIS`] is eligible for it.
pub(crate) const QUERY: &str = zkcohort_testkit::HYPERTENSION_QUERY;
/// The study scope of every request.
const SCOPE: StudyScope = StudyScope(Fr::new(ark_ff::BigInt([77, 0, 0, 0])));

/// A shape smaller than [`SHAPE`] for the ceremony tests (2¹³ powers of tau instead of
/// 2¹⁵): one clause and no measures, so [`request_for`] with a one-clause query.
pub(crate) const TINY: CircuitShape = CircuitShape {
    clauses: 1,
    slot_depth: 8,
    registry_depth: 1,
    issuer_depth: 1,
    measures: 0,
    measure_bins: 3,
};
/// A query that fits [`TINY`].
pub(crate) const TINY_QUERY: &str = "index date 2021-01-01\nrequire condition hypertension";

/// The small-shape keys (seed 1), set up once for the whole test binary.
pub(crate) fn keys() -> &'static CircuitKeys {
    static KEYS: OnceLock<CircuitKeys> = OnceLock::new();
    KEYS.get_or_init(|| CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(1)).unwrap())
}

/// The fixture patient's request for [`SHAPE`].
pub(crate) fn request() -> ProofRequest {
    request_for(SHAPE, QUERY)
}

/// Ali Harris's request for `query` (issuer 3, seed 2), alone in a registry of `shape`,
/// paying `[7; 32]`.
pub(crate) fn request_for(shape: CircuitShape, query: &str) -> ProofRequest {
    let enrollee = Enrollee::issue(ali_harris(), ISSUER, &mut StdRng::seed_from_u64(2));
    let mut registry = TestRegistry::new(shape);
    let index = registry.register(&enrollee);
    registry.proof_request(&enrollee, index, &compile(query), SCOPE, Fr::from(7u64))
}

/// One request for [`QUERY`] per fixture patient (issuer 3, seed 2), all in one
/// registry of [`SHAPE`] in file-name order, patient `i` paying `[i; 32]`.
pub(crate) fn requests() -> Vec<ProofRequest> {
    let query = compile(QUERY);
    let mut rng = StdRng::seed_from_u64(2);
    let mut registry = TestRegistry::new(SHAPE);
    let enrollees: Vec<(Enrollee, u64)> = fixture_paths()
        .iter()
        .map(|path| {
            let enrollee = Enrollee::issue(import(path), ISSUER, &mut rng);
            let index = registry.register(&enrollee);
            (enrollee, index)
        })
        .collect();
    enrollees
        .iter()
        .map(|(enrollee, index)| {
            registry.proof_request(enrollee, *index, &query, SCOPE, Fr::from(*index))
        })
        .collect()
}

/// What one snarkjs command did.
pub(crate) struct Outcome {
    pub(crate) success: bool,
    pub(crate) output: String,
}

/// Runs snarkjs from the repository's `node_modules` in `folder`.
pub(crate) fn snarkjs(folder: &Path, arguments: &[&str]) -> Outcome {
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
pub(crate) fn section(bytes: &[u8], id: u32) -> std::ops::Range<usize> {
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
