//! The audit log: every state change of the marketplace, appended in the same
//! transaction as the change, hash-chained and Merkle-rooted, with a head the
//! marketplace signs so sponsors can check that nothing was rewritten.
//!
//! # Entries and the chain
//!
//! Entry `i` is `{index, at_ms, kind, payload, study_prev, prev_hash, hash}`
//! where `prev_hash` is entry `i - 1`'s hash (32 zero bytes for entry 0) and
//! `hash = SHA-256(prev_hash || canonical bytes)` ([`entry_hash`]; the canonical
//! bytes are defined in `zkcohort_verifier::audit`). An entry of a study names the
//! study's previous entry in `study_prev`; the store keeps each study's head (its
//! latest entry and count, [`Store::study_head`]) in the same transaction, and a
//! study bundle is signed over it ([`SignedStudyHead`]).
//!
//! # The Merkle tree
//!
//! The root over all entry hashes is the Merkle tree hash of RFC 9162
//! (Certificate Transparency 2.0) with SHA-256: leaf `SHA-256(0x00 || entry
//! hash)`, node `SHA-256(0x01 || left || right)`, a tree of `n` leaves split
//! at the largest power of two below `n`, the empty tree hashing to
//! `SHA-256("")`. The store keeps the frontier (the roots of the perfect
//! subtrees that make up the log, one per set bit of its size), so an append
//! costs `O(log n)`, and every completed perfect subtree's node, so an
//! inclusion proof (RFC 9162 §2.1.3) reads `O(log n)` nodes.
//!
//! # Signed heads
//!
//! The head `{size, root, last_hash}` is signed with ed25519 over
//! `"zkcohort-audit-head-v1" || size (u64 BE) || root || last_hash`
//! ([`head_message`]). Signing happens outside transactions.
//!
//! # Verification
//!
//! The types, hashes and checks ([`verify_chain`], [`verify_inclusion`],
//! [`SignedHead::verify`], [`merkle_root`]) live in `zkcohort_verifier::audit`
//! and are re-exported here: the sponsor's offline verifier and the store run
//! one implementation, so hashes agree byte for byte. Their [`AuditError`]
//! becomes [`StoreError::AuditVerification`].

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zkcohort_verifier::audit::{largest_power_of_two_below, AuditError};
use zkcohort_verifier::events::AuditEvent;

pub use zkcohort_verifier::audit::{
    empty_root, entry_hash, head_message, leaf_hash, merkle_root, node_hash, verify_chain,
    verify_consistency, verify_inclusion, verify_log, AuditEntry, AuditHead, ConsistencyProof,
    InclusionProof, SignedHead, SignedStudyHead, StudyHead,
};

use crate::store::{abort, prefixed_u64, tx_get_json, tx_put_json, Tx, TxResult};
use crate::{Bytes32, Store, StoreError};

/// The key of the log's state in the `audit` tree.
const STATE_KEY: &[u8] = b"head";
/// The key prefix of entries.
const ENTRY_PREFIX: u8 = b'e';
/// The key prefix of Merkle nodes.
const NODE_PREFIX: u8 = b'n';
/// The key prefix of study heads (by study id).
const STUDY_HEAD_PREFIX: u8 = b's';

impl From<AuditError> for StoreError {
    fn from(error: AuditError) -> Self {
        StoreError::AuditVerification(error.0)
    }
}

/// The log's state as stored: its size, last hash and frontier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Frontier {
    /// The number of entries.
    pub(crate) size: u64,
    /// The last entry's hash.
    #[serde(with = "crate::hex_bytes")]
    pub(crate) last_hash: Bytes32,
    /// The roots of the perfect subtrees that make up the tree, largest
    /// first: one per set bit of `size`.
    #[serde(with = "crate::hex_bytes::vec32")]
    pub(crate) peaks: Vec<Bytes32>,
}

impl Frontier {
    /// Appends an entry hash; returns the nodes completed, as `(level,
    /// index at that level, hash)`, the leaf (level 0) first.
    pub(crate) fn push(&mut self, entry_hash: Bytes32) -> Vec<(u8, u64, Bytes32)> {
        let mut node = leaf_hash(&entry_hash);
        let mut level = 0u8;
        let mut position = self.size;
        let mut completed = vec![(level, position, node)];
        while position & 1 == 1 {
            // `size` has bit `level` set, so the smallest peak is the left
            // sibling of `node`.
            let Some(left) = self.peaks.pop() else { break };
            node = node_hash(&left, &node);
            level += 1;
            position >>= 1;
            completed.push((level, position, node));
        }
        self.peaks.push(node);
        self.size += 1;
        self.last_hash = entry_hash;
        completed
    }

    /// The Merkle root (RFC 9162) of the log.
    pub(crate) fn root(&self) -> Bytes32 {
        let mut peaks = self.peaks.iter().rev();
        match peaks.next() {
            None => empty_root(),
            Some(last) => peaks.fold(*last, |right, left| node_hash(left, &right)),
        }
    }

    /// The head.
    pub(crate) fn head(&self) -> AuditHead {
        AuditHead {
            size: self.size,
            root: self.root(),
            last_hash: self.last_hash,
        }
    }
}

/// The key of a Merkle node.
fn node_key(level: u8, index: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[0] = NODE_PREFIX;
    key[1] = level;
    key[2..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Appends an entry inside a transaction: writes it, the Merkle nodes it
/// completes, the new frontier and, for an entry of a study, the study's new head
/// (the entry names the study's previous one).
pub(crate) fn append(tx: &Tx<'_>, at_ms: u64, event: AuditEvent) -> TxResult<AuditEntry> {
    let mut frontier: Frontier = tx_get_json(tx.audit, STATE_KEY)?.unwrap_or_default();
    let index = frontier.size;
    let prev_hash = frontier.last_hash;
    let mut study_prev = None;
    if let Some(study) = event.study() {
        let key = prefixed_u64(STUDY_HEAD_PREFIX, study);
        let head: Option<StudyHead> = tx_get_json(tx.audit, &key)?;
        study_prev = head.map(|head| head.last_index);
        let next = StudyHead {
            study,
            last_index: index,
            entries: head.map_or(0, |head| head.entries) + 1,
        };
        tx_put_json(tx.audit, &key, &next)?;
    }
    let hash = entry_hash(&prev_hash, index, at_ms, &event, study_prev);
    let entry = AuditEntry {
        index,
        at_ms,
        event,
        study_prev,
        prev_hash,
        hash,
    };
    for (level, position, node) in frontier.push(hash) {
        tx.audit.insert(&node_key(level, position)[..], &node[..])?;
    }
    if frontier.size != index + 1 {
        return abort(StoreError::Corrupt("audit frontier".into()));
    }
    tx_put_json(tx.audit, &prefixed_u64(ENTRY_PREFIX, index), &entry)?;
    tx_put_json(tx.audit, STATE_KEY, &frontier)?;
    Ok(entry)
}

impl Store {
    /// The audit log's current head.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn audit_head(&self) -> Result<AuditHead, StoreError> {
        Ok(self.frontier()?.head())
    }

    /// The current head, signed with the marketplace key once its entries are
    /// durable: read, then flushed, then signed, so a head is never signed over an
    /// entry that a crash or a failed write could take back (two signed heads of one
    /// size always agree).
    ///
    /// # Errors
    ///
    /// As [`Store::audit_head`]; [`StoreError::Storage`] if the flush fails (nothing is
    /// signed then).
    pub fn signed_audit_head(&self, key: &SigningKey) -> Result<SignedHead, StoreError> {
        let head = self.audit_head()?;
        self.flush()?;
        Ok(SignedHead::sign(head, key))
    }

    /// Where study `study`'s chain ends now.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownStudy`] for a study never created; [`StoreError::Storage`],
    /// [`StoreError::Corrupt`].
    pub fn study_head(&self, study: u64) -> Result<StudyHead, StoreError> {
        crate::store::get_json(&self.audit, &prefixed_u64(STUDY_HEAD_PREFIX, study))?
            .ok_or(StoreError::UnknownStudy(study))
    }

    /// The entry at `index`.
    ///
    /// # Errors
    ///
    /// [`StoreError::AuditIndex`] if there is none; [`StoreError::Storage`],
    /// [`StoreError::Corrupt`].
    pub fn audit_entry(&self, index: u64) -> Result<AuditEntry, StoreError> {
        match crate::store::get_json(&self.audit, &prefixed_u64(ENTRY_PREFIX, index))? {
            Some(entry) => Ok(entry),
            None => Err(StoreError::AuditIndex {
                index,
                size: self.frontier()?.size,
            }),
        }
    }

    /// Up to `limit` entries from index `start` on.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn audit_entries(&self, start: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit
            .range(prefixed_u64(ENTRY_PREFIX, start)..=prefixed_u64(ENTRY_PREFIX, u64::MAX))
            .take(limit)
            .map(|item| crate::store::decode_json(&item?.1))
            .collect()
    }

    /// The inclusion proof of entry `index` in the log as it was at `size`
    /// entries (a signed head's size; `size` at most the current size).
    ///
    /// # Errors
    ///
    /// [`StoreError::AuditIndex`] if `index >= size` or `size` exceeds the log;
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError> {
        let current = self.frontier()?.size;
        if index >= size || size > current {
            return Err(StoreError::AuditIndex {
                index,
                size: current,
            });
        }
        let mut path = Vec::new();
        self.audit_path(index, 0, size, &mut path)?;
        Ok(InclusionProof { index, size, path })
    }

    /// The RFC 9162 consistency proof that the log as it was at `first` entries is a
    /// prefix of the log at `second` (two signed heads' sizes, `first <= second <=` the
    /// current size).
    ///
    /// # Errors
    ///
    /// [`StoreError::AuditIndex`] if `first > second` or `second` exceeds the log;
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, StoreError> {
        let current = self.frontier()?.size;
        if first > second || second > current {
            return Err(StoreError::AuditIndex {
                index: second,
                size: current,
            });
        }
        let mut path = Vec::new();
        if 0 < first && first < second {
            self.consistency_path(first, 0, second, true, &mut path)?;
        }
        Ok(ConsistencyProof {
            first,
            second,
            path,
        })
    }

    /// RFC 9162 `SUBPROOF(m, D[start..start + n], whole)`, appended in order.
    fn consistency_path(
        &self,
        m: u64,
        start: u64,
        n: u64,
        whole: bool,
        path: &mut Vec<Bytes32>,
    ) -> Result<(), StoreError> {
        if m == n {
            if !whole {
                path.push(self.subtree_hash(start, n)?);
            }
            return Ok(());
        }
        let split = largest_power_of_two_below(n);
        if m <= split {
            self.consistency_path(m, start, split, whole, path)?;
            path.push(self.subtree_hash(start + split, n - split)?);
        } else {
            self.consistency_path(m - split, start + split, n - split, false, path)?;
            path.push(self.subtree_hash(start, split)?);
        }
        Ok(())
    }

    /// Checks the whole stored log: the chain, and that its Merkle root and
    /// the stored frontier agree. Reads every entry: an operator or test
    /// tool, not a request handler.
    ///
    /// # Errors
    ///
    /// [`StoreError::AuditVerification`] for a broken log; [`StoreError::Storage`],
    /// [`StoreError::Corrupt`].
    pub fn verify_audit_log(&self) -> Result<AuditHead, StoreError> {
        let entries = self.audit_entries(0, usize::MAX)?;
        let computed = verify_chain(&entries)?;
        let stored = self.audit_head()?;
        if computed != stored {
            return Err(StoreError::AuditVerification(
                "the stored head differs from the entries".into(),
            ));
        }
        Ok(computed)
    }

    /// The stored frontier.
    fn frontier(&self) -> Result<Frontier, StoreError> {
        Ok(crate::store::get_json(&self.audit, STATE_KEY)?.unwrap_or_default())
    }

    /// RFC 9162 `PATH(m, D[start..start + n])`, appended bottom-up.
    fn audit_path(
        &self,
        m: u64,
        start: u64,
        n: u64,
        path: &mut Vec<Bytes32>,
    ) -> Result<(), StoreError> {
        if n <= 1 {
            return Ok(());
        }
        let split = largest_power_of_two_below(n);
        if m < split {
            self.audit_path(m, start, split, path)?;
            path.push(self.subtree_hash(start + split, n - split)?);
        } else {
            self.audit_path(m - split, start + split, n - split, path)?;
            path.push(self.subtree_hash(start, split)?);
        }
        Ok(())
    }

    /// The Merkle tree hash of entries `start..start + n`, from stored nodes
    /// (`start` is a multiple of the largest power of two up to `n`, as in
    /// every range an audit path asks for).
    fn subtree_hash(&self, start: u64, n: u64) -> Result<Bytes32, StoreError> {
        if n.is_power_of_two() {
            let level = n.trailing_zeros();
            let key = node_key(level as u8, start >> level);
            let bytes = self.audit.get(key)?.ok_or_else(|| {
                StoreError::Corrupt(format!("missing audit node {level}/{start}"))
            })?;
            return <[u8; 32]>::try_from(bytes.as_ref())
                .map_err(|_| StoreError::Corrupt("audit node length".into()));
        }
        let split = largest_power_of_two_below(n);
        Ok(node_hash(
            &self.subtree_hash(start, split)?,
            &self.subtree_hash(start + split, n - split)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    fn hashes(n: usize) -> Vec<Bytes32> {
        (0..n)
            .map(|i| Sha256::digest((i as u64).to_be_bytes()).into())
            .collect()
    }

    #[test]
    fn frontier_root_matches_recursive_root() {
        let all = hashes(70);
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), merkle_root(&[]));
        for (n, hash) in all.iter().enumerate() {
            frontier.push(*hash);
            assert_eq!(frontier.root(), merkle_root(&all[..=n]), "size {}", n + 1);
            assert_eq!(frontier.peaks.len() as u32, frontier.size.count_ones());
        }
    }

    #[test]
    fn every_earlier_head_is_proven_a_prefix_of_every_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            crate::StoreConfig {
                registry_depth: 4,
                root_window_ms: 1_000,
                cohort: crate::CohortPolicy::immediate(),
                privacy: crate::PrivacyCaps::default(),
            },
        )
        .unwrap();
        // The store's first entry records the registry; 20 mints make 21.
        let mut heads = vec![AuditHead {
            size: 0,
            root: empty_root(),
            last_hash: [0; 32],
        }];
        heads.push(store.audit_head().unwrap());
        for amount in 1..=20 {
            store.mint([3; 32], amount).unwrap();
            heads.push(store.audit_head().unwrap());
        }
        for first in &heads {
            for second in &heads {
                let proven = store.consistency_proof(first.size, second.size);
                if first.size > second.size {
                    assert!(proven.is_err());
                    continue;
                }
                let proof = proven.unwrap();
                verify_consistency(first, second, &proof)
                    .unwrap_or_else(|error| panic!("{} to {}: {error}", first.size, second.size));
                // A rewritten earlier log, another size, or a changed path is refused.
                let forged_root = AuditHead {
                    root: [0xee; 32],
                    ..*first
                };
                if first.size > 0 {
                    assert!(verify_consistency(&forged_root, second, &proof).is_err());
                }
                for position in 0..proof.path.len() {
                    let mut changed = proof.clone();
                    changed.path[position][0] ^= 1;
                    assert!(verify_consistency(first, second, &changed).is_err());
                }
                if !proof.path.is_empty() {
                    let mut shorter = proof.clone();
                    shorter.path.pop();
                    assert!(verify_consistency(first, second, &shorter).is_err());
                }
                let mut longer = proof.clone();
                longer.path.push([0; 32]);
                assert!(verify_consistency(first, second, &longer).is_err());
            }
        }
    }

    #[test]
    fn a_rewritten_stored_entry_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            crate::StoreConfig {
                registry_depth: 4,
                root_window_ms: 1_000,
                cohort: crate::CohortPolicy::immediate(),
                privacy: crate::PrivacyCaps::default(),
            },
        )
        .unwrap();
        for amount in 1..=5 {
            store.mint([3; 32], amount).unwrap();
        }
        let head = store.verify_audit_log().unwrap();
        let signed = store
            .signed_audit_head(&SigningKey::from_bytes(&[9; 32]))
            .unwrap();

        // The operator rewrites entry 2 on disk, hash and all, as if the
        // mint had been larger.
        let mut entry = store.audit_entry(2).unwrap();
        let AuditEvent::Mint(mint) = &mut entry.event else {
            panic!("entry 2 is the mint");
        };
        mint.ledger.amount = 1_000;
        entry.hash = entry_hash(
            &entry.prev_hash,
            entry.index,
            entry.at_ms,
            &entry.event,
            entry.study_prev,
        );
        store
            .audit
            .insert(
                prefixed_u64(ENTRY_PREFIX, 2),
                serde_json::to_vec(&entry).unwrap(),
            )
            .unwrap();
        assert!(store.verify_audit_log().is_err());
        let entries = store.audit_entries(0, usize::MAX).unwrap();
        assert!(verify_log(&entries, &signed, None).is_err());
        // The head the sponsor holds still proves the original entry only.
        let proof = store.inclusion_proof(2, head.size).unwrap();
        assert!(verify_inclusion(&entry.hash, &proof, &signed.head.root).is_err());
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
