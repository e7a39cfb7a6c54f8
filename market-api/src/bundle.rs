//! Study bundles: [`Store::study_bundle`] assembles, for one study,
//! everything a sponsor's `zkcohort-verify` re-checks offline (the format
//! and its checks are `zkcohort_verifier::bundle`).
//!
//! The store reads the study, its enrollments (stored with their proofs), the
//! study's head and the audit head outside any transaction, then reads the study
//! and its head again: if either changed meanwhile (an enrollment, a funding, a
//! close), it starts over, so the study, its enrollments and both heads always
//! agree. The bundle is signed over both heads ([`SignedStudyHead`]).
//!
//! The study's audit entries are found by walking its chain back from the study's
//! head (each entry names the study's previous one): one read per entry and
//! `O(log size)` for its inclusion proof.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use zkcohort_circuits::shape::CircuitShape;
use zkcohort_verifier::bundle::{
    BundleCircuit, BundleEnrollment, BundleRoot, ProvenEntry, StudyBundle, BUNDLE_FORMAT,
};
use zkcohort_verifier::events::AuditEvent;
use zkcohort_verifier::snarkjs::SnarkjsVerifyingKey;
use zkcohort_verifier::{KeySetup, VerifyingKey};

use crate::audit::{SignedStudyHead, StudyHead};
use crate::{AuditEntry, AuditHead, Enrollment, Store, StoreError, Study};

/// How many times [`Store::study_bundle`] starts over when the study keeps
/// changing while it reads.
const ATTEMPTS: usize = 16;

/// What a bundle needs beyond the store: the marketplace key and the circuit.
#[derive(Debug, Clone, Copy)]
pub struct BundleContext<'a> {
    /// The marketplace key: signs the bundle's audit head.
    pub audit_key: &'a SigningKey,
    /// The circuit's shape.
    pub shape: CircuitShape,
    /// The circuit's verifying key.
    pub verifying_key: &'a VerifyingKey<ark_bn254::Bn254>,
    /// Where the key came from.
    pub setup: KeySetup,
}

impl Store {
    /// The bundle of study `study_id`: the study, its enrollments and
    /// proofs, the registry roots they use (and the root that replaced each one an
    /// enrollment used after it was replaced), and the audit entries that
    /// concern it with inclusion proofs against a head signed now, once all of it is
    /// durable.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownStudy`]; [`StoreError::Storage`]; [`StoreError::Corrupt`] if
    /// stored data does not read back, a used root has no record, or the
    /// study kept changing over 16 reads.
    pub fn study_bundle(
        &self,
        study_id: u64,
        context: &BundleContext<'_>,
    ) -> Result<StudyBundle, StoreError> {
        let (study, mut enrollments, study_head, head) = self.consistent_view(study_id)?;
        enrollments.sort_by_key(|enrollment| enrollment.audit_index);

        let mut entries = self.study_entries(&study_head)?;
        let mut registry_roots = Vec::new();
        // The roots the proofs used, and the one that replaced each used root that had
        // been replaced by its enrollment: it shows the sponsor when, against the window.
        let mut used = BTreeSet::new();
        for entry in entries.values() {
            if let AuditEvent::Enroll(enrollment) = &entry.event {
                used.insert(enrollment.root_seq);
                if enrollment.current_root_seq > enrollment.root_seq {
                    used.insert(enrollment.root_seq + 1);
                }
            }
        }
        for seq in used {
            let record = self
                .root_history(seq, 1)?
                .into_iter()
                .find(|record| record.seq == seq)
                .ok_or_else(|| StoreError::Corrupt(format!("no record of registry root {seq}")))?;
            if let std::collections::btree_map::Entry::Vacant(slot) =
                entries.entry(record.audit_index)
            {
                slot.insert(self.audit_entry(record.audit_index)?);
            }
            registry_roots.push(BundleRoot {
                seq: record.seq,
                root: record.root,
                leaf_count: record.leaf_count,
                audit_index: record.audit_index,
                at_ms: record.at_ms,
            });
        }
        let audit_entries = entries
            .into_values()
            .map(|entry| {
                Ok(ProvenEntry {
                    inclusion: self.inclusion_proof(entry.index, head.size)?,
                    entry,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Everything read was committed before this flush: once it succeeds the head
        // covers only durable entries, so no restart can take back what it signs.
        self.flush()?;

        Ok(StudyBundle {
            format: BUNDLE_FORMAT,
            marketplace_key: context.audit_key.verifying_key().to_bytes(),
            study,
            circuit: BundleCircuit {
                clauses: context.shape.clauses,
                slot_depth: context.shape.slot_depth,
                issuer_depth: context.shape.issuer_depth,
                registry_depth: context.shape.registry_depth,
                measures: context.shape.measures,
                measure_bins: context.shape.measure_bins,
            },
            verifying_key: SnarkjsVerifyingKey::from_verifying_key(context.verifying_key),
            setup: context.setup,
            enrollments: enrollments.into_iter().map(bundle_enrollment).collect(),
            registry_roots,
            head: SignedStudyHead::sign(head, study_head, context.audit_key),
            audit_entries,
        })
    }

    /// The study, its enrollments, its head and an audit head that include each
    /// other's changes: read until the study and its head are the same before and
    /// after.
    fn consistent_view(
        &self,
        study_id: u64,
    ) -> Result<(Study, Vec<Enrollment>, StudyHead, AuditHead), StoreError> {
        for _ in 0..ATTEMPTS {
            let study = self.study(study_id)?;
            let enrollments = self.enrollments(study_id)?;
            let study_head = self.study_head(study_id)?;
            let head = self.audit_head()?;
            if self.study(study_id)? == study
                && self.study_head(study_id)? == study_head
                && enrollments.len() as u64 == study.enrolled
            {
                return Ok((study, enrollments, study_head, head));
            }
        }
        Err(StoreError::Corrupt(format!(
            "study {study_id} kept changing while its bundle was read"
        )))
    }

    /// The study's chain, from its head back to its `study_created` entry: its
    /// creation, fundings, enrollments and close.
    fn study_entries(&self, head: &StudyHead) -> Result<BTreeMap<u64, AuditEntry>, StoreError> {
        let mut found = BTreeMap::new();
        let mut next = Some(head.last_index);
        while let Some(index) = next {
            let entry = self.audit_entry(index)?;
            if entry.event.study() != Some(head.study) || found.len() as u64 >= head.entries {
                return Err(StoreError::Corrupt(format!(
                    "study {}'s audit chain is broken at entry {index}",
                    head.study
                )));
            }
            next = entry.study_prev;
            found.insert(index, entry);
        }
        Ok(found)
    }
}

/// An enrollment in the verifier's form.
fn bundle_enrollment(enrollment: Enrollment) -> BundleEnrollment {
    BundleEnrollment {
        nullifier: enrollment.nullifier,
        reward_receiver: enrollment.reward_receiver,
        note_commitment: enrollment.note_commitment,
        reward: enrollment.reward,
        registry_root: enrollment.proof.registry_root,
        root_seq: enrollment.root_seq,
        proof: enrollment.proof.proof,
        public_inputs: enrollment.proof.public_inputs,
        audit_index: enrollment.audit_index,
    }
}
