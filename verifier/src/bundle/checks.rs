//! [`verify_bundle`] and its checks, each its own function, run in the order
//! the report lists them. Only audit entries whose hash and inclusion proof
//! verified (`trusted`) vouch for anything.

use std::collections::{BTreeMap, BTreeSet};

use zkcohort_circuits::clause::query_hash;
use zkcohort_circuits::issuers::IssuerSet;
use zkcohort_circuits::note::note_commitment;
use zkcohort_circuits::statement::{
    fr_from_bytes, fr_from_decimal, fr_to_bytes, EnrollmentInputs, Statement, PUBLIC_INPUTS,
    PUBLIC_INPUT_NAMES,
};
use zkcohort_circuits::{CircuitId, Fr};
use zkcohort_cohort::Catalog;

use super::report::Checks;
use super::{BundleEnrollment, BundleReport, StudyBundle, BUNDLE_FORMAT};
use crate::audit::{holder_signature_is_valid, verify_inclusion, AuditEntry, Bytes32};
use crate::events::{AuditEvent, EnrollmentRecord};
use crate::records::{Account, LedgerEntry, LedgerKind, Study, StudyStatus};
use crate::release_budgets::ReleaseBudgets;
use crate::setup::{CeremonyTranscript, KeySetup};
use crate::{prepare_verifying_key, verify_batch, VerifyingKey};

/// The verified audit entries, by index.
type Trusted<'a> = BTreeMap<u64, &'a AuditEntry>;

/// An enrollment's name in reasons: its position and nullifier prefix.
fn name_of(position: usize, enrollment: &BundleEnrollment) -> String {
    format!(
        "enrollment {position} (nullifier {}..)",
        &hex::encode(enrollment.nullifier)[..12]
    )
}

/// Checks a study bundle end to end (see the module documentation). With
/// `expected_marketplace_key`, the bundle must be signed by that key; with
/// `transcript`, its verifying key must be that ceremony's output and its setup
/// must name that transcript. Never fails: every problem is a failed check with
/// its reason.
pub fn verify_bundle(
    bundle: &StudyBundle,
    expected_marketplace_key: Option<&[u8; 32]>,
    transcript: Option<&CeremonyTranscript>,
) -> BundleReport {
    let mut checks = Checks::default();
    check_format(&mut checks, bundle);
    check_head_signature(&mut checks, bundle, expected_marketplace_key);
    let trusted = check_audit_entries(&mut checks, bundle);
    check_study_chain(&mut checks, bundle, &trusted);
    check_study_record(&mut checks, bundle, &trusted);
    let verifying_key = check_circuit_id(&mut checks, bundle);
    check_setup(&mut checks, bundle, verifying_key.as_ref(), transcript);
    check_query_hash(&mut checks, bundle);
    let issuers_root = check_issuers(&mut checks, bundle);
    check_registry_roots(&mut checks, bundle, &trusted);
    check_enrollment_entries(&mut checks, bundle, &trusted);
    let statements = check_public_inputs(&mut checks, bundle, issuers_root);
    let proofs_verified = check_proofs(&mut checks, bundle, verifying_key, &statements);
    check_nullifiers_unique(&mut checks, bundle);
    check_rewards(&mut checks, bundle);
    check_enrollment_count(&mut checks, bundle);
    let (tokens_paid, tokens_funded) = check_funds(&mut checks, bundle, &trusted);
    check_roots_used(&mut checks, bundle, &trusted);
    check_release_budgets(&mut checks, &trusted);

    let study = &bundle.study;
    BundleReport {
        valid: checks.0.iter().all(|check| check.passed),
        study_id: study.id,
        marketplace_key: hex::encode(bundle.marketplace_key),
        setup: bundle.setup,
        head_size: bundle.head.head.size,
        audit_entries_verified: trusted.len(),
        enrollments: bundle.enrollments.len(),
        proofs_verified,
        tokens_paid,
        tokens_funded,
        checks: checks.0,
    }
}

/// The bundle is in the format this verifier reads.
fn check_format(checks: &mut Checks, bundle: &StudyBundle) {
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
}

/// The head is signed by the bundle's marketplace key, and that key is the
/// pinned one when a key is pinned.
fn check_head_signature(
    checks: &mut Checks,
    bundle: &StudyBundle,
    expected_marketplace_key: Option<&[u8; 32]>,
) {
    let head = &bundle.head;
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
}

/// Each included entry's hash and inclusion proof; returns the entries that
/// verified, by index. Only these vouch for anything later.
fn check_audit_entries<'a>(checks: &mut Checks, bundle: &'a StudyBundle) -> Trusted<'a> {
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

/// The bundle holds the study's whole chain, from the signed study head back to the
/// study's `study_created` entry, and no other entry of the study.
fn check_study_chain(checks: &mut Checks, bundle: &StudyBundle, trusted: &Trusted<'_>) {
    let study_id = bundle.study.id;
    let signed = &bundle.head.study;
    let mut problems = Vec::new();
    if signed.study != study_id {
        problems.push(format!(
            "the signed study head is study {}'s, the bundle is study {study_id}'s",
            signed.study
        ));
    }
    let mut chain = BTreeSet::new();
    let mut next = Some(signed.last_index);
    while let Some(index) = next {
        let Some(entry) = trusted.get(&index) else {
            problems.push(format!(
                "the study's entry {index} is not among the verified entries: the bundle leaves out part of the study's chain"
            ));
            break;
        };
        if entry.event.study() != Some(study_id) {
            problems.push(format!(
                "entry {index} in the study's chain is not the study's"
            ));
            break;
        }
        if entry.study_prev.is_some_and(|prev| prev >= index) || !chain.insert(index) {
            problems.push(format!(
                "entry {index} does not link back to an earlier entry"
            ));
            break;
        }
        if entry.study_prev.is_none() && !matches!(entry.event, AuditEvent::StudyCreated(_)) {
            problems.push(format!(
                "the chain ends at entry {index}, which is not the study's study_created entry"
            ));
        }
        next = entry.study_prev;
    }
    if problems.is_empty() && chain.len() as u64 != signed.entries {
        problems.push(format!(
            "the chain has {} entries, the signed study head {}",
            chain.len(),
            signed.entries
        ));
    }
    for entry in trusted.values() {
        if entry.event.study() == Some(study_id) && !chain.contains(&entry.index) {
            problems.push(format!(
                "entry {} is the study's but not in its chain up to the signed study head",
                entry.index
            ));
        }
    }
    checks.record(
        "study_chain",
        problems,
        format!(
            "the study's {} entries, chained from its signed head (entry {}) back to study_created",
            signed.entries, signed.last_index
        ),
    );
}

/// The study agrees with its `study_created` entry in every field fixed at
/// creation; its status with `study_closed`.
fn check_study_record(checks: &mut Checks, bundle: &StudyBundle, trusted: &Trusted<'_>) {
    let study = &bundle.study;
    let mut problems = Vec::new();
    let created: Vec<_> = trusted
        .values()
        .filter_map(|entry| match &entry.event {
            AuditEvent::StudyCreated(created) if created.study.id == study.id => {
                Some((entry.index, &created.study))
            }
            _ => None,
        })
        .collect();
    match created.as_slice() {
        [(index, original)] => {
            for field in fixed_fields_differing(study, original) {
                problems.push(format!(
                    "the study's {field} differs from its study_created entry {index}"
                ));
            }
        }
        [] => problems.push("no verified study_created entry for this study".into()),
        _ => problems.push("more than one study_created entry for this study".into()),
    }
    let closed: Vec<_> = trusted
        .values()
        .filter_map(|entry| match &entry.event {
            AuditEvent::StudyClosed(closed) if closed.study == study.id => Some(closed),
            _ => None,
        })
        .collect();
    match (study.status, closed.as_slice()) {
        (StudyStatus::Open, []) => {}
        (StudyStatus::Closed, [closed]) => {
            if closed.enrolled != study.enrolled {
                problems.push(format!(
                    "the study counts {} enrollments, its study_closed entry {}",
                    study.enrolled, closed.enrolled
                ));
            }
        }
        (StudyStatus::Open, _) => {
            problems.push("the study is open but the log records it closed".into())
        }
        (StudyStatus::Closed, _) => {
            problems.push("the study is closed but no single study_closed entry says so".into())
        }
    }
    checks.record(
        "study_record",
        problems,
        format!(
            "study {} ({}) matches its study_created entry",
            study.id,
            match study.status {
                StudyStatus::Open => "open",
                StudyStatus::Closed => "closed",
            }
        ),
    );
}

/// The fields fixed at a study's creation in which `study` differs from
/// `original` (status, enrollments and escrow change later).
fn fixed_fields_differing(study: &Study, original: &Study) -> Vec<&'static str> {
    [
        ("id", study.id == original.id),
        ("researcher", study.researcher == original.researcher),
        ("title", study.title == original.title),
        ("description", study.description == original.description),
        ("query", study.query == original.query),
        ("query_hash", study.query_hash == original.query_hash),
        ("circuit_id", study.circuit_id == original.circuit_id),
        ("issuers", study.issuers == original.issuers),
        ("issuers_root", study.issuers_root == original.issuers_root),
        ("min_root_seq", study.min_root_seq == original.min_root_seq),
        (
            "root_window_ms",
            study.root_window_ms == original.root_window_ms,
        ),
        ("reward", study.reward == original.reward),
        (
            "max_enrollments",
            study.max_enrollments == original.max_enrollments,
        ),
        ("min_cohort", study.min_cohort == original.min_cohort),
        (
            "epsilon_budget",
            study.epsilon_budget.to_bits() == original.epsilon_budget.to_bits(),
        ),
        ("created_ms", study.created_ms == original.created_ms),
    ]
    .into_iter()
    .filter(|(_, same)| !same)
    .map(|(field, _)| field)
    .collect()
}

/// The verifying key parses and hashes to the study's circuit id; returns
/// the key when it parses.
fn check_circuit_id(
    checks: &mut Checks,
    bundle: &StudyBundle,
) -> Option<VerifyingKey<ark_bn254::Bn254>> {
    let study = &bundle.study;
    let (problems, key) = match bundle.verifying_key.to_verifying_key() {
        Err(error) => (vec![format!("verifying key: {error}")], None),
        // A key of another circuit still checks the proofs: each failure is named.
        Ok(key) if CircuitId::of(&key) != study.circuit_id => (
            vec![format!(
                "the verifying key's id is {}, the study's circuit is {}",
                CircuitId::of(&key),
                study.circuit_id
            )],
            Some(key),
        ),
        Ok(key) => (vec![], Some(key)),
    };
    checks.record(
        "circuit_id",
        problems,
        format!("the verifying key hashes to {}", study.circuit_id),
    );
    key
}

/// Where the key came from. Unpinned, the bundle's word is reported (a development
/// setup prominently, by the command line). With a pinned transcript, the bundle must
/// name it and its verifying key must be the transcript's final key (compared by
/// circuit id, the hash of the whole key).
fn check_setup(
    checks: &mut Checks,
    bundle: &StudyBundle,
    verifying_key: Option<&VerifyingKey<ark_bn254::Bn254>>,
    transcript: Option<&CeremonyTranscript>,
) {
    let mut problems = Vec::new();
    let detail = match (bundle.setup, transcript) {
        (KeySetup::Development, None) => {
            "DEVELOPMENT SETUP: a single party made the keys and could forge every proof".into()
        }
        (KeySetup::Development, Some(transcript)) => {
            problems.push(format!(
                "the bundle's keys are a development setup, not ceremony {}",
                transcript.id
            ));
            String::new()
        }
        (KeySetup::Ceremony { transcript_id }, None) => format!(
            "ceremony transcript {transcript_id}, as the marketplace says (pin it with --transcript)"
        ),
        (KeySetup::Ceremony { transcript_id }, Some(transcript)) => {
            if transcript_id != transcript.id {
                problems.push(format!(
                    "the bundle names ceremony {transcript_id}, the pinned transcript is {}",
                    transcript.id
                ));
            }
            let ours = CircuitId::of(&transcript.verifying_key);
            match verifying_key {
                Some(key) if CircuitId::of(key) == ours => {}
                Some(key) => problems.push(format!(
                    "the bundle's verifying key (circuit {}) is not the transcript's output (circuit {ours})",
                    CircuitId::of(key)
                )),
                None => problems.push("the bundle's verifying key does not read".into()),
            }
            format!("the verifying key is the output of the pinned ceremony transcript {transcript_id}")
        }
    };
    checks.record("setup", problems, detail);
}

/// The study's query, recompiled for the bundle's circuit shape, hashes to
/// the study's query hash.
fn check_query_hash(checks: &mut Checks, bundle: &StudyBundle) {
    let study = &bundle.study;
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
}

/// The study's issuer set gives the issuers root it claims; returns the recomputed root
/// (every statement is rebuilt with it), `None` when the set is not a valid one.
fn check_issuers(checks: &mut Checks, bundle: &StudyBundle) -> Option<Fr> {
    let study = &bundle.study;
    let (problems, root) = match IssuerSet::new(&study.issuers, bundle.circuit.issuer_depth) {
        Err(error) => (vec![error.to_string()], None),
        Ok(set) if set.accounts() != study.issuers.as_slice() => (
            vec!["the study's issuers are not listed once each in ascending order".into()],
            Some(set.root()),
        ),
        Ok(set) if fr_to_bytes(&set.root()) != study.issuers_root => (
            vec![format!(
                "the study's issuers give issuers root {}, the study claims {}",
                hex::encode(fr_to_bytes(&set.root())),
                hex::encode(study.issuers_root)
            )],
            Some(set.root()),
        ),
        Ok(set) => (vec![], Some(set.root())),
    };
    checks.record(
        "issuers",
        problems,
        format!(
            "the study accepts records of {} issuer(s): {}",
            study.issuers.len(),
            study
                .issuers
                .iter()
                .map(hex::encode)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    root
}

/// The study's query, recompiled and hashed for the bundle's circuit shape.
fn recompute_query_hash(bundle: &StudyBundle) -> Result<Bytes32, String> {
    let compiled = bundle
        .study
        .query
        .compile(Catalog::bundled())
        .map_err(|error| format!("the study's query does not compile: {error}"))?;
    let hash = query_hash(&compiled, &bundle.circuit.shape())
        .map_err(|error| format!("the study's query does not fit the circuit: {error}"))?;
    Ok(fr_to_bytes(&hash))
}

/// Each root record agrees with the verified registry entry that made it
/// current.
fn check_registry_roots(checks: &mut Checks, bundle: &StudyBundle, trusted: &Trusted<'_>) {
    let mut problems = Vec::new();
    for root in &bundle.registry_roots {
        let Some(entry) = trusted.get(&root.audit_index) else {
            problems.push(format!(
                "root {}: its audit entry {} is not among the verified entries",
                root.seq, root.audit_index
            ));
            continue;
        };
        let agrees = entry.event.root_change().is_some_and(|change| {
            change.root == root.root
                && change.root_seq == root.seq
                && change.leaf_count == root.leaf_count
        }) && entry.at_ms == root.at_ms;
        if !agrees {
            problems.push(format!(
                "root {}: differs from its audit entry {} ({})",
                root.seq,
                entry.index,
                entry.event.kind()
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

/// The fields of an enrollment that differ from its `enroll` entry.
fn enrollment_differences(
    study_id: u64,
    enrollment: &BundleEnrollment,
    record: &EnrollmentRecord,
) -> Vec<&'static str> {
    let expected_payout = LedgerEntry {
        seq: record.ledger.seq,
        kind: LedgerKind::Payout,
        debit: Account::Escrow(study_id),
        credit: Account::Notes,
        amount: enrollment.reward,
        study: Some(study_id),
        at_ms: record.ledger.at_ms,
    };
    let payout = &record.ledger;
    let mut differs = Vec::new();
    for (field, same) in [
        ("study", record.study == study_id),
        ("nullifier", record.nullifier == enrollment.nullifier),
        (
            "registry_root",
            record.registry_root == enrollment.registry_root,
        ),
        ("root_seq", record.root_seq == enrollment.root_seq),
        (
            "public_inputs",
            record.public_inputs == enrollment.public_inputs,
        ),
        ("proof", record.proof == enrollment.proof),
        (
            "reward_receiver",
            record.reward_receiver == enrollment.reward_receiver,
        ),
        (
            "note_commitment",
            record.note.commitments == [enrollment.note_commitment],
        ),
        (
            "payout into the note pool",
            payout.credit == expected_payout.credit,
        ),
        ("reward", payout.amount == expected_payout.amount),
        (
            "payout ledger entry",
            payout.kind == expected_payout.kind
                && payout.debit == expected_payout.debit
                && payout.study == expected_payout.study,
        ),
    ] {
        if !same {
            differs.push(field);
        }
    }
    differs
}

/// Each enrollment agrees with its verified `enroll` entry (nullifier, root,
/// proof, public inputs, payout), and every verified `enroll` entry of the
/// study is listed.
fn check_enrollment_entries(checks: &mut Checks, bundle: &StudyBundle, trusted: &Trusted<'_>) {
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
        let differs = match &entry.event {
            AuditEvent::Enroll(record) => enrollment_differences(study_id, enrollment, record),
            _ => vec!["kind"],
        };
        if !differs.is_empty() {
            problems.push(format!(
                "{name}: {} differ from audit entry {}",
                differs.join(", "),
                entry.index
            ));
        }
    }
    for entry in trusted.values() {
        if matches!(&entry.event, AuditEvent::Enroll(record) if record.study == study_id)
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
fn check_public_inputs(
    checks: &mut Checks,
    bundle: &StudyBundle,
    issuers_root: Option<Fr>,
) -> Vec<Option<Statement>> {
    let study = &bundle.study;
    let query_hash = fr_from_bytes(&study.query_hash).ok();
    let mut problems = Vec::new();
    let statements = bundle
        .enrollments
        .iter()
        .enumerate()
        .map(|(position, enrollment)| {
            let name = name_of(position, enrollment);
            // The commitment hides the measure values; nothing public recomputes it, but
            // the proof binds it, so it must be a field element the proof verifies with.
            let measure_commitment = enrollment
                .public_inputs
                .get(PUBLIC_INPUTS - 1)
                .and_then(|input| fr_from_decimal(input).ok());
            let fields = (
                fr_from_bytes(&enrollment.registry_root).ok(),
                query_hash,
                fr_from_bytes(&enrollment.nullifier).ok(),
                fr_from_bytes(&enrollment.reward_receiver).ok(),
                issuers_root,
                measure_commitment,
            );
            let (
                Some(registry_root),
                Some(query_hash),
                Some(nullifier),
                Some(reward_receiver),
                Some(issuers_root),
                Some(measure_commitment),
            ) = fields
            else {
                problems.push(format!(
                    "{name}: the root, query hash, nullifier, reward receiver, issuers root or measure commitment is not a field element"
                ));
                return None;
            };
            let statement = Statement::for_enrollment(EnrollmentInputs {
                marketplace_key: &bundle.marketplace_key,
                study_id: study.id,
                query_hash,
                issuers_root,
                registry_root,
                nullifier,
                reward_receiver,
                measure_commitment,
            });
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
        "each enrollment's inputs are (registry_root, query_hash, scope, nullifier, signal_hash(reward_receiver, scope), issuers_root, measure_commitment)".into(),
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
        match (statement, enrollment.proof.to_proof()) {
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

/// No nullifier appears twice.
fn check_nullifiers_unique(checks: &mut Checks, bundle: &StudyBundle) {
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
}

/// Every enrollment was paid the study's reward.
fn check_rewards(checks: &mut Checks, bundle: &StudyBundle) {
    let study = &bundle.study;
    let problems = bundle
        .enrollments
        .iter()
        .enumerate()
        .filter_map(|(position, enrollment)| {
            let name = name_of(position, enrollment);
            if enrollment.reward != study.reward {
                return Some(format!(
                    "{name} was paid {}, the study's reward is {}",
                    enrollment.reward, study.reward
                ));
            }
            let opens = fr_from_bytes(&enrollment.reward_receiver).is_ok_and(|receiver| {
                fr_to_bytes(&note_commitment(study.reward, receiver)) == enrollment.note_commitment
            });
            (!opens).then(|| {
                format!(
                    "{name}: its note commitment is not a note of the reward {} to its receiver",
                    study.reward
                )
            })
        })
        .collect();
    checks.record(
        "rewards",
        problems,
        format!(
            "every enrollment was paid the reward {} into a note to the receiver its proof binds",
            study.reward
        ),
    );
}

/// The bundle lists as many enrollments as the study counts, within its
/// maximum.
fn check_enrollment_count(checks: &mut Checks, bundle: &StudyBundle) {
    let study = &bundle.study;
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
    if study.enrolled > 0 && study.enrolled < study.min_cohort {
        problems.push(format!(
            "{} enrollments are public, fewer than the study's minimum cohort {}",
            study.enrolled, study.min_cohort
        ));
    }
    checks.record(
        "enrollment_count",
        problems,
        format!(
            "{} enrollments, as the study counts (maximum {}, none public below the minimum cohort {})",
            study.enrolled, study.max_enrollments, study.min_cohort
        ),
    );
}

/// Payouts against funding, per the verified ledger entries, each funding signed
/// by the study's researcher for this marketplace; returns `(paid, funded)`.
fn check_funds(checks: &mut Checks, bundle: &StudyBundle, trusted: &Trusted<'_>) -> (u64, u64) {
    let study = &bundle.study;
    let escrow = Account::Escrow(study.id);
    let mut problems = Vec::new();
    let mut funded: u64 = 0;
    let mut refunded: u64 = 0;
    for entry in trusted.values() {
        match &entry.event {
            AuditEvent::EscrowFunded(funding)
                if funding.ledger.study == Some(study.id)
                    && funding.ledger.kind == LedgerKind::FundEscrow
                    && funding.ledger.credit == escrow =>
            {
                if funding.ledger.debit != Account::Key(study.researcher)
                    || !holder_signature_is_valid(&entry.event, &bundle.marketplace_key)
                {
                    problems.push(format!(
                        "escrow_funded entry {} is not the study researcher's signed order",
                        entry.index
                    ));
                }
                funded = funded.saturating_add(funding.ledger.amount);
            }
            AuditEvent::StudyClosed(closed) if closed.study == study.id => {
                if let Some(refund) = &closed.refund {
                    refunded = refund.amount;
                }
            }
            _ => {}
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

/// Each enrollment's root is a listed root record, verified in the log before the
/// enrollment and no older than the study; and when its enrollment entry says the
/// root had been replaced by then, the replacing root is listed too, verified, and
/// became current no longer than the study's window before the enrollment.
fn check_roots_used(checks: &mut Checks, bundle: &StudyBundle, trusted: &Trusted<'_>) {
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let verified_root = |seq: u64, before: u64| {
        bundle.registry_roots.iter().find(|record| {
            record.seq == seq
                && trusted.contains_key(&record.audit_index)
                && record.audit_index < before
        })
    };
    for (position, enrollment) in bundle.enrollments.iter().enumerate() {
        let name = name_of(position, enrollment);
        let listed = bundle.registry_roots.iter().find(|record| {
            record.root == enrollment.registry_root && record.seq == enrollment.root_seq
        });
        let Some(record) = listed else {
            problems.push(format!(
                "{name}: its registry root {} is not a listed root record",
                enrollment.root_seq
            ));
            continue;
        };
        if verified_root(record.seq, enrollment.audit_index).is_none() {
            problems.push(format!(
                "{name}: root {} was not recorded in the log before the enrollment",
                record.seq
            ));
            continue;
        }
        if record.seq < bundle.study.min_root_seq {
            problems.push(format!(
                "{name}: root {} is older than the study, which takes root {} or later",
                record.seq, bundle.study.min_root_seq
            ));
            continue;
        }
        let Some(entry) = trusted.get(&enrollment.audit_index) else {
            // check_enrollment_entries names the missing entry.
            continue;
        };
        let AuditEvent::Enroll(accepted) = &entry.event else {
            continue;
        };
        if accepted.current_root_seq < record.seq {
            problems.push(format!(
                "{name}: its entry says root {} was current, before the proof's root {}",
                accepted.current_root_seq, record.seq
            ));
            continue;
        }
        if accepted.current_root_seq > record.seq {
            match verified_root(record.seq + 1, enrollment.audit_index) {
                None => problems.push(format!(
                    "{name}: root {} had been replaced, but the bundle does not show by \
                     which verified root {} and when",
                    record.seq,
                    record.seq + 1
                )),
                Some(successor)
                    if entry.at_ms.saturating_sub(successor.at_ms)
                        > bundle.study.root_window_ms =>
                {
                    problems.push(format!(
                        "{name}: root {} had been replaced {} ms before, longer than the \
                         study's window of {} ms",
                        record.seq,
                        entry.at_ms - successor.at_ms,
                        bundle.study.root_window_ms
                    ))
                }
                Some(_) => {}
            }
        }
        used.insert(record.seq);
    }
    checks.record(
        "roots_used",
        problems,
        format!(
            "{} distinct registry roots used, each recorded in the log first, none older than the study, none replaced for longer than its window",
            used.len()
        ),
    );
}

/// The study's DP releases add up: each read the enrollments settled before it, at
/// least k; the study's spending is the sum of their charges, within a cap no higher
/// than the researcher chose; the researcher's window counts at least this study's
/// charges within it; no question was charged twice.
fn check_release_budgets(checks: &mut Checks, trusted: &Trusted<'_>) {
    let mut budgets = ReleaseBudgets::default();
    let problems = trusted
        .values()
        .filter_map(|entry| budgets.push(entry).err())
        .collect();
    checks.record(
        "release_budgets",
        problems,
        format!(
            "{} DP releases, each within the study's and the researcher's budgets",
            budgets.releases()
        ),
    );
}
