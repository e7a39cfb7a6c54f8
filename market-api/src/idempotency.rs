//! Idempotency keys: a client that retries a state-changing request it never saw the
//! answer to (a timeout, a dropped connection, a 503) sends the same key again and gets
//! the first outcome back instead of applying the request twice.
//!
//! An [`IdempotencyClaim`] names a slot (who asks, which operation, the client's key)
//! and fingerprints the request. The operation's transaction looks the slot up first:
//! empty, it runs and records its outcome in the slot in the same transaction, so an
//! outcome is stored exactly when the change is; filled by the same request, it returns
//! the recorded outcome and changes nothing; filled by another request, it refuses with
//! [`StoreError::IdempotencyKeyReused`]. A refused request records nothing (it changed
//! nothing, so a retry may succeed). Slots are kept for the life of the store: each one
//! belongs to a change that also wrote an audit entry, so they grow no faster than the
//! log.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{abort, tx_get_json, tx_put_json, Tx, TxResult};
use crate::{Bytes32, Store, StoreError};

/// The longest idempotency key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// One request's claim on an idempotency slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    slot: Bytes32,
    request: Bytes32,
}

/// What a slot holds: the fingerprint of the request that filled it and its outcome.
#[derive(Serialize, Deserialize)]
struct Recorded {
    #[serde(with = "crate::hex_bytes")]
    request: Bytes32,
    outcome: serde_json::Value,
}

impl IdempotencyClaim {
    /// The claim of the request `request` (its canonical bytes: the path and the parsed
    /// body) by `principal` (the caller's account, or a role name) on `operation`, under
    /// the client's `key`. Keys are scoped to the principal and the operation, so two
    /// callers who draw the same key never see each other's outcomes.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidIdempotencyKey`] for a key that is empty, longer than
    /// [`MAX_IDEMPOTENCY_KEY_BYTES`], or not printable ASCII.
    pub fn new(
        principal: &[u8],
        operation: &str,
        key: &str,
        request: &[u8],
    ) -> Result<Self, StoreError> {
        if key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY_BYTES
            || !key.bytes().all(|byte| byte.is_ascii_graphic())
        {
            return Err(StoreError::InvalidIdempotencyKey(format!(
                "an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY_BYTES} printable ASCII \
                 characters without spaces"
            )));
        }
        let mut slot = Sha256::new();
        for part in [principal, operation.as_bytes(), key.as_bytes()] {
            slot.update((part.len() as u64).to_be_bytes());
            slot.update(part);
        }
        Ok(Self {
            slot: slot.finalize().into(),
            request: Sha256::digest(request).into(),
        })
    }
}

/// The outcome recorded under `claim`, if a transaction recorded one.
///
/// # Errors
///
/// [`StoreError::IdempotencyKeyReused`] when another request filled the slot;
/// [`StoreError::Corrupt`] for an outcome that does not read back as `T`.
pub(crate) fn tx_recorded<T: DeserializeOwned>(
    tx: &Tx<'_>,
    claim: &IdempotencyClaim,
) -> TxResult<Option<T>> {
    match tx_get_json::<Recorded>(tx.idempotency, &claim.slot)? {
        None => Ok(None),
        Some(recorded) if recorded.request != claim.request => {
            abort(StoreError::IdempotencyKeyReused)
        }
        Some(recorded) => match serde_json::from_value(recorded.outcome) {
            Ok(outcome) => Ok(Some(outcome)),
            Err(error) => abort(StoreError::Corrupt(format!(
                "an idempotency outcome: {error}"
            ))),
        },
    }
}

/// Records `outcome` under `claim`, in the transaction that produced it.
pub(crate) fn tx_record<T: Serialize>(
    tx: &Tx<'_>,
    claim: &IdempotencyClaim,
    outcome: &T,
) -> TxResult<()> {
    let outcome = match serde_json::to_value(outcome) {
        Ok(outcome) => outcome,
        Err(error) => return abort(StoreError::Corrupt(error.to_string())),
    };
    tx_put_json(
        tx.idempotency,
        &claim.slot,
        &Recorded {
            request: claim.request,
            outcome,
        },
    )
}

impl Store {
    /// Runs `operation` in one transaction ([`Store::transact`]) under `claim`: the
    /// outcome recorded under it if there is one (nothing runs), else `operation`'s,
    /// recorded in the same transaction.
    pub(crate) fn transact_once<T: Serialize + DeserializeOwned>(
        &self,
        claim: Option<&IdempotencyClaim>,
        operation: impl Fn(&Tx<'_>) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        self.transact(|tx| {
            let Some(claim) = claim else {
                return operation(tx);
            };
            if let Some(first) = tx_recorded(tx, claim)? {
                return Ok(first);
            }
            let outcome = operation(tx)?;
            tx_record(tx, claim, &outcome)?;
            Ok(outcome)
        })
    }

    /// The outcome recorded under `claim`, read in a transaction of its own: for
    /// operations that must look before they change an in-memory tree.
    pub(crate) fn recorded<T: Serialize + DeserializeOwned>(
        &self,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<Option<T>, StoreError> {
        match claim {
            None => Ok(None),
            Some(claim) => self.transact(|tx| tx_recorded(tx, claim)),
        }
    }
}
