//! The minimum cohort on a real store: enrollments stay pending, with nothing public,
//! until k are pending; they settle together in a random order; later ones settle in
//! batches by size or age; a study closed below k voids them and refunds its escrow
//! whole; public times are rounded to the policy's unit.

use std::path::Path;
use std::thread;
use std::time::Duration;

use zkcohort_market::{
    CohortPolicy, EnrollmentStatus, Store, StoreConfig, StoreError, StudyStatus, DAY_MS,
};
use zkcohort_verifier::events::AuditEvent;

use crate::store::{nullifier, paid_to, proof, public, receiver, study, RESEARCHER};

const K: u64 = 3;
const REWARD: u64 = 10;

fn open_with(dir: &Path, cohort: CohortPolicy) -> Store {
    Store::open(
        dir,
        StoreConfig {
            registry_depth: 8,
            root_window_ms: 60_000,
            cohort,
            privacy: zkcohort_market::PrivacyCaps::default(),
        },
    )
    .expect("open store")
}

/// k = 3, batches of 2 or 300 ms old, times to the millisecond.
fn policy() -> CohortPolicy {
    CohortPolicy {
        min_cohort: K,
        batch_size: 2,
        batch_age_ms: 300,
        time_unit_ms: 1,
    }
}

/// Everything a public route shows of the store.
#[derive(Debug, PartialEq)]
struct Public {
    audit_size: u64,
    ledger: usize,
    notes: Vec<[u8; 32]>,
    studies: Vec<zkcohort_market::Study>,
    enrollments: usize,
}

fn public_view(store: &Store, study: u64) -> Public {
    Public {
        audit_size: store.audit_head().unwrap().size,
        ledger: store.ledger_entries(0, usize::MAX).unwrap().len(),
        notes: store.note_leaves(0, usize::MAX).unwrap(),
        studies: store.studies(0, usize::MAX).unwrap(),
        enrollments: store.enrollments(study).unwrap().len(),
    }
}

fn enroll(store: &Store, study: u64, index: u64) -> Result<EnrollmentStatus, StoreError> {
    store.enroll(
        study,
        nullifier(index),
        receiver(index as u8),
        proof(store),
        Vec::new(),
    )
}

#[test]
fn enrollments_stay_pending_with_nothing_public_until_k_then_settle_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), policy());
    let study = study(&store, REWARD, 20, 200);
    let before = public_view(&store, study.id);
    for index in 1..K {
        assert_eq!(
            enroll(&store, study.id, index).unwrap(),
            EnrollmentStatus::Pending { min_cohort: K }
        );
        assert_eq!(
            public_view(&store, study.id),
            before,
            "after {index} pending"
        );
        assert_eq!(
            store
                .enrollment_status(study.id, &nullifier(index))
                .unwrap(),
            Some(EnrollmentStatus::Pending { min_cohort: K })
        );
    }
    // A pending nullifier is taken.
    assert!(matches!(
        enroll(&store, study.id, 1),
        Err(StoreError::DuplicateNullifier { .. })
    ));
    assert_eq!(public_view(&store, study.id), before);

    // The k-th settles the whole batch in one go.
    let settled = enroll(&store, study.id, K).unwrap();
    assert!(
        matches!(settled, EnrollmentStatus::Settled(_)),
        "{settled:?}"
    );
    let after = store.study(study.id).unwrap();
    assert_eq!((after.enrolled, after.escrow), (K, 200 - K * REWARD));
    assert_eq!(store.enrollments(study.id).unwrap().len() as u64, K);
    for index in 1..=K {
        assert_eq!(paid_to(&store, receiver(index as u8), REWARD), REWARD);
        assert!(matches!(
            store
                .enrollment_status(study.id, &nullifier(index))
                .unwrap(),
            Some(EnrollmentStatus::Settled(_))
        ));
    }
    let entries = store.audit_entries(0, usize::MAX).unwrap();
    let batch: Vec<_> = entries
        .iter()
        .filter(|entry| matches!(entry.event, AuditEvent::Enroll(_)))
        .collect();
    assert_eq!(batch.len() as u64, K);
    assert!(batch.iter().all(|entry| entry.at_ms == batch[0].at_ms));
    assert_eq!(store.pending_count().unwrap(), 0);
    store.check_conservation().unwrap();
    store.verify_audit_log().unwrap();
}

#[test]
fn a_settled_batch_is_in_a_random_order() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = CohortPolicy {
        min_cohort: 6,
        batch_size: 6,
        ..policy()
    };
    let store = open_with(dir.path(), cohort);
    // Six studies of six, each enrolled in arrival order 1..=6: the chance that every
    // batch keeps that order is 720^-6.
    let mut reordered = 0;
    for _ in 0..6 {
        let study = study(&store, REWARD, 6, 60);
        for index in 1..=6 {
            enroll(&store, study.id, index).unwrap();
        }
        let mut enrollments = store.enrollments(study.id).unwrap();
        enrollments.sort_by_key(|enrollment| enrollment.position);
        let order: Vec<_> = enrollments.iter().map(|e| e.nullifier).collect();
        let arrival: Vec<_> = (1..=6).map(nullifier).collect();
        if order != arrival {
            reordered += 1;
        }
    }
    assert!(reordered > 0, "every batch kept its arrival order");
}

#[test]
fn later_enrollments_settle_at_the_batch_size_or_age() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), policy());
    let study = study(&store, REWARD, 20, 200);
    for index in 1..=K {
        enroll(&store, study.id, index).unwrap();
    }
    // One pending: not the batch size (2), not old enough.
    assert_eq!(
        enroll(&store, study.id, 10).unwrap(),
        EnrollmentStatus::Pending { min_cohort: K }
    );
    assert_eq!(store.settle_due().unwrap(), 0);
    assert_eq!(store.study(study.id).unwrap().enrolled, K);
    // The second makes a batch of two.
    assert!(matches!(
        enroll(&store, study.id, 11).unwrap(),
        EnrollmentStatus::Settled(_)
    ));
    assert_eq!(store.study(study.id).unwrap().enrolled, K + 2);
    // A lone one settles once it is older than the batch age.
    enroll(&store, study.id, 12).unwrap();
    thread::sleep(Duration::from_millis(350));
    assert_eq!(store.settle_due().unwrap(), 1);
    assert_eq!(store.study(study.id).unwrap().enrolled, K + 3);
    store.check_conservation().unwrap();
    store.verify_audit_log().unwrap();
}

#[test]
fn a_study_closed_below_k_voids_its_pending_enrollments_and_refunds_the_whole_escrow() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), policy());
    let study = study(&store, REWARD, 20, 200);
    for index in 1..K {
        enroll(&store, study.id, index).unwrap();
    }
    let (closed, refund) = store.close_study(study.id, public(RESEARCHER)).unwrap();
    assert_eq!(
        (closed.status, closed.enrolled, closed.escrow),
        (StudyStatus::Closed, 0, 0)
    );
    assert_eq!(refund.expect("a refund").amount, 200);
    assert_eq!(
        store
            .balance(zkcohort_market::Account::Key(public(RESEARCHER)))
            .unwrap(),
        200
    );
    assert!(store.note_leaves(0, usize::MAX).unwrap().is_empty());
    for index in 1..K {
        match store
            .enrollment_status(study.id, &nullifier(index))
            .unwrap()
        {
            Some(EnrollmentStatus::Voided { reason }) => {
                assert!(reason.contains("fewer participants"), "{reason}")
            }
            other => panic!("enrollment {index}: {other:?}"),
        }
    }
    // The log shows a close with no enrollment: what a study nobody joined shows.
    let entries = store.audit_entries(0, usize::MAX).unwrap();
    assert!(!entries
        .iter()
        .any(|entry| matches!(entry.event, AuditEvent::Enroll(_))));
    let closing = entries.last().unwrap();
    match &closing.event {
        AuditEvent::StudyClosed(closed) => assert_eq!(closed.enrolled, 0),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.pending_count().unwrap(), 0);
    store.check_conservation().unwrap();
    store.verify_audit_log().unwrap();
}

#[test]
fn a_study_closed_after_its_first_batch_settles_what_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), policy());
    let study = study(&store, REWARD, 20, 200);
    for index in 1..=K + 1 {
        enroll(&store, study.id, index).unwrap();
    }
    assert_eq!(store.study(study.id).unwrap().enrolled, K);
    let (closed, refund) = store.close_study(study.id, public(RESEARCHER)).unwrap();
    assert_eq!(closed.enrolled, K + 1);
    assert_eq!(refund.unwrap().amount, 200 - (K + 1) * REWARD);
    store.check_conservation().unwrap();
    store.verify_audit_log().unwrap();
}

#[test]
fn what_a_study_takes_is_fixed_so_no_refusal_depends_on_the_pending_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), policy());
    // A study must be able to reach k.
    assert!(matches!(
        store.create_study(zkcohort_market::NewStudy {
            max_enrollments: K - 1,
            ..new_study()
        }),
        Err(StoreError::InvalidStudy(_))
    ));
    // Before its first batch, an escrow short of k rewards refuses the first patient
    // as it would refuse the last: the refusal says nothing of who else is pending.
    let poor = study(&store, REWARD, 20, K * REWARD - 1);
    assert!(matches!(
        enroll(&store, poor.id, 1),
        Err(StoreError::EscrowBelowCohort { .. })
    ));
    assert_eq!(store.pending_count().unwrap(), 0);
}

fn new_study() -> zkcohort_market::NewStudy {
    zkcohort_market::NewStudy {
        researcher: public(RESEARCHER),
        title: "t".into(),
        description: "d".into(),
        query: serde_json::from_value(serde_json::json!({
            "index_date": "2020-01-01",
            "criteria": [{"require": [{"condition": "hypertension"}]}]
        }))
        .unwrap(),
        query_hash: [7; 32],
        circuit_id: zkcohort_circuits::CircuitId([7; 32]),
        issuers: vec![[9; 32]],
        issuer_depth: 1,
        reward: REWARD,
        max_enrollments: 20,
        epsilon_budget: 1.0,
    }
}

#[test]
fn public_times_are_rounded_down_to_the_time_unit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(
        dir.path(),
        CohortPolicy {
            time_unit_ms: DAY_MS,
            ..policy()
        },
    );
    let study = study(&store, REWARD, 20, 200);
    for index in 1..=K {
        enroll(&store, study.id, index).unwrap();
    }
    assert_eq!(study.created_ms % DAY_MS, 0);
    let entries = store.audit_entries(0, usize::MAX).unwrap();
    assert!(entries.len() > 4);
    assert!(entries.iter().all(|entry| entry.at_ms % DAY_MS == 0));
    assert!(store
        .ledger_entries(0, usize::MAX)
        .unwrap()
        .iter()
        .all(|entry| entry.at_ms % DAY_MS == 0));
    assert!(store
        .root_history(0, usize::MAX)
        .unwrap()
        .iter()
        .chain(&store.note_root_history(0, usize::MAX).unwrap())
        .all(|record| record.at_ms % DAY_MS == 0));
}
