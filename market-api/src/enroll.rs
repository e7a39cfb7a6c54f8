//! Enrollment: one verified proof becomes one paid enrollment.
//!
//! The caller (the HTTP layer) has already recomputed the statement from the
//! study and verified the Groth16 proof, off the async runtime.
//! [`Store::enroll`] then does everything else in one transaction: the study
//! is open, the registry root is acceptable, the nullifier is new for this
//! study, the study has room and its escrow covers the reward; it records the
//! nullifier with the proof (for the study bundle), appends the reward note
//! `note_commitment(reward, receiver)` to the note tree and moves the reward from the
//! escrow to the note pool, counts the enrollment and appends the audit entry. Under
//! concurrent duplicate submissions exactly one commits; the others see the nullifier
//! and fail with [`StoreError::DuplicateNullifier`].

use serde::{Deserialize, Serialize};
use zkcohort_circuits::note::note_commitment;
use zkcohort_circuits::statement::fr_from_bytes;
use zkcohort_verifier::events::{AuditEvent, EnrollmentRecord};
use zkcohort_verifier::snarkjs::SnarkjsProof;

use crate::ledger::{post, Account, LedgerKind};
use crate::notes::record_notes;
use crate::registry::tx_check_root;
use crate::store::{abort, now_ms, tx_put_json};
use crate::study::{study_key, tx_study};
use crate::{audit, Bytes32, Store, StoreError, StudyStatus};

/// The proof of an enrollment, kept for the study bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProofRecord {
    /// The registry root the proof is against (its first public input), as
    /// 32 big-endian bytes.
    #[schema(value_type = String)]
    #[serde(with = "crate::hex_bytes")]
    pub registry_root: Bytes32,
    /// The proof in snarkjs JSON (`proof.json`), re-serialized from its
    /// parsed points.
    #[schema(value_type = Object)]
    pub proof: SnarkjsProof,
    /// The public inputs as decimal strings, in circuit order.
    pub public_inputs: Vec<String>,
}

/// An accepted enrollment, stored under its study and nullifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Enrollment {
    /// The study.
    pub study: u64,
    /// The nullifier, as 32 big-endian bytes.
    #[schema(value_type = String)]
    #[serde(with = "crate::hex_bytes")]
    pub nullifier: Bytes32,
    /// The one-time receiver the proof binds, a field element (32 big-endian bytes).
    #[schema(value_type = String)]
    #[serde(with = "crate::hex_bytes")]
    pub reward_receiver: Bytes32,
    /// The reward note, `note_commitment(reward, reward_receiver)`.
    #[schema(value_type = String)]
    #[serde(with = "crate::hex_bytes")]
    pub note_commitment: Bytes32,
    /// The note's index in the note tree (its wallet needs it to spend it).
    pub note_index: u64,
    /// The reward paid.
    pub reward: u64,
    /// Its position among the study's enrollments, from 0.
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

/// The key of an enrollment: the study id (u64 BE) and the nullifier, so
/// nullifiers are scoped by study and a study's enrollments are one range.
fn nullifier_key(study: u64, nullifier: &Bytes32) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..8].copy_from_slice(&study.to_be_bytes());
    key[8..].copy_from_slice(nullifier);
    key
}

impl Store {
    /// Enrolls the holder of `nullifier` in a study and pays the reward into a note to
    /// `reward_receiver`, in one transaction. The proof must already be verified against
    /// the study's statement (whose `signal_hash` binds the receiver).
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownStudy`], [`StoreError::StudyClosed`],
    /// [`StoreError::UnknownRoot`] or [`StoreError::RootExpired`] for the proof's
    /// registry root, [`StoreError::DuplicateNullifier`], [`StoreError::StudyFull`],
    /// [`StoreError::EscrowExhausted`], [`StoreError::Registry`] for a receiver that is
    /// not a canonical field element or a full note tree, [`StoreError::Storage`]. On
    /// error nothing changes.
    pub fn enroll(
        &self,
        study_id: u64,
        nullifier: Bytes32,
        reward_receiver: Bytes32,
        proof: ProofRecord,
    ) -> Result<Enrollment, StoreError> {
        let at = now_ms();
        let key = nullifier_key(study_id, &nullifier);
        // A study's reward never changes, so the note can be computed before the
        // transaction; the transaction checks that it is still the study's reward.
        let reward = self.study(study_id)?.reward;
        let commitment = note_commitment(reward, fr_from_bytes(&reward_receiver)?);
        self.with_notes_appended(&[commitment], |tx, note, leaf_count| {
            let mut study = tx_study(tx, study_id)?;
            if study.reward != reward {
                return abort(StoreError::Corrupt(format!(
                    "study {study_id}'s reward changed"
                )));
            }
            if study.status != StudyStatus::Open {
                return abort(StoreError::StudyClosed(study_id));
            }
            let (root, current_root_seq) =
                tx_check_root(tx, &proof.registry_root, at, study.root_window_ms)?;
            if root.seq < study.min_root_seq {
                return abort(StoreError::RootBeforeStudy {
                    study: study_id,
                    seq: root.seq,
                    min: study.min_root_seq,
                });
            }
            if tx.nullifiers.get(key)?.is_some() {
                return abort(StoreError::DuplicateNullifier { study: study_id });
            }
            if study.enrolled >= study.max_enrollments {
                return abort(StoreError::StudyFull {
                    study: study_id,
                    max: study.max_enrollments,
                });
            }
            if study.escrow < study.reward {
                return abort(StoreError::EscrowExhausted {
                    study: study_id,
                    escrow: study.escrow,
                    reward: study.reward,
                });
            }
            let payout = post(
                tx,
                LedgerKind::Payout,
                Account::Escrow(study_id),
                Account::Notes,
                study.reward,
                Some(study_id),
                at,
            )?;
            let position = study.enrolled;
            study.enrolled += 1;
            study.escrow -= study.reward;
            tx_put_json(tx.studies, &study_key(study_id), &study)?;
            let entry = audit::append(
                tx,
                at,
                AuditEvent::Enroll(Box::new(EnrollmentRecord {
                    study: study_id,
                    nullifier,
                    registry_root: proof.registry_root,
                    root_seq: root.seq,
                    current_root_seq,
                    public_inputs: proof.public_inputs.clone(),
                    proof: proof.proof.clone(),
                    reward_receiver,
                    note: note.clone(),
                    ledger: payout.clone(),
                })),
            )?;
            record_notes(tx, note, leaf_count, entry.index, at)?;
            let enrollment = Enrollment {
                study: study_id,
                nullifier,
                reward_receiver,
                note_commitment: note.commitments[0],
                note_index: note.first_index,
                reward: study.reward,
                position,
                root_seq: root.seq,
                ledger_seq: payout.seq,
                audit_index: entry.index,
                proof: proof.clone(),
            };
            tx_put_json(tx.nullifiers, &key, &enrollment)?;
            Ok(enrollment)
        })
    }

    /// The enrollment of `nullifier` in a study, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn enrollment(
        &self,
        study_id: u64,
        nullifier: &Bytes32,
    ) -> Result<Option<Enrollment>, StoreError> {
        crate::store::get_json(&self.nullifiers, &nullifier_key(study_id, nullifier))
    }

    /// Every enrollment of a study, in nullifier order (what a study bundle
    /// lists).
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn enrollments(&self, study_id: u64) -> Result<Vec<Enrollment>, StoreError> {
        self.nullifiers
            .scan_prefix(study_id.to_be_bytes())
            .map(|item| crate::store::decode_json(&item?.1))
            .collect()
    }
}
