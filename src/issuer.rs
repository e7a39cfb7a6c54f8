//! What an issuer does against a marketplace: append the records it attests (one
//! request for a batch; the marketplace computes each leaf over the issuer id of the
//! key that appended it) and revoke them.

use anyhow::{ensure, Result};
use zkcohort_circuits::identity::IdentityCommitment;
use zkcohort_circuits::statement::fr_to_hex;
use zkcohort_market::api::RecordToAppend;
use zkcohort_market::RootRecord;

use crate::client::MarketClient;
use crate::issued::{Issuance, IssuedRecordFile};

/// One record to register: its import and the bundle's name.
pub struct PendingRecord {
    /// Where it came from (the bundle's file name).
    pub source: String,
    /// The patient's identity commitment.
    pub identity: IdentityCommitment,
    /// The issuer's import, salted for the identity.
    pub issuance: Issuance,
}

/// Appends the records in one request and returns each patient's file.
///
/// # Errors
/// The marketplace refuses (not an issuer key, registry full, an issue day after
/// today), or answers with another number of leaves.
pub fn register(client: &MarketClient, records: &[PendingRecord]) -> Result<Vec<IssuedRecordFile>> {
    let to_append: Vec<RecordToAppend> = records
        .iter()
        .map(|pending| RecordToAppend {
            commitment: fr_to_hex(&pending.issuance.commitment),
            issued_at: pending.issuance.issued_at,
        })
        .collect();
    let appended = client.append_records(to_append)?;
    ensure!(
        appended.count == records.len() as u64,
        "the marketplace appended {} leaves, {} were sent",
        appended.count,
        records.len()
    );
    records
        .iter()
        .zip(appended.first_index..)
        .map(|(pending, index)| {
            pending
                .issuance
                .file(&pending.source, pending.identity, appended.issuer, index)
        })
        .collect()
}

/// Revokes the leaf at `index` (only the issuer that appended it may).
///
/// # Errors
/// The marketplace refuses it.
pub fn revoke(client: &MarketClient, index: u64) -> Result<RootRecord> {
    Ok(client.revoke_leaf(index)?)
}
