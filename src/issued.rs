//! The file an issuer hands a patient: the record summary it attested, the salt of
//! its commitment, the issuer account the marketplace bound into the leaf and where
//! the leaf sits in the registry. It carries no identity secret: the issuer only ever
//! sees the patient's identity commitment.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use zkcohort_circuits::encoding::catalog_tag;
use zkcohort_circuits::identity::IdentityCommitment;
use zkcohort_circuits::issuers::IssuerId;
use zkcohort_circuits::record::{record_commitment, registry_leaf, IssuedRecord};
use zkcohort_circuits::slots::{record_root, RecordSalt, SlotTree};
use zkcohort_circuits::statement::{fr_from_hex, fr_to_hex};
use zkcohort_circuits::Fr;
use zkcohort_cohort::{import_bundle, Catalog, Day, ImportReport, RecordSummary};

/// The format tag of [`IssuedRecordFile`].
pub const ISSUED_RECORD_FORMAT: &str = "zkcohort-issued-record-v3";

/// What an issuer gives the patient after appending the record's commitment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedRecordFile {
    /// Always [`ISSUED_RECORD_FORMAT`].
    pub format: String,
    /// Where the record came from (the bundle's file name), for the patient's eyes.
    pub source: String,
    /// The issuer's account (hex): the marketplace put its id in the registry leaf.
    pub issuer: String,
    /// The day the issuer attested the summary.
    pub issued_at: Day,
    /// The salt of the record commitment, a field element in hex.
    pub salt: String,
    /// The patient's identity commitment the leaf was made for, in hex.
    pub identity_commitment: String,
    /// The slot-tree depth of the circuit the record was committed for.
    pub slot_depth: usize,
    /// The registry leaf, in hex.
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
        let commitment = field(&self.identity_commitment, "identity_commitment")?;
        if commitment != identity.0 {
            bail!("this record was issued to another identity");
        }
        let mut issuer = [0u8; 32];
        hex::decode_to_slice(&self.issuer, &mut issuer).context("issuer: not 64 hex digits")?;
        let record = IssuedRecord {
            summary: RecordSummary::from_json(Catalog::bundled(), self.summary.clone())
                .context("the record's summary")?,
            salt: RecordSalt(field(&self.salt, "salt")?),
            issuer,
            issued_at: self.issued_at,
        };
        let leaf = field(&self.leaf, "leaf")?;
        if record.registry_leaf(identity, self.slot_depth)? != leaf {
            bail!("the leaf does not commit to this record and identity: the file is corrupt");
        }
        Ok((record, leaf))
    }
}

/// A field element in hex, or an error naming the field.
fn field(text: &str, what: &str) -> Result<Fr> {
    fr_from_hex(text).with_context(|| format!("{what}: not a canonical field element in hex"))
}

/// An issuer's work on one bundle: the summary it attests, salted for one identity.
pub struct Issuance {
    /// The slot-tree depth the record is committed for.
    pub slot_depth: usize,
    /// The summary as the patient will hold it.
    pub summary: RecordSummary,
    /// The salt of its commitment.
    pub salt: RecordSalt,
    /// The issue day.
    pub issued_at: Day,
    /// `Poseidon(identity_commitment, record_root)`: what the issuer posts.
    pub commitment: Fr,
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
        issued_at: Day,
        slot_depth: usize,
    ) -> Result<Self> {
        let (summary, report) = import_bundle(Catalog::bundled(), bundle_json, issued_at)?;
        let salt = RecordSalt::random();
        let record_root = record_root(
            SlotTree::new(&summary, slot_depth)?.root(),
            salt,
            catalog_tag(summary.catalog_version()),
        );
        Ok(Self {
            slot_depth,
            summary,
            salt,
            issued_at,
            commitment: record_commitment(identity, record_root),
            report,
        })
    }

    /// The record as the patient holds it once `issuer` appended it.
    pub fn record(&self, issuer: [u8; 32]) -> IssuedRecord {
        IssuedRecord {
            summary: self.summary.clone(),
            salt: self.salt,
            issuer,
            issued_at: self.issued_at,
        }
    }

    /// The file for the patient, once the marketplace appended the leaf for `issuer`
    /// at `leaf_index`.
    ///
    /// # Errors
    /// An issue day outside the circuit's span (refused before it was appended).
    pub fn file(
        &self,
        source: &str,
        identity: IdentityCommitment,
        issuer: [u8; 32],
        leaf_index: u64,
    ) -> Result<IssuedRecordFile> {
        let leaf = registry_leaf(
            self.commitment,
            IssuerId::for_account(&issuer),
            self.issued_at,
        )?;
        Ok(IssuedRecordFile {
            format: ISSUED_RECORD_FORMAT.to_string(),
            source: source.to_string(),
            issuer: hex::encode(issuer),
            issued_at: self.issued_at,
            salt: fr_to_hex(&self.salt.0),
            identity_commitment: fr_to_hex(&identity.0),
            slot_depth: self.slot_depth,
            leaf: fr_to_hex(&leaf),
            leaf_index,
            summary: self.summary.to_json(Catalog::bundled()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zkcohort_circuits::circuit::CircuitShape;
    use zkcohort_circuits::identity::IdentitySecret;

    const ISSUER: [u8; 32] = [3; 32];

    fn fixture_issuance(identity: IdentityCommitment) -> Issuance {
        let path = &crate::sample::fixture_bundles().unwrap()[0];
        let text = std::fs::read_to_string(path).unwrap();
        let day: Day = "2025-06-01".parse().unwrap();
        Issuance::from_bundle(&text, identity, day, CircuitShape::SMALL.slot_depth).unwrap()
    }

    #[test]
    fn the_patient_opens_what_the_issuer_issued() {
        let secret = IdentitySecret::random();
        let issuance = fixture_issuance(secret.commitment());
        let file = issuance
            .file("a.json", secret.commitment(), ISSUER, 3)
            .unwrap();
        let text = serde_json::to_string(&file).unwrap();
        let read: IssuedRecordFile = serde_json::from_str(&text).unwrap();
        let (record, leaf) = read.open(secret.commitment()).unwrap();
        let expected = issuance.record(ISSUER);
        assert_eq!(
            leaf,
            expected
                .registry_leaf(secret.commitment(), issuance.slot_depth)
                .unwrap()
        );
        assert_eq!(record.summary, expected.summary);
        assert_eq!(record.salt, expected.salt);
        assert_eq!(record.issuer, ISSUER);
    }

    #[test]
    fn another_identity_or_a_tampered_record_is_refused() {
        let secret = IdentitySecret::random();
        let issuance = fixture_issuance(secret.commitment());
        let file = issuance
            .file("a.json", secret.commitment(), ISSUER, 0)
            .unwrap();
        let stranger = IdentitySecret::random().commitment();
        assert!(file
            .open(stranger)
            .unwrap_err()
            .to_string()
            .contains("another identity"));

        let mut tampered = file.clone();
        tampered.issuer = hex::encode([4u8; 32]);
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
