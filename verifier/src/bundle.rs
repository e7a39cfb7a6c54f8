//! Study bundles: everything a trial sponsor needs to re-check one study
//! offline, and [`verify_bundle`], which checks it end to end.
//!
//! A bundle (JSON, [`BUNDLE_FORMAT`]) holds the marketplace key, the study as
//! the marketplace stores it, the circuit shape its query is compiled for,
//! the verifying key (snarkjs form), every enrollment with its proof, the
//! registry roots those proofs use, and the audit entries that concern the
//! study, each with an RFC 9162 inclusion proof against the one signed head
//! in the bundle.
//!
//! The sponsor trusts nothing in the bundle but the marketplace key it pins:
//! the head's signature vouches for the log, inclusion proofs for each entry,
//! and each entry's payload for the bundle's claims (the study, each
//! enrollment and payout, each root). Everything else is recomputed: the
//! circuit id from the key, the query hash from the query, the scope from
//! the marketplace key and study id, and every statement from those.
//!
//! What a bundle cannot show: enrollments the marketplace left out of both
//! the bundle and the study's counters (a sponsor compares
//! `study.enrolled` over time, or fetches the whole log), and whether a
//! replaced registry root was still within the acceptance window (the bundle
//! holds only the roots used, each proven to precede its enrollment).

use std::collections::{BTreeMap, BTreeSet};

use ark_serialize::CanonicalSerialize;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zkcohort_circuits::clause::query_hash;
use zkcohort_circuits::identity::{signal_hash, Nullifier, StudyScope};
use zkcohort_circuits::statement::{fr_from_bytes, fr_to_bytes, Statement, PUBLIC_INPUT_NAMES};
use zkcohort_cohort::{Catalog, Query};

use crate::audit::{verify_inclusion, AuditEntry, Bytes32, InclusionProof, SignedHead};
use crate::snarkjs::{proof_from_json, SnarkjsVerifyingKey};
use crate::{prepare_verifying_key, verify_batch, Error, VerifyingKey};

/// The bundle format this verifier reads.
pub const BUNDLE_FORMAT: u32 = 1;

/// A study bundle, as `GET /studies/{id}/bundle` serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyBundle {
    /// The format version, [`BUNDLE_FORMAT`].
    pub format: u32,
    /// The marketplace's ed25519 key (hex): it signs audit heads and is part
    /// of every study scope.
    #[serde(with = "crate::hex_serde")]
    pub marketplace_key: Bytes32,
    /// The study as the marketplace stores it.
    pub study: BundleStudy,
    /// The circuit shape the study's query is compiled for.
    pub circuit: BundleCircuit,
    /// The circuit's verifying key (snarkjs `verification_key.json`).
    pub verifying_key: SnarkjsVerifyingKey,
    /// Every enrollment of the study.
    pub enrollments: Vec<BundleEnrollment>,
    /// The registry roots the enrollments' proofs use.
    pub registry_roots: Vec<BundleRoot>,
    /// The audit head every inclusion proof is against, signed by the
    /// marketplace key.
    pub head: SignedHead,
    /// The audit entries that concern the study: `study_created`, each
    /// `escrow_funded`, each `enroll`, `study_closed` if any, and the
    /// registry entries that made each used root current.
    pub audit_entries: Vec<ProvenEntry>,
}

/// The study, in the marketplace's stored JSON form (only what the verifier
/// reads; unknown fields are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleStudy {
    /// Its id.
    pub id: u64,
    /// The researcher's account key.
    #[serde(with = "crate::hex_serde")]
    pub researcher: Bytes32,
    /// A short title.
    pub title: String,
    /// What the study is about.
    pub description: String,
    /// The cohort query in its JSON form.
    pub query: Value,
    /// The Poseidon hash of the compiled query, 32 big-endian bytes.
    #[serde(with = "crate::hex_serde")]
    pub query_hash: Bytes32,
    /// The circuit id (hex SHA-256 of the compressed verifying key).
    pub circuit_id: String,
    /// Tokens paid per enrollment.
    pub reward: u64,
    /// The most enrollments the study takes.
    pub max_enrollments: u64,
    /// The differential-privacy budget.
    pub epsilon_budget: f64,
    /// `open` or `closed`.
    pub status: String,
    /// Enrollments so far.
    pub enrolled: u64,
    /// Tokens left in escrow.
    pub escrow: u64,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// The circuit shape numbers a query is compiled and hashed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleCircuit {
    /// Clauses per query.
    pub clauses: usize,
    /// The slot-tree depth.
    pub slot_depth: usize,
}

/// One enrollment: who was paid what, for which proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleEnrollment {
    /// The nullifier, 32 big-endian bytes.
    #[serde(with = "crate::hex_serde")]
    pub nullifier: Bytes32,
    /// The account the reward was paid to.
    #[serde(with = "crate::hex_serde")]
    pub payout_account: Bytes32,
    /// The reward paid.
    pub reward: u64,
    /// The registry root the proof is against, 32 big-endian bytes.
    #[serde(with = "crate::hex_serde")]
    pub registry_root: Bytes32,
    /// The root's sequence number.
    pub root_seq: u64,
    /// The proof (snarkjs `proof.json`).
    pub proof: Value,
    /// The public inputs as decimal strings, in circuit order.
    pub public_inputs: Vec<String>,
    /// The index of the audit entry that records it.
    pub audit_index: u64,
}

/// A registry root used by an enrollment (the marketplace's root record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRoot {
    /// Its sequence number.
    pub seq: u64,
    /// The root, 32 big-endian bytes.
    #[serde(with = "crate::hex_serde")]
    pub root: Bytes32,
    /// The number of leaves when it became current.
    pub leaf_count: u64,
    /// The audit entry of the change that made it current.
    pub audit_index: u64,
    /// When it became current, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// An audit entry with its inclusion proof against the bundle's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenEntry {
    /// The entry.
    pub entry: AuditEntry,
    /// Its RFC 9162 inclusion proof.
    pub inclusion: InclusionProof,
}

impl StudyBundle {
    /// Reads a bundle from JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] naming where the document is malformed.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|error| Error::Json {
            path: error.path().to_string(),
            message: error.inner().to_string(),
        })
    }

    /// The bundle as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// One check of [`verify_bundle`] and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleCheck {
    /// The check: `format`, `head_signature`, `audit_entries`, `study_record`,
    /// `circuit_id`, `query_hash`, `registry_roots`, `enrollment_entries`,
    /// `public_inputs`, `proofs`, `nullifiers_unique`, `rewards`,
    /// `enrollment_count`, `funds`, `roots_used`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was checked when it passed; every reason it failed otherwise.
    pub detail: String,
}

/// What [`verify_bundle`] checked and found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleReport {
    /// Whether every check passed.
    pub valid: bool,
    /// The study's id.
    pub study_id: u64,
    /// The marketplace key the bundle claims (hex).
    pub marketplace_key: String,
    /// The size of the signed audit head.
    pub head_size: u64,
    /// Audit entries whose hash and inclusion proof verified.
    pub audit_entries_verified: usize,
    /// Enrollments in the bundle.
    pub enrollments: usize,
    /// Proofs that verified against the recomputed statements.
    pub proofs_verified: usize,
    /// Tokens paid out to enrollments.
    pub tokens_paid: u64,
    /// Tokens funded into the study's escrow, per the audit log.
    pub tokens_funded: u64,
    /// Every check, in the order run.
    pub checks: Vec<BundleCheck>,
}

impl BundleReport {
    /// The check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&BundleCheck> {
        self.checks.iter().find(|check| check.name == name)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &BundleCheck> {
        self.checks.iter().filter(|check| !check.passed)
    }
}

/// Collects checks: a check passes when it found no problem.
#[derive(Default)]
struct Checks(Vec<BundleCheck>);

impl Checks {
    fn record(&mut self, name: &str, problems: Vec<String>, passed_detail: String) {
        let passed = problems.is_empty();
        self.0.push(BundleCheck {
            name: name.to_owned(),
            passed,
            detail: if passed {
                passed_detail
            } else {
                problems.join("; ")
            },
        });
    }
}

/// An enrollment's name in reasons: its position and nullifier prefix.
fn name_of(position: usize, enrollment: &BundleEnrollment) -> String {
    format!(
        "enrollment {position} (nullifier {}..)",
        &hex::encode(enrollment.nullifier)[..12]
    )
}

/// The circuit id of a verifying key: SHA-256 of its compressed arkworks
/// serialization, hex (as the prover names circuits).
pub fn circuit_id(verifying_key: &VerifyingKey<ark_bn254::Bn254>) -> String {
    let mut bytes = Vec::new();
    // Serializing into a Vec only fails for points arkworks cannot encode,
    // which a parsed key never holds; an empty id then fails the comparison.
    if verifying_key.serialize_compressed(&mut bytes).is_err() {
        return String::new();
    }
    hex::encode(Sha256::digest(&bytes))
}

/// Checks a study bundle end to end (see the module documentation). With
/// `expected_marketplace_key`, the bundle must be signed by that key. Never
/// fails: every problem is a failed check with its reason.
pub fn verify_bundle(
    bundle: &StudyBundle,
    expected_marketplace_key: Option<&[u8; 32]>,
) -> BundleReport {
    let mut checks = Checks::default();
    let study = &bundle.study;
    let head = &bundle.head;

    checks.record(
        "format",
        if bundle.format == BUNDLE_FORMAT {
            vec![]
        } else {
            vec![format!(
                "format {} (this verifier reads {BUNDLE_FORMAT})",
                bundle.format
            )]
        },
        format!("format {BUNDLE_FORMAT}"),
    );

    let mut problems = Vec::new();
    if let Some(pinned) = expected_marketplace_key {
        if pinned != &bundle.marketplace_key {
            problems.push(format!(
                "the bundle's marketplace key {} is not the pinned key {}",
                hex::encode(bundle.marketplace_key),
                hex::encode(pinned)
            ));
        }
    }
    if head.public_key != bundle.marketplace_key {
        problems.push("the head is signed by another key than the marketplace key".into());
    }
    if let Err(error) = head.verify(expected_marketplace_key) {
        problems.push(error.to_string());
    }
    checks.record(
        "head_signature",
        problems,
        format!(
            "head of size {} signed by {}{}",
            head.head.size,
            hex::encode(head.public_key),
            if expected_marketplace_key.is_some() {
                " (the pinned key)"
            } else {
                ""
            }
        ),
    );

    let trusted = check_audit_entries(&mut checks, bundle);
    check_study_record(&mut checks, bundle, &trusted);

    let verifying_key = bundle.verifying_key.to_verifying_key();
    checks.record(
        "circuit_id",
        match &verifying_key {
            Err(error) => vec![format!("verifying key: {error}")],
            Ok(key) if circuit_id(key) != study.circuit_id => vec![format!(
                "the verifying key's id is {}, the study's circuit is {}",
                circuit_id(key),
                study.circuit_id
            )],
            Ok(_) => vec![],
        },
        format!("the verifying key hashes to {}", study.circuit_id),
    );

    let problems = match recompute_query_hash(bundle) {
        Err(reason) => vec![reason],
        Ok(hash) if hash != study.query_hash => vec![format!(
            "the study's query compiles to query hash {}, the study claims {}",
            hex::encode(hash),
            hex::encode(study.query_hash)
        )],
        Ok(_) => vec![],
    };
    checks.record(
        "query_hash",
        problems,
        format!(
            "the query recompiled for {} clauses, slot depth {} gives the study's hash",
            bundle.circuit.clauses, bundle.circuit.slot_depth
        ),
    );

    check_registry_roots(&mut checks, bundle, &trusted);
    check_enrollment_entries(&mut checks, bundle, &trusted);
    let statements = check_public_inputs(&mut checks, bundle);
    let proofs_verified = check_proofs(&mut checks, bundle, verifying_key.ok(), &statements);

    let mut seen = BTreeSet::new();
    let problems = bundle
        .enrollments
        .iter()
        .enumerate()
        .filter(|(_, enrollment)| !seen.insert(enrollment.nullifier))
        .map(|(position, enrollment)| {
            format!("{} repeats a nullifier", name_of(position, enrollment))
        })
        .collect();
    checks.record(
        "nullifiers_unique",
        problems,
        format!("{} distinct nullifiers", bundle.enrollments.len()),
    );

    let problems = bundle
        .enrollments
        .iter()
        .enumerate()
        .filter(|(_, enrollment)| enrollment.reward != study.reward)
        .map(|(position, enrollment)| {
            format!(
                "{} was paid {}, the study's reward is {}",
                name_of(position, enrollment),
                enrollment.reward,
                study.reward
            )
        })
        .collect();
    checks.record(
        "rewards",
        problems,
        format!("every enrollment was paid the reward {}", study.reward),
    );

    let mut problems = Vec::new();
    if bundle.enrollments.len() as u64 != study.enrolled {
        problems.push(format!(
            "the bundle lists {} enrollments, the study counts {}",
            bundle.enrollments.len(),
            study.enrolled
        ));
    }
    if study.enrolled > study.max_enrollments {
        problems.push(format!(
            "{} enrollments, more than the study's maximum {}",
            study.enrolled, study.max_enrollments
        ));
    }
    checks.record(
        "enrollment_count",
        problems,
        format!(
            "{} enrollments, as the study counts (maximum {})",
            study.enrolled, study.max_enrollments
        ),
    );

    let (tokens_paid, tokens_funded) = check_funds(&mut checks, bundle, &trusted);
    check_roots_used(&mut checks, bundle, &trusted);

    let valid = checks.0.iter().all(|check| check.passed);
    BundleReport {
        valid,
        study_id: study.id,
        marketplace_key: hex::encode(bundle.marketplace_key),
        head_size: head.head.size,
        audit_entries_verified: trusted.len(),
        enrollments: bundle.enrollments.len(),
        proofs_verified,
        tokens_paid,
        tokens_funded,
        checks: checks.0,
    }
}

/// Each included entry's hash and inclusion proof; returns the entries that
/// verified, by index. Only these vouch for anything later.
fn check_audit_entries<'a>(
    checks: &mut Checks,
    bundle: &'a StudyBundle,
) -> BTreeMap<u64, &'a AuditEntry> {
    let head = &bundle.head.head;
    let mut trusted = BTreeMap::new();
    let mut problems = Vec::new();
    for proven in &bundle.audit_entries {
        let entry = &proven.entry;
        let index = entry.index;
        if proven.inclusion.index != index || proven.inclusion.size != head.size {
            problems.push(format!(
                "entry {index}: its inclusion proof is for entry {} of {}, not of the head's {}",
                proven.inclusion.index, proven.inclusion.size, head.size
            ));
        } else if !entry.hash_is_valid() {
            problems.push(format!("entry {index}: hash does not match its content"));
        } else if let Err(error) = verify_inclusion(&entry.hash, &proven.inclusion, &head.root) {
            problems.push(format!("entry {index}: {error}"));
        } else if trusted.insert(index, entry).is_some() {
            problems.push(format!("entry {index} is included twice"));
        }
    }
    checks.record(
        "audit_entries",
        problems,
        format!(
            "{} entries hashed and proven included in the signed head",
            trusted.len()
        ),
    );
    trusted
}

/// The fields of a study fixed at creation, compared with `study_created`.
const FIXED_STUDY_FIELDS: [&str; 11] = [
    "id",
    "researcher",
    "title",
    "description",
    "query",
    "query_hash",
    "circuit_id",
    "reward",
    "max_enrollments",
    "epsilon_budget",
    "created_ms",
];

/// The study agrees with its `study_created` entry; its status with
/// `study_closed`.
fn check_study_record(
    checks: &mut Checks,
    bundle: &StudyBundle,
    trusted: &BTreeMap<u64, &AuditEntry>,
) {
    let study = &bundle.study;
    let mut problems = Vec::new();
    let created: Vec<_> = trusted
        .values()
        .filter(|entry| entry.kind == "study_created" && entry.payload["study"]["id"] == study.id)
        .collect();
    match created.as_slice() {
        [entry] => match serde_json::to_value(study) {
            Ok(claimed) => {
                for field in FIXED_STUDY_FIELDS {
                    if entry.payload["study"][field] != claimed[field] {
                        problems.push(format!(
                            "the study's {field} differs from its study_created entry {}",
                            entry.index
                        ));
                    }
                }
            }
            Err(error) => problems.push(format!("the study does not serialize: {error}")),
        },
        [] => problems.push("no verified study_created entry for this study".into()),
        _ => problems.push("more than one study_created entry for this study".into()),
    }
    let closed: Vec<_> = trusted
        .values()
        .filter(|entry| entry.kind == "study_closed" && entry.payload["study"] == study.id)
        .collect();
    match (study.status.as_str(), closed.as_slice()) {
        ("open", []) => {}
        ("closed", [entry]) => {
            if entry.payload["enrolled"] != study.enrolled {
                problems.push(format!(
                    "the study counts {} enrollments, its study_closed entry {}",
                    study.enrolled, entry.payload["enrolled"]
                ));
            }
        }
        ("open", _) => problems.push("the study is open but the log records it closed".into()),
        ("closed", _) => {
            problems.push("the study is closed but no single study_closed entry says so".into())
        }
        (other, _) => problems.push(format!("unknown study status {other:?}")),
    }
    checks.record(
        "study_record",
        problems,
        format!(
            "study {} ({}) matches its study_created entry",
            study.id, study.status
        ),
    );
}

/// The study's query, recompiled and hashed for the bundle's circuit shape.
fn recompute_query_hash(bundle: &StudyBundle) -> Result<Bytes32, String> {
    let catalog = Catalog::bundled();
    let query = Query::from_json(&bundle.study.query.to_string(), catalog)
        .map_err(|error| format!("the study's query does not parse: {error}"))?;
    let compiled = query
        .compile(catalog)
        .map_err(|error| format!("the study's query does not compile: {error}"))?;
    let hash = query_hash(&compiled, bundle.circuit.clauses, bundle.circuit.slot_depth)
        .map_err(|error| format!("the study's query does not fit the circuit: {error}"))?;
    Ok(fr_to_bytes(&hash))
}

/// Each root record agrees with the verified registry entry that made it
/// current.
fn check_registry_roots(
    checks: &mut Checks,
    bundle: &StudyBundle,
    trusted: &BTreeMap<u64, &AuditEntry>,
) {
    let mut problems = Vec::new();
    for root in &bundle.registry_roots {
        let Some(entry) = trusted.get(&root.audit_index) else {
            problems.push(format!(
                "root {}: its audit entry {} is not among the verified entries",
                root.seq, root.audit_index
            ));
            continue;
        };
        let payload = &entry.payload;
        if !entry.kind.starts_with("registry_")
            || payload["root"] != hex::encode(root.root)
            || payload["root_seq"] != root.seq
            || payload["leaf_count"] != root.leaf_count
            || entry.at_ms != root.at_ms
        {
            problems.push(format!(
                "root {}: differs from its audit entry {} ({})",
                root.seq, entry.index, entry.kind
            ));
        }
    }
    checks.record(
        "registry_roots",
        problems,
        format!(
            "{} root records match their registry entries",
            bundle.registry_roots.len()
        ),
    );
}

/// Each enrollment agrees with its verified `enroll` entry (nullifier, root,
/// proof, public inputs, payout), and every verified `enroll` entry of the
/// study is listed.
fn check_enrollment_entries(
    checks: &mut Checks,
    bundle: &StudyBundle,
    trusted: &BTreeMap<u64, &AuditEntry>,
) {
    let study_id = bundle.study.id;
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for (position, enrollment) in bundle.enrollments.iter().enumerate() {
        let name = name_of(position, enrollment);
        if !listed.insert(enrollment.audit_index) {
            problems.push(format!(
                "{name} shares audit entry {} with another enrollment",
                enrollment.audit_index
            ));
            continue;
        }
        let Some(entry) = trusted.get(&enrollment.audit_index) else {
            problems.push(format!(
                "{name}: its audit entry {} is not among the verified entries",
                enrollment.audit_index
            ));
            continue;
        };
        let payload = &entry.payload;
        let expected_ledger = json!({
            "kind": "payout",
            "debit": { "escrow": study_id },
            "credit": { "key": hex::encode(enrollment.payout_account) },
            "amount": enrollment.reward,
            "study": study_id,
        });
        let mut differs = Vec::new();
        if entry.kind != "enroll" {
            differs.push("kind");
        }
        if payload["study"] != study_id {
            differs.push("study");
        }
        if payload["nullifier"] != hex::encode(enrollment.nullifier) {
            differs.push("nullifier");
        }
        if payload["registry_root"] != hex::encode(enrollment.registry_root) {
            differs.push("registry_root");
        }
        if payload["root_seq"] != enrollment.root_seq {
            differs.push("root_seq");
        }
        if payload["public_inputs"] != json!(enrollment.public_inputs) {
            differs.push("public_inputs");
        }
        if payload["proof"] != enrollment.proof {
            differs.push("proof");
        }
        for (field, value) in expected_ledger.as_object().into_iter().flatten() {
            if &payload["ledger"][field] != value {
                differs.push(match field.as_str() {
                    "credit" => "payout account",
                    "amount" => "reward",
                    _ => "payout ledger entry",
                });
            }
        }
        differs.dedup();
        if !differs.is_empty() {
            problems.push(format!(
                "{name}: {} differ from audit entry {}",
                differs.join(", "),
                entry.index
            ));
        }
    }
    for entry in trusted.values() {
        if entry.kind == "enroll"
            && entry.payload["study"] == study_id
            && !listed.contains(&entry.index)
        {
            problems.push(format!(
                "audit entry {} records an enrollment the bundle does not list",
                entry.index
            ));
        }
    }
    checks.record(
        "enrollment_entries",
        problems,
        format!(
            "{} enrollments match their enroll entries and payouts",
            bundle.enrollments.len()
        ),
    );
}

/// Each enrollment's statement, recomputed from public data; checks the
/// public inputs the bundle lists are exactly these. `None` where an
/// enrollment's nullifier or root is not a field element.
fn check_public_inputs(checks: &mut Checks, bundle: &StudyBundle) -> Vec<Option<Statement>> {
    let study = &bundle.study;
    let scope = StudyScope::for_study(&bundle.marketplace_key, study.id);
    let query_hash = fr_from_bytes(&study.query_hash).ok();
    let mut problems = Vec::new();
    let statements = bundle
        .enrollments
        .iter()
        .enumerate()
        .map(|(position, enrollment)| {
            let name = name_of(position, enrollment);
            let fields = (
                fr_from_bytes(&enrollment.registry_root).ok(),
                query_hash,
                fr_from_bytes(&enrollment.nullifier).ok(),
            );
            let (Some(registry_root), Some(query_hash), Some(nullifier)) = fields else {
                problems.push(format!(
                    "{name}: the root, query hash or nullifier is not a field element"
                ));
                return None;
            };
            let statement = Statement {
                registry_root,
                query_hash,
                study_scope: scope,
                nullifier: Nullifier(nullifier),
                signal_hash: signal_hash(&enrollment.payout_account, scope),
            };
            let expected = statement.to_decimal_strings();
            if expected != enrollment.public_inputs {
                let wrong: Vec<_> = PUBLIC_INPUT_NAMES
                    .iter()
                    .enumerate()
                    .filter(|(at, _)| enrollment.public_inputs.get(*at) != Some(&expected[*at]))
                    .map(|(_, input)| *input)
                    .collect();
                problems.push(format!(
                    "{name}: public inputs {} differ from the recomputed statement{}",
                    wrong.join(", "),
                    if enrollment.public_inputs.len() == expected.len() {
                        String::new()
                    } else {
                        format!(" ({} inputs listed)", enrollment.public_inputs.len())
                    }
                ));
            }
            Some(statement)
        })
        .collect();
    checks.record(
        "public_inputs",
        problems,
        "each enrollment's inputs are (registry_root, query_hash, scope, nullifier, signal_hash(payout, scope))".into(),
    );
    statements
}

/// Every proof against its recomputed statement, in one batch; returns how
/// many verified.
fn check_proofs(
    checks: &mut Checks,
    bundle: &StudyBundle,
    verifying_key: Option<VerifyingKey<ark_bn254::Bn254>>,
    statements: &[Option<Statement>],
) -> usize {
    let Some(verifying_key) = verifying_key else {
        checks.record(
            "proofs",
            vec!["no usable verifying key".into()],
            String::new(),
        );
        return 0;
    };
    let mut problems = Vec::new();
    let mut items = Vec::new();
    let mut positions = Vec::new();
    for (position, (enrollment, statement)) in bundle.enrollments.iter().zip(statements).enumerate()
    {
        let name = name_of(position, enrollment);
        match (statement, proof_from_json(&enrollment.proof.to_string())) {
            (_, Err(error)) => problems.push(format!("{name}: malformed proof: {error}")),
            (None, Ok(_)) => problems.push(format!("{name}: no statement to verify against")),
            (Some(statement), Ok(proof)) => {
                items.push((*statement, proof));
                positions.push(position);
            }
        }
    }
    let verified = match verify_batch(&prepare_verifying_key(&verifying_key), &items) {
        Err(error) => {
            problems.push(format!("verifying key: {error}"));
            0
        }
        Ok(report) => {
            for invalid in &report.invalid {
                let position = positions[*invalid];
                problems.push(format!(
                    "{}: proof does not verify",
                    name_of(position, &bundle.enrollments[position])
                ));
            }
            items.len() - report.invalid.len()
        }
    };
    checks.record(
        "proofs",
        problems,
        format!("{verified} Groth16 proofs verify (one batch)"),
    );
    verified
}

/// Payouts against funding, per the verified ledger entries; returns
/// `(paid, funded)`.
fn check_funds(
    checks: &mut Checks,
    bundle: &StudyBundle,
    trusted: &BTreeMap<u64, &AuditEntry>,
) -> (u64, u64) {
    let study = &bundle.study;
    let escrow = json!({ "escrow": study.id });
    let mut problems = Vec::new();
    let mut funded: u64 = 0;
    let mut refunded: u64 = 0;
    for entry in trusted.values() {
        let ledger = &entry.payload["ledger"];
        if entry.kind == "escrow_funded"
            && ledger["study"] == study.id
            && ledger["kind"] == "fund_escrow"
            && ledger["credit"] == escrow
        {
            let amount = ledger["amount"].as_u64().unwrap_or(0);
            funded = funded.saturating_add(amount);
        }
        if entry.kind == "study_closed" && entry.payload["study"] == study.id {
            let refund = &entry.payload["refund"];
            if !refund.is_null() {
                refunded = refund["amount"].as_u64().unwrap_or(0);
            }
        }
    }
    let paid = bundle.enrollments.iter().fold(0u64, |sum, enrollment| {
        sum.saturating_add(enrollment.reward)
    });
    if paid > funded {
        problems.push(format!("{paid} tokens paid, more than the {funded} funded"));
    } else if funded - paid != refunded.saturating_add(study.escrow) {
        problems.push(format!(
            "{funded} funded - {paid} paid is not the {} left in escrow plus the {refunded} refunded",
            study.escrow
        ));
    }
    checks.record(
        "funds",
        problems,
        format!(
            "{paid} paid of {funded} funded; {} in escrow, {refunded} refunded",
            study.escrow
        ),
    );
    (paid, funded)
}

/// Each enrollment's root is a listed root record, verified in the log
/// before the enrollment.
fn check_roots_used(
    checks: &mut Checks,
    bundle: &StudyBundle,
    trusted: &BTreeMap<u64, &AuditEntry>,
) {
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (position, enrollment) in bundle.enrollments.iter().enumerate() {
        let record = bundle.registry_roots.iter().find(|record| {
            record.root == enrollment.registry_root && record.seq == enrollment.root_seq
        });
        match record {
            None => problems.push(format!(
                "{}: its registry root {} is not a listed root record",
                name_of(position, enrollment),
                enrollment.root_seq
            )),
            Some(record)
                if !trusted.contains_key(&record.audit_index)
                    || record.audit_index >= enrollment.audit_index =>
            {
                problems.push(format!(
                    "{}: root {} was not recorded in the log before the enrollment",
                    name_of(position, enrollment),
                    record.seq
                ))
            }
            Some(record) => {
                used.insert(record.seq);
            }
        }
    }
    checks.record(
        "roots_used",
        problems,
        format!(
            "{} distinct registry roots used, each recorded in the log first",
            used.len()
        ),
    );
}
