//! Enrollment: a verified proof becomes a pending enrollment, and a study's pending
//! enrollments become public together, never fewer than its minimum cohort.
//!
//! The caller (the HTTP layer) has already recomputed the statement from the study and
//! verified the Groth16 proof, off the async runtime. [`Store::enroll`] then checks the
//! study is open, the registry root acceptable, the nullifier new for this study, the
//! study has room and its escrow covers the rewards it may have to pay, and holds the
//! enrollment pending: its nullifier is reserved, and nothing public changes: no audit
//! entry, no note, no escrow debit, no count.
//!
//! # Settlement
//!
//! A study settles its pending enrollments together, in one transaction: for each, in
//! a random order, the registry root is checked again, the reward note
//! `note_commitment(reward, receiver)` is appended to the note tree, the reward moves
//! from the escrow to the note pool, the enrollment is stored under its nullifier (for
//! the bundle) and its audit entry appended. A study with no settled enrollment settles
//! once `min_cohort` (k) are pending; after that, a batch settles at the policy's batch
//! size, or once its oldest enrollment is older than the batch age
//! ([`Store::settle_due`], which the server runs periodically), or when the study
//! closes. A study closed before k are pending settles nothing: its pending enrollments
//! are voided (the wallet reads why, by its nullifier) and the whole escrow is refunded,
//! so the public sees a closed study with no enrollment, the same as one nobody joined.
//! A pending enrollment whose registry root expired before its batch settled is voided
//! too, its nullifier freed: the patient enrolls again with a fresh proof.
//!
//! Everything that changes what is pending holds the note-tree lock from reading the
//! pending set to committing, so the set a settlement read is the set it writes.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use zkcohort_circuits::note::note_commitment;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::statement::{fr_from_bytes, fr_to_bytes};
use zkcohort_verifier::events::{AuditEvent, EnrollmentRecord, NoteAppend, StudyClosed};
use zkcohort_verifier::snarkjs::SnarkjsProof;

use crate::ledger::{post, Account, LedgerKind};
use crate::notes::record_notes;
use crate::registry::tx_check_root;
use crate::store::{
    abort, decode_json, get_json, now_ms, prefixed_u64, tx_get_json, tx_put_json, Tx, TxResult,
};
use crate::study::{study_key, tx_study};
use crate::{audit, Bytes32, LedgerEntry, RootStatus, Store, StoreError, Study, StudyStatus};

/// The proof of an enrollment, kept for the study bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProofRecord {
    /// The registry root the proof is against (its first public input), as
    /// 32 big-endian bytes.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(with = "crate::hex_bytes")]
    pub registry_root: Bytes32,
    /// The proof in snarkjs JSON (`proof.json`), re-serialized from its
    /// parsed points.
    #[schema(schema_with = crate::api::proof_json)]
    pub proof: SnarkjsProof,
    /// The public inputs as decimal strings, in circuit order.
    pub public_inputs: Vec<String>,
}

/// A settled enrollment, stored under its study and nullifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Enrollment {
    /// The study.
    pub study: u64,
    /// The nullifier, as 32 big-endian bytes.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(with = "crate::hex_bytes")]
    pub nullifier: Bytes32,
    /// The one-time receiver the proof binds, a field element (32 big-endian bytes).
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(with = "crate::hex_bytes")]
    pub reward_receiver: Bytes32,
    /// The reward note, `note_commitment(reward, reward_receiver)`.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(with = "crate::hex_bytes")]
    pub note_commitment: Bytes32,
    /// The note's index in the note tree (its wallet needs it to spend it).
    pub note_index: u64,
    /// The reward paid.
    pub reward: u64,
    /// Its position among the study's settled enrollments, from 0 (random within its
    /// batch).
    pub position: u64,
    /// The registry root's sequence number.
    pub root_seq: u64,
    /// The payout's ledger entry (escrow → note pool).
    pub ledger_seq: u64,
    /// The audit entry that records it.
    pub audit_index: u64,
    /// The proof and its public inputs.
    pub proof: ProofRecord,
}

/// Where an enrollment stands, as its wallet (the only one who knows its nullifier
/// before it settles) reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EnrollmentStatus {
    /// Verified and held, with nothing public about it, until the study's batch settles.
    Pending {
        /// The study's minimum cohort: the first batch settles when this many are
        /// pending.
        min_cohort: u64,
    },
    /// Public: the reward note is in the note tree (boxed: the largest variant by far).
    Settled(Box<Enrollment>),
    /// Never made public and paid nothing.
    Voided {
        /// Why.
        reason: String,
    },
}

impl EnrollmentStatus {
    /// The enrollment, if it settled.
    pub fn settled(self) -> Option<Enrollment> {
        match self {
            EnrollmentStatus::Settled(enrollment) => Some(*enrollment),
            _ => None,
        }
    }
}

/// An enrollment whose proof was verified and whose nullifier is reserved, not yet
/// public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEnrollment {
    /// The nullifier.
    #[serde(with = "crate::hex_bytes")]
    pub nullifier: Bytes32,
    /// The one-time receiver its proof binds.
    #[serde(with = "crate::hex_bytes")]
    pub reward_receiver: Bytes32,
    /// The proof and its public inputs.
    pub proof: ProofRecord,
    /// The measure values its proof commits to (checked by the proof; never public).
    pub measure_values: Vec<u64>,
    /// When it was accepted, to the millisecond (never public: it decides the batch
    /// age).
    pub accepted_ms: u64,
}

/// A study's pending nullifiers, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PendingSet {
    #[serde(with = "zkcohort_verifier::hex_serde::vec32")]
    nullifiers: Vec<Bytes32>,
}

/// Key prefixes in the `pending` tree.
const PENDING_ENTRY: u8 = b'e';
const PENDING_SET: u8 = b's';
const VOIDED: u8 = b'v';

/// Why a study's pending enrollments were voided when it closed.
const CLOSED_BELOW_COHORT: &str = "the study closed with fewer participants than the \
    marketplace's minimum cohort, so no enrollment was made public or paid";
/// Why a pending enrollment was voided when its root expired.
const ROOT_EXPIRED_WHILE_PENDING: &str = "the registry root its proof used expired before \
    the study's batch settled; enroll again with a fresh proof";

/// The key of a settled enrollment: the study id (u64 BE) and the nullifier, so
/// nullifiers are scoped by study and a study's enrollments are one range.
fn nullifier_key(study: u64, nullifier: &Bytes32) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..8].copy_from_slice(&study.to_be_bytes());
    key[8..].copy_from_slice(nullifier);
    key
}

/// The key prefix, in the `releases` tree, of settled enrollments' measure values.
const MEASURED: u8 = b'm';

/// The key of a settled enrollment's measure values: by study and position, not by
/// nullifier, so nothing stored beside them names the enrollment.
fn measured_key(study: u64, position: u64) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = MEASURED;
    key[1..9].copy_from_slice(&study.to_be_bytes());
    key[9..].copy_from_slice(&position.to_be_bytes());
    key
}

/// A key in the `pending` tree for one nullifier of a study.
fn pending_key(prefix: u8, study: u64, nullifier: &Bytes32) -> [u8; 41] {
    let mut key = [0u8; 41];
    key[0] = prefix;
    key[1..].copy_from_slice(&nullifier_key(study, nullifier));
    key
}

/// What changes a study's pending enrollments.
enum Trigger {
    /// A verified enrollment arrives (boxed, with its proof).
    Admit(Box<PendingEnrollment>),
    /// The periodic check: a later batch may have grown old enough.
    Due,
    /// Its researcher closes the study.
    Close(Bytes32),
}

/// What one change does, decided under the note-tree lock.
struct Plan {
    /// The pending set it read (the transaction checks nothing else changed it).
    before: PendingSet,
    /// The enrollments it settles, in their (random) public order, each with its note.
    settle: Vec<(PendingEnrollment, NoteAppend)>,
    /// The pending enrollments it voids, and why.
    void: Vec<(Bytes32, &'static str)>,
    /// What stays pending.
    keep: PendingSet,
    /// The settled enrollment count it read.
    enrolled: u64,
}

/// What a change did.
struct Outcome {
    study: Study,
    settled: Vec<Enrollment>,
    voided: usize,
    refund: Option<LedgerEntry>,
}

/// Why the study cannot take one more enrollment with `pending` already pending, if it
/// cannot. Before the first batch the escrow must cover a whole minimum cohort, which
/// reveals nothing of how many are pending.
fn admission_error(study: &Study, pending: u64) -> Option<StoreError> {
    if study.enrolled + pending >= study.max_enrollments {
        return Some(StoreError::StudyFull {
            study: study.id,
            max: study.max_enrollments,
        });
    }
    if study.enrolled == 0 {
        let needed = study.reward.saturating_mul(study.min_cohort);
        return (study.escrow < needed).then_some(StoreError::EscrowBelowCohort {
            study: study.id,
            escrow: study.escrow,
            needed,
        });
    }
    let committed = study.reward.saturating_mul(pending);
    let free = study.escrow.saturating_sub(committed);
    (free < study.reward).then_some(StoreError::EscrowExhausted {
        study: study.id,
        escrow: free,
        reward: study.reward,
    })
}

impl Store {
    /// Holds the enrollment of `nullifier` in a study pending, its reward to go into a
    /// note to `reward_receiver`, and settles the study's batch if this completes it
    /// (see the module documentation). The proof must already be verified against the
    /// study's statement (whose `signal_hash` binds the receiver and whose
    /// `measure_commitment` binds `measure_values`). The values are kept, apart from the
    /// public enrollment, for the study's releases ([`Store::measure_values`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownStudy`], [`StoreError::StudyClosed`],
    /// [`StoreError::UnknownRoot`], [`StoreError::RootExpired`] or
    /// [`StoreError::RootBeforeStudy`] for the proof's registry root,
    /// [`StoreError::DuplicateNullifier`] (settled or pending), [`StoreError::StudyFull`],
    /// [`StoreError::EscrowBelowCohort`], [`StoreError::EscrowExhausted`],
    /// [`StoreError::Registry`] for a receiver that is not a canonical field element or a
    /// full note tree, [`StoreError::Storage`]. On error nothing changes.
    pub fn enroll(
        &self,
        study_id: u64,
        nullifier: Bytes32,
        reward_receiver: Bytes32,
        proof: ProofRecord,
        measure_values: Vec<u64>,
    ) -> Result<EnrollmentStatus, StoreError> {
        fr_from_bytes(&reward_receiver)?;
        let pending = PendingEnrollment {
            nullifier,
            reward_receiver,
            proof,
            measure_values,
            accepted_ms: now_ms(),
        };
        let outcome = self.change_pending(study_id, Trigger::Admit(Box::new(pending)))?;
        Ok(
            match outcome
                .settled
                .into_iter()
                .find(|enrollment| enrollment.nullifier == nullifier)
            {
                Some(enrollment) => EnrollmentStatus::Settled(Box::new(enrollment)),
                None => EnrollmentStatus::Pending {
                    min_cohort: outcome.study.min_cohort,
                },
            },
        )
    }

    /// Settles every later batch whose oldest enrollment has waited the policy's batch
    /// age, and voids pending enrollments whose root expired. Returns how many pending
    /// enrollments it settled or voided (0: nothing changed).
    ///
    /// # Errors
    ///
    /// The first error of a study's settlement ([`StoreError::Storage`], ...); the other
    /// studies are still settled.
    pub fn settle_due(&self) -> Result<u64, StoreError> {
        let studies = self
            .pending
            .scan_prefix([PENDING_SET])
            .keys()
            .map(|key| {
                let key = key?;
                let id = key
                    .get(1..9)
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or_else(|| StoreError::Corrupt("pending set key".into()))?;
                Ok(u64::from_be_bytes(id))
            })
            .collect::<Result<Vec<u64>, StoreError>>()?;
        let mut settled = 0;
        let mut first_error = None;
        for study in studies {
            match self.change_pending(study, Trigger::Due) {
                Ok(outcome) => settled += (outcome.settled.len() + outcome.voided) as u64,
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(settled), Err)
    }

    /// Closes a study: settles what is pending if the study reaches its minimum cohort
    /// (voids it otherwise), then refunds the escrow's remainder to the researcher, in
    /// one transaction. Returns the closed study and the refund entry (none when the
    /// escrow was empty).
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownStudy`], [`StoreError::NotStudyOwner`],
    /// [`StoreError::StudyClosed`] if already closed, [`StoreError::Storage`].
    pub fn close_study(
        &self,
        study_id: u64,
        researcher: Bytes32,
    ) -> Result<(Study, Option<LedgerEntry>), StoreError> {
        let outcome = self.change_pending(study_id, Trigger::Close(researcher))?;
        Ok((outcome.study, outcome.refund))
    }

    /// Where the enrollment of `nullifier` in a study stands, if the marketplace ever
    /// took it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn enrollment_status(
        &self,
        study_id: u64,
        nullifier: &Bytes32,
    ) -> Result<Option<EnrollmentStatus>, StoreError> {
        if let Some(enrollment) = self.enrollment(study_id, nullifier)? {
            return Ok(Some(EnrollmentStatus::Settled(Box::new(enrollment))));
        }
        if self
            .pending
            .contains_key(pending_key(PENDING_ENTRY, study_id, nullifier))?
        {
            return Ok(Some(EnrollmentStatus::Pending {
                min_cohort: self.study(study_id)?.min_cohort,
            }));
        }
        let voided: Option<String> =
            get_json(&self.pending, &pending_key(VOIDED, study_id, nullifier))?;
        Ok(voided.map(|reason| EnrollmentStatus::Voided { reason }))
    }

    /// The settled enrollment of `nullifier` in a study, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn enrollment(
        &self,
        study_id: u64,
        nullifier: &Bytes32,
    ) -> Result<Option<Enrollment>, StoreError> {
        get_json(&self.nullifiers, &nullifier_key(study_id, nullifier))
    }

    /// Every settled enrollment of a study, in nullifier order (what a study bundle
    /// lists).
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn enrollments(&self, study_id: u64) -> Result<Vec<Enrollment>, StoreError> {
        self.nullifiers
            .scan_prefix(study_id.to_be_bytes())
            .map(|item| decode_json(&item?.1))
            .collect()
    }

    /// The measure values of a study's settled enrollments, in settlement order: what
    /// its releases are computed from.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn measure_values(&self, study_id: u64) -> Result<Vec<Vec<u64>>, StoreError> {
        let mut prefix = [0u8; 9];
        prefix[0] = MEASURED;
        prefix[1..].copy_from_slice(&study_id.to_be_bytes());
        self.releases
            .scan_prefix(prefix)
            .map(|item| decode_json(&item?.1))
            .collect()
    }

    /// How many enrollments are pending across all studies (their rewards are still in
    /// the escrows).
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`].
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        self.pending
            .scan_prefix([PENDING_ENTRY])
            .try_fold(0, |count, item| item.map(|_| count + 1))
            .map_err(StoreError::from)
    }

    /// Runs one change of a study's pending enrollments under the note-tree lock.
    fn change_pending(&self, study_id: u64, trigger: Trigger) -> Result<Outcome, StoreError> {
        let at = self.public_now();
        let now = now_ms();
        let (_, outcome) = self.change_tree(
            &self.note_tree,
            || self.load_note_tree(),
            |tree| self.plan(tree, study_id, &trigger, at, now),
            |tx, plan, _, _| self.write_plan(tx, study_id, &trigger, plan, at),
        )?;
        Ok(outcome)
    }

    /// Decides what a change does, appending the notes of what it settles to `tree`.
    fn plan(
        &self,
        tree: &mut RegistryTree,
        study_id: u64,
        trigger: &Trigger,
        at: u64,
        now: u64,
    ) -> Result<Plan, StoreError> {
        let study = self.study(study_id)?;
        match trigger {
            Trigger::Close(researcher) if &study.researcher != researcher => {
                return Err(StoreError::NotStudyOwner(study_id))
            }
            _ if study.status != StudyStatus::Open => {
                return Err(StoreError::StudyClosed(study_id))
            }
            _ => {}
        }
        let before: PendingSet =
            get_json(&self.pending, &prefixed_u64(PENDING_SET, study_id))?.unwrap_or_default();
        let candidates = before
            .nullifiers
            .iter()
            .map(|nullifier| {
                get_json::<PendingEnrollment>(
                    &self.pending,
                    &pending_key(PENDING_ENTRY, study_id, nullifier),
                )?
                .ok_or_else(|| StoreError::Corrupt("a pending nullifier has no enrollment".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut void = Vec::new();
        let mut valid = Vec::new();
        for candidate in candidates {
            match self.root_status_at(&candidate.proof.registry_root, at, study.root_window_ms)? {
                RootStatus::Current(_) | RootStatus::Acceptable { .. } => valid.push(candidate),
                _ => void.push((candidate.nullifier, ROOT_EXPIRED_WHILE_PENDING)),
            }
        }
        // The new one's root is checked with the rest of its admission; it comes last.
        if let Trigger::Admit(new) = trigger {
            self.check_admission(&study, before.nullifiers.len() as u64, new, at)?;
            valid.push(new.as_ref().clone());
        }
        let count = valid.len() as u64;
        let policy = self.config.cohort;
        let settles = !valid.is_empty()
            && match trigger {
                Trigger::Close(_) => study.enrolled + count >= study.min_cohort,
                _ if study.enrolled == 0 => count >= study.min_cohort,
                _ => {
                    count >= policy.batch_size
                        || valid.first().is_some_and(|oldest| {
                            now.saturating_sub(oldest.accepted_ms) >= policy.batch_age_ms
                        })
                }
            };
        let mut settle = Vec::new();
        let mut keep = PendingSet::default();
        if settles {
            valid.shuffle(&mut rand::thread_rng());
            for enrollment in valid {
                let commitment =
                    note_commitment(study.reward, fr_from_bytes(&enrollment.reward_receiver)?);
                let first_index = tree.extend(&[commitment])?.start;
                let append = NoteAppend {
                    first_index,
                    commitments: vec![fr_to_bytes(&commitment)],
                    root: fr_to_bytes(&tree.root()),
                };
                settle.push((enrollment, append));
            }
        } else if matches!(trigger, Trigger::Close(_)) {
            void.extend(
                valid
                    .iter()
                    .map(|enrollment| (enrollment.nullifier, CLOSED_BELOW_COHORT)),
            );
        } else {
            keep.nullifiers = valid
                .iter()
                .map(|enrollment| enrollment.nullifier)
                .collect();
        }
        Ok(Plan {
            before,
            settle,
            void,
            keep,
            enrolled: study.enrolled,
        })
    }

    /// The checks of a new enrollment that need no transaction: the study's room and
    /// escrow, the nullifier's novelty and the proof's root.
    fn check_admission(
        &self,
        study: &Study,
        pending: u64,
        new: &PendingEnrollment,
        at: u64,
    ) -> Result<(), StoreError> {
        if self
            .nullifiers
            .contains_key(nullifier_key(study.id, &new.nullifier))?
            || self
                .pending
                .contains_key(pending_key(PENDING_ENTRY, study.id, &new.nullifier))?
        {
            return Err(StoreError::DuplicateNullifier { study: study.id });
        }
        if let Some(error) = admission_error(study, pending) {
            return Err(error);
        }
        match self.root_status_at(&new.proof.registry_root, at, study.root_window_ms)? {
            RootStatus::Unknown => Err(StoreError::UnknownRoot),
            RootStatus::Expired(record) => Err(StoreError::RootExpired {
                seq: record.seq,
                current: self.registry_root()?.seq,
                window_ms: study.root_window_ms,
            }),
            RootStatus::Current(record) | RootStatus::Acceptable { record, .. }
                if record.seq < study.min_root_seq =>
            {
                Err(StoreError::RootBeforeStudy {
                    study: study.id,
                    seq: record.seq,
                    min: study.min_root_seq,
                })
            }
            _ => Ok(()),
        }
    }

    /// Writes a plan in one transaction.
    fn write_plan(
        &self,
        tx: &Tx<'_>,
        study_id: u64,
        trigger: &Trigger,
        plan: &Plan,
        at: u64,
    ) -> TxResult<Outcome> {
        let mut study = tx_study(tx, study_id)?;
        let set_key = prefixed_u64(PENDING_SET, study_id);
        let stored: PendingSet = tx_get_json(tx.pending, &set_key)?.unwrap_or_default();
        if study.enrolled != plan.enrolled || stored != plan.before {
            return abort(StoreError::Corrupt(format!(
                "study {study_id}'s enrollments changed outside the note-tree lock"
            )));
        }
        if study.status != StudyStatus::Open {
            return abort(StoreError::StudyClosed(study_id));
        }
        if let Trigger::Admit(new) = trigger {
            if let Some(error) = admission_error(&study, plan.before.nullifiers.len() as u64) {
                return abort(error);
            }
            if plan.keep.nullifiers.contains(&new.nullifier) {
                tx_put_json(
                    tx.pending,
                    &pending_key(PENDING_ENTRY, study_id, &new.nullifier),
                    new,
                )?;
            }
        }
        for (nullifier, reason) in &plan.void {
            tx.pending
                .remove(&pending_key(PENDING_ENTRY, study_id, nullifier)[..])?;
            tx_put_json(
                tx.pending,
                &pending_key(VOIDED, study_id, nullifier),
                reason,
            )?;
        }
        let mut settled = Vec::with_capacity(plan.settle.len());
        for (pending, note) in &plan.settle {
            settled.push(settle_one(tx, &mut study, pending, note, at)?);
            tx.pending
                .remove(&pending_key(PENDING_ENTRY, study_id, &pending.nullifier)[..])?;
        }
        if plan.keep.nullifiers.is_empty() {
            tx.pending.remove(&set_key[..])?;
        } else {
            tx_put_json(tx.pending, &set_key, &plan.keep)?;
        }
        let refund = match trigger {
            Trigger::Close(_) => close(tx, &mut study, at)?,
            _ => None,
        };
        tx_put_json(tx.studies, &study_key(study_id), &study)?;
        Ok(Outcome {
            study,
            settled,
            voided: plan.void.len(),
            refund,
        })
    }
}

/// Makes one pending enrollment public inside a settlement: its root checked again, the
/// payout from the escrow into the note pool, its audit entry, its note and its record.
fn settle_one(
    tx: &Tx<'_>,
    study: &mut Study,
    pending: &PendingEnrollment,
    note: &NoteAppend,
    at: u64,
) -> TxResult<Enrollment> {
    let (root, current_root_seq) =
        tx_check_root(tx, &pending.proof.registry_root, at, study.root_window_ms)?;
    if study.escrow < study.reward {
        return abort(StoreError::EscrowExhausted {
            study: study.id,
            escrow: study.escrow,
            reward: study.reward,
        });
    }
    let payout = post(
        tx,
        LedgerKind::Payout,
        Account::Escrow(study.id),
        Account::Notes,
        study.reward,
        Some(study.id),
        at,
    )?;
    let position = study.enrolled;
    study.enrolled += 1;
    study.escrow -= study.reward;
    let entry = audit::append(
        tx,
        at,
        AuditEvent::Enroll(Box::new(EnrollmentRecord {
            study: study.id,
            nullifier: pending.nullifier,
            registry_root: pending.proof.registry_root,
            root_seq: root.seq,
            current_root_seq,
            public_inputs: pending.proof.public_inputs.clone(),
            proof: pending.proof.proof.clone(),
            reward_receiver: pending.reward_receiver,
            note: note.clone(),
            ledger: payout.clone(),
        })),
    )?;
    record_notes(tx, note, note.first_index + 1, entry.index, at)?;
    let enrollment = Enrollment {
        study: study.id,
        nullifier: pending.nullifier,
        reward_receiver: pending.reward_receiver,
        note_commitment: note.commitments[0],
        note_index: note.first_index,
        reward: study.reward,
        position,
        root_seq: root.seq,
        ledger_seq: payout.seq,
        audit_index: entry.index,
        proof: pending.proof.clone(),
    };
    tx_put_json(
        tx.nullifiers,
        &nullifier_key(study.id, &pending.nullifier),
        &enrollment,
    )?;
    tx_put_json(
        tx.releases,
        &measured_key(study.id, position),
        &pending.measure_values,
    )?;
    Ok(enrollment)
}

/// Closes a study inside a transaction: the escrow's remainder back to the researcher,
/// and the audit entry.
fn close(tx: &Tx<'_>, study: &mut Study, at: u64) -> TxResult<Option<LedgerEntry>> {
    let refund = if study.escrow > 0 {
        Some(post(
            tx,
            LedgerKind::Refund,
            Account::Escrow(study.id),
            Account::Key(study.researcher),
            study.escrow,
            Some(study.id),
            at,
        )?)
    } else {
        None
    };
    study.escrow = 0;
    study.status = StudyStatus::Closed;
    audit::append(
        tx,
        at,
        AuditEvent::StudyClosed(StudyClosed {
            study: study.id,
            enrolled: study.enrolled,
            refund: refund.clone(),
        }),
    )?;
    Ok(refund)
}
