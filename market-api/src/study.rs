//! Studies: a researcher's cohort query with its reward, size and privacy
//! budget, funded through the study's escrow account and closed (in [`crate::enroll`],
//! which settles or voids what is pending) with a refund of what is left.

use serde::{Deserialize, Serialize};
use zkcohort_circuits::issuers::IssuerSet;
use zkcohort_circuits::statement::fr_to_bytes;
use zkcohort_circuits::CircuitId;
use zkcohort_cohort::query::Query;
use zkcohort_verifier::events::{AuditEvent, SignedLedgerChange, StudyCreated};
use zkcohort_verifier::records::funding_signature_is_valid;

use crate::api::FundStudy;
use crate::idempotency::IdempotencyClaim;
use crate::ledger::{post, tx_take_nonce, Account, LedgerKind};
use crate::registry::tx_current_root;
use crate::store::{abort, tx_get_json, tx_get_u64, tx_put_json, tx_put_u64, Tx, TxResult};
use crate::{audit, Bytes32, LedgerEntry, Store, StoreError};

/// The counter of study ids in the `meta` tree.
const STUDY_SEQ: &[u8] = b"study_seq";

pub use zkcohort_verifier::records::{Study, StudyStatus};

/// What a researcher posts. `query_hash` and `circuit_id` are computed by
/// the caller (compiling the query for the circuit shape in use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewStudy {
    /// The researcher's account key (the caller authenticated it).
    #[serde(with = "crate::hex_bytes")]
    pub researcher: Bytes32,
    /// A short title.
    pub title: String,
    /// What the study is about.
    pub description: String,
    /// The cohort query; its index date is the study's index date.
    pub query: Query,
    /// The Poseidon hash of the compiled query, as 32 big-endian bytes.
    #[serde(with = "crate::hex_bytes")]
    pub query_hash: Bytes32,
    /// The circuit's id (the hash of its verifying key).
    pub circuit_id: CircuitId,
    /// The issuer accounts whose records the study accepts.
    #[serde(with = "zkcohort_verifier::hex_serde::vec32")]
    pub issuers: Vec<Bytes32>,
    /// The circuit's issuer depth: the issuer set's tree has this many levels.
    pub issuer_depth: usize,
    /// Tokens paid per enrollment.
    pub reward: u64,
    /// The most enrollments the study takes.
    pub max_enrollments: u64,
    /// The study's differential-privacy budget (epsilon).
    pub epsilon_budget: f64,
}

/// The key of a study.
pub(crate) fn study_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Reads a study inside a transaction, aborting with
/// [`StoreError::UnknownStudy`].
pub(crate) fn tx_study(tx: &Tx<'_>, id: u64) -> TxResult<Study> {
    match tx_get_json(tx.studies, &study_key(id))? {
        Some(study) => Ok(study),
        None => abort(StoreError::UnknownStudy(id)),
    }
}

/// Reads a study inside a transaction for a change by `researcher`: it must
/// be theirs and still open.
fn tx_open_study_of(tx: &Tx<'_>, study_id: u64, researcher: Bytes32) -> TxResult<Study> {
    let study = tx_study(tx, study_id)?;
    if study.researcher != researcher {
        return abort(StoreError::NotStudyOwner(study_id));
    }
    if study.status != StudyStatus::Open {
        return abort(StoreError::StudyClosed(study_id));
    }
    Ok(study)
}

impl Store {
    /// Creates a study with an empty escrow.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidStudy`] for an empty title, a zero reward, a maximum below
    /// the minimum cohort, or an epsilon budget that is not a positive number at most the
    /// operator's study cap;
    /// [`StoreError::Storage`].
    pub fn create_study(&self, new: NewStudy) -> Result<Study, StoreError> {
        self.create_study_once(new, None)
    }

    /// [`Store::create_study`] under an idempotency claim: a retry of the same request
    /// returns the first study and creates none.
    ///
    /// # Errors
    ///
    /// Those of [`Store::create_study`]; [`StoreError::IdempotencyKeyReused`].
    pub fn create_study_once(
        &self,
        new: NewStudy,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<Study, StoreError> {
        if new.title.trim().is_empty() {
            return Err(StoreError::InvalidStudy("the title is empty".into()));
        }
        if new.reward == 0 || new.max_enrollments == 0 {
            return Err(StoreError::InvalidStudy(
                "the reward and the maximum number of enrollments must be positive".into(),
            ));
        }
        let min_cohort = self.config.cohort.min_cohort;
        if new.max_enrollments < min_cohort {
            return Err(StoreError::InvalidStudy(format!(
                "the maximum number of enrollments must be at least the marketplace's minimum \
                 cohort of {min_cohort}: no enrollment is made public before that many have \
                 enrolled"
            )));
        }
        let cap = self.config.privacy.study.epsilon;
        match crate::dp::Epsilon::new(new.epsilon_budget) {
            Ok(chosen) if chosen <= cap => {}
            _ => {
                return Err(StoreError::InvalidStudy(format!(
                    "the epsilon budget must be a positive number of at most {cap}, the \
                     marketplace's cap per study (got {})",
                    new.epsilon_budget
                )))
            }
        }
        let issuers = IssuerSet::new(&new.issuers, new.issuer_depth)
            .map_err(|error| StoreError::InvalidStudy(error.to_string()))?;
        let issuers_root = fr_to_bytes(&issuers.root());
        let at = self.public_now();
        self.transact_once(claim, |tx| {
            let min_root_seq = tx_current_root(tx)?.seq;
            let id = tx_get_u64(tx.meta, STUDY_SEQ)? + 1;
            tx_put_u64(tx.meta, STUDY_SEQ, id)?;
            let study = Study {
                id,
                researcher: new.researcher,
                title: new.title.clone(),
                description: new.description.clone(),
                query: new.query.clone(),
                query_hash: new.query_hash,
                circuit_id: new.circuit_id,
                issuers: issuers.accounts().to_vec(),
                issuers_root,
                min_root_seq,
                root_window_ms: self.config.root_window_ms,
                reward: new.reward,
                max_enrollments: new.max_enrollments,
                min_cohort,
                epsilon_budget: new.epsilon_budget,
                status: StudyStatus::Open,
                enrolled: 0,
                escrow: 0,
                created_ms: at,
            };
            tx_put_json(tx.studies, &study_key(id), &study)?;
            audit::append(
                tx,
                at,
                AuditEvent::StudyCreated(StudyCreated {
                    study: study.clone(),
                }),
            )?;
            Ok(study)
        })
    }

    /// Moves `order.amount` from the researcher's account into the study's escrow on
    /// the researcher's signed order for this marketplace (whose key is
    /// `marketplace_key`). `researcher` is the caller the HTTP layer authenticated by its
    /// API key and must own the study; the signature, checked before the transaction,
    /// must be its account key's, so whoever holds or issued the API key cannot move
    /// the account's tokens without it. The order's nonce is the account's next one.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadSignature`], [`StoreError::BadNonce`],
    /// [`StoreError::UnknownStudy`], [`StoreError::NotStudyOwner`],
    /// [`StoreError::StudyClosed`], [`StoreError::InsufficientBalance`],
    /// [`StoreError::InvalidAmount`], [`StoreError::Storage`].
    pub fn fund_escrow(
        &self,
        study_id: u64,
        researcher: Bytes32,
        order: &FundStudy,
        marketplace_key: &Bytes32,
    ) -> Result<LedgerEntry, StoreError> {
        self.fund_escrow_once(study_id, researcher, order, marketplace_key, None)
    }

    /// [`Store::fund_escrow`] under an idempotency claim: a retry of the same order
    /// returns the first entry (where a bare retry is refused for its used nonce).
    ///
    /// # Errors
    ///
    /// Those of [`Store::fund_escrow`]; [`StoreError::IdempotencyKeyReused`].
    pub fn fund_escrow_once(
        &self,
        study_id: u64,
        researcher: Bytes32,
        order: &FundStudy,
        marketplace_key: &Bytes32,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<LedgerEntry, StoreError> {
        let amount = order.amount;
        if amount == 0 {
            return Err(StoreError::InvalidAmount(
                "the amount must be positive".into(),
            ));
        }
        if !funding_signature_is_valid(
            marketplace_key,
            &researcher,
            study_id,
            amount,
            order.nonce,
            &order.signature,
        ) {
            return Err(StoreError::BadSignature);
        }
        let at = self.public_now();
        self.transact_once(claim, |tx| {
            let mut study = tx_open_study_of(tx, study_id, researcher)?;
            tx_take_nonce(tx, &researcher, order.nonce)?;
            let entry = post(
                tx,
                LedgerKind::FundEscrow,
                Account::Key(researcher),
                Account::Escrow(study_id),
                amount,
                Some(study_id),
                at,
            )?;
            study.escrow += amount;
            tx_put_json(tx.studies, &study_key(study_id), &study)?;
            audit::append(
                tx,
                at,
                AuditEvent::EscrowFunded(SignedLedgerChange {
                    ledger: entry.clone(),
                    nonce: order.nonce,
                    signature: order.signature,
                }),
            )?;
            Ok(entry)
        })
    }

    /// The study with this id.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownStudy`], [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn study(&self, id: u64) -> Result<Study, StoreError> {
        crate::store::get_json(&self.studies, &study_key(id))?.ok_or(StoreError::UnknownStudy(id))
    }

    /// The study with this id, which `researcher` must own (open or closed).
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownStudy`], [`StoreError::NotStudyOwner`], [`StoreError::Storage`],
    /// [`StoreError::Corrupt`].
    pub fn study_of(&self, id: u64, researcher: &Bytes32) -> Result<Study, StoreError> {
        let study = self.study(id)?;
        if &study.researcher != researcher {
            return Err(StoreError::NotStudyOwner(id));
        }
        Ok(study)
    }

    /// Up to `limit` studies with ids from `start` on, in id order.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn studies(&self, start: u64, limit: usize) -> Result<Vec<Study>, StoreError> {
        self.studies
            .range(study_key(start)..)
            .take(limit)
            .map(|item| crate::store::decode_json(&item?.1))
            .collect()
    }
}
