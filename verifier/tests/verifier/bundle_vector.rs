//! A study bundle as the marketplace wrote it (`tests/vectors/bundle.json`, written by
//! the market's bundle test with `ZKCOHORT_WRITE_VECTORS=1`): it verifies against its
//! marketplace key, and every kind of tampering is rejected by the check that names it.

use serde_json::{json, Value};
use zkcohort_circuits::note::note_commitment;
use zkcohort_circuits::statement::{fr_from_bytes, fr_to_bytes, fr_to_decimal};
use zkcohort_circuits::Fr;
use zkcohort_cohort::{Catalog, Query};
use zkcohort_verifier::audit::AuditEntry;
use zkcohort_verifier::bundle::{BundleReport, StudyBundle};
use zkcohort_verifier::events::AuditEvent;
use zkcohort_verifier::snarkjs::SnarkjsVerifyingKey;
use zkcohort_verifier::verify_bundle;

fn vector() -> StudyBundle {
    StudyBundle::from_json(include_str!("../vectors/bundle.json")).unwrap()
}

fn assert_rejected(report: &BundleReport, name: &str, reason: &str) {
    assert!(!report.valid, "accepted: {report:#?}");
    let check = report.check(name).unwrap();
    assert!(!check.passed, "{name} passed: {report:#?}");
    assert!(
        check.detail.contains(reason),
        "{name}: {:?} does not say {reason:?}",
        check.detail
    );
}

/// `entry` with the payload value at JSON `pointer` replaced, its hash left as it was.
fn with_payload(entry: &AuditEntry, pointer: &str, value: Value) -> AuditEntry {
    let mut json = serde_json::to_value(entry).unwrap();
    *json["payload"].pointer_mut(pointer).unwrap() = value;
    serde_json::from_value(json).unwrap()
}

#[test]
fn the_vector_verifies_and_every_tampering_is_named() {
    let bundle = vector();
    let marketplace_key = bundle.marketplace_key;
    let enrolled = bundle.enrollments.len();
    const REWARD: u64 = 10;
    assert_eq!(bundle.study.reward, REWARD);
    assert!(
        enrolled >= 2,
        "the vector has too few enrollments to cross proofs"
    );
    let report = verify_bundle(&bundle, Some(&marketplace_key), None);
    assert!(report.valid, "{report:#?}");
    assert_eq!(report.enrollments, enrolled);
    let tamper = |change: &dyn Fn(&mut StudyBundle)| {
        let mut copy = bundle.clone();
        change(&mut copy);
        verify_bundle(&copy, Some(&marketplace_key), None)
    };

    // The study's issuer set or its minimum root changed.
    let report = tamper(&|b| b.study.issuers.push([0xee; 32]));
    assert_rejected(&report, "issuers", "issuers root");
    assert_rejected(&report, "study_record", "issuers");
    // A bundle claiming another issuer depth gives another issuers root.
    let report = tamper(&|b| b.circuit.issuer_depth += 1);
    assert_rejected(&report, "issuers", "issuers root");
    let report = tamper(&|b| b.study.min_root_seq = b.enrollments[0].root_seq + 1);
    assert_rejected(&report, "roots_used", "older than the study");

    // The first enrollment used a root already replaced (within the window): the
    // bundle carries the replacing root, without which, or with a shorter window, the
    // enrollment is not shown to be on time.
    let replaced = bundle.enrollments[0].root_seq;
    let accepted_while_replaced = bundle.audit_entries.iter().any(|proven| {
        matches!(&proven.entry.event, AuditEvent::Enroll(enrollment)
            if proven.entry.index == bundle.enrollments[0].audit_index
                && enrollment.current_root_seq > enrollment.root_seq)
    });
    assert!(
        accepted_while_replaced,
        "the vector enrolls on a replaced root"
    );
    let report = tamper(&|b| b.registry_roots.retain(|root| root.seq != replaced + 1));
    assert_rejected(
        &report,
        "roots_used",
        "does not show by which verified root",
    );
    let report = tamper(&|b| b.study.root_window_ms = 0);
    assert_rejected(
        &report,
        "roots_used",
        "longer than the study's window of 0 ms",
    );
    assert_rejected(&report, "study_record", "root_window_ms");

    // Fewer enrollments public than the study's minimum cohort: the marketplace broke k
    // (or the bundle misstates it).
    let report = tamper(&|b| b.study.min_cohort = b.study.enrolled + 1);
    assert_rejected(
        &report,
        "enrollment_count",
        "fewer than the study's minimum cohort",
    );
    assert_rejected(&report, "study_record", "min_cohort");

    // A digit of a proof point changed: not a curve point any more.
    let report = tamper(&|b| {
        let x = b.enrollments[0].proof.pi_a[0].clone();
        let last = if x.ends_with('1') { '2' } else { '1' };
        b.enrollments[0].proof.pi_a[0] = format!("{}{last}", &x[..x.len() - 1]);
    });
    assert_rejected(&report, "proofs", "enrollment 0");
    assert_rejected(&report, "enrollment_entries", "proof");
    // Valid points from two proofs crossed: well-formed, does not verify.
    let report = tamper(&|b| {
        let c0 = b.enrollments[0].proof.pi_c.clone();
        b.enrollments[0].proof.pi_c = b.enrollments[1].proof.pi_c.clone();
        b.enrollments[1].proof.pi_c = c0;
    });
    assert_rejected(&report, "proofs", "enrollment 0");
    assert_rejected(&report, "proofs", "enrollment 1");
    assert!(report
        .check("proofs")
        .unwrap()
        .detail
        .contains("does not verify"));

    // The reward receiver swapped for another (and its note with it, so the note still
    // opens): the proof binds the original receiver.
    let report = tamper(&|b| {
        let other = Fr::from(42u64);
        b.enrollments[0].reward_receiver = fr_to_bytes(&other);
        b.enrollments[0].note_commitment = fr_to_bytes(&note_commitment(REWARD, other));
    });
    assert_rejected(&report, "public_inputs", "signal_hash");
    assert_rejected(&report, "enrollment_entries", "reward_receiver");
    assert_rejected(&report, "proofs", "does not verify");
    // The note swapped for one of a larger value to the same receiver: it opens to no
    // reward of the study, and the log appended another note.
    let report = tamper(&|b| {
        let receiver = fr_from_bytes(&b.enrollments[0].reward_receiver).unwrap();
        b.enrollments[0].note_commitment = fr_to_bytes(&note_commitment(REWARD * 100, receiver));
    });
    assert_rejected(&report, "rewards", "not a note of the reward");
    assert_rejected(&report, "enrollment_entries", "note_commitment");

    // An enrollment's reward, then the study's reward, changed.
    let report = tamper(&|b| b.enrollments[1].reward = REWARD * 2);
    assert_rejected(&report, "rewards", "enrollment 1");
    assert_rejected(&report, "enrollment_entries", "reward");
    let report = tamper(&|b| b.study.reward = REWARD * 2);
    assert_rejected(
        &report,
        "rewards",
        &format!("the study's reward is {}", REWARD * 2),
    );
    assert_rejected(&report, "study_record", "reward");

    // An enrollment dropped.
    let report = tamper(&|b| {
        b.enrollments.remove(1);
    });
    let listed = format!("lists {} enrollments", enrolled - 1);
    assert_rejected(&report, "enrollment_count", &listed);
    assert_rejected(&report, "enrollment_entries", "does not list");

    // An enrollment left out with its audit entry and from the study's counter: the
    // study's chain breaks where it was.
    let report = tamper(&|b| {
        let dropped = b.enrollments.remove(1);
        b.audit_entries
            .retain(|proven| proven.entry.index != dropped.audit_index);
        b.study.enrolled -= 1;
    });
    assert_rejected(
        &report,
        "study_chain",
        "leaves out part of the study's chain",
    );
    // The study head lowered past the latest entry: the signature no longer covers it.
    let report = tamper(&|b| {
        let latest = b
            .audit_entries
            .iter()
            .find(|proven| proven.entry.index == b.head.study.last_index)
            .unwrap();
        b.head.study.last_index = latest.entry.study_prev.unwrap();
        b.head.study.entries -= 1;
    });
    assert_rejected(&report, "head_signature", "bad head signature");
    let report = tamper(&|b| b.head.study.study += 1);
    assert_rejected(&report, "study_chain", "the signed study head is study");

    // An extra enrollment forged from a real one with a new nullifier.
    let report = tamper(&|b| {
        let mut forged = b.enrollments[0].clone();
        forged.nullifier = [0x11; 32];
        forged.public_inputs[3] =
            fr_to_decimal(&zkcohort_circuits::statement::fr_from_bytes(&forged.nullifier).unwrap());
        b.enrollments.push(forged);
        b.study.enrolled += 1;
    });
    assert_rejected(&report, "proofs", &format!("enrollment {enrolled}"));
    assert_rejected(
        &report,
        "enrollment_entries",
        &format!("enrollment {enrolled}"),
    );

    // The query altered: it no longer hashes to query_hash.
    let other_query = Query::parse(
        "index date 2021-01-01\nrequire age >= 30\nrequire condition hypertension",
        Catalog::bundled(),
    )
    .unwrap();
    let report = tamper(&|b| b.study.query = other_query.clone());
    assert_rejected(&report, "query_hash", "compiles to query hash");

    // Another marketplace key pinned.
    let report = verify_bundle(&bundle, Some(&[1; 32]), None);
    assert_rejected(&report, "head_signature", "not the pinned key");

    // A bad head signature.
    let report = tamper(&|b| b.head.signature[0] ^= 1);
    assert_rejected(&report, "head_signature", "bad head signature");

    // An audit entry altered: as is, then with its hash recomputed.
    let enroll_entry = bundle
        .audit_entries
        .iter()
        .position(|proven| matches!(proven.entry.event, AuditEvent::Enroll(_)))
        .unwrap();
    let report = tamper(&|b| {
        let entry = &mut b.audit_entries[enroll_entry].entry;
        *entry = with_payload(entry, "/ledger/amount", json!(1));
    });
    assert_rejected(&report, "audit_entries", "hash does not match its content");
    let report = tamper(&|b| {
        let entry = &mut b.audit_entries[enroll_entry].entry;
        *entry = with_payload(entry, "/ledger/amount", json!(1));
        entry.hash = zkcohort_verifier::audit::entry_hash(
            &entry.prev_hash,
            entry.index,
            entry.at_ms,
            &entry.event,
            entry.study_prev,
        );
    });
    assert_rejected(&report, "audit_entries", "root mismatch");
    assert_rejected(
        &report,
        "enrollment_entries",
        "not among the verified entries",
    );

    // A bad inclusion proof.
    let report = tamper(&|b| b.audit_entries[0].inclusion.path[0][0] ^= 1);
    assert_rejected(&report, "audit_entries", "inclusion proof: root mismatch");

    // The verifying key of another circuit.
    let other_vk =
        SnarkjsVerifyingKey::from_json(include_str!("../vectors/snarkjs_verification_key.json"))
            .unwrap();
    let report = tamper(&|b| b.verifying_key = other_vk.clone());
    assert_rejected(&report, "circuit_id", "the verifying key's id");
}
