//! The file an issuer hands a patient: the record summary it attested, the salt of
//! its commitment and where the commitment sits in the registry. It carries no
//! identity secret: the issuer only ever sees the patient's identity commitment.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use zkcohort_circuits::identity::IdentityCommitment;
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::slots::RecordSalt;
use zkcohort_circuits::statement::{fr_from_decimal, fr_to_decimal};
use zkcohort_circuits::Fr;
use zkcohort_cohort::{import_bundle, Catalog, Day, ImportReport, RecordSummary};

/// The format tag of [`IssuedRecordFile`].
pub const ISSUED_RECORD_FORMAT: &str = "zkcohort-issued-record-v1";

/// What an issuer gives the patient after appending the record's commitment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedRecordFile {
    /// Always [`ISSUED_RECORD_FORMAT`].
    pub format: String,
    /// Where the record came from (the bundle's file name), for the patient's eyes.
    pub source: String,
    /// The issuer's number, committed in the registry leaf.
    pub issuer_id: u64,
    /// The day the issuer attested the summary.
    pub issued_at: Day,
    /// The salt of the record commitment, decimal.
    pub salt: String,
    /// The patient's identity commitment the leaf was made for, decimal.
    pub identity_commitment: String,
    /// The slot-tree depth of the circuit the record was committed for.
    pub slot_depth: usize,
    /// The registry leaf, decimal.
    pub leaf: String,
    /// The leaf's index in the registry.
    pub leaf_index: u64,
    /// The record summary in its JSON form (keyed by concept id).
    pub summary: serde_json::Value,
}

impl IssuedRecordFile {
    /// The record with its salt, and the leaf it claims, after checking that the
    /// leaf is the one this record and `identity` make.
    ///
    /// # Errors
    /// A wrong format, malformed numbers or summary, another identity's record, or a
    /// leaf that does not match the record.
    pub fn open(&self, identity: IdentityCommitment) -> Result<(IssuedRecord, Fr)> {
        if self.format != ISSUED_RECORD_FORMAT {
            bail!(
                "not an issued record file (format {:?}, expected {ISSUED_RECORD_FORMAT:?})",
                self.format
            );
        }
        let commitment = decimal(&self.identity_commitment, "identity_commitment")?;
        if commitment != identity.0 {
            bail!("this record was issued to another identity");
        }
        let record = IssuedRecord {
            summary: RecordSummary::from_json(Catalog::bundled(), self.summary.clone())
                .context("the record's summary")?,
            salt: RecordSalt(decimal(&self.salt, "salt")?),
            issuer_id: self.issuer_id,
            issued_at: self.issued_at,
        };
        let leaf = decimal(&self.leaf, "leaf")?;
        if record.registry_leaf(identity, self.slot_depth)? != leaf {
            bail!("the leaf does not commit to this record and identity: the file is corrupt");
        }
        Ok((record, leaf))
    }
}

/// A decimal field element, or an error naming the field.
fn decimal(text: &str, what: &str) -> Result<Fr> {
    fr_from_decimal(text).with_context(|| format!("{what}: not a canonical field element"))
}

/// An issuer's work on one bundle: the summary it attests, salted for one identity.
pub struct Issuance {
    /// The slot-tree depth the record is committed for.
    pub slot_depth: usize,
    /// The record as the patient will hold it.
    pub record: IssuedRecord,
    /// The registry leaf to append.
    pub leaf: Fr,
    /// What the import mapped and skipped.
    pub report: ImportReport,
}

impl Issuance {
    /// Imports a FHIR bundle and salts its summary for `identity`.
    ///
    /// # Errors
    /// A bundle that does not import, or an issue date outside the supported span.
    pub fn from_bundle(
        bundle_json: &str,
        identity: IdentityCommitment,
        issuer_id: u64,
        issued_at: Day,
        slot_depth: usize,
    ) -> Result<Self> {
        let (summary, report) = import_bundle(Catalog::bundled(), bundle_json, issued_at)?;
        let record = IssuedRecord {
            summary,
            salt: RecordSalt::random(),
            issuer_id,
            issued_at,
        };
        let leaf = record.registry_leaf(identity, slot_depth)?;
        Ok(Self {
            slot_depth,
            record,
            leaf,
            report,
        })
    }

    /// The file for the patient, once the leaf sits at `leaf_index`.
    pub fn file(
        &self,
        source: &str,
        identity: IdentityCommitment,
        leaf_index: u64,
    ) -> IssuedRecordFile {
        IssuedRecordFile {
            format: ISSUED_RECORD_FORMAT.to_string(),
            source: source.to_string(),
            issuer_id: self.record.issuer_id,
            issued_at: self.record.issued_at,
            salt: fr_to_decimal(&self.record.salt.0),
            identity_commitment: fr_to_decimal(&identity.0),
            slot_depth: self.slot_depth,
            leaf: fr_to_decimal(&self.leaf),
            leaf_index,
            summary: self.record.summary.to_json(Catalog::bundled()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zkcohort_circuits::circuit::CircuitShape;
    use zkcohort_circuits::identity::IdentitySecret;

    fn fixture_issuance(identity: IdentityCommitment) -> Issuance {
        let path = &crate::sample::fixture_bundles().unwrap()[0];
        let text = std::fs::read_to_string(path).unwrap();
        let day: Day = "2025-06-01".parse().unwrap();
        Issuance::from_bundle(&text, identity, 7, day, CircuitShape::SMALL.slot_depth).unwrap()
    }

    #[test]
    fn the_patient_opens_what_the_issuer_issued() {
        let secret = IdentitySecret::random();
        let issuance = fixture_issuance(secret.commitment());
        let file = issuance.file("a.json", secret.commitment(), 3);
        let text = serde_json::to_string(&file).unwrap();
        let read: IssuedRecordFile = serde_json::from_str(&text).unwrap();
        let (record, leaf) = read.open(secret.commitment()).unwrap();
        assert_eq!(leaf, issuance.leaf);
        assert_eq!(record.summary, issuance.record.summary);
        assert_eq!(record.salt, issuance.record.salt);
    }

    #[test]
    fn another_identity_or_a_tampered_record_is_refused() {
        let secret = IdentitySecret::random();
        let issuance = fixture_issuance(secret.commitment());
        let file = issuance.file("a.json", secret.commitment(), 0);
        let stranger = IdentitySecret::random().commitment();
        assert!(file
            .open(stranger)
            .unwrap_err()
            .to_string()
            .contains("another identity"));

        let mut tampered = file.clone();
        tampered.issuer_id += 1;
        assert!(tampered
            .open(secret.commitment())
            .unwrap_err()
            .to_string()
            .contains("does not commit"));

        let mut other_format = file;
        other_format.format = "v0".into();
        assert!(other_format.open(secret.commitment()).is_err());
    }
}
