//! The storage core on a real sled database on disk: enrollment, the ledger,
//! the audit log and the registry, including concurrent submissions and a
//! reopen of the same folder.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;

use ed25519_dalek::SigningKey;
use serde_json::json;
use zkcohort_circuits::issuers::IssuerId;
use zkcohort_circuits::record::registry_leaf;
use zkcohort_circuits::CircuitId;
use zkcohort_cohort::{Day, Query};
use zkcohort_market::audit::{verify_chain, verify_inclusion, verify_log};
use zkcohort_market::{
    Account, AuditHead, CohortPolicy, NewStudy, ProofRecord, RootStatus, SignedTransfer, Store,
    StoreConfig, StoreError, Study, StudyStatus,
};
use zkcohort_testkit::issued_at;
use zkcohort_verifier::events::AppendedRecord;

/// How long a replaced root stays acceptable in these stores: long enough for a
/// burst of appends on a loaded machine, short enough to wait out.
const WINDOW_MS: u64 = 1_500;

/// The marketplace key transfers here are signed for.
const MARKET: [u8; 32] = [0x4d; 32];

fn config() -> StoreConfig {
    StoreConfig {
        registry_depth: 8,
        root_window_ms: WINDOW_MS,
        cohort: CohortPolicy::immediate(),
        privacy: zkcohort_market::PrivacyCaps::default(),
    }
}

fn open(dir: &Path) -> Store {
    Store::open(dir, config()).expect("open store")
}

pub(crate) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub(crate) fn public(seed: u8) -> [u8; 32] {
    key(seed).verifying_key().to_bytes()
}

/// A canonical, non-zero field element.
fn leaf(value: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[24..].copy_from_slice(&(value + 1).to_be_bytes());
    bytes
}

/// A reward receiver: a canonical field element, as a wallet binds into its proof.
pub(crate) fn receiver(seed: u8) -> [u8; 32] {
    leaf(1000 + u64::from(seed))
}

/// What the note tree pays `receiver` in notes of `reward`.
pub(crate) fn paid_to(store: &Store, receiver: [u8; 32], reward: u64) -> u64 {
    let receiver = zkcohort_circuits::statement::fr_from_bytes(&receiver).unwrap();
    let note = zkcohort_circuits::statement::fr_to_bytes(
        &zkcohort_circuits::note::note_commitment(reward, receiver),
    );
    let notes = store.note_leaves(0, usize::MAX).unwrap();
    reward * notes.iter().filter(|leaf| **leaf == note).count() as u64
}

/// The leaf the store computes for `commitment` appended by [`ISSUER`].
fn stored(commitment: [u8; 32]) -> [u8; 32] {
    let commitment = zkcohort_circuits::statement::fr_from_bytes(&commitment).unwrap();
    let issuer = IssuerId::for_account(&public(ISSUER));
    zkcohort_circuits::statement::fr_to_bytes(
        &registry_leaf(commitment, issuer, issued_at()).unwrap(),
    )
}

/// Records with these commitments, issued on the testkit's issue day.
fn records(commitments: &[[u8; 32]]) -> Vec<AppendedRecord> {
    commitments
        .iter()
        .map(|commitment| AppendedRecord {
            commitment: *commitment,
            issued_at: issued_at(),
        })
        .collect()
}

pub(crate) fn nullifier(value: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&value.to_be_bytes());
    bytes[31] = 0xaa;
    bytes
}

fn query() -> Query {
    serde_json::from_value(json!({
        "index_date": "2020-01-01",
        "criteria": [{"require": [{"condition": "hypertension"}]}]
    }))
    .expect("query")
}

pub(crate) const RESEARCHER: u8 = 1;
const ISSUER: u8 = 2;

/// A study with `fund` tokens in escrow, its researcher minted `fund`.
pub(crate) fn study(store: &Store, reward: u64, max_enrollments: u64, fund: u64) -> Study {
    let study = store
        .create_study(NewStudy {
            researcher: public(RESEARCHER),
            title: "Hypertension outcomes".into(),
            description: "adults with hypertension".into(),
            query: query(),
            query_hash: [7; 32],
            circuit_id: CircuitId([7; 32]),
            issuers: vec![[9; 32]],
            issuer_depth: 1,
            reward,
            max_enrollments,
            epsilon_budget: 1.0,
        })
        .expect("create study");
    if fund > 0 {
        store.mint(public(RESEARCHER), fund).expect("mint");
        crate::common::fund_through_store(store, RESEARCHER, study.id, fund).expect("fund");
    }
    store.study(study.id).expect("study")
}

pub(crate) fn proof(store: &Store) -> ProofRecord {
    ProofRecord {
        registry_root: store.registry_root().expect("root").root,
        proof: crate::common::unverified_proof(),
        public_inputs: vec!["1".into(), "2".into(), "3".into(), "4".into(), "5".into()],
    }
}

/// Everything an operation might change.
#[derive(Debug, PartialEq)]
struct Snapshot {
    head: AuditHead,
    ledger: usize,
    minted: u64,
    studies: Vec<Study>,
    balances: Vec<u64>,
    nonces: Vec<u64>,
    registry: usize,
    notes: Vec<[u8; 32]>,
}

fn snapshot(store: &Store) -> Snapshot {
    let seeds = [RESEARCHER, ISSUER, 3, 4, 5, 6];
    Snapshot {
        head: store.audit_head().unwrap(),
        ledger: store.ledger_entries(0, usize::MAX).unwrap().len(),
        minted: store.total_minted().unwrap(),
        studies: store.studies(0, usize::MAX).unwrap(),
        balances: seeds
            .iter()
            .map(|seed| store.balance(Account::Key(public(*seed))).unwrap())
            .chain((1..4).map(|id| store.balance(Account::Escrow(id)).unwrap()))
            .chain([store.balance(Account::Notes).unwrap()])
            .collect(),
        nonces: seeds
            .iter()
            .map(|seed| store.nonce(&public(*seed)).unwrap())
            .collect(),
        registry: store.root_history(0, usize::MAX).unwrap().len(),
        notes: store.note_leaves(0, usize::MAX).unwrap(),
    }
}

#[test]
fn enrollment_pays_the_reward_and_records_the_nullifier() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let study = study(&store, 10, 5, 100);
    assert_eq!(study.escrow, 100);

    let patient = receiver(3);
    let enrollment = store
        .enroll(study.id, nullifier(1), patient, proof(&store), Vec::new())
        .expect("enroll")
        .settled()
        .expect("settled at once under k = 1");
    assert_eq!(enrollment.reward, 10);
    assert_eq!(enrollment.position, 0);
    assert_eq!(enrollment.root_seq, 0);
    store.flush().unwrap();

    assert_eq!(paid_to(&store, patient, 10), 10);
    assert_eq!(store.balance(Account::Notes).unwrap(), 10);
    assert_eq!(
        (enrollment.note_index, enrollment.reward_receiver),
        (0, patient)
    );
    assert_eq!(store.balance(Account::Escrow(study.id)).unwrap(), 90);
    let after = store.study(study.id).unwrap();
    assert_eq!((after.enrolled, after.escrow), (1, 90));
    assert_eq!(
        store.enrollment(study.id, &nullifier(1)).unwrap(),
        Some(enrollment.clone())
    );
    assert_eq!(
        store.enrollments(study.id).unwrap(),
        vec![enrollment.clone()]
    );
    let entry = serde_json::to_value(store.audit_entry(enrollment.audit_index).unwrap()).unwrap();
    assert_eq!(entry["kind"], "enroll");
    assert_eq!(
        entry["payload"]["nullifier"],
        json!(hex::encode(nullifier(1)))
    );
    assert_eq!(entry["payload"]["ledger"]["credit"], json!("notes"));
    let report = store.check_conservation().unwrap();
    assert_eq!(
        (
            report.total_minted,
            report.in_keys,
            report.in_escrow,
            report.in_notes
        ),
        (100, 0, 90, 10)
    );
    store.verify_audit_log().unwrap();
}

#[test]
fn duplicate_nullifier_is_rejected_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let study = study(&store, 10, 5, 100);
    store
        .enroll(
            study.id,
            nullifier(1),
            receiver(3),
            proof(&store),
            Vec::new(),
        )
        .unwrap();
    let before = snapshot(&store);
    let error = store
        .enroll(
            study.id,
            nullifier(1),
            receiver(4),
            proof(&store),
            Vec::new(),
        )
        .unwrap_err();
    assert!(matches!(error, StoreError::DuplicateNullifier { study: id } if id == study.id));
    assert_eq!(snapshot(&store), before);

    // The same nullifier is fine in another study (nullifiers are scoped).
    let other = self::study(&store, 5, 5, 10);
    store
        .enroll(
            other.id,
            nullifier(1),
            receiver(3),
            proof(&store),
            Vec::new(),
        )
        .expect("another study");
    store.check_conservation().unwrap();
}

#[test]
fn enrollment_errors_are_distinct() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(matches!(
        store.enroll(99, nullifier(1), receiver(3), proof(&store), Vec::new()),
        Err(StoreError::UnknownStudy(99))
    ));

    let full = study(&store, 10, 1, 100);
    store
        .enroll(
            full.id,
            nullifier(1),
            receiver(3),
            proof(&store),
            Vec::new(),
        )
        .unwrap();
    assert!(matches!(
        store.enroll(
            full.id,
            nullifier(2),
            receiver(3),
            proof(&store),
            Vec::new()
        ),
        Err(StoreError::StudyFull { max: 1, .. })
    ));

    let poor = study(&store, 10, 5, 15);
    store
        .enroll(
            poor.id,
            nullifier(1),
            receiver(3),
            proof(&store),
            Vec::new(),
        )
        .unwrap();
    assert!(matches!(
        store.enroll(
            poor.id,
            nullifier(2),
            receiver(3),
            proof(&store),
            Vec::new()
        ),
        Err(StoreError::EscrowExhausted {
            escrow: 5,
            reward: 10,
            ..
        })
    ));

    let mut unknown_root = proof(&store);
    unknown_root.registry_root = [9; 32];
    let open_study = study(&store, 1, 5, 5);
    assert!(matches!(
        store.enroll(
            open_study.id,
            nullifier(1),
            receiver(3),
            unknown_root,
            Vec::new()
        ),
        Err(StoreError::UnknownRoot)
    ));

    let before = snapshot(&store);
    assert!(matches!(
        store.close_study(open_study.id, public(3)),
        Err(StoreError::NotStudyOwner(_))
    ));
    assert_eq!(snapshot(&store), before);
    let researcher_before = store.balance(Account::Key(public(RESEARCHER))).unwrap();
    let (closed, refund) = store
        .close_study(open_study.id, public(RESEARCHER))
        .unwrap();
    assert_eq!(closed.status, StudyStatus::Closed);
    assert_eq!(refund.map(|entry| entry.amount), Some(5));
    assert_eq!(
        store.balance(Account::Key(public(RESEARCHER))).unwrap(),
        researcher_before + 5
    );
    assert_eq!(store.balance(Account::Escrow(open_study.id)).unwrap(), 0);
    assert!(matches!(
        store.enroll(
            open_study.id,
            nullifier(1),
            receiver(3),
            proof(&store),
            Vec::new()
        ),
        Err(StoreError::StudyClosed(_))
    ));
    assert!(matches!(
        crate::common::fund_through_store(&store, RESEARCHER, open_study.id, 1),
        Err(StoreError::StudyClosed(_))
    ));
    store.check_conservation().unwrap();
    store.verify_audit_log().unwrap();
}

#[test]
fn fifty_concurrent_submissions_of_one_nullifier_pay_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let study = study(&store, 10, 100, 1000);
    let proof = proof(&store);
    let barrier = Arc::new(Barrier::new(50));
    let results: Vec<_> = (0..50)
        .map(|i| {
            let (store, barrier, proof) = (store.clone(), barrier.clone(), proof.clone());
            thread::spawn(move || {
                barrier.wait();
                // Different receivers: a copied proof must not pay twice.
                store.enroll(
                    study.id,
                    nullifier(7),
                    receiver(3 + (i % 2) as u8),
                    proof,
                    Vec::new(),
                )
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .collect();
    let accepted = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(accepted, 1);
    assert!(results
        .iter()
        .filter_map(|result| result.as_ref().err())
        .all(|error| matches!(error, StoreError::DuplicateNullifier { .. })));
    let paid = paid_to(&store, receiver(3), 10) + paid_to(&store, receiver(4), 10);
    assert_eq!(paid, 10);
    let after = store.study(study.id).unwrap();
    assert_eq!((after.enrolled, after.escrow), (1, 990));
    assert_eq!(store.enrollments(study.id).unwrap().len(), 1);
    store.check_conservation().unwrap();
    store.verify_audit_log().unwrap();
}

#[test]
fn concurrent_enrollments_never_overdraw_the_escrow() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    // The escrow covers 7 rewards and a bit; 20 patients try.
    let study = study(&store, 10, 100, 75);
    let proof = proof(&store);
    let barrier = Arc::new(Barrier::new(20));
    let results: Vec<_> = (0..20u64)
        .map(|i| {
            let (store, barrier, proof) = (store.clone(), barrier.clone(), proof.clone());
            thread::spawn(move || {
                barrier.wait();
                store.enroll(study.id, nullifier(100 + i), receiver(3), proof, Vec::new())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .collect();
    let accepted = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(accepted, 7);
    assert!(results
        .iter()
        .filter_map(|result| result.as_ref().err())
        .all(|error| matches!(error, StoreError::EscrowExhausted { .. })));
    let mut positions: Vec<u64> = results
        .iter()
        .filter_map(|result| result.as_ref().ok())
        .map(|status| status.clone().settled().expect("settled").position)
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (0..7).collect::<Vec<_>>());
    assert_eq!(paid_to(&store, receiver(3), 10), 70);
    assert_eq!(store.balance(Account::Escrow(study.id)).unwrap(), 5);
    let report = store.check_conservation().unwrap();
    assert_eq!(report.total_minted, 75);
    store.verify_audit_log().unwrap();
}

#[test]
fn state_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (before, study_id, root, head) = {
        let store = open(dir.path());
        let study = study(&store, 10, 5, 100);
        store
            .append_records(
                public(ISSUER),
                &records(&[leaf(1), leaf(2), leaf(3)]),
                issued_at(),
            )
            .unwrap();
        store.revoke_leaf(public(ISSUER), 1).unwrap();
        store
            .enroll(
                study.id,
                nullifier(1),
                receiver(3),
                proof(&store),
                Vec::new(),
            )
            .unwrap();
        store.mint(public(3), 10).unwrap();
        store
            .transfer(
                &SignedTransfer::sign(&key(3), &MARKET, public(4), 4, 0),
                &MARKET,
            )
            .unwrap();
        store.flush().unwrap();
        (
            snapshot(&store),
            study.id,
            store.registry_root().unwrap(),
            store.audit_head().unwrap(),
        )
    };
    let store = open(dir.path());
    assert_eq!(snapshot(&store), before);
    assert_eq!(store.registry_root().unwrap(), root);
    assert_eq!(store.audit_head().unwrap(), head);
    assert_eq!(store.verify_audit_log().unwrap(), head);
    assert_eq!(
        store.registry_leaves(0, 10).unwrap(),
        vec![stored(leaf(1)), [0; 32], stored(leaf(3))]
    );
    assert!(store.enrollment(study_id, &nullifier(1)).unwrap().is_some());
    assert!(matches!(
        store.enroll(
            study_id,
            nullifier(1),
            receiver(3),
            proof(&store),
            Vec::new()
        ),
        Err(StoreError::DuplicateNullifier { .. })
    ));
    // The replayed transfer is still refused, and the next nonce works.
    assert!(matches!(
        store.transfer(
            &SignedTransfer::sign(&key(3), &MARKET, public(4), 4, 0),
            &MARKET
        ),
        Err(StoreError::BadNonce {
            expected: 1,
            got: 0
        })
    ));
    store
        .transfer(
            &SignedTransfer::sign(&key(3), &MARKET, public(4), 1, 1),
            &MARKET,
        )
        .unwrap();
    // The in-memory registry and note trees were rebuilt: appends continue in sync.
    let appended = store
        .append_records(public(ISSUER), &records(&[leaf(4)]), issued_at())
        .unwrap();
    assert_eq!(appended.first_index, 3);
    let second = store
        .enroll(
            study_id,
            nullifier(2),
            receiver(4),
            proof(&store),
            Vec::new(),
        )
        .unwrap()
        .settled()
        .unwrap();
    assert_eq!(second.note_index, 1);
    assert_eq!(store.note_root().unwrap().unwrap().leaf_count, 2);
    store.check_conservation().unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.registry_root().unwrap(), appended.root);

    // A different registry depth is refused.
    drop(store);
    let wrong = Store::open(
        dir.path(),
        StoreConfig {
            registry_depth: 9,
            root_window_ms: WINDOW_MS,
            cohort: CohortPolicy::immediate(),
            privacy: zkcohort_market::PrivacyCaps::default(),
        },
    );
    assert!(matches!(wrong, Err(StoreError::Config(_))));
}

#[test]
fn bad_transfers_are_rejected_without_state_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.mint(public(3), 50).unwrap();
    let before = snapshot(&store);

    let mut forged = SignedTransfer::sign(&key(3), &MARKET, public(4), 10, 0);
    forged.amount = 20;
    assert!(matches!(
        store.transfer(&forged, &MARKET),
        Err(StoreError::BadSignature)
    ));
    // Signed for another marketplace, where the account has the same nonce: a replay.
    let elsewhere = SignedTransfer::sign(&key(3), &public(77), public(4), 10, 0);
    assert!(matches!(
        store.transfer(&elsewhere, &MARKET),
        Err(StoreError::BadSignature)
    ));
    let mut wrong_signer = SignedTransfer::sign(&key(5), &MARKET, public(4), 10, 0);
    wrong_signer.from = public(3);
    assert!(matches!(
        store.transfer(&wrong_signer, &MARKET),
        Err(StoreError::BadSignature)
    ));
    assert!(matches!(
        store.transfer(
            &SignedTransfer::sign(&key(3), &MARKET, public(4), 51, 0),
            &MARKET
        ),
        Err(StoreError::InsufficientBalance {
            balance: 50,
            amount: 51,
            ..
        })
    ));
    assert!(matches!(
        store.transfer(
            &SignedTransfer::sign(&key(3), &MARKET, public(4), 10, 1),
            &MARKET
        ),
        Err(StoreError::BadNonce {
            expected: 0,
            got: 1
        })
    ));
    assert!(matches!(
        store.transfer(
            &SignedTransfer::sign(&key(3), &MARKET, public(4), 0, 0),
            &MARKET
        ),
        Err(StoreError::InvalidAmount(_))
    ));
    assert_eq!(snapshot(&store), before);

    let transfer = SignedTransfer::sign(&key(3), &MARKET, public(4), 10, 0);
    store.transfer(&transfer, &MARKET).unwrap();
    let after_one = snapshot(&store);
    assert!(matches!(
        store.transfer(&transfer, &MARKET),
        Err(StoreError::BadNonce {
            expected: 1,
            got: 0
        })
    ));
    assert_eq!(snapshot(&store), after_one);
    assert_eq!(store.balance(Account::Key(public(3))).unwrap(), 40);
    assert_eq!(store.balance(Account::Key(public(4))).unwrap(), 10);
    // Someone with no tokens cannot move any.
    assert!(matches!(
        store.transfer(
            &SignedTransfer::sign(&key(6), &MARKET, public(4), 1, 0),
            &MARKET
        ),
        Err(StoreError::InsufficientBalance { balance: 0, .. })
    ));
    assert_eq!(snapshot(&store), after_one);
    store.check_conservation().unwrap();
}

#[test]
fn audit_log_verifies_and_tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let study = study(&store, 10, 5, 100);
    for i in 0..3 {
        store
            .enroll(
                study.id,
                nullifier(i),
                receiver(3),
                proof(&store),
                Vec::new(),
            )
            .unwrap();
    }
    store
        .append_records(public(ISSUER), &records(&[leaf(1)]), issued_at())
        .unwrap();
    // Enough entries for several levels of perfect subtrees.
    for amount in 1..=30 {
        store.mint(public(5), amount).unwrap();
    }
    // The marketplace key the study's funding was signed for.
    let marketplace = SigningKey::from_bytes(&crate::common::AUDIT_KEY_SEED);
    let signed = store.signed_audit_head(&marketplace).unwrap();
    signed
        .verify(Some(&crate::common::marketplace_key()))
        .unwrap();
    assert!(signed.verify(Some(&public(43))).is_err());
    let mut forged_head = signed;
    forged_head.head.size -= 1;
    assert!(forged_head.verify(None).is_err());

    let entries = store.audit_entries(0, usize::MAX).unwrap();
    assert_eq!(entries.len() as u64, signed.head.size);
    verify_log(&entries, &signed, Some(&crate::common::marketplace_key())).unwrap();
    let elsewhere = store.signed_audit_head(&key(42)).unwrap();
    assert!(
        verify_log(&entries, &elsewhere, None).is_err(),
        "the funding was signed for another marketplace than the one signing the log"
    );
    assert!(verify_log(&entries[..entries.len() - 1], &signed, None).is_err());
    assert_eq!(verify_chain(&entries).unwrap(), signed.head);
    assert_eq!(store.verify_audit_log().unwrap(), signed.head);

    let mut tampered = entries.clone();
    tampered[3] = crate::common::with_payload(&tampered[3], "/ledger/amount", json!(1_000_000));
    assert!(verify_chain(&tampered).is_err());
    assert!(verify_log(&tampered, &signed, None).is_err());
    let mut rehashed = tampered.clone();
    // Recomputing the tampered entry's hash breaks the next entry's link.
    rehashed[3].hash = zkcohort_market::audit::entry_hash(
        &rehashed[3].prev_hash,
        rehashed[3].index,
        rehashed[3].at_ms,
        &rehashed[3].event,
        rehashed[3].study_prev,
    );
    assert!(verify_chain(&rehashed).is_err());
    let mut dropped = entries.clone();
    dropped.remove(2);
    assert!(verify_chain(&dropped).is_err());

    for size in 1..=signed.head.size {
        let root = zkcohort_market::audit::merkle_root(
            &entries[..size as usize]
                .iter()
                .map(|entry| entry.hash)
                .collect::<Vec<_>>(),
        );
        for index in 0..size {
            let proof = store.inclusion_proof(index, size).unwrap();
            verify_inclusion(&entries[index as usize].hash, &proof, &root).unwrap();
        }
    }
    let proof = store.inclusion_proof(4, signed.head.size).unwrap();
    let root = signed.head.root;
    verify_inclusion(&entries[4].hash, &proof, &root).unwrap();
    assert!(verify_inclusion(&entries[5].hash, &proof, &root).is_err());
    assert!(verify_inclusion(
        &rehashed[3].hash,
        &store.inclusion_proof(3, signed.head.size).unwrap(),
        &root
    )
    .is_err());
    let mut bad_path = proof.clone();
    bad_path.path[0][0] ^= 1;
    assert!(verify_inclusion(&entries[4].hash, &bad_path, &root).is_err());
    let mut bad_index = proof.clone();
    bad_index.index = 5;
    assert!(verify_inclusion(&entries[4].hash, &bad_index, &root).is_err());
    let mut short = proof.clone();
    short.path.pop();
    assert!(verify_inclusion(&entries[4].hash, &short, &root).is_err());
    assert!(store
        .inclusion_proof(signed.head.size, signed.head.size)
        .is_err());
    assert!(store.inclusion_proof(0, signed.head.size + 1).is_err());

    // Proofs survive serialization (what a bundle carries).
    let json = serde_json::to_string(&proof).unwrap();
    let back = serde_json::from_str(&json).unwrap();
    verify_inclusion(&entries[4].hash, &back, &root).unwrap();
    let json = serde_json::to_string(&signed).unwrap();
    let back: zkcohort_market::SignedHead = serde_json::from_str(&json).unwrap();
    back.verify(Some(&crate::common::marketplace_key()))
        .unwrap();
}

#[test]
fn registry_roots_stay_acceptable_for_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let study = study(&store, 1, 100, 100);
    let empty = store.registry_root().unwrap();
    assert_eq!(empty.seq, 0);
    assert!(matches!(
        store.root_status(&empty.root).unwrap(),
        RootStatus::Current(_)
    ));

    let first = store
        .append_records(public(ISSUER), &records(&[leaf(1), leaf(2)]), issued_at())
        .unwrap();
    assert_eq!((first.first_index, first.count, first.root.seq), (0, 2, 1));
    assert_eq!(first.root.leaf_count, 2);
    let second = store
        .append_records(public(ISSUER), &records(&[leaf(3)]), issued_at())
        .unwrap();
    assert_eq!(second.first_index, 2);
    let replaced = store.root_history(1, 1).unwrap()[0].at_ms;
    let remaining = |root: &[u8; 32]| match store.root_status(root).unwrap() {
        RootStatus::Acceptable { remaining_ms, .. } => remaining_ms,
        other => panic!("{other:?}"),
    };
    assert!(remaining(&empty.root) <= WINDOW_MS);
    assert!(remaining(&first.root.root) >= remaining(&empty.root));

    // A burst of appends (junk, say) does not expire a root: only time does.
    let last_index = (10..20u64).fold(0, |_, value| {
        store
            .append_records(public(ISSUER), &records(&[leaf(value)]), issued_at())
            .unwrap()
            .first_index
    });
    assert_eq!(last_index, 12);
    let mut old = proof(&store);
    old.registry_root = empty.root;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let burst_took = now_ms - replaced;
    assert!(burst_took < WINDOW_MS, "the appends took {burst_took} ms");
    store
        .enroll(study.id, nullifier(1), receiver(3), old.clone(), Vec::new())
        .unwrap();

    // Once the window has passed since root 1 replaced it, the empty root expires.
    std::thread::sleep(std::time::Duration::from_millis(WINDOW_MS + 100));
    assert!(matches!(
        store.root_status(&empty.root).unwrap(),
        RootStatus::Expired(_)
    ));
    let before = snapshot(&store);
    assert!(matches!(
        store.enroll(study.id, nullifier(2), receiver(3), old, Vec::new()),
        Err(StoreError::RootExpired {
            seq: 0,
            current: 12,
            window_ms: WINDOW_MS
        })
    ));
    assert_eq!(snapshot(&store), before);
    assert_eq!(store.root_status(&[5; 32]).unwrap(), RootStatus::Unknown);
    store.revoke_leaf(public(ISSUER), 0).unwrap();

    // History, pages, and refusals.
    let history = store.root_history(0, 20).unwrap();
    assert_eq!(
        history.iter().map(|record| record.seq).collect::<Vec<_>>(),
        (0..=13).collect::<Vec<_>>()
    );
    assert_eq!(history[1], first.root);
    assert_eq!(
        store.registry_leaves(1, 2).unwrap(),
        vec![stored(leaf(2)), stored(leaf(3))]
    );
    assert_eq!(store.registry_leaves(0, 1).unwrap(), vec![[0; 32]]);
    assert_eq!(store.registry_len().unwrap(), 13);
    let before = snapshot(&store);
    assert!(matches!(
        store.revoke_leaf(public(ISSUER), 0),
        Err(StoreError::Registry(_))
    ));
    assert!(matches!(
        store.revoke_leaf(public(5), 1),
        Err(StoreError::NotLeafIssuer { index: 1 })
    ));
    assert!(matches!(
        store.revoke_leaf(public(ISSUER), 70),
        Err(StoreError::Registry(_))
    ));
    assert!(matches!(
        store.append_records(public(ISSUER), &records(&[[0xff; 32]]), issued_at()),
        Err(StoreError::Registry(_))
    ));
    let mut after_tomorrow = records(&[leaf(9)]);
    after_tomorrow[0].issued_at = Day(issued_at().0 + 2);
    assert!(matches!(
        store.append_records(public(ISSUER), &after_tomorrow, issued_at()),
        Err(StoreError::InvalidRecord(_))
    ));
    assert_eq!(snapshot(&store), before);
    // Failed appends left the in-memory tree as it was.
    let next = store
        .append_records(public(ISSUER), &records(&[leaf(9)]), issued_at())
        .unwrap();
    assert_eq!(next.first_index, 13);
    store.verify_audit_log().unwrap();
}

#[test]
fn registry_roots_match_the_circuit_tree() {
    use zkcohort_circuits::registry::RegistryTree;
    use zkcohort_circuits::statement::{fr_from_bytes, fr_to_bytes};

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let leaves: Vec<[u8; 32]> = (0..5).map(leaf).collect();
    let appended = store
        .append_records(public(ISSUER), &records(&leaves), issued_at())
        .unwrap();
    let issuer = IssuerId::for_account(&public(ISSUER));
    let values: Vec<_> = leaves
        .iter()
        .map(|bytes| registry_leaf(fr_from_bytes(bytes).unwrap(), issuer, issued_at()).unwrap())
        .collect();
    assert_eq!(
        store.registry_leaves(0, 10).unwrap(),
        values.iter().map(fr_to_bytes).collect::<Vec<_>>(),
        "each leaf carries the appending issuer's id"
    );
    let mut tree = RegistryTree::from_leaves(8, &values).unwrap();
    assert_eq!(appended.root.root, fr_to_bytes(&tree.root()));
    let revoked = store.revoke_leaf(public(ISSUER), 2).unwrap();
    tree.revoke(2).unwrap();
    assert_eq!(revoked.root, fr_to_bytes(&tree.root()));
}
