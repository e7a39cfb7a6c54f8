//! What a patient's wallet does against a marketplace: learn its key and circuit,
//! sync the registry, list open studies with a local eligibility preview, prove and
//! enroll, read the balance, transfer. Only proofs, nullifiers and the payout account
//! are sent; the record never leaves the wallet.

use anyhow::{bail, Context, Result};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::identity::StudyScope;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::statement::{fr_from_bytes, fr_to_hex};
use zkcohort_cohort::Eligibility;
use zkcohort_market::api::{AccountView, EnrollRequest, MarketplaceInfo};
use zkcohort_market::{Enrollment, LedgerEntry, SignedTransfer, Study, StudyStatus};
use zkcohort_prover::{CircuitKeys, EligibilityProof, ProofRequest};
use zkcohort_verifier::snarkjs::SnarkjsProof;

use crate::client::MarketClient;
use crate::wallet::{HeldRecord, Wallet, WalletEnrollment};

/// Leaves fetched per registry page.
const LEAF_PAGE: usize = 1000;

/// The marketplace's public facts, with its key decoded.
pub struct RemoteMarketplace {
    /// What `GET /marketplace` says.
    pub info: MarketplaceInfo,
    /// The marketplace key (signs audit heads, part of every study scope).
    pub key: [u8; 32],
}

impl RemoteMarketplace {
    /// Reads `GET /marketplace`.
    ///
    /// # Errors
    /// The server cannot be reached or answers something else.
    pub fn fetch(client: &MarketClient) -> Result<Self> {
        let info = client.marketplace()?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(&info.marketplace_key, &mut key)
            .context("the marketplace key is not 32 bytes of hex")?;
        Ok(Self { info, key })
    }

    /// The scope of a study on this marketplace.
    pub fn scope(&self, study: u64) -> StudyScope {
        StudyScope::for_study(&self.key, study)
    }

    /// The circuit shape the marketplace announces.
    pub fn shape(&self) -> CircuitShape {
        CircuitShape {
            clauses: self.info.clauses,
            slot_depth: self.info.slot_depth,
            registry_depth: self.info.registry_depth,
            issuer_depth: self.info.issuer_depth,
        }
    }

    /// Fails unless `keys` are the keys of this marketplace's circuit.
    ///
    /// # Errors
    /// Keys of another circuit.
    pub fn check_keys(&self, keys: &CircuitKeys) -> Result<()> {
        let ours = keys.circuit_id();
        if ours != self.info.circuit_id {
            bail!(
                "the proving key is for circuit {ours}, the marketplace verifies circuit {}: \
                 get the marketplace's keys (same shape, same setup)",
                self.info.circuit_id
            );
        }
        Ok(())
    }
}

/// Syncs the wallet's registry copy with the marketplace and returns the tree.
///
/// # Errors
/// Network errors, or leaves that do not rebuild the served root.
pub fn sync_registry(
    client: &MarketClient,
    wallet: &Wallet,
    market: &RemoteMarketplace,
) -> Result<RegistryTree> {
    let root = client.registry_root()?;
    let root = fr_from_bytes(&root.root).context("the registry root")?;
    wallet.sync_registry(market.info.registry_depth, root, |start| {
        let page = client.registry_leaves(start, LEAF_PAGE)?;
        page.iter()
            .map(|text| {
                let mut leaf = [0u8; 32];
                hex::decode_to_slice(text, &mut leaf).context("a registry leaf")?;
                Ok(leaf)
            })
            .collect()
    })?;
    wallet.registry(market.info.registry_depth)
}

/// Every study, in pages.
///
/// # Errors
/// Network errors.
pub fn all_studies(client: &MarketClient) -> Result<Vec<Study>> {
    let mut studies = Vec::new();
    loop {
        let start = studies.last().map_or(0, |study: &Study| study.id + 1);
        let page = client.studies(start, 100)?;
        if page.is_empty() {
            return Ok(studies);
        }
        studies.extend(page);
    }
}

/// An open study and what the wallet's records say about it.
pub struct StudyPreview {
    /// The study.
    pub study: Study,
    /// The first record that makes the wallet eligible, if one does.
    pub record: Option<HeldRecord>,
    /// The verdict for each record, in the wallet's order.
    pub verdicts: Vec<Eligibility>,
    /// Whether this wallet already enrolled.
    pub enrolled: bool,
    /// Whether a record that satisfies the query was revoked by its issuer (as of the
    /// last registry sync), so it cannot enroll.
    pub revoked: bool,
}

/// The open studies, each with the wallet's local eligibility preview.
///
/// # Errors
/// Network errors, or a study query the bundled catalog does not compile.
pub fn preview_studies(
    client: &MarketClient,
    wallet: &Wallet,
    market: &RemoteMarketplace,
) -> Result<Vec<StudyPreview>> {
    let records = wallet.records()?;
    let enrolled = wallet.enrollments()?;
    let revoked = wallet.revoked_leaves()?;
    let mut previews = Vec::new();
    for study in all_studies(client)? {
        if study.status != StudyStatus::Open {
            continue;
        }
        let verdicts = records
            .iter()
            .map(|held| Wallet::preview(held, &study.query))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("study {}", study.id))?;
        let matching: Vec<&HeldRecord> = records
            .iter()
            .zip(&verdicts)
            .filter(|(held, verdict)| {
                verdict.eligible && study.issuers.contains(&held.record.issuer)
            })
            .map(|(held, _)| held)
            .collect();
        let record = matching
            .iter()
            .find(|held| !revoked.contains(&held.file.leaf_index))
            .map(|held| (*held).clone());
        let revoked = record.is_none() && !matching.is_empty();
        let is_enrolled = enrolled.iter().any(|made| {
            made.study == study.id && made.marketplace_key == market.info.marketplace_key
        });
        previews.push(StudyPreview {
            study,
            record,
            verdicts,
            enrolled: is_enrolled,
            revoked,
        });
    }
    Ok(previews)
}

/// The proof request for enrolling in `preview`'s study with its eligible record.
///
/// # Errors
/// No eligible record, or one missing from the registry copy.
pub fn enrollment_request(
    wallet: &Wallet,
    registry: &RegistryTree,
    market: &RemoteMarketplace,
    preview: &StudyPreview,
) -> Result<ProofRequest> {
    let Some(held) = &preview.record else {
        bail!(
            "no record in this wallet satisfies study {}'s query",
            preview.study.id
        );
    };
    wallet.proof_request(
        held,
        registry,
        &preview.study,
        market.scope(preview.study.id),
        market.shape().issuer_depth,
    )
}

/// Submits a proof for `study` and records the enrollment in the wallet.
///
/// # Errors
/// The marketplace refuses it (its error code and message), or the wallet cannot be
/// written.
pub fn submit_enrollment(
    client: &MarketClient,
    wallet: &Wallet,
    market: &RemoteMarketplace,
    study: u64,
    proof: &EligibilityProof,
) -> Result<Enrollment> {
    let statement = &proof.statement;
    let body = EnrollRequest {
        proof: serde_json::to_value(SnarkjsProof::from_proof(&proof.proof))?,
        registry_root: fr_to_hex(&statement.registry_root),
        nullifier: fr_to_hex(&statement.nullifier.0),
        payout_account: hex::encode(wallet.payout_account()),
    };
    let enrollment = client
        .enroll(study, &body)
        .with_context(|| format!("enrolling in study {study}"))?;
    wallet.record_enrollment(WalletEnrollment {
        marketplace_key: market.info.marketplace_key.clone(),
        study,
        nullifier: body.nullifier,
        reward: enrollment.reward,
    })?;
    Ok(enrollment)
}

/// The wallet's payout account.
///
/// # Errors
/// Network errors.
pub fn account(client: &MarketClient, key: &[u8; 32]) -> Result<AccountView> {
    Ok(client.account(key)?)
}

/// Transfers `amount` from the wallet's payout account to `to`, signed with its key for
/// this marketplace only.
///
/// # Errors
/// The marketplace refuses it (balance, nonce), or network errors.
pub fn transfer(
    client: &MarketClient,
    wallet: &Wallet,
    to: [u8; 32],
    amount: u64,
) -> Result<LedgerEntry> {
    let market = RemoteMarketplace::fetch(client)?;
    let nonce = account(client, &wallet.payout_account())?.nonce;
    let transfer = SignedTransfer::sign(wallet.payout_key(), &market.key, to, amount, nonce);
    Ok(client.transfer(&transfer)?)
}
