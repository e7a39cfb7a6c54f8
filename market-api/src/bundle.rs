//! Study bundles: [`Store::study_bundle`] assembles, for one study,
//! everything a sponsor's `zkcohort-verify` re-checks offline (the format
//! and its checks are `zkcohort_verifier::bundle`).
//!
//! The store reads the study, its enrollments (stored with their proofs)
//! and the audit head outside any transaction, then reads the study again:
//! if it changed meanwhile (an enrollment, a funding, a close), it starts
//! over, so the study, its enrollments and the head always agree.
//!
//! The study's audit entries are found by scanning the log up to the head
//! (`O(log size)` reads per entry for its inclusion proof, `O(size)` for the
//! scan): no index to keep in step with every operation, at the cost of a
//! linear read per bundle, which is fine for logs of up to a few hundred
//! thousand entries and a bundle fetched now and then. An index by study
//! written in each entry's transaction is the step up if that changes.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use zkcohort_verifier::bundle::{
    BundleCircuit, BundleEnrollment, BundleRoot, ProvenEntry, StudyBundle, BUNDLE_FORMAT,
};
use zkcohort_verifier::snarkjs::SnarkjsVerifyingKey;
use zkcohort_verifier::{KeySetup, VerifyingKey};

use crate::{AuditEntry, AuditHead, Enrollment, SignedHead, Store, StoreError, Study};

/// How many times [`Store::study_bundle`] starts over when the study keeps
/// changing while it reads.
const ATTEMPTS: usize = 16;

/// How many audit entries are read at once while scanning the log.
const SCAN_PAGE: usize = 1024;

/// What a bundle needs beyond the store: the marketplace key and the circuit.
#[derive(Debug, Clone, Copy)]
pub struct BundleContext<'a> {
    /// The marketplace key: signs the bundle's audit head.
    pub audit_key: &'a SigningKey,
    /// Clauses per query of the circuit.
    pub clauses: usize,
    /// The circuit's slot-tree depth.
    pub slot_depth: usize,
    /// The circuit's verifying key.
    pub verifying_key: &'a VerifyingKey<ark_bn254::Bn254>,
    /// Where the key came from.
    pub setup: KeySetup,
}

impl Store {
    /// The bundle of study `study_id`: the study, its enrollments and
    /// proofs, the registry roots they use, and the audit entries that
    /// concern it with inclusion proofs against a head signed now.
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
        let (study, mut enrollments, head) = self.consistent_view(study_id)?;
        enrollments.sort_by_key(|enrollment| enrollment.audit_index);

        let mut entries = self.study_entries(study_id, head.size)?;
        let mut registry_roots = Vec::new();
        let used: BTreeSet<u64> = enrollments.iter().map(|e| e.root_seq).collect();
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

        Ok(StudyBundle {
            format: BUNDLE_FORMAT,
            marketplace_key: context.audit_key.verifying_key().to_bytes(),
            study,
            circuit: BundleCircuit {
                clauses: context.clauses,
                slot_depth: context.slot_depth,
            },
            verifying_key: SnarkjsVerifyingKey::from_verifying_key(context.verifying_key),
            setup: context.setup,
            enrollments: enrollments.into_iter().map(bundle_enrollment).collect(),
            registry_roots,
            head: SignedHead::sign(head, context.audit_key),
            audit_entries,
        })
    }

    /// The study, its enrollments and an audit head that include each
    /// other's changes: read until the study is the same before and after.
    fn consistent_view(
        &self,
        study_id: u64,
    ) -> Result<(Study, Vec<Enrollment>, AuditHead), StoreError> {
        for _ in 0..ATTEMPTS {
            let study = self.study(study_id)?;
            let enrollments = self.enrollments(study_id)?;
            let head = self.audit_head()?;
            if self.study(study_id)? == study && enrollments.len() as u64 == study.enrolled {
                return Ok((study, enrollments, head));
            }
        }
        Err(StoreError::Corrupt(format!(
            "study {study_id} kept changing while its bundle was read"
        )))
    }

    /// The entries among the first `size` that concern the study: its
    /// creation, fundings, enrollments and close.
    fn study_entries(
        &self,
        study_id: u64,
        size: u64,
    ) -> Result<BTreeMap<u64, AuditEntry>, StoreError> {
        let mut found = BTreeMap::new();
        let mut start = 0;
        while start < size {
            let page = self.audit_entries(start, SCAN_PAGE)?;
            let Some(last) = page.last() else { break };
            start = last.index + 1;
            for entry in page {
                if entry.index < size && entry.event.study() == Some(study_id) {
                    found.insert(entry.index, entry);
                }
            }
        }
        Ok(found)
    }
}

/// An enrollment in the verifier's form.
fn bundle_enrollment(enrollment: Enrollment) -> BundleEnrollment {
    BundleEnrollment {
        nullifier: enrollment.nullifier,
        payout_account: enrollment.payout_account,
        reward: enrollment.reward,
        registry_root: enrollment.proof.registry_root,
        root_seq: enrollment.root_seq,
        proof: enrollment.proof.proof,
        public_inputs: enrollment.proof.public_inputs,
        audit_index: enrollment.audit_index,
    }
}
