//! API keys the operator creates at run time (`POST /admin/api-keys`).
//!
//! A key is 32 random bytes, written as 64 hex digits, that the account holder draws
//! ([`draw_api_key`]) and keeps: the holder signs a request naming the key's SHA-256
//! (the key id), its role and this marketplace ([`CreateApiKey::sign`]), the operator
//! forwards it, and the store keeps the id with the role and account it grants, in the
//! `meta` tree under the prefix `apikey/`. Neither the operator nor the store ever sees
//! the key, so nobody but the holder can act as the account, and nobody can bind a key to
//! an account without its holder's signature. Creating and revoking a key are each one
//! transaction together with their audit entry (`api_key_created` with the holder's
//! signature, `api_key_revoked`); a revoked id is never bound again.

use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zkcohort_verifier::events::{ApiKeyChange, ApiKeyCreation, AuditEvent};
use zkcohort_verifier::records::api_key_possession_is_valid;

use crate::api::CreateApiKey;

use crate::idempotency::IdempotencyClaim;
use crate::store::{abort, get_json, tx_get_json, tx_put_json};
use crate::{audit, Bytes32, Store, StoreError};

/// The prefix of API-key records in the `meta` tree.
const KEY_PREFIX: &[u8] = b"apikey/";

/// The prefix of revoked key ids in the `meta` tree (the value: when, in ms).
const REVOKED_PREFIX: &[u8] = b"revokedkey/";

/// The prefix of suspended issuers in the `meta` tree (the value: when, in ms).
const SUSPENDED_PREFIX: &[u8] = b"suspended/";

pub(crate) fn suspension_key(issuer: &Bytes32) -> Vec<u8> {
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

/// The id of a key: SHA-256 of its text.
pub fn api_key_id(api_key: &str) -> Bytes32 {
    Sha256::digest(api_key.as_bytes()).into()
}

fn record_key(key_id: &Bytes32) -> Vec<u8> {
    [KEY_PREFIX, &key_id[..]].concat()
}

/// The record that a key id was revoked: it is never bound again, so a holder's
/// request cannot be replayed to bring back a key it gave up.
fn revoked_key(key_id: &Bytes32) -> Vec<u8> {
    [REVOKED_PREFIX, &key_id[..]].concat()
}

/// Draws a new API key from the OS RNG: 32 bytes as 64 hex digits. The account holder
/// draws it and keeps it; the marketplace learns only its id.
pub fn draw_api_key() -> String {
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    hex::encode(secret)
}

impl Store {
    /// Binds the key named in `request` to its account, with its audit entry, in one
    /// transaction, once the account's proof of possession for the marketplace
    /// `marketplace_key` verifies.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadSignature`] for a possession that does not verify;
    /// [`StoreError::ApiKeyExists`] for a key id already bound or revoked (a replayed
    /// request); [`StoreError::Storage`]. On error nothing changes.
    pub fn create_api_key(
        &self,
        request: &CreateApiKey,
        marketplace_key: &Bytes32,
    ) -> Result<ApiKeyGrant, StoreError> {
        self.create_api_key_once(request, marketplace_key, None)
    }

    /// [`Store::create_api_key`] under an idempotency claim: a retry of the same request
    /// returns the first grant (where a bare retry is refused as
    /// [`StoreError::ApiKeyExists`]).
    ///
    /// # Errors
    ///
    /// Those of [`Store::create_api_key`]; [`StoreError::IdempotencyKeyReused`].
    pub fn create_api_key_once(
        &self,
        request: &CreateApiKey,
        marketplace_key: &Bytes32,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<ApiKeyGrant, StoreError> {
        if !api_key_possession_is_valid(
            marketplace_key,
            &request.account,
            request.role,
            &request.key_id,
            &request.possession,
        ) {
            return Err(StoreError::BadSignature);
        }
        let grant = ApiKeyGrant {
            role: request.role,
            account: request.account,
            created_ms: self.public_now(),
        };
        let record = record_key(&request.key_id);
        let tombstone = revoked_key(&request.key_id);
        self.transact_once(claim, |tx| {
            if tx.meta.get(&record[..])?.is_some() || tx.meta.get(&tombstone[..])?.is_some() {
                return abort(StoreError::ApiKeyExists);
            }
            tx_put_json(tx.meta, &record, &grant)?;
            audit::append(
                tx,
                grant.created_ms,
                AuditEvent::ApiKeyCreated(ApiKeyCreation {
                    key_id: request.key_id,
                    role: request.role,
                    account: request.account,
                    possession: request.possession,
                }),
            )?;
            Ok(grant)
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
        let at = self.public_now();
        let record = record_key(&key_id);
        self.transact(|tx| {
            let Some(grant) = tx_get_json::<ApiKeyGrant>(tx.meta, &record)? else {
                return Ok(None);
            };
            tx.meta.remove(&record[..])?;
            tx.meta
                .insert(revoked_key(&key_id), &at.to_be_bytes()[..])?;
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
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::StoreConfig;

    const MARKETPLACE: Bytes32 = [9; 32];

    fn store() -> (tempfile::TempDir, Store) {
        let folder = tempfile::tempdir().unwrap();
        let store = Store::open(
            folder.path().join("db"),
            StoreConfig {
                registry_depth: 8,
                root_window_ms: 60_000,
                cohort: crate::CohortPolicy::immediate(),
                privacy: crate::PrivacyCaps::default(),
            },
        )
        .unwrap();
        (folder, store)
    }

    fn holder() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    #[test]
    fn a_bound_key_is_found_by_its_text_and_neither_the_key_nor_its_text_is_stored() {
        let (_folder, store) = store();
        let api_key = draw_api_key();
        let request = CreateApiKey::sign(&holder(), &MARKETPLACE, ApiKeyRole::Researcher, &api_key);
        let grant = store.create_api_key(&request, &MARKETPLACE).unwrap();
        assert_eq!(grant.account, holder().verifying_key().to_bytes());
        assert_eq!(store.api_key(&api_key).unwrap(), Some(grant));
        assert_eq!(store.api_key(&draw_api_key()).unwrap(), None);
        let secret = api_key.as_bytes();
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
    fn a_request_binds_only_with_its_holder_s_signature_for_this_marketplace() {
        let (_folder, store) = store();
        let api_key = draw_api_key();
        let request = CreateApiKey::sign(&holder(), &MARKETPLACE, ApiKeyRole::Issuer, &api_key);
        let someone_else = SigningKey::from_bytes(&[4; 32]).verifying_key().to_bytes();
        let refused = [
            CreateApiKey::sign(&holder(), &[8; 32], ApiKeyRole::Issuer, &api_key),
            CreateApiKey {
                account: someone_else,
                ..request
            },
            CreateApiKey {
                role: ApiKeyRole::Researcher,
                ..request
            },
            CreateApiKey {
                key_id: api_key_id(&draw_api_key()),
                ..request
            },
        ];
        let size = store.audit_head().unwrap().size;
        for forged in refused {
            assert!(matches!(
                store.create_api_key(&forged, &MARKETPLACE),
                Err(StoreError::BadSignature)
            ));
        }
        assert_eq!(store.audit_head().unwrap().size, size, "nothing audited");
        assert_eq!(store.api_key(&api_key).unwrap(), None);
        store.create_api_key(&request, &MARKETPLACE).unwrap();
    }

    #[test]
    fn creation_and_revocation_are_audited_and_a_revoked_key_never_comes_back() {
        let (_folder, store) = store();
        let before = store.audit_head().unwrap().size;
        let api_key = draw_api_key();
        let request = CreateApiKey::sign(&holder(), &MARKETPLACE, ApiKeyRole::Issuer, &api_key);
        let grant = store.create_api_key(&request, &MARKETPLACE).unwrap();
        let entry = store.audit_entry(before).unwrap();
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["kind"], "api_key_created");
        assert_eq!(
            json["payload"],
            serde_json::json!({
                "key_id": hex::encode(request.key_id),
                "role": "issuer",
                "account": hex::encode(request.account),
                "possession": hex::encode(request.possession),
            })
        );
        assert!(matches!(
            store.create_api_key(&request, &MARKETPLACE),
            Err(StoreError::ApiKeyExists)
        ));

        assert_eq!(store.revoke_api_key(request.key_id).unwrap(), Some(grant));
        assert_eq!(store.api_key(&api_key).unwrap(), None);
        assert_eq!(
            store.audit_entry(before + 1).unwrap().event.kind(),
            "api_key_revoked"
        );
        let size = store.audit_head().unwrap().size;
        assert_eq!(store.revoke_api_key(request.key_id).unwrap(), None);
        assert!(
            matches!(
                store.create_api_key(&request, &MARKETPLACE),
                Err(StoreError::ApiKeyExists)
            ),
            "the holder's old request cannot bring the key back"
        );
        assert_eq!(store.api_key(&api_key).unwrap(), None);
        assert_eq!(
            store.audit_head().unwrap().size,
            size,
            "nothing to revoke or bind, nothing audited"
        );
    }
}
