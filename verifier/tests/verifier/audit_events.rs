//! The audit log's serialized form is pinned: one entry of every event kind,
//! chained, against `vectors/audit_events.json`. The JSON of an entry's
//! payload is what its hash covers, so a renamed field or a changed encoding
//! of any record type is a new log format and fails here first.
//!
//! After an intended format change, rewrite the vectors with
//! `ZKCOHORT_WRITE_VECTORS=1 cargo test -p zkcohort-verifier --test verifier audit_events`
//! and say so in the commit.

use std::path::Path;

use zkcohort_circuits::note::NOTE_TREE_DEPTH;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::statement::fr_to_bytes;
use zkcohort_circuits::CircuitId;
use zkcohort_circuits::Fr;
use zkcohort_cohort::{Catalog, Day, Query};
use zkcohort_verifier::audit::{entry_hash, verify_chain, AuditEntry, StudyHeads};
use zkcohort_verifier::events::{
    ApiKeyChange, ApiKeyCreation, AppendedRecord, AuditEvent, BudgetSpent, DpReleaseRecord,
    EnrollmentRecord, IssuerSuspension, LedgerChange, NoteAppend, NoteTransferRecord,
    RegistryAppend, RegistryCreated, RegistryRevoke, RootChange, SignedLedgerChange, StudyClosed,
    StudyCreated,
};
use zkcohort_verifier::records::{
    Account, ApiKeyRole, LedgerEntry, LedgerKind, Mechanism, ReleasedSum, ReleasedValues,
    Statistic, Study, StudyStatus,
};
use zkcohort_verifier::snarkjs::SnarkjsProof;

fn ledger(seq: u64, kind: LedgerKind, debit: Account, credit: Account) -> LedgerEntry {
    LedgerEntry {
        seq,
        kind,
        debit,
        credit,
        amount: 250,
        study: matches!(
            kind,
            LedgerKind::FundEscrow | LedgerKind::Payout | LedgerKind::Refund
        )
        .then_some(1),
        at_ms: 1_790_000_000_000 + seq,
    }
}

fn root(seq: u64) -> RootChange {
    RootChange {
        root: [0x10 + seq as u8; 32],
        root_seq: seq,
        leaf_count: seq * 2,
    }
}

fn study() -> Study {
    Study {
        id: 1,
        researcher: [0xaa; 32],
        title: "Hypertension 40-75".into(),
        description: "vector".into(),
        query: Query::parse(
            "index date 2020-01-01\nrequire age between 40 and 75\nrequire condition hypertension",
            Catalog::bundled(),
        )
        .unwrap(),
        query_hash: [0x0b; 32],
        circuit_id: CircuitId([0x0c; 32]),
        issuers: vec![[0xcc; 32]],
        issuers_root: [0x0d; 32],
        min_root_seq: 1,
        root_window_ms: 86_400_000,
        reward: 25,
        max_enrollments: 20,
        min_cohort: 1,
        epsilon_budget: 1.5,
        status: StudyStatus::Open,
        enrolled: 0,
        escrow: 0,
        created_ms: 1_790_000_000_000,
    }
}

/// One event of every kind. The match makes a new kind fail to compile here
/// until it has a vector.
fn one_of_each() -> Vec<AuditEvent> {
    let researcher = Account::Key([0xaa; 32]);
    let patient = Account::Key([0xbb; 32]);
    // Note appends name the roots the note tree really has: the log's replay rebuilds it.
    let mut notes = RegistryTree::new(NOTE_TREE_DEPTH).unwrap();
    let mut append = |values: &[u64]| {
        let leaves: Vec<Fr> = values.iter().map(|value| Fr::from(*value)).collect();
        let range = notes.extend(&leaves).unwrap();
        NoteAppend {
            first_index: range.start,
            commitments: leaves.iter().map(fr_to_bytes).collect(),
            root: fr_to_bytes(&notes.root()),
        }
    };
    let reward_note = append(&[0x61]);
    let transfer_outputs = append(&[0x62, 0x63]);
    let events = vec![
        AuditEvent::RegistryCreated(RegistryCreated {
            depth: 20,
            root: root(0),
        }),
        AuditEvent::ApiKeyCreated(ApiKeyCreation {
            key_id: [0x01; 32],
            role: ApiKeyRole::Researcher,
            account: [0xaa; 32],
            possession: [0x0a; 64],
        }),
        AuditEvent::ApiKeyRevoked(ApiKeyChange {
            key_id: [0x02; 32],
            role: ApiKeyRole::Issuer,
            account: [0xcc; 32],
        }),
        AuditEvent::Mint(LedgerChange {
            ledger: ledger(0, LedgerKind::Mint, Account::Mint, researcher),
        }),
        AuditEvent::RegistryAppend(RegistryAppend {
            issuer: [0xcc; 32],
            first_index: 0,
            records: vec![
                AppendedRecord {
                    commitment: [0x21; 32],
                    issued_at: Day(19_000),
                },
                AppendedRecord {
                    commitment: [0x22; 32],
                    issued_at: Day(19_001),
                },
            ],
            root: root(1),
        }),
        AuditEvent::StudyCreated(StudyCreated { study: study() }),
        AuditEvent::EscrowFunded(SignedLedgerChange {
            ledger: ledger(1, LedgerKind::FundEscrow, researcher, Account::Escrow(1)),
            nonce: 0,
            signature: [0x51; 64],
        }),
        AuditEvent::Enroll(Box::new(EnrollmentRecord {
            study: 1,
            nullifier: [0x31; 32],
            registry_root: [0x11; 32],
            root_seq: 1,
            current_root_seq: 1,
            public_inputs: vec![
                "1".into(),
                "2".into(),
                "3".into(),
                "4".into(),
                "5".into(),
                "6".into(),
            ],
            proof: SnarkjsProof::from_proof(&zkcohort_verifier::Proof::default()),
            reward_receiver: fr_to_bytes(&Fr::from(0x60u64)),
            note: reward_note.clone(),
            ledger: ledger(2, LedgerKind::Payout, Account::Escrow(1), Account::Notes),
        })),
        AuditEvent::NoteTransfer(Box::new(NoteTransferRecord {
            note_root: reward_note.root,
            nullifiers: vec![[0x71; 32], [0x72; 32]],
            withdrawal: 250,
            recipient: [0x73; 32],
            appended: transfer_outputs,
            public_inputs: (1..=7).map(|input| input.to_string()).collect(),
            proof: SnarkjsProof::from_proof(&zkcohort_verifier::Proof::default()),
            ledger: Some(ledger(5, LedgerKind::Withdrawal, Account::Notes, patient)),
        })),
        AuditEvent::Transfer(SignedLedgerChange {
            ledger: ledger(3, LedgerKind::Transfer, patient, researcher),
            nonce: 0,
            signature: [0x41; 64],
        }),
        AuditEvent::DpRelease(DpReleaseRecord {
            study: 1,
            enrollments: 1,
            key: "release-key".into(),
            statistic: Statistic::Sum("lab hba1c latest".into()),
            mechanism: Mechanism::DiscreteGaussian,
            epsilon_micros: 500_000,
            delta_nanos: 1,
            study_budget: BudgetSpent {
                epsilon_cap: 1_500_000,
                epsilon_spent: 500_000,
                delta_cap: 100,
                delta_spent: 1,
            },
            researcher_budget: BudgetSpent {
                epsilon_cap: 5_000_000,
                epsilon_spent: 2_500_000,
                delta_cap: 500,
                delta_spent: 3,
            },
            researcher_window_ms: 30 * 86_400_000,
            values: ReleasedValues {
                rows: vec!["with a value".into()],
                columns: Vec::new(),
                counts: vec![12],
                sum: Some(ReleasedSum {
                    total: 1_750,
                    low: 80,
                    high: 280,
                    units_per_display: 20,
                    unit: "%".into(),
                }),
            },
        }),
        AuditEvent::RegistryRevoke(RegistryRevoke {
            issuer: [0xcc; 32],
            index: 1,
            root: root(2),
        }),
        AuditEvent::IssuerSuspended(IssuerSuspension {
            issuer: [0xcc; 32],
            revoked: vec![0],
            root: Some(root(3)),
        }),
        AuditEvent::StudyClosed(StudyClosed {
            study: 1,
            enrolled: 1,
            refund: Some(ledger(
                4,
                LedgerKind::Refund,
                Account::Escrow(1),
                researcher,
            )),
        }),
    ];
    for event in &events {
        match event {
            AuditEvent::ApiKeyCreated(_)
            | AuditEvent::ApiKeyRevoked(_)
            | AuditEvent::RegistryCreated(_)
            | AuditEvent::RegistryAppend(_)
            | AuditEvent::RegistryRevoke(_)
            | AuditEvent::StudyCreated(_)
            | AuditEvent::EscrowFunded(_)
            | AuditEvent::StudyClosed(_)
            | AuditEvent::Enroll(_)
            | AuditEvent::Mint(_)
            | AuditEvent::Transfer(_)
            | AuditEvent::DpRelease(_)
            | AuditEvent::IssuerSuspended(_)
            | AuditEvent::NoteTransfer(_) => {}
        }
    }
    events
}

fn chain(events: Vec<AuditEvent>) -> Vec<AuditEntry> {
    let mut prev_hash = [0u8; 32];
    let mut studies = StudyHeads::default();
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            let at_ms = 1_790_000_000_000 + index as u64;
            let study_prev = event
                .study()
                .and_then(|study| studies.0.get(&study))
                .map(|head| head.last_index);
            let hash = entry_hash(&prev_hash, index as u64, at_ms, &event, study_prev);
            let entry = AuditEntry {
                index: index as u64,
                at_ms,
                event,
                study_prev,
                prev_hash,
                hash,
            };
            studies.push(&entry).expect("the events chain per study");
            prev_hash = hash;
            entry
        })
        .collect()
}

#[test]
fn every_event_kind_serializes_and_hashes_as_pinned() {
    let entries = chain(one_of_each());
    let kinds: std::collections::BTreeSet<_> =
        entries.iter().map(|entry| entry.event.kind()).collect();
    assert_eq!(kinds.len(), entries.len(), "one entry per kind");

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/audit_events.json");
    let written = serde_json::to_string_pretty(&entries).unwrap() + "\n";
    if std::env::var_os("ZKCOHORT_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &written).unwrap();
    }
    let pinned = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        written, pinned,
        "the audit log format changed: see this file's header"
    );

    // The pinned file reads back to the same typed entries, and its chain
    // verifies with its own hashes.
    let read: Vec<AuditEntry> = serde_json::from_str(&pinned).unwrap();
    assert_eq!(read, entries);
    assert!(read.iter().all(AuditEntry::hash_is_valid));
    assert_eq!(verify_chain(&read).unwrap().size, entries.len() as u64);
}

#[test]
fn an_unknown_kind_or_a_changed_payload_is_refused() {
    let entries = chain(one_of_each());
    let mut json = serde_json::to_value(&entries[3]).unwrap();
    json["kind"] = "mint_more".into();
    assert!(serde_json::from_value::<AuditEntry>(json).is_err());

    let mut json = serde_json::to_value(&entries[3]).unwrap();
    json["payload"]["ledger"]["amount"] = 251.into();
    let changed: AuditEntry = serde_json::from_value(json).unwrap();
    assert!(!changed.hash_is_valid());
}

/// The entries with `change` applied to one and every hash from it on recomputed, as
/// a marketplace rewriting its log would.
fn rewritten(
    mut entries: Vec<AuditEntry>,
    change: impl FnOnce(&mut [AuditEntry]),
) -> Vec<AuditEntry> {
    change(&mut entries);
    let mut prev_hash = [0u8; 32];
    for entry in &mut entries {
        entry.prev_hash = prev_hash;
        entry.hash = entry_hash(
            &prev_hash,
            entry.index,
            entry.at_ms,
            &entry.event,
            entry.study_prev,
        );
        prev_hash = entry.hash;
    }
    entries
}

#[test]
fn a_study_entry_not_linked_to_its_study_s_previous_entry_breaks_the_log() {
    let entries = chain(one_of_each());
    let linked: Vec<usize> = (0..entries.len())
        .filter(|&position| entries[position].study_prev.is_some())
        .collect();
    assert!(!linked.is_empty(), "the vector chains study entries");
    let first = linked[0];

    let unlinked = rewritten(entries.clone(), |entries| entries[first].study_prev = None);
    let error = verify_chain(&unlinked).unwrap_err().0;
    assert!(error.contains("names None as study"), "{error}");

    let skipped = rewritten(entries.clone(), |entries| {
        entries[first].study_prev = Some(entries[first].index + 1)
    });
    let error = verify_chain(&skipped).unwrap_err().0;
    assert!(error.contains("previous entry"), "{error}");

    let stray = entries
        .iter()
        .position(|entry| entry.event.study().is_none())
        .unwrap();
    let error = verify_chain(&rewritten(entries, |entries| {
        entries[stray].study_prev = Some(0)
    }))
    .unwrap_err()
    .0;
    assert!(error.contains("concerns no study"), "{error}");
}

/// A marketplace that writes an API key binding, or an escrow funding, without the
/// account holder's signature for it into its own log (rehashed and re-signed, so the
/// chain and the head verify) is caught by `verify_log`, which checks every holder
/// signature against the signed head's marketplace key.
#[test]
fn a_log_that_binds_a_key_or_moves_money_without_its_holder_s_signature_fails() {
    use ed25519_dalek::{Signer, SigningKey};
    use zkcohort_verifier::audit::{verify_log, SignedHead};
    use zkcohort_verifier::records::{api_key_message, funding_message};

    let marketplace = SigningKey::from_bytes(&[5; 32]);
    let marketplace_key = marketplace.verifying_key().to_bytes();
    let holder = SigningKey::from_bytes(&[6; 32]);
    let account = holder.verifying_key().to_bytes();
    let key_id = [0x11; 32];
    let mut funding = ledger(
        1,
        LedgerKind::FundEscrow,
        Account::Key(account),
        Account::Escrow(1),
    );
    funding.study = Some(1);
    let events = vec![
        AuditEvent::ApiKeyCreated(ApiKeyCreation {
            key_id,
            role: ApiKeyRole::Researcher,
            account,
            possession: holder
                .sign(&api_key_message(
                    &marketplace_key,
                    &account,
                    ApiKeyRole::Researcher,
                    &key_id,
                ))
                .to_bytes(),
        }),
        AuditEvent::StudyCreated(StudyCreated {
            study: Study {
                researcher: account,
                ..study()
            },
        }),
        AuditEvent::EscrowFunded(SignedLedgerChange {
            signature: holder
                .sign(&funding_message(
                    &marketplace_key,
                    &account,
                    1,
                    funding.amount,
                    0,
                ))
                .to_bytes(),
            ledger: funding,
            nonce: 0,
        }),
    ];
    let signed =
        |entries: &[AuditEntry]| SignedHead::sign(verify_chain(entries).unwrap(), &marketplace);
    let honest = chain(events);
    verify_log(&honest, &signed(&honest), Some(&marketplace_key)).unwrap();

    let someone_else = SigningKey::from_bytes(&[7; 32]);
    /// The position of the entry a forgery rewrites, and how.
    type Forgery<'a> = (usize, Box<dyn Fn(&mut AuditEvent) + 'a>);
    let forgeries: [Forgery<'_>; 3] = [
        (
            0,
            Box::new(|event| {
                if let AuditEvent::ApiKeyCreated(created) = event {
                    created.possession = someone_else
                        .sign(&api_key_message(
                            &marketplace_key,
                            &account,
                            created.role,
                            &key_id,
                        ))
                        .to_bytes();
                }
            }),
        ),
        (
            0,
            Box::new(|event| {
                if let AuditEvent::ApiKeyCreated(created) = event {
                    created.role = ApiKeyRole::Issuer;
                }
            }),
        ),
        (
            2,
            Box::new(|event| {
                if let AuditEvent::EscrowFunded(funded) = event {
                    funded.ledger.amount += 1;
                }
            }),
        ),
    ];
    for (position, forge) in forgeries {
        let forged = rewritten(honest.clone(), |entries| {
            forge(&mut entries[position].event)
        });
        let error = verify_log(&forged, &signed(&forged), Some(&marketplace_key))
            .unwrap_err()
            .0;
        let kind = honest[position].event.kind();
        assert!(
            error.contains(&format!("entry {position}: its {kind}")),
            "{error}"
        );
    }
}

/// An enrollment entry that hides that its root had been replaced (naming its own root
/// as current after a later one), or names a root the log never made current yet,
/// breaks the log: a bundle's window check rests on this field.
#[test]
fn an_enrollment_naming_another_current_root_than_the_log_s_breaks_it() {
    let entries = chain(one_of_each());
    let enrollment = entries
        .iter()
        .position(|entry| matches!(entry.event, AuditEvent::Enroll(_)))
        .unwrap();
    for claimed in [0, 2] {
        let lying = rewritten(entries.clone(), |entries| {
            if let AuditEvent::Enroll(record) = &mut entries[enrollment].event {
                record.current_root_seq = claimed;
            }
        });
        let error = verify_chain(&lying).unwrap_err().0;
        assert!(
            error.contains(&format!("the enrollment says root {claimed} was current")),
            "{error}"
        );
    }
}

/// The reward-note tree is rebuilt from the log: a note added, dropped or moved, a root
/// that is not the tree's, a transfer under a root the log never made, or a nullifier
/// spent twice breaks the log, so the marketplace cannot mint notes or accept a double
/// spend without every auditor seeing it.
#[test]
fn a_log_whose_note_appends_or_spends_contradict_the_note_tree_breaks_it() {
    let entries = chain(one_of_each());
    verify_chain(&entries).unwrap();
    let position = |kind: &str| {
        entries
            .iter()
            .position(|entry| entry.event.kind() == kind)
            .unwrap()
    };
    let (enroll, transfer) = (position("enroll"), position("note_transfer"));
    type Forgery = Box<dyn Fn(&mut [AuditEntry])>;
    let forgeries: Vec<(Forgery, &str)> = vec![
        (
            Box::new(move |entries| {
                note_of(&mut entries[enroll].event).commitments[0] = [0x01; 32];
            }),
            "the note root differs from the tree its appends build",
        ),
        (
            Box::new(move |entries| {
                note_of(&mut entries[transfer].event).first_index = 0;
            }),
            "notes appended at 0, the note tree holds 1",
        ),
        (
            Box::new(move |entries| {
                note_of(&mut entries[transfer].event).commitments.pop();
            }),
            "the note root differs",
        ),
        (
            Box::new(move |entries| {
                if let AuditEvent::NoteTransfer(record) = &mut entries[transfer].event {
                    record.note_root = [0x09; 32];
                }
            }),
            "a note root the log never made",
        ),
        (
            Box::new(move |entries| {
                if let AuditEvent::NoteTransfer(record) = &mut entries[transfer].event {
                    record.nullifiers[1] = record.nullifiers[0];
                }
            }),
            "spent twice",
        ),
    ];
    for (forge, expected) in forgeries {
        let forged = rewritten(entries.clone(), |entries| forge(entries));
        let error = verify_chain(&forged).unwrap_err().0;
        assert!(error.contains(expected), "{expected}: {error}");
    }
}

/// The notes an enrollment or a note transfer appends.
fn note_of(event: &mut AuditEvent) -> &mut NoteAppend {
    match event {
        AuditEvent::Enroll(record) => &mut record.note,
        AuditEvent::NoteTransfer(record) => &mut record.appended,
        _ => panic!("{} appends no note", event.kind()),
    }
}

/// The release of an event list, to forge.
fn release_of(event: &mut AuditEvent) -> &mut DpReleaseRecord {
    match event {
        AuditEvent::DpRelease(record) => record,
        _ => panic!("{} is no release", event.kind()),
    }
}

#[test]
fn a_log_whose_release_budgets_do_not_add_up_breaks_it() {
    let entries = chain(one_of_each());
    verify_chain(&entries).unwrap();
    let release = entries
        .iter()
        .position(|entry| entry.event.kind() == "dp_release")
        .unwrap();
    let created = entries
        .iter()
        .position(|entry| entry.event.kind() == "study_created")
        .unwrap();
    type Forgery = Box<dyn Fn(&mut DpReleaseRecord)>;
    let forgeries: Vec<(Forgery, &str)> = vec![
        (
            Box::new(|record| record.study_budget.epsilon_spent = 0),
            "its releases add up to 500000",
        ),
        (
            Box::new(|record| record.study_budget.epsilon_cap = 2_000_000),
            "above the 1500000 its researcher chose",
        ),
        (
            Box::new(|record| {
                record.epsilon_micros = 1_600_000;
                record.study_budget.epsilon_spent = 1_600_000;
                record.researcher_budget.epsilon_spent = 1_600_000;
            }),
            "past its cap: 1600000 of 1500000",
        ),
        (
            Box::new(|record| record.researcher_budget.delta_spent = 0),
            "its charges in the window add up to 500000 and 1",
        ),
        (
            Box::new(|record| record.researcher_budget.epsilon_spent = 6_000_000),
            "the researcher's budget past its cap",
        ),
        (
            Box::new(|record| record.enrollments = 2),
            "2 enrollments, 1 had settled",
        ),
        (
            Box::new(|record| record.mechanism = Mechanism::DiscreteLaplace),
            "a delta of 1 nano for discrete_laplace",
        ),
        (
            Box::new(|record| {
                record.epsilon_micros = 999;
                record.study_budget.epsilon_spent = 999;
            }),
            "below the minimum 1000",
        ),
    ];
    for (forge, expected) in forgeries {
        let forged = rewritten(entries.clone(), |entries| {
            forge(release_of(&mut entries[release].event))
        });
        let error = verify_chain(&forged).unwrap_err().0;
        assert!(error.contains(expected), "{expected}: {error}");
    }
    let below_k = rewritten(entries.clone(), |entries| {
        if let AuditEvent::StudyCreated(created) = &mut entries[created].event {
            created.study.min_cohort = 2;
        }
    });
    let error = verify_chain(&below_k).unwrap_err().0;
    assert!(
        error.contains("fewer than the study's minimum cohort 2"),
        "{error}"
    );

    // The same question on the same enrollments again, its charges added up honestly:
    // charged twice for what the cache answers free.
    let mut events = one_of_each();
    let position = events
        .iter()
        .position(|event| event.kind() == "dp_release")
        .unwrap();
    let mut again = events[position].clone();
    let record = release_of(&mut again);
    record.study_budget.epsilon_spent += record.epsilon_micros;
    record.study_budget.delta_spent += record.delta_nanos;
    record.researcher_budget.epsilon_spent += record.epsilon_micros;
    record.researcher_budget.delta_spent += record.delta_nanos;
    events.insert(position + 1, again.clone());
    let error = verify_chain(&chain(events.clone())).unwrap_err().0;
    assert!(error.contains("charged again for release-key"), "{error}");

    // Another question: fine while the researcher's window counts both charges, and
    // a forgery once it forgets the first while the first is inside the window.
    release_of(&mut events[position + 1]).key = "another-key".into();
    verify_chain(&chain(events.clone())).unwrap();
    let forgetful = release_of(&mut events[position + 1]);
    forgetful.researcher_budget.epsilon_spent = forgetful.epsilon_micros;
    forgetful.researcher_budget.delta_spent = forgetful.delta_nanos;
    let error = verify_chain(&chain(events.clone())).unwrap_err().0;
    assert!(
        error.contains("its charges in the window add up to 1000000"),
        "{error}"
    );
    // With a window of 1 ms, the first charge (made 1 ms earlier) has left it.
    release_of(&mut events[position + 1]).researcher_window_ms = 1;
    verify_chain(&chain(events)).unwrap();
}
