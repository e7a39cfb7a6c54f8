//! What an issuer does against a marketplace: append the leaves of the records it
//! attests (one request for a batch) and revoke them.

use anyhow::{ensure, Result};
use zkcohort_circuits::identity::IdentityCommitment;
use zkcohort_circuits::statement::fr_to_decimal;
use zkcohort_market::api::RootView;

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

/// Appends the records' leaves in one request and returns each patient's file.
///
/// # Errors
/// The marketplace refuses (not an issuer key, registry full), or answers with
/// another number of leaves.
pub fn register(client: &MarketClient, records: &[PendingRecord]) -> Result<Vec<IssuedRecordFile>> {
    let leaves: Vec<String> = records
        .iter()
        .map(|pending| fr_to_decimal(&pending.issuance.leaf))
        .collect();
    let appended = client.append_leaves(leaves)?;
    ensure!(
        appended.count == records.len() as u64,
        "the marketplace appended {} leaves, {} were sent",
        appended.count,
        records.len()
    );
    Ok(records
        .iter()
        .zip(appended.first_index..)
        .map(|(pending, index)| {
            pending
                .issuance
                .file(&pending.source, pending.identity, index)
        })
        .collect())
}

/// Revokes the leaf at `index` (only the issuer that appended it may).
///
/// # Errors
/// The marketplace refuses it.
pub fn revoke(client: &MarketClient, index: u64) -> Result<RootView> {
    Ok(client.revoke_leaf(index)?)
}
