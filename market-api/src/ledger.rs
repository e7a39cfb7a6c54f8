//! The token ledger: an internal double-entry ledger of whole tokens.
//!
//! Accounts are ed25519 public keys (patients, researchers, issuers) and
//! system accounts: one escrow per study, the note pool (the value of every unspent
//! reward note, [`crate::notes`]), and the mint. Every movement is one
//! [`LedgerEntry`] that debits one account and credits another by the same
//! amount, written in the same transaction as the balances it changes and the
//! audit entry that records it, so debits equal credits by construction.
//!
//! The mint is the only source of tokens: [`Store::mint`] debits it (it has
//! no stored balance; the `total_minted` counter is what it has issued).
//! Invariant, checked by [`Store::check_conservation`]: the balances of all
//! key and escrow accounts and the note pool add up to the total minted.
//!
//! Only a key's holder moves its tokens: a [`SignedTransfer`] carries an
//! ed25519 signature over [`transfer_message`], checked before the
//! transaction, and the sender's next nonce, checked inside it, so a transfer
//! cannot be replayed.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zkcohort_verifier::events::{AuditEvent, LedgerChange, SignedLedgerChange};

use crate::idempotency::IdempotencyClaim;
use crate::store::{
    abort, get_u64, prefixed_32, prefixed_u64, tx_get_u64, tx_put_json, tx_put_u64, Tx, TxResult,
};
use crate::{audit, Bytes32, Store, StoreError, Study};

/// The domain separator of transfer signatures.
pub const TRANSFER_DOMAIN: &[u8] = b"zkcohort-transfer-v2";

/// Key prefixes in the `accounts` tree.
const KEY_BALANCE: u8 = b'k';
const ESCROW_BALANCE: u8 = b'e';
const NOTE_POOL_BALANCE: &[u8] = b"p";
const KEY_NONCE: u8 = b'n';
/// Counters in the `meta` tree.
pub(crate) const LEDGER_SEQ: &[u8] = b"ledger_seq";
pub(crate) const TOTAL_MINTED: &[u8] = b"total_minted";

pub use zkcohort_verifier::records::{Account, LedgerEntry, LedgerKind};

/// An account's balance key, `None` for the mint.
fn balance_key(account: &Account) -> Option<Vec<u8>> {
    match account {
        Account::Key(key) => Some(prefixed_32(KEY_BALANCE, key).to_vec()),
        Account::Escrow(study) => Some(prefixed_u64(ESCROW_BALANCE, *study).to_vec()),
        Account::Notes => Some(NOTE_POOL_BALANCE.to_vec()),
        Account::Mint => None,
    }
}

/// A transfer between key accounts, signed by the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedTransfer {
    /// The sender's public key.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(with = "crate::hex_bytes")]
    pub from: Bytes32,
    /// The recipient's public key.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(with = "crate::hex_bytes")]
    pub to: Bytes32,
    /// The amount.
    #[schema(minimum = 1)]
    pub amount: u64,
    /// The sender's next nonce ([`Store::nonce`]).
    pub nonce: u64,
    /// The ed25519 signature over [`transfer_message`].
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{128}$")]
    #[serde(with = "crate::hex_bytes")]
    pub signature: [u8; 64],
}

impl SignedTransfer {
    /// A transfer on the marketplace whose key is `marketplace_key`, signed with the
    /// sender's key (a wallet's side).
    pub fn sign(
        key: &SigningKey,
        marketplace_key: &Bytes32,
        to: Bytes32,
        amount: u64,
        nonce: u64,
    ) -> Self {
        let from = key.verifying_key().to_bytes();
        Self {
            from,
            to,
            amount,
            nonce,
            signature: key
                .sign(&transfer_message(
                    marketplace_key,
                    &from,
                    &to,
                    amount,
                    nonce,
                ))
                .to_bytes(),
        }
    }

    /// Checks the signature under `from` for the marketplace whose key is
    /// `marketplace_key` (strict ed25519: no malleable or small-order signatures).
    ///
    /// # Errors
    ///
    /// [`StoreError::BadSignature`], also for a transfer signed for another marketplace.
    pub fn verify_signature(&self, marketplace_key: &Bytes32) -> Result<(), StoreError> {
        let key = VerifyingKey::from_bytes(&self.from).map_err(|_| StoreError::BadSignature)?;
        key.verify_strict(
            &transfer_message(
                marketplace_key,
                &self.from,
                &self.to,
                self.amount,
                self.nonce,
            ),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| StoreError::BadSignature)
    }
}

/// The bytes a transfer signature covers: `"zkcohort-transfer-v2" || marketplace key
/// || from || to || amount (u64 BE) || nonce (u64 BE)`. Naming the marketplace keeps a
/// transfer signed for one marketplace from being replayed on another, where the same
/// account may hold tokens under the same nonce.
pub fn transfer_message(
    marketplace_key: &Bytes32,
    from: &Bytes32,
    to: &Bytes32,
    amount: u64,
    nonce: u64,
) -> Vec<u8> {
    let mut message = Vec::with_capacity(TRANSFER_DOMAIN.len() + 112);
    message.extend_from_slice(TRANSFER_DOMAIN);
    message.extend_from_slice(marketplace_key);
    message.extend_from_slice(from);
    message.extend_from_slice(to);
    message.extend_from_slice(&amount.to_be_bytes());
    message.extend_from_slice(&nonce.to_be_bytes());
    message
}

/// What [`Store::check_conservation`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConservationReport {
    /// Tokens issued by the mint.
    pub total_minted: u64,
    /// Tokens held by key accounts.
    pub in_keys: u64,
    /// Tokens held in study escrows.
    pub in_escrow: u64,
    /// Tokens in unspent reward notes: what settled into notes minus what was withdrawn.
    pub in_notes: u64,
    /// The number of ledger entries replayed.
    pub entries: u64,
}

/// Takes `account`'s next nonce inside a transaction: `nonce` must be it. Transfers
/// and escrow fundings share the sequence, so each signed order is used once.
pub(crate) fn tx_take_nonce(tx: &Tx<'_>, account: &Bytes32, nonce: u64) -> TxResult<()> {
    let key = prefixed_32(KEY_NONCE, account);
    let expected = tx_get_u64(tx.accounts, &key)?;
    if nonce != expected {
        return abort(StoreError::BadNonce {
            expected,
            got: nonce,
        });
    }
    tx_put_u64(tx.accounts, &key, expected + 1)
}

/// Posts one balanced entry inside a transaction: debits `debit` (which
/// must hold `amount`, unless it is the mint), credits `credit`, writes the
/// entry. Aborts with [`StoreError::InsufficientBalance`] or [`StoreError::Overflow`].
pub(crate) fn post(
    tx: &Tx<'_>,
    kind: LedgerKind,
    debit: Account,
    credit: Account,
    amount: u64,
    study: Option<u64>,
    at_ms: u64,
) -> TxResult<LedgerEntry> {
    if let Some(key) = balance_key(&debit) {
        let balance = tx_get_u64(tx.accounts, &key)?;
        if balance < amount {
            return abort(StoreError::InsufficientBalance {
                account: debit.to_string(),
                balance,
                amount,
            });
        }
        tx_put_u64(tx.accounts, &key, balance - amount)?;
    } else {
        let minted = tx_get_u64(tx.meta, TOTAL_MINTED)?;
        let Some(minted) = minted.checked_add(amount) else {
            return abort(StoreError::Overflow);
        };
        tx_put_u64(tx.meta, TOTAL_MINTED, minted)?;
    }
    if let Some(key) = balance_key(&credit) {
        let balance = tx_get_u64(tx.accounts, &key)?;
        let Some(balance) = balance.checked_add(amount) else {
            return abort(StoreError::Overflow);
        };
        tx_put_u64(tx.accounts, &key, balance)?;
    } else {
        return abort(StoreError::InvalidAmount(
            "the mint cannot be credited".into(),
        ));
    }
    let seq = tx_get_u64(tx.meta, LEDGER_SEQ)?;
    tx_put_u64(tx.meta, LEDGER_SEQ, seq + 1)?;
    let entry = LedgerEntry {
        seq,
        kind,
        debit,
        credit,
        amount,
        study,
        at_ms,
    };
    tx_put_json(tx.ledger, &seq.to_be_bytes(), &entry)?;
    Ok(entry)
}

/// Refuses a zero amount.
fn check_amount(amount: u64) -> Result<(), StoreError> {
    if amount == 0 {
        Err(StoreError::InvalidAmount(
            "the amount must be positive".into(),
        ))
    } else {
        Ok(())
    }
}

impl Store {
    /// Issues `amount` new tokens to the key account `to`: the operator's
    /// operation (the caller authenticates the operator), and the only
    /// source of tokens.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidAmount`] for zero; [`StoreError::Overflow`] if the total
    /// supply would pass `u64::MAX`; [`StoreError::Storage`].
    pub fn mint(&self, to: Bytes32, amount: u64) -> Result<LedgerEntry, StoreError> {
        self.mint_once(to, amount, None)
    }

    /// [`Store::mint`] under an idempotency claim: a retry of the same request returns
    /// the first entry and mints nothing.
    ///
    /// # Errors
    ///
    /// Those of [`Store::mint`]; [`StoreError::IdempotencyKeyReused`].
    pub fn mint_once(
        &self,
        to: Bytes32,
        amount: u64,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<LedgerEntry, StoreError> {
        check_amount(amount)?;
        let at = self.public_now();
        self.transact_once(claim, |tx| {
            let entry = post(
                tx,
                LedgerKind::Mint,
                Account::Mint,
                Account::Key(to),
                amount,
                None,
                at,
            )?;
            audit::append(
                tx,
                at,
                AuditEvent::Mint(LedgerChange {
                    ledger: entry.clone(),
                }),
            )?;
            Ok(entry)
        })
    }

    /// Moves tokens between key accounts on the sender's signature for the
    /// marketplace whose key is `marketplace_key`. The signature is checked before the
    /// transaction; the nonce (which must be the sender's next one) and the balance
    /// inside it.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadSignature`], [`StoreError::BadNonce`],
    /// [`StoreError::InsufficientBalance`], [`StoreError::InvalidAmount`] (zero, or to
    /// oneself), [`StoreError::Storage`]. On error nothing changes.
    pub fn transfer(
        &self,
        transfer: &SignedTransfer,
        marketplace_key: &Bytes32,
    ) -> Result<LedgerEntry, StoreError> {
        check_amount(transfer.amount)?;
        if transfer.from == transfer.to {
            return Err(StoreError::InvalidAmount("a transfer to oneself".into()));
        }
        transfer.verify_signature(marketplace_key)?;
        let at = self.public_now();
        self.transact(|tx| {
            tx_take_nonce(tx, &transfer.from, transfer.nonce)?;
            let entry = post(
                tx,
                LedgerKind::Transfer,
                Account::Key(transfer.from),
                Account::Key(transfer.to),
                transfer.amount,
                None,
                at,
            )?;
            audit::append(
                tx,
                at,
                AuditEvent::Transfer(SignedLedgerChange {
                    ledger: entry.clone(),
                    nonce: transfer.nonce,
                    signature: transfer.signature,
                }),
            )?;
            Ok(entry)
        })
    }

    /// The balance of an account (0 for one never credited; the mint's is
    /// reported as 0).
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn balance(&self, account: Account) -> Result<u64, StoreError> {
        match balance_key(&account) {
            Some(key) => get_u64(&self.accounts, &key),
            None => Ok(0),
        }
    }

    /// The next nonce a transfer from `key` must carry.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn nonce(&self, key: &Bytes32) -> Result<u64, StoreError> {
        get_u64(&self.accounts, &prefixed_32(KEY_NONCE, key))
    }

    /// The total supply: tokens issued by the mint.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn total_minted(&self) -> Result<u64, StoreError> {
        get_u64(&self.meta, TOTAL_MINTED)
    }

    /// Up to `limit` ledger entries from sequence number `start` on.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn ledger_entries(&self, start: u64, limit: usize) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ledger
            .range(start.to_be_bytes()..)
            .take(limit)
            .map(|item| crate::store::decode_json(&item?.1))
            .collect()
    }

    /// Checks that tokens are conserved: key and escrow balances and the note pool add
    /// up to the total minted; replaying every ledger entry gives every stored
    /// balance; each study's recorded escrow equals its escrow account, and
    /// its enrollment count the number of its stored nullifiers.
    ///
    /// Reads the trees one after another, so run it on a quiet store (a
    /// concurrent change can make a consistent store look inconsistent).
    ///
    /// # Errors
    ///
    /// [`StoreError::Conservation`] naming the first discrepancy;
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn check_conservation(&self) -> Result<ConservationReport, StoreError> {
        let total_minted = self.total_minted()?;
        let mut stored: BTreeMap<Account, u64> = BTreeMap::new();
        for item in self.accounts.iter() {
            let (key, value) = item?;
            let account = match key.first() {
                Some(&KEY_BALANCE) => Account::Key(
                    key[1..]
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("account key length".into()))?,
                ),
                Some(&ESCROW_BALANCE) => Account::Escrow(crate::store::decode_u64(&key[1..])?),
                _ if key.as_ref() == NOTE_POOL_BALANCE => Account::Notes,
                _ => continue,
            };
            stored.insert(account, crate::store::decode_u64(&value)?);
        }
        let sum = |kind: fn(&Account) -> bool| -> u128 {
            stored
                .iter()
                .filter(|(account, _)| kind(account))
                .map(|(_, balance)| u128::from(*balance))
                .sum()
        };
        let in_keys = sum(|account| matches!(account, Account::Key(_)));
        let in_escrow = sum(|account| matches!(account, Account::Escrow(_)));
        let in_notes = sum(|account| matches!(account, Account::Notes));
        if in_keys + in_escrow + in_notes != u128::from(total_minted) {
            return Err(StoreError::Conservation(format!(
                "keys {in_keys} + escrow {in_escrow} + notes {in_notes} != minted {total_minted}"
            )));
        }

        let mut replayed: BTreeMap<Account, i128> = BTreeMap::new();
        let mut entries = 0u64;
        for item in self.ledger.iter() {
            let entry: LedgerEntry = crate::store::decode_json(&item?.1)?;
            if entry.seq != entries {
                return Err(StoreError::Conservation(format!(
                    "ledger entry {} found at position {entries}",
                    entry.seq
                )));
            }
            *replayed.entry(entry.debit).or_default() -= i128::from(entry.amount);
            *replayed.entry(entry.credit).or_default() += i128::from(entry.amount);
            entries += 1;
        }
        let minted_out = -replayed.remove(&Account::Mint).unwrap_or(0);
        if minted_out != i128::from(total_minted) {
            return Err(StoreError::Conservation(format!(
                "the ledger mints {minted_out}, the counter says {total_minted}"
            )));
        }
        for account in stored.keys().chain(replayed.keys()) {
            let balance = i128::from(stored.get(account).copied().unwrap_or(0));
            let net = replayed.get(account).copied().unwrap_or(0);
            if balance != net {
                return Err(StoreError::Conservation(format!(
                    "{account}: balance {balance}, ledger {net}"
                )));
            }
        }

        for item in self.studies.iter() {
            let study: Study = crate::store::decode_json(&item?.1)?;
            let escrow = stored.get(&Account::Escrow(study.id)).copied().unwrap_or(0);
            if study.escrow != escrow {
                return Err(StoreError::Conservation(format!(
                    "study {} records escrow {}, its account holds {escrow}",
                    study.id, study.escrow
                )));
            }
            let enrollments = self
                .nullifiers
                .scan_prefix(study.id.to_be_bytes())
                .try_fold(0u64, |count, item| item.map(|_| count + 1))?;
            if enrollments != study.enrolled {
                return Err(StoreError::Conservation(format!(
                    "study {} records {} enrollments, {enrollments} nullifiers are stored",
                    study.id, study.enrolled
                )));
            }
        }

        let narrow = |value: u128| u64::try_from(value).map_err(|_| StoreError::Overflow);
        Ok(ConservationReport {
            total_minted,
            in_keys: narrow(in_keys)?,
            in_escrow: narrow(in_escrow)?,
            in_notes: narrow(in_notes)?,
            entries,
        })
    }
}
