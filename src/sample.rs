//! Sample patients: FHIR bundles imported by one issuer, each with a fresh identity
//! and salt, all registered in one registry, ready to prove against a query.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::identity::{IdentitySecret, StudyScope};
use zkcohort_circuits::issuers::IssuerSet;
use zkcohort_circuits::note::SpendingKey;
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::slots::RecordSalt;
use zkcohort_circuits::Fr;
use zkcohort_cohort::query::CompiledQuery;
use zkcohort_cohort::{import_bundle, Catalog, Day, Query};
use zkcohort_prover::ProofRequest;

/// The issuer account of sample records (a fixed test account).
const SAMPLE_ISSUER: [u8; 32] = [1; 32];

/// One sample patient.
pub struct SamplePatient {
    /// The bundle's file name.
    pub name: String,
    /// Everything the patient's wallet would hold for the study.
    pub request: ProofRequest,
    /// Whether the record satisfies the query (the native evaluator's verdict).
    pub eligible: bool,
}

/// The fixture bundles shipped with the repository.
pub fn fixture_bundles() -> Result<Vec<PathBuf>> {
    bundles_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fhir"))
}

/// A file's name for messages and labels (the whole path when it has none).
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// The demo's patients: the fixture bundles and the demo's own (`demo/fhir`).
///
/// # Errors
/// When a folder cannot be read.
pub fn demo_bundles() -> Result<Vec<PathBuf>> {
    let mut bundles = fixture_bundles()?;
    bundles.extend(bundles_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/fhir"),
    )?);
    bundles.sort_by_key(|path| path.file_name().map(ToOwned::to_owned));
    Ok(bundles)
}

/// The `*.json` files in a folder, sorted; at least one.
///
/// # Errors
/// When the folder cannot be read or holds no bundles.
pub fn bundles_in(folder: &Path) -> Result<Vec<PathBuf>> {
    let paths = json_files_in(folder)?;
    anyhow::ensure!(
        !paths.is_empty(),
        "{} holds no .json bundles",
        folder.display()
    );
    Ok(paths)
}

/// The `*.json` files in a folder, sorted (possibly none).
///
/// # Errors
/// When the folder cannot be read.
pub fn json_files_in(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("reading {}", folder.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// Imports the bundles, registers every record, and returns each patient's request
/// for `query` in `study_scope`. Identities, salts and reward receivers come from `seed`.
///
/// # Errors
/// When a bundle cannot be read or imported, or the registry is full.
pub fn sample_patients(
    bundles: &[PathBuf],
    query: &CompiledQuery,
    shape: CircuitShape,
    study_scope: StudyScope,
    seed: u64,
) -> Result<Vec<SamplePatient>> {
    let catalog = Catalog::bundled();
    let issued_at = Day::from_date(chrono::Local::now().date_naive())?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut registry = RegistryTree::new(shape.registry_depth)?;
    let issuers = IssuerSet::new(&[SAMPLE_ISSUER], shape.issuer_depth)?;
    let mut registered = Vec::with_capacity(bundles.len());
    for path in bundles {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let (summary, _) = import_bundle(catalog, &text, issued_at)
            .with_context(|| format!("importing {}", path.display()))?;
        let secret = IdentitySecret::random_with_rng(&mut rng);
        let record = IssuedRecord {
            summary,
            salt: RecordSalt::random_with_rng(&mut rng),
            issuer: SAMPLE_ISSUER,
            issued_at,
        };
        let leaf = record.registry_leaf(secret.commitment(), shape.slot_depth)?;
        let index = registry.append(leaf)?;
        let name = file_name(path);
        // A receiver as a wallet draws it: a fresh note's, to a fresh key.
        let reward_receiver = SpendingKey::random_with_rng(&mut rng)
            .note(0, &mut rng)
            .receiver();
        registered.push((name, secret, record, index, reward_receiver));
    }
    registered
        .into_iter()
        .map(|(name, secret, record, index, reward_receiver)| {
            let eligible = query.evaluate(&record.summary);
            let request = ProofRequest {
                secret,
                record,
                registry_path: registry.path(index)?,
                issuers: issuers.clone(),
                query: query.clone(),
                study_scope,
                reward_receiver,
            };
            Ok(SamplePatient {
                name,
                request,
                eligible,
            })
        })
        .collect()
}

/// A study scope for samples.
pub fn sample_scope() -> StudyScope {
    StudyScope(Fr::from(2026_u64))
}

/// The sample query shipped with the repository (`queries/hypertension.query`), compiled.
///
/// # Errors
/// When the file cannot be read or does not compile.
pub fn sample_query() -> Result<CompiledQuery> {
    let catalog = Catalog::bundled();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/hypertension.query");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Query::parse(&text, catalog)?.compile(catalog)?)
}

/// The fixture patients the sample query admits, as proof requests.
///
/// # Errors
/// As [`sample_patients`].
pub fn eligible_fixture_requests(shape: CircuitShape, seed: u64) -> Result<Vec<ProofRequest>> {
    let patients = sample_patients(
        &fixture_bundles()?,
        &sample_query()?,
        shape,
        sample_scope(),
        seed,
    )?;
    Ok(patients
        .into_iter()
        .filter(|patient| patient.eligible)
        .map(|patient| patient.request)
        .collect())
}

/// One fixture patient (Ali Harris, eligible for the sample query), registered alone.
///
/// # Errors
/// As [`sample_patients`].
pub fn single_fixture_patient(shape: CircuitShape) -> Result<SamplePatient> {
    let bundle: Vec<PathBuf> = fixture_bundles()?
        .into_iter()
        .filter(|path| path.to_string_lossy().contains("Ali_Harris"))
        .collect();
    sample_patients(&bundle, &sample_query()?, shape, sample_scope(), 1)?
        .pop()
        .context("the Ali Harris fixture")
}
