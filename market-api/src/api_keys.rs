//! API keys the operator creates at run time (`POST /admin/api-keys`).
//!
//! A key is 32 random bytes, written as 64 hex digits, and is shown once: the
//! store keeps only its SHA-256 (the key id) with the role and account it
//! grants, in the `meta` tree under the prefix `apikey/`. Creating and
//! revoking a key are each one transaction together with their audit entry
//! (`api_key_created`, `api_key_revoked`), which records the key id, the role
//! and the account, never the key.

use rand::rngs::OsRng;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zkcohort_verifier::events::{ApiKeyChange, AuditEvent, IssuerSuspension};

use crate::store::{abort, get_json, now_ms, tx_get_json, tx_put_json};
use crate::{audit, Bytes32, Store, StoreError};

/// The prefix of API-key records in the `meta` tree.
const KEY_PREFIX: &[u8] = b"apikey/";

/// The prefix of suspended issuers in the `meta` tree (the value: when, in ms).
const SUSPENDED_PREFIX: &[u8] = b"suspended/";

fn suspension_key(issuer: &Bytes32) -> Vec<u8> {
    [SUSPENDED_PREFIX, &issuer[..]].concat()
}

/// Whether `issuer` is suspended, inside a transaction.
pub(crate) fn tx_is_suspended(
    tx: &crate::store::Tx<'_>,
    issuer: &Bytes32,
) -> crate::store::TxResult<bool> {
    Ok(tx.meta.get(suspension_key(issuer))?.is_some())
}

pub use zkcohort_verifier::records::ApiKeyRole;

/// The stored record of an API key: what it grants, not the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyGrant {
    /// The key's role.
    pub role: ApiKeyRole,
    /// The account (ed25519 public key) the key acts as.
    #[serde(with = "crate::hex_bytes")]
    pub account: Bytes32,
    /// When the key was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// A key just created: the secret, shown once, and its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The bearer key (64 hex digits). The store does not keep it.
    pub api_key: String,
    /// SHA-256 of the key: how the store, the audit log and revocation name it.
    pub key_id: Bytes32,
    /// What the key grants.
    pub grant: ApiKeyGrant,
}

/// The id of a key: SHA-256 of its text.
pub fn api_key_id(api_key: &str) -> Bytes32 {
    Sha256::digest(api_key.as_bytes()).into()
}

fn record_key(key_id: &Bytes32) -> Vec<u8> {
    [KEY_PREFIX, &key_id[..]].concat()
}

impl Store {
    /// Creates an API key for `role` acting as `account`, from the OS RNG.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`]; [`StoreError::Corrupt`] if the new key's id is already
    /// stored (which a working RNG never produces). On error nothing changes.
    pub fn create_api_key(
        &self,
        role: ApiKeyRole,
        account: Bytes32,
    ) -> Result<NewApiKey, StoreError> {
        self.create_api_key_with_rng(role, account, &mut OsRng)
    }

    /// [`Store::create_api_key`] with the key drawn from `rng`.
    ///
    /// # Errors
    ///
    /// As [`Store::create_api_key`].
    pub fn create_api_key_with_rng(
        &self,
        role: ApiKeyRole,
        account: Bytes32,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<NewApiKey, StoreError> {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let api_key = hex::encode(secret);
        let key_id = api_key_id(&api_key);
        let grant = ApiKeyGrant {
            role,
            account,
            created_ms: now_ms(),
        };
        let record = record_key(&key_id);
        self.transact(|tx| {
            if tx.meta.get(&record[..])?.is_some() {
                return abort(StoreError::Corrupt("API key id collision".into()));
            }
            tx_put_json(tx.meta, &record, &grant)?;
            audit::append(
                tx,
                grant.created_ms,
                AuditEvent::ApiKeyCreated(ApiKeyChange {
                    key_id,
                    role,
                    account,
                }),
            )?;
            Ok(())
        })?;
        Ok(NewApiKey {
            api_key,
            key_id,
            grant,
        })
    }

    /// What the key `api_key` grants, or `None` for a key never created or
    /// revoked. A point read of one `meta` record.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn api_key(&self, api_key: &str) -> Result<Option<ApiKeyGrant>, StoreError> {
        get_json(&self.meta, &record_key(&api_key_id(api_key)))
    }

    /// The accounts that hold an issuer key now, ascending.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn issuer_accounts(&self) -> Result<Vec<Bytes32>, StoreError> {
        let mut accounts = Vec::new();
        for item in self.meta.scan_prefix(KEY_PREFIX) {
            let grant: ApiKeyGrant = crate::store::decode_json(&item?.1)?;
            if grant.role == ApiKeyRole::Issuer {
                accounts.push(grant.account);
            }
        }
        accounts.sort_unstable();
        accounts.dedup();
        Ok(accounts)
    }

    /// Suspends the issuer acting as `issuer`, with its audit entry, in one
    /// transaction: its appends are refused from now on and studies posted later do
    /// not accept it. Studies already posted keep the issuer set they were posted
    /// with (their proofs commit to it). Returns `false`, changing nothing, when the
    /// issuer was already suspended.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`].
    pub fn suspend_issuer(&self, issuer: Bytes32) -> Result<bool, StoreError> {
        let at = now_ms();
        self.transact(|tx| {
            if tx_is_suspended(tx, &issuer)? {
                return Ok(false);
            }
            tx.meta
                .insert(suspension_key(&issuer), &at.to_be_bytes()[..])?;
            audit::append(
                tx,
                at,
                AuditEvent::IssuerSuspended(IssuerSuspension { issuer }),
            )?;
            Ok(true)
        })
    }

    /// Whether the issuer acting as `issuer` is suspended.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`].
    pub fn is_suspended(&self, issuer: &Bytes32) -> Result<bool, StoreError> {
        Ok(self.meta.get(suspension_key(issuer))?.is_some())
    }

    /// Revokes the key with id `key_id` and returns what it granted, or
    /// `None` (and changes nothing) if no such key is stored.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn revoke_api_key(&self, key_id: Bytes32) -> Result<Option<ApiKeyGrant>, StoreError> {
        let at = now_ms();
        let record = record_key(&key_id);
        self.transact(|tx| {
            let Some(grant) = tx_get_json::<ApiKeyGrant>(tx.meta, &record)? else {
                return Ok(None);
            };
            tx.meta.remove(&record[..])?;
            audit::append(
                tx,
                at,
                AuditEvent::ApiKeyRevoked(ApiKeyChange {
                    key_id,
                    role: grant.role,
                    account: grant.account,
                }),
            )?;
            Ok(Some(grant))
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;
    use crate::StoreConfig;

    fn store() -> (tempfile::TempDir, Store) {
        let folder = tempfile::tempdir().unwrap();
        let store = Store::open(
            folder.path().join("db"),
            StoreConfig {
                registry_depth: 8,
                root_window_ms: 60_000,
            },
        )
        .unwrap();
        (folder, store)
    }

    #[test]
    fn a_created_key_is_found_by_its_text_and_only_its_hash_is_stored() {
        let (_folder, store) = store();
        let created = store
            .create_api_key_with_rng(
                ApiKeyRole::Researcher,
                [7; 32],
                &mut StdRng::seed_from_u64(1),
            )
            .unwrap();
        assert_eq!(created.api_key.len(), 64);
        assert_eq!(
            store.api_key(&created.api_key).unwrap(),
            Some(created.grant)
        );
        assert_eq!(store.api_key(&"0".repeat(64)).unwrap(), None);
        let secret = created.api_key.as_bytes();
        for item in store
            .db
            .iter()
            .chain(store.meta.iter())
            .chain(store.audit.iter())
        {
            let (key, value) = item.unwrap();
            for bytes in [&key[..], &value[..]] {
                assert!(!bytes.windows(secret.len()).any(|window| window == secret));
            }
        }
    }

    #[test]
    fn creation_and_revocation_are_audited_without_the_key() {
        let (_folder, store) = store();
        let before = store.audit_head().unwrap().size;
        let created = store.create_api_key(ApiKeyRole::Issuer, [3; 32]).unwrap();
        let entry = store.audit_entry(before).unwrap();
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["kind"], "api_key_created");
        assert_eq!(
            json["payload"],
            serde_json::json!({
                "key_id": hex::encode(created.key_id),
                "role": "issuer",
                "account": hex::encode([3; 32]),
            })
        );
        assert!(!json.to_string().contains(&created.api_key));

        assert_eq!(
            store.revoke_api_key(created.key_id).unwrap(),
            Some(created.grant)
        );
        assert_eq!(store.api_key(&created.api_key).unwrap(), None);
        assert_eq!(
            store.audit_entry(before + 1).unwrap().event.kind(),
            "api_key_revoked"
        );
        let size = store.audit_head().unwrap().size;
        assert_eq!(store.revoke_api_key(created.key_id).unwrap(), None);
        assert_eq!(
            store.audit_head().unwrap().size,
            size,
            "nothing to revoke, nothing audited"
        );
    }
}
