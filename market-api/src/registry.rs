//! Persistence of the issuers' registry: leaves, who appended them, every
//! root the registry has had, and which roots an enrollment may use.
//!
//! Leaves are BN254 field elements stored as 32 canonical big-endian bytes
//! ([`fr_to_bytes`]); a revoked leaf is stored as zero, as the
//! [`RegistryTree`] has it. The store keeps a [`RegistryTree`] in memory,
//! rebuilt from the stored leaves at open, to compute each new root; a change
//! (leaves, root record, audit entry) is written in one transaction, and the
//! in-memory tree is rebuilt from disk if that transaction fails.
//!
//! # Roots and the acceptance window
//!
//! Every change gives a new root with the next sequence number (root 0 is
//! the empty tree's). A replaced root stays acceptable for a time, not for a
//! number of later roots: root `s` is accepted until
//! [`StoreConfig::root_window_ms`](crate::StoreConfig) have passed since root
//! `s + 1` replaced it (24 hours by default, as Semaphore's root duration). So a
//! revocation takes effect everywhere within the window, and nobody (an issuer
//! appending junk records, say) can expire proofs in flight faster than that.
//! A study also refuses every root older than the one current when it was
//! posted (`min_root_seq`), so a record revoked before a study exists never
//! enrolls in it. Both times are the marketplace's clock, written in the audit
//! entries that made each root current.

use serde::{Deserialize, Serialize};
use zkcohort_circuits::issuers::IssuerId;
use zkcohort_circuits::record::registry_leaf;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::statement::{fr_from_bytes, fr_to_bytes};
use zkcohort_circuits::Fr;
use zkcohort_cohort::Day;
use zkcohort_verifier::events::{
    self, AppendedRecord, AuditEvent, IssuerSuspension, RegistryCreated, RegistryRevoke, RootChange,
};

use crate::api_keys::{suspension_key, tx_is_suspended};
use crate::idempotency::{tx_record, IdempotencyClaim};
use crate::store::{
    abort, decode_json, decode_u64, get_json, lock_tree, prefixed_32, prefixed_u64, tx_get_json,
    tx_put_json, Tx, TxResult,
};
use crate::{audit, Bytes32, Store, StoreError};

/// Key prefixes and keys in the `registry` tree.
const LEAF: u8 = b'l';
const ISSUER: u8 = b'o';
const ROOT_RECORD: u8 = b'r';
const ROOT_INDEX: u8 = b'R';
const HEAD: &[u8] = b"head";

/// One root the registry has had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RootRecord {
    /// Its sequence number: 0 for the empty tree, then one per change.
    pub seq: u64,
    /// The root, as 32 big-endian bytes.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(with = "crate::hex_bytes")]
    pub root: Bytes32,
    /// The number of leaves (revoked included) when it became current.
    pub leaf_count: u64,
    /// The audit entry of the change that made it current.
    pub audit_index: u64,
    /// When it became current, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// The registry's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct RegistryHead {
    /// The tree depth.
    depth: usize,
    /// The current root.
    current: RootRecord,
}

/// Whether a root may be used by an enrollment now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootStatus {
    /// The current root.
    Current(RootRecord),
    /// Replaced, but within the window.
    Acceptable {
        /// The root.
        record: RootRecord,
        /// How many more milliseconds it stays acceptable.
        remaining_ms: u64,
    },
    /// Replaced too long ago.
    Expired(RootRecord),
    /// Never a root of this registry.
    Unknown,
}

/// What [`Store::append_records`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegistryAppend {
    /// The issuer account the leaves were computed for (its id is in each leaf).
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(with = "crate::hex_bytes")]
    pub issuer: Bytes32,
    /// The index of the first appended leaf.
    pub first_index: u64,
    /// How many leaves were appended.
    pub count: u64,
    /// The new current root.
    pub root: RootRecord,
}

/// Decides a root's status at `now_ms` from when its successor replaced it
/// (`None` for the current root).
fn status_of(
    record: RootRecord,
    replaced_ms: Option<u64>,
    now_ms: u64,
    window_ms: u64,
) -> RootStatus {
    let Some(replaced_ms) = replaced_ms else {
        return RootStatus::Current(record);
    };
    let age = now_ms.saturating_sub(replaced_ms);
    if age <= window_ms {
        RootStatus::Acceptable {
            record,
            remaining_ms: window_ms - age,
        }
    } else {
        RootStatus::Expired(record)
    }
}

/// Checks inside a transaction that `root` is acceptable at `now_ms`; returns its
/// record and the current root's sequence number. Aborts with
/// [`StoreError::UnknownRoot`] or [`StoreError::RootExpired`].
pub(crate) fn tx_check_root(
    tx: &Tx<'_>,
    root: &Bytes32,
    now_ms: u64,
    window_ms: u64,
) -> TxResult<(RootRecord, u64)> {
    let Some(seq) = tx.registry.get(prefixed_32(ROOT_INDEX, root))? else {
        return abort(StoreError::UnknownRoot);
    };
    let seq = match decode_u64(&seq) {
        Ok(seq) => seq,
        Err(error) => return abort(error),
    };
    let Some(head) = tx_get_json::<RegistryHead>(tx.registry, HEAD)? else {
        return abort(StoreError::Corrupt("no registry head".into()));
    };
    let Some(record) = tx_get_json::<RootRecord>(tx.registry, &prefixed_u64(ROOT_RECORD, seq))?
    else {
        return abort(StoreError::Corrupt(format!("no root record {seq}")));
    };
    let replaced_ms = if seq == head.current.seq {
        None
    } else {
        match tx_get_json::<RootRecord>(tx.registry, &prefixed_u64(ROOT_RECORD, seq + 1))? {
            Some(successor) => Some(successor.at_ms),
            None => return abort(StoreError::Corrupt(format!("no root record {}", seq + 1))),
        }
    };
    match status_of(record, replaced_ms, now_ms, window_ms) {
        RootStatus::Current(record) | RootStatus::Acceptable { record, .. } => {
            Ok((record, head.current.seq))
        }
        _ => abort(StoreError::RootExpired {
            seq,
            current: head.current.seq,
            window_ms,
        }),
    }
}

/// The current root's record, inside a transaction.
pub(crate) fn tx_current_root(tx: &Tx<'_>) -> TxResult<RootRecord> {
    match tx_get_json::<RegistryHead>(tx.registry, HEAD)? {
        Some(head) => Ok(head.current),
        None => abort(StoreError::Corrupt("no registry head".into())),
    }
}

/// Writes a new current root inside a transaction, with its audit entry.
fn tx_new_root(
    tx: &Tx<'_>,
    depth: usize,
    root: Bytes32,
    leaf_count: u64,
    at_ms: u64,
    event: impl FnOnce(RootChange) -> AuditEvent,
) -> TxResult<RootRecord> {
    let seq = match tx_get_json::<RegistryHead>(tx.registry, HEAD)? {
        Some(head) => head.current.seq + 1,
        None => 0,
    };
    let change = RootChange {
        root,
        root_seq: seq,
        leaf_count,
    };
    let entry = audit::append(tx, at_ms, event(change))?;
    let record = RootRecord {
        seq,
        root,
        leaf_count,
        audit_index: entry.index,
        at_ms,
    };
    tx_put_json(tx.registry, &prefixed_u64(ROOT_RECORD, seq), &record)?;
    tx.registry
        .insert(&prefixed_32(ROOT_INDEX, &root)[..], &seq.to_be_bytes()[..])?;
    tx_put_json(
        tx.registry,
        HEAD,
        &RegistryHead {
            depth,
            current: record,
        },
    )?;
    Ok(record)
}

/// What an append of the leaves `range` by `issuer`, making `root`, answers.
fn appended(issuer: Bytes32, range: &std::ops::Range<u64>, root: RootRecord) -> RegistryAppend {
    RegistryAppend {
        issuer,
        first_index: range.start,
        count: range.end - range.start,
        root,
    }
}

impl Store {
    /// At open: records the empty root of a new registry, or rebuilds the
    /// in-memory tree of an existing one and checks it against the stored
    /// root.
    pub(crate) fn init_registry(&self) -> Result<(), StoreError> {
        let depth = self.config.registry_depth;
        match get_json::<RegistryHead>(&self.registry, HEAD)? {
            None => {
                let root = fr_to_bytes(&RegistryTree::new(depth)?.root());
                let at = self.public_now();
                self.transact(|tx| {
                    tx_new_root(tx, depth, root, 0, at, |root| {
                        AuditEvent::RegistryCreated(RegistryCreated { depth, root })
                    })
                })?;
                Ok(())
            }
            Some(head) if head.depth != depth => Err(StoreError::Config(format!(
                "the store's registry has depth {}, opened with {depth}",
                head.depth
            ))),
            Some(head) => {
                let tree = self.load_registry_tree()?;
                if fr_to_bytes(&tree.root()) != head.current.root
                    || tree.len() != head.current.leaf_count
                {
                    return Err(StoreError::Corrupt(
                        "the stored registry leaves do not give the stored root".into(),
                    ));
                }
                *lock_tree(&self.registry_tree, || self.load_registry_tree()) = tree;
                Ok(())
            }
        }
    }

    /// The registry tree rebuilt from the stored leaves.
    fn load_registry_tree(&self) -> Result<RegistryTree, StoreError> {
        let leaves = self
            .registry
            .scan_prefix([LEAF])
            .map(|item| {
                let (_, value) = item?;
                let bytes: Bytes32 = value
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("registry leaf length".into()))?;
                Ok(fr_from_bytes(&bytes)?)
            })
            .collect::<Result<Vec<Fr>, StoreError>>()?;
        Ok(RegistryTree::from_leaves(
            self.config.registry_depth,
            &leaves,
        )?)
    }

    /// Runs a registry change (see [`Store::change_tree`]).
    fn change_registry<T>(
        &self,
        change: impl FnOnce(&mut RegistryTree) -> Result<T, StoreError>,
        write: impl Fn(&Tx<'_>, &T, Bytes32, u64) -> TxResult<RootRecord>,
    ) -> Result<(T, RootRecord), StoreError> {
        self.change_tree(
            &self.registry_tree,
            || self.load_registry_tree(),
            change,
            write,
        )
    }

    /// Appends the leaves of records `issuer` (the authenticated issuer's account)
    /// attests, each `Poseidon(commitment, issuer_id(issuer), issued_at)`, and makes one
    /// new root.
    ///
    /// # Errors
    ///
    /// [`StoreError::Registry`] for a non-canonical commitment or a full tree (then
    /// nothing is appended); [`StoreError::IssuerSuspended`]; [`StoreError::InvalidRecord`] for an issue day after
    /// `today` (UTC; one day of grace for time zones) or outside the circuit's span; [`StoreError::InvalidAmount`] for an
    /// empty list; [`StoreError::Storage`].
    pub fn append_records(
        &self,
        issuer: Bytes32,
        records: &[AppendedRecord],
        today: Day,
    ) -> Result<RegistryAppend, StoreError> {
        self.append_records_once(issuer, records, today, None)
    }

    /// [`Store::append_records`] under an idempotency claim: a retry of the same
    /// request returns the first append and appends nothing.
    ///
    /// # Errors
    ///
    /// Those of [`Store::append_records`]; [`StoreError::IdempotencyKeyReused`].
    pub fn append_records_once(
        &self,
        issuer: Bytes32,
        records: &[AppendedRecord],
        today: Day,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<RegistryAppend, StoreError> {
        if records.is_empty() {
            return Err(StoreError::InvalidAmount("no records to append".into()));
        }
        let issuer_id = IssuerId::for_account(&issuer);
        // A day of grace: an issuer east of UTC is already in tomorrow.
        let latest = Day(today.0 + 1);
        let values = records
            .iter()
            .map(|record| {
                if record.issued_at > latest {
                    return Err(StoreError::InvalidRecord(format!(
                        "issued on {}, after today ({today} UTC)",
                        record.issued_at
                    )));
                }
                let commitment = fr_from_bytes(&record.commitment)?;
                registry_leaf(commitment, issuer_id, record.issued_at)
                    .map_err(|error| StoreError::InvalidRecord(error.to_string()))
            })
            .collect::<Result<Vec<Fr>, _>>()?;
        let leaves: Vec<Bytes32> = values.iter().map(fr_to_bytes).collect();
        let depth = self.config.registry_depth;
        let at = self.public_now();
        /// An append already made under the claim, or the leaves this one adds.
        enum Append {
            Replayed(RegistryAppend),
            New(std::ops::Range<u64>),
        }
        // Looked up under the registry lock, before the tree changes: every append
        // under one claim takes the lock, so none slips in between.
        let (append, root) = self.change_registry(
            |tree| match self.recorded(claim)? {
                Some(first) => Ok(Append::Replayed(first)),
                None => Ok(Append::New(tree.extend(&values)?)),
            },
            |tx, append, root, leaf_count| {
                let Append::New(range) = append else {
                    return tx_current_root(tx);
                };
                // Inside the transaction: a suspension committed meanwhile wins.
                if tx_is_suspended(tx, &issuer)? {
                    return abort(StoreError::IssuerSuspended);
                }
                for (index, leaf) in range.clone().zip(&leaves) {
                    tx.registry
                        .insert(&prefixed_u64(LEAF, index)[..], &leaf[..])?;
                    tx.registry
                        .insert(&prefixed_u64(ISSUER, index)[..], &issuer[..])?;
                }
                let root = tx_new_root(tx, depth, root, leaf_count, at, |root| {
                    AuditEvent::RegistryAppend(events::RegistryAppend {
                        issuer,
                        first_index: range.start,
                        records: records.to_vec(),
                        root,
                    })
                })?;
                if let Some(claim) = claim {
                    tx_record(tx, claim, &appended(issuer, range, root))?;
                }
                Ok(root)
            },
        )?;
        Ok(match append {
            Append::Replayed(first) => first,
            Append::New(range) => appended(issuer, &range, root),
        })
    }

    /// Revokes the leaf at `index`, which `issuer` must have appended, and
    /// makes a new root.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotLeafIssuer`]; [`StoreError::Registry`] for an index never
    /// appended or already revoked; [`StoreError::Storage`].
    pub fn revoke_leaf(&self, issuer: Bytes32, index: u64) -> Result<RootRecord, StoreError> {
        let owner = self.registry.get(prefixed_u64(ISSUER, index))?;
        if owner.as_deref().is_some_and(|owner| owner != &issuer[..]) {
            return Err(StoreError::NotLeafIssuer { index });
        }
        let depth = self.config.registry_depth;
        let at = self.public_now();
        let ((), root) = self.change_registry(
            |tree| Ok(tree.revoke(index)?),
            |tx, _, root, leaf_count| {
                tx.registry
                    .insert(&prefixed_u64(LEAF, index)[..], &[0u8; 32][..])?;
                tx_new_root(tx, depth, root, leaf_count, at, |root| {
                    AuditEvent::RegistryRevoke(RegistryRevoke {
                        issuer,
                        index,
                        root,
                    })
                })
            },
        )?;
        Ok(root)
    }

    /// Suspends the issuer acting as `issuer`, in one transaction with its audit
    /// entry: every leaf it appended and has not revoked is revoked in one new root, so
    /// its records stop enrolling in every study, open ones included, once the root
    /// window has passed; its appends are refused from now on, and studies posted later
    /// do not accept it. Returns `false`, changing nothing, when the issuer was already
    /// suspended.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn suspend_issuer(&self, issuer: Bytes32) -> Result<bool, StoreError> {
        if self.is_suspended(&issuer)? {
            return Ok(false);
        }
        let depth = self.config.registry_depth;
        let at = self.public_now();
        let zero = [0u8; 32];
        let suspended = self.change_registry(
            |tree| {
                let mut revoked = Vec::new();
                for item in self.registry.scan_prefix([ISSUER]) {
                    let (key, owner) = item?;
                    let index = decode_u64(&key[1..])?;
                    if owner.as_ref() == issuer && self.registry_leaf(index)? != zero {
                        tree.revoke(index)?;
                        revoked.push(index);
                    }
                }
                Ok(revoked)
            },
            |tx, revoked: &Vec<u64>, root, leaf_count| {
                if tx_is_suspended(tx, &issuer)? {
                    return abort(StoreError::IssuerSuspended);
                }
                tx.meta
                    .insert(suspension_key(&issuer), &at.to_be_bytes()[..])?;
                for index in revoked {
                    tx.registry
                        .insert(&prefixed_u64(LEAF, *index)[..], &zero[..])?;
                }
                let suspension = |root| {
                    AuditEvent::IssuerSuspended(IssuerSuspension {
                        issuer,
                        revoked: revoked.clone(),
                        root,
                    })
                };
                if revoked.is_empty() {
                    audit::append(tx, at, suspension(None))?;
                    tx_current_root(tx)
                } else {
                    tx_new_root(tx, depth, root, leaf_count, at, |root| {
                        suspension(Some(root))
                    })
                }
            },
        );
        match suspended {
            Ok(_) => Ok(true),
            // Suspended by a concurrent call meanwhile: that one did it.
            Err(StoreError::IssuerSuspended) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The stored leaf at `index` (zero when revoked).
    fn registry_leaf(&self, index: u64) -> Result<Bytes32, StoreError> {
        let value = self
            .registry
            .get(prefixed_u64(LEAF, index))?
            .ok_or_else(|| StoreError::Corrupt(format!("no registry leaf {index}")))?;
        value
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt("registry leaf length".into()))
    }

    /// The current root.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn registry_root(&self) -> Result<RootRecord, StoreError> {
        Ok(self.registry_head()?.current)
    }

    /// Whether `root` may be used by an enrollment now.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn root_status(&self, root: &Bytes32) -> Result<RootStatus, StoreError> {
        self.root_status_at(root, self.public_now(), self.config.root_window_ms)
    }

    /// Whether `root` may be used by an enrollment at `now_ms` (a public time) in a
    /// study whose window is `window_ms`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub(crate) fn root_status_at(
        &self,
        root: &Bytes32,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<RootStatus, StoreError> {
        let Some(seq) = self.registry.get(prefixed_32(ROOT_INDEX, root))? else {
            return Ok(RootStatus::Unknown);
        };
        let record: RootRecord = get_json(
            &self.registry,
            &prefixed_u64(ROOT_RECORD, decode_u64(&seq)?),
        )?
        .ok_or_else(|| StoreError::Corrupt("missing root record".into()))?;
        let current = self.registry_head()?.current.seq;
        let replaced_ms = if record.seq == current {
            None
        } else {
            let successor: RootRecord =
                get_json(&self.registry, &prefixed_u64(ROOT_RECORD, record.seq + 1))?
                    .ok_or_else(|| StoreError::Corrupt("missing root record".into()))?;
            Some(successor.at_ms)
        };
        Ok(status_of(record, replaced_ms, now_ms, window_ms))
    }

    /// Up to `limit` root records from sequence number `start` on.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn root_history(&self, start: u64, limit: usize) -> Result<Vec<RootRecord>, StoreError> {
        self.registry
            .range(prefixed_u64(ROOT_RECORD, start)..=prefixed_u64(ROOT_RECORD, u64::MAX))
            .take(limit)
            .map(|item| decode_json(&item?.1))
            .collect()
    }

    /// Up to `limit` leaves from index `start` on (revoked ones as zero):
    /// the pages wallets download to rebuild their paths locally.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn registry_leaves(&self, start: u64, limit: usize) -> Result<Vec<Bytes32>, StoreError> {
        self.registry
            .range(prefixed_u64(LEAF, start)..=prefixed_u64(LEAF, u64::MAX))
            .take(limit)
            .map(|item| {
                let (_, value) = item?;
                value
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("registry leaf length".into()))
            })
            .collect()
    }

    /// The number of leaves appended, revoked included.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn registry_len(&self) -> Result<u64, StoreError> {
        Ok(self.registry_head()?.current.leaf_count)
    }

    /// The stored head.
    fn registry_head(&self) -> Result<RegistryHead, StoreError> {
        get_json(&self.registry, HEAD)?
            .ok_or_else(|| StoreError::Corrupt("no registry head".into()))
    }
}
