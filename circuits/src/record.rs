//! An issued record as the wallet keeps it, and the registry leaf an issuer appends:
//! `leaf = Poseidon(identity_commitment, record_root, issuer_id, issued_at)`.

use zkcohort_cohort::{Day, RecordSummary};

use crate::encoding::encode_day;
use crate::identity::IdentityCommitment;
use crate::poseidon::poseidon_hash_fixed;
use crate::slots::{record_root, RecordSalt, SlotTree};
use crate::{CircuitError, Fr};

/// A record summary with what the issuer attested alongside it.
#[derive(Clone, Debug)]
pub struct IssuedRecord {
    /// The summary (private to the patient).
    pub summary: RecordSummary,
    /// The salt of its commitment.
    pub salt: RecordSalt,
    /// The issuer's number in the marketplace.
    pub issuer_id: u64,
    /// The day the issuer issued it.
    pub issued_at: Day,
}

impl IssuedRecord {
    /// The salted record root for a circuit with the given slot depth.
    ///
    /// # Errors
    /// As [`SlotTree::new`].
    pub fn record_root(&self, slot_depth: usize) -> Result<Fr, CircuitError> {
        Ok(record_root(
            SlotTree::new(&self.summary, slot_depth)?.root(),
            self.salt,
        ))
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
            identity,
            self.record_root(slot_depth)?,
            self.issuer_id,
            self.issued_at,
        )
    }
}

/// `Poseidon(identity_commitment, record_root, issuer_id, issued_at)`.
///
/// # Errors
/// [`CircuitError::OutOfRange`] for an issue date outside the supported span.
pub fn registry_leaf(
    identity: IdentityCommitment,
    record_root: Fr,
    issuer_id: u64,
    issued_at: Day,
) -> Result<Fr, CircuitError> {
    Ok(poseidon_hash_fixed(&[
        identity.0,
        record_root,
        Fr::from(issuer_id),
        Fr::from(encode_day(issued_at)?),
    ]))
}
