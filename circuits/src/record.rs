//! An issued record as the wallet keeps it, and the registry leaf the marketplace
//! computes for it:
//! `record_commitment = Poseidon(identity_commitment, record_root)` is what the issuer
//! posts; `leaf = Poseidon(record_commitment, issuer_id, issued_at)`, with the issuer id
//! of the authenticated issuer ([`IssuerId::for_account`]).

use zkcohort_cohort::{Day, RecordSummary};

use crate::encoding::{catalog_tag, encode_day};
use crate::identity::IdentityCommitment;
use crate::issuers::IssuerId;
use crate::poseidon::{poseidon_hash2, poseidon_hash_fixed};
use crate::slots::{record_root, RecordSalt, SlotTree};
use crate::{CircuitError, Fr};

/// A record summary with what the issuer attested alongside it.
#[derive(Clone, Debug)]
pub struct IssuedRecord {
    /// The summary (private to the patient).
    pub summary: RecordSummary,
    /// The salt of its commitment.
    pub salt: RecordSalt,
    /// The account (ed25519 key) of the issuer that appended it.
    pub issuer: [u8; 32],
    /// The day the issuer issued it.
    pub issued_at: Day,
}

impl IssuedRecord {
    /// The salted record root, bound to the summary's catalog version, for a circuit
    /// with the given slot depth.
    ///
    /// # Errors
    /// As [`SlotTree::new`].
    pub fn record_root(&self, slot_depth: usize) -> Result<Fr, CircuitError> {
        Ok(record_root(
            SlotTree::new(&self.summary, slot_depth)?.root(),
            self.salt,
            catalog_tag(self.summary.catalog_version()),
        ))
    }

    /// What the issuer posts for this record and identity.
    ///
    /// # Errors
    /// As [`SlotTree::new`].
    pub fn commitment(
        &self,
        identity: IdentityCommitment,
        slot_depth: usize,
    ) -> Result<Fr, CircuitError> {
        Ok(record_commitment(identity, self.record_root(slot_depth)?))
    }

    /// The registry leaf for this record and identity.
    ///
    /// # Errors
    /// As [`SlotTree::new`], or an issue date outside the supported span.
    pub fn registry_leaf(
        &self,
        identity: IdentityCommitment,
        slot_depth: usize,
    ) -> Result<Fr, CircuitError> {
        registry_leaf(
            self.commitment(identity, slot_depth)?,
            IssuerId::for_account(&self.issuer),
            self.issued_at,
        )
    }
}

/// `Poseidon(identity_commitment, record_root)`.
pub fn record_commitment(identity: IdentityCommitment, record_root: Fr) -> Fr {
    poseidon_hash2(identity.0, record_root)
}

/// `Poseidon(record_commitment, issuer_id, issued_at)`.
///
/// # Errors
/// [`CircuitError::OutOfRange`] for an issue date outside the supported span.
pub fn registry_leaf(
    record_commitment: Fr,
    issuer: IssuerId,
    issued_at: Day,
) -> Result<Fr, CircuitError> {
    Ok(poseidon_hash_fixed(&[
        record_commitment,
        issuer.0,
        Fr::from(encode_day(issued_at)?),
    ]))
}
