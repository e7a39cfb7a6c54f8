//! Fixtures for the tests and benches of every zkcohort crate, written once: where the
//! Synthea FHIR bundles lie, importing them as issued on one day, the records issuers
//! hand out, registries holding them among other leaves, and the witnesses and proof
//! requests built from them.
//!
//! A dev-dependency only (`publish = false`). It depends on the crates it serves, which
//! Cargo allows for integration tests and benches: they link the same library this
//! crate links, so its types are theirs.
//!
//! Every random value comes from an RNG the caller seeds, drawn in one order (identity
//! secret, then record salt), so a test that pins a value pins it across crates.

use std::path::{Path, PathBuf};

use rand::{CryptoRng, RngCore};
use zkcohort_circuits::circuit::{CircuitShape, EligibilityWitness};
use zkcohort_circuits::identity::{IdentitySecret, StudyScope};
use zkcohort_circuits::issuers::IssuerSet;
use zkcohort_circuits::poseidon::poseidon_hash_fixed;
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::registry::{MembershipPath, RegistryTree};
use zkcohort_circuits::slots::RecordSalt;
use zkcohort_circuits::Fr;
use zkcohort_cohort::{
    import_bundle, Catalog, CompiledQuery, Day, ImportReport, Query, RecordSummary,
};
use zkcohort_prover::ProofRequest;

/// Ali Harris (56, hypertension, no CKD): the patient most tests prove for.
pub const ALI_HARRIS: &str = "Ali_Harris_eed1d00b-7665-4da3-88b7-c37cfb2ed245.json";

/// The issuer account the tests' records come from (the market tests' issuer key acts
/// as it), and the one issuer every [`TestRegistry`]'s study accepts.
pub const ISSUER: [u8; 32] = [9; 32];

/// A second issuer account, which studies of a [`TestRegistry`] do not accept.
pub const OTHER_ISSUER: [u8; 32] = [10; 32];

/// The study most tests run: hypertension, 40 and over, no CKD, measuring age band and sex.
/// [`ALI_HARRIS`] matches.
pub const HYPERTENSION_QUERY: &str = "index date 2021-01-01\nrequire age >= 40\nrequire condition hypertension\nexclude condition ckd\nmeasure age bands 50 65\nmeasure sex";

/// The folder of the Synthea R4 bundles (`tests/fixtures/fhir` at the repository root,
/// where the demo reads them too).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fhir")
}

/// Every fixture bundle, sorted by file name.
pub fn fixture_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("the fixture folder is readable")
        .map(|entry| entry.expect("a fixture folder entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    paths
}

/// The fixture bundle whose file name starts with `prefix` (`"Ali_Harris"`).
pub fn fixture_path(prefix: &str) -> PathBuf {
    fixture_paths()
        .into_iter()
        .find(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no fixture bundle starts with {prefix}"))
}

/// `text` as a day (`"2021-06-01"`).
pub fn day(text: &str) -> Day {
    text.parse()
        .unwrap_or_else(|error| panic!("{text} is not a day: {error}"))
}

/// The day every fixture record is issued: 2021-06-01.
pub fn issued_at() -> Day {
    day("2021-06-01")
}

/// The bundle at `path`, imported as issued on [`issued_at`], with the import's report.
pub fn import_with_report(path: &Path) -> (RecordSummary, ImportReport) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    import_bundle(Catalog::bundled(), &text, issued_at())
        .unwrap_or_else(|error| panic!("cannot import {}: {error}", path.display()))
}

/// The bundle at `path`, imported as issued on [`issued_at`].
pub fn import(path: &Path) -> RecordSummary {
    import_with_report(path).0
}

/// The fixture bundle whose file name starts with `prefix`, imported.
pub fn fixture(prefix: &str) -> RecordSummary {
    import(&fixture_path(prefix))
}

/// [`ALI_HARRIS`], imported.
pub fn ali_harris() -> RecordSummary {
    import(&fixtures_dir().join(ALI_HARRIS))
}

/// `text` (the query language) compiled against the bundled catalog.
pub fn compile(text: &str) -> CompiledQuery {
    let catalog = Catalog::bundled();
    Query::parse(text, catalog)
        .unwrap_or_else(|error| panic!("{text:?} does not parse: {error}"))
        .compile(catalog)
        .unwrap_or_else(|error| panic!("{text:?} does not compile: {error}"))
}

/// A patient's identity holding the record an issuer attested.
#[derive(Clone)]
pub struct Enrollee {
    /// The patient's identity secret.
    pub secret: IdentitySecret,
    /// The record with its salt, issued on [`issued_at`].
    pub record: IssuedRecord,
}

impl Enrollee {
    /// A fresh identity holding `summary` as the issuer acting as account `issuer`
    /// issues it, both secrets drawn from `rng` (the identity first).
    pub fn issue<R: RngCore + CryptoRng>(
        summary: RecordSummary,
        issuer: [u8; 32],
        rng: &mut R,
    ) -> Self {
        let secret = IdentitySecret::random_with_rng(rng);
        let record = IssuedRecord {
            summary,
            salt: RecordSalt::random_with_rng(rng),
            issuer,
            issued_at: issued_at(),
        };
        Self { secret, record }
    }

    /// The registry leaf of this record for trees of `shape`.
    pub fn leaf(&self, shape: CircuitShape) -> Fr {
        self.record
            .registry_leaf(self.secret.commitment(), shape.slot_depth)
            .expect("the record fits the shape")
    }
}

/// A registry of `shape`'s depth that tests fill with enrollees and other leaves, and
/// the issuers its studies accept.
pub struct TestRegistry {
    /// The tree itself.
    pub tree: RegistryTree,
    /// The issuers a study accepts: [`ISSUER`] alone.
    pub issuers: IssuerSet,
    shape: CircuitShape,
}

impl TestRegistry {
    /// An empty registry for `shape`.
    pub fn new(shape: CircuitShape) -> Self {
        Self {
            tree: RegistryTree::new(shape.registry_depth).expect("a valid registry depth"),
            issuers: IssuerSet::new(&[ISSUER], shape.issuer_depth).expect("one issuer"),
            shape,
        }
    }

    /// Appends the leaf Poseidon(`value`), someone else's record; returns its index.
    pub fn other_leaf(&mut self, value: u64) -> u64 {
        self.tree
            .append(poseidon_hash_fixed(&[Fr::from(value)]))
            .expect("room in the registry")
    }

    /// Appends `enrollee`'s leaf; returns its index.
    pub fn register(&mut self, enrollee: &Enrollee) -> u64 {
        self.tree
            .append(enrollee.leaf(self.shape))
            .expect("room in the registry")
    }

    /// The membership path of the leaf at `index`.
    pub fn path(&self, index: u64) -> MembershipPath {
        self.tree.path(index).expect("a registered leaf")
    }

    /// The eligibility witness of `enrollee`, registered at `index`, for `query` (the
    /// issuer path opens the enrollee's issuer when the study accepts it, else position 0;
    /// the measure blinding is derived from the secret and index).
    pub fn witness(
        &self,
        enrollee: &Enrollee,
        index: u64,
        query: &CompiledQuery,
    ) -> EligibilityWitness {
        EligibilityWitness::assemble(
            self.shape,
            &enrollee.secret,
            &enrollee.record,
            self.path(index),
            self.issuers
                .path(&enrollee.record.issuer)
                .or_else(|_| self.issuers.path(&self.issuers.accounts()[0]))
                .expect("a set has a first member"),
            query,
            // Tests need reproducible witnesses; wallets draw the blinding at random.
            poseidon_hash_fixed(&[enrollee.secret.0, Fr::from(index)]),
        )
        .expect("the witness assembles")
    }

    /// The proof request of `enrollee`, registered at `index`, for `query` in `scope`,
    /// paying the note receiver `reward_receiver`.
    pub fn proof_request(
        &self,
        enrollee: &Enrollee,
        index: u64,
        query: &CompiledQuery,
        study_scope: StudyScope,
        reward_receiver: Fr,
    ) -> ProofRequest {
        ProofRequest {
            secret: enrollee.secret.clone(),
            record: enrollee.record.clone(),
            registry_path: self.path(index),
            issuers: self.issuers.clone(),
            query: query.clone(),
            study_scope,
            reward_receiver,
        }
    }
}
