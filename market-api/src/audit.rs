//! The audit log: every state change of the marketplace, appended in the same
//! transaction as the change, hash-chained and Merkle-rooted, with a head the
//! marketplace signs so sponsors can check that nothing was rewritten.
//!
//! # Entries and the chain
//!
//! Entry `i` is `{index, at_ms, kind, payload, prev_hash, hash}` where
//! `prev_hash` is entry `i - 1`'s hash (32 zero bytes for entry 0) and
//! `hash = SHA-256(prev_hash || canonical bytes)` ([`entry_hash`]). The
//! canonical bytes are `"zkcohort-audit-v1"`, then `index` and `at_ms` as
//! u64 big-endian, then `kind` and the payload's compact JSON (serde_json,
//! object keys sorted), each as a u32 big-endian length and the bytes.
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
//! [`verify_chain`], [`verify_inclusion`], [`SignedHead::verify`] and
//! [`merkle_root`] need only sha2, ed25519-dalek and serde_json: they are what
//! an offline verifier runs.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{abort, prefixed_u64, tx_get_json, tx_put_json, Tx, TxResult};
use crate::{Bytes32, Error, Store};

/// The domain separator of entry hashes.
const ENTRY_DOMAIN: &[u8] = b"zkcohort-audit-v1";
/// The domain separator of signed heads.
const HEAD_DOMAIN: &[u8] = b"zkcohort-audit-head-v1";
/// The key of the log's state in the `audit` tree.
const STATE_KEY: &[u8] = b"head";
/// The key prefix of entries.
const ENTRY_PREFIX: u8 = b'e';
/// The key prefix of Merkle nodes.
const NODE_PREFIX: u8 = b'n';

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its position in the log, from 0.
    pub index: u64,
    /// When it was appended, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What changed (`mint`, `transfer`, `study_created`, `enroll`, ...).
    pub kind: String,
    /// The change's details.
    pub payload: serde_json::Value,
    /// The previous entry's hash (zeros for entry 0).
    #[serde(with = "crate::hex_bytes")]
    pub prev_hash: Bytes32,
    /// `SHA-256(prev_hash || canonical bytes)`.
    #[serde(with = "crate::hex_bytes")]
    pub hash: Bytes32,
}

impl AuditEntry {
    /// Whether `hash` is the hash of this entry's content and `prev_hash`.
    pub fn hash_is_valid(&self) -> bool {
        entry_hash(
            &self.prev_hash,
            self.index,
            self.at_ms,
            &self.kind,
            &self.payload,
        ) == self.hash
    }
}

/// The head of the log: what a signature commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditHead {
    /// The number of entries.
    pub size: u64,
    /// The Merkle root over the entry hashes.
    #[schema(value_type = String)]
    #[serde(with = "crate::hex_bytes")]
    pub root: Bytes32,
    /// The last entry's hash (zeros for an empty log).
    #[schema(value_type = String)]
    #[serde(with = "crate::hex_bytes")]
    pub last_hash: Bytes32,
}

/// A head signed by the marketplace key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedHead {
    /// The head.
    pub head: AuditHead,
    /// The marketplace's ed25519 public key.
    #[schema(value_type = String)]
    #[serde(with = "crate::hex_bytes")]
    pub public_key: Bytes32,
    /// The signature over [`head_message`].
    #[schema(value_type = String)]
    #[serde(with = "crate::hex_bytes")]
    pub signature: [u8; 64],
}

impl SignedHead {
    /// Signs `head` with `key`.
    pub fn sign(head: AuditHead, key: &SigningKey) -> Self {
        Self {
            head,
            public_key: key.verifying_key().to_bytes(),
            signature: key.sign(&head_message(&head)).to_bytes(),
        }
    }

    /// Checks the signature, and that it was made by `expected_key` when one
    /// is given (a sponsor pins the marketplace's key).
    ///
    /// # Errors
    ///
    /// [`Error::AuditVerification`] if the key differs or the signature does
    /// not verify.
    pub fn verify(&self, expected_key: Option<&Bytes32>) -> Result<(), Error> {
        if expected_key.is_some_and(|key| key != &self.public_key) {
            return Err(Error::AuditVerification(
                "the head is signed by another key".into(),
            ));
        }
        let key = VerifyingKey::from_bytes(&self.public_key)
            .map_err(|_| Error::AuditVerification("invalid public key".into()))?;
        key.verify_strict(
            &head_message(&self.head),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| Error::AuditVerification("bad head signature".into()))
    }
}

/// An inclusion proof: entry `index` is in the log of `size` entries whose
/// root is the head's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The entry's index.
    pub index: u64,
    /// The size of the log the proof is for.
    pub size: u64,
    /// The RFC 9162 audit path, bottom-up.
    #[serde(with = "crate::hex_bytes::vec32")]
    pub path: Vec<Bytes32>,
}

/// The canonical bytes and hash of an entry: `SHA-256(prev_hash ||
/// canonical bytes)`.
pub fn entry_hash(
    prev_hash: &Bytes32,
    index: u64,
    at_ms: u64,
    kind: &str,
    payload: &serde_json::Value,
) -> Bytes32 {
    let payload = payload.to_string();
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(ENTRY_DOMAIN);
    hasher.update(index.to_be_bytes());
    hasher.update(at_ms.to_be_bytes());
    for part in [kind.as_bytes(), payload.as_bytes()] {
        // Lengths above u32::MAX cannot be stored; saturate rather than panic.
        let length = u32::try_from(part.len()).unwrap_or(u32::MAX);
        hasher.update(length.to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The Merkle leaf of an entry hash: `SHA-256(0x00 || entry_hash)`.
pub fn leaf_hash(entry_hash: &Bytes32) -> Bytes32 {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(entry_hash);
    hasher.finalize().into()
}

/// An inner Merkle node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Bytes32, right: &Bytes32) -> Bytes32 {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty log, `SHA-256("")`.
pub fn empty_root() -> Bytes32 {
    Sha256::digest(b"").into()
}

/// The RFC 9162 Merkle tree hash over entry hashes (recursive, `O(n)`; the
/// store keeps the same root incrementally).
pub fn merkle_root(entry_hashes: &[Bytes32]) -> Bytes32 {
    fn subtree(hashes: &[Bytes32]) -> Bytes32 {
        match hashes.len() {
            1 => leaf_hash(&hashes[0]),
            n => {
                let split = largest_power_of_two_below(n as u64) as usize;
                node_hash(&subtree(&hashes[..split]), &subtree(&hashes[split..]))
            }
        }
    }
    if entry_hashes.is_empty() {
        empty_root()
    } else {
        subtree(entry_hashes)
    }
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn largest_power_of_two_below(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The message a head signature covers.
pub fn head_message(head: &AuditHead) -> Vec<u8> {
    let mut message = Vec::with_capacity(HEAD_DOMAIN.len() + 8 + 64);
    message.extend_from_slice(HEAD_DOMAIN);
    message.extend_from_slice(&head.size.to_be_bytes());
    message.extend_from_slice(&head.root);
    message.extend_from_slice(&head.last_hash);
    message
}

/// Checks an RFC 9162 inclusion proof of the entry whose hash is
/// `entry_hash` against `root`.
///
/// # Errors
///
/// [`Error::AuditVerification`] if the proof does not lead to `root`.
pub fn verify_inclusion(
    entry_hash: &Bytes32,
    proof: &InclusionProof,
    root: &Bytes32,
) -> Result<(), Error> {
    let fail = |why: &str| Err(Error::AuditVerification(format!("inclusion proof: {why}")));
    if proof.index >= proof.size {
        return fail("index outside the log");
    }
    let mut node_index = proof.index;
    let mut last_index = proof.size - 1;
    let mut hash = leaf_hash(entry_hash);
    for sibling in &proof.path {
        if last_index == 0 {
            return fail("path too long");
        }
        if node_index & 1 == 1 || node_index == last_index {
            hash = node_hash(sibling, &hash);
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_index >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        node_index >>= 1;
        last_index >>= 1;
    }
    if last_index != 0 {
        return fail("path too short");
    }
    if &hash != root {
        return fail("root mismatch");
    }
    Ok(())
}

/// Checks a whole log from entry 0: indices in order, each hash valid, each
/// entry chained to the previous one. Returns the head it computes.
///
/// # Errors
///
/// [`Error::AuditVerification`] naming the first bad entry.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<AuditHead, Error> {
    let mut prev_hash = [0u8; 32];
    let mut hashes = Vec::with_capacity(entries.len());
    for (position, entry) in entries.iter().enumerate() {
        let bad = |why: &str| Err(Error::AuditVerification(format!("entry {position}: {why}")));
        if entry.index != position as u64 {
            return bad("index out of order");
        }
        if entry.prev_hash != prev_hash {
            return bad("does not chain to the previous entry");
        }
        if !entry.hash_is_valid() {
            return bad("hash does not match its content");
        }
        prev_hash = entry.hash;
        hashes.push(entry.hash);
    }
    Ok(AuditHead {
        size: entries.len() as u64,
        root: merkle_root(&hashes),
        last_hash: prev_hash,
    })
}

/// Checks a whole log against a signed head: the signature (by
/// `expected_key` when given), the chain, and that the entries give exactly
/// the signed size, root and last hash.
///
/// # Errors
///
/// [`Error::AuditVerification`] naming what does not match.
pub fn verify_log(
    entries: &[AuditEntry],
    signed: &SignedHead,
    expected_key: Option<&Bytes32>,
) -> Result<(), Error> {
    signed.verify(expected_key)?;
    let computed = verify_chain(entries)?;
    if computed != signed.head {
        return Err(Error::AuditVerification(format!(
            "the entries give size {} and another root or last hash than the signed head (size {})",
            computed.size, signed.head.size
        )));
    }
    Ok(())
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
/// completes and the new frontier.
pub(crate) fn append(
    tx: &Tx<'_>,
    at_ms: u64,
    kind: &str,
    payload: serde_json::Value,
) -> TxResult<AuditEntry> {
    let mut frontier: Frontier = tx_get_json(tx.audit, STATE_KEY)?.unwrap_or_default();
    let index = frontier.size;
    let prev_hash = frontier.last_hash;
    let hash = entry_hash(&prev_hash, index, at_ms, kind, &payload);
    let entry = AuditEntry {
        index,
        at_ms,
        kind: kind.to_owned(),
        payload,
        prev_hash,
        hash,
    };
    for (level, position, node) in frontier.push(hash) {
        tx.audit.insert(&node_key(level, position)[..], &node[..])?;
    }
    if frontier.size != index + 1 {
        return abort(Error::Corrupt("audit frontier".into()));
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
    /// [`Error::Storage`], [`Error::Corrupt`].
    pub fn audit_head(&self) -> Result<AuditHead, Error> {
        Ok(self.frontier()?.head())
    }

    /// The current head, signed with the marketplace key (outside any
    /// transaction).
    ///
    /// # Errors
    ///
    /// As [`Store::audit_head`].
    pub fn signed_audit_head(&self, key: &SigningKey) -> Result<SignedHead, Error> {
        Ok(SignedHead::sign(self.audit_head()?, key))
    }

    /// The entry at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::AuditIndex`] if there is none; [`Error::Storage`],
    /// [`Error::Corrupt`].
    pub fn audit_entry(&self, index: u64) -> Result<AuditEntry, Error> {
        match crate::store::get_json(&self.audit, &prefixed_u64(ENTRY_PREFIX, index))? {
            Some(entry) => Ok(entry),
            None => Err(Error::AuditIndex {
                index,
                size: self.frontier()?.size,
            }),
        }
    }

    /// Up to `limit` entries from index `start` on.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`], [`Error::Corrupt`].
    pub fn audit_entries(&self, start: u64, limit: usize) -> Result<Vec<AuditEntry>, Error> {
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
    /// [`Error::AuditIndex`] if `index >= size` or `size` exceeds the log;
    /// [`Error::Storage`], [`Error::Corrupt`].
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, Error> {
        let current = self.frontier()?.size;
        if index >= size || size > current {
            return Err(Error::AuditIndex {
                index,
                size: current,
            });
        }
        let mut path = Vec::new();
        self.audit_path(index, 0, size, &mut path)?;
        Ok(InclusionProof { index, size, path })
    }

    /// Checks the whole stored log: the chain, and that its Merkle root and
    /// the stored frontier agree. Reads every entry: an operator or test
    /// tool, not a request handler.
    ///
    /// # Errors
    ///
    /// [`Error::AuditVerification`] for a broken log; [`Error::Storage`],
    /// [`Error::Corrupt`].
    pub fn verify_audit_log(&self) -> Result<AuditHead, Error> {
        let entries = self.audit_entries(0, usize::MAX)?;
        let computed = verify_chain(&entries)?;
        let stored = self.audit_head()?;
        if computed != stored {
            return Err(Error::AuditVerification(
                "the stored head differs from the entries".into(),
            ));
        }
        Ok(computed)
    }

    /// The stored frontier.
    fn frontier(&self) -> Result<Frontier, Error> {
        Ok(crate::store::get_json(&self.audit, STATE_KEY)?.unwrap_or_default())
    }

    /// RFC 9162 `PATH(m, D[start..start + n])`, appended bottom-up.
    fn audit_path(&self, m: u64, start: u64, n: u64, path: &mut Vec<Bytes32>) -> Result<(), Error> {
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
    fn subtree_hash(&self, start: u64, n: u64) -> Result<Bytes32, Error> {
        if n.is_power_of_two() {
            let level = n.trailing_zeros();
            let key = node_key(level as u8, start >> level);
            let bytes = self
                .audit
                .get(key)?
                .ok_or_else(|| Error::Corrupt(format!("missing audit node {level}/{start}")))?;
            return <[u8; 32]>::try_from(bytes.as_ref())
                .map_err(|_| Error::Corrupt("audit node length".into()));
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
    fn a_rewritten_stored_entry_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            crate::StoreConfig {
                registry_depth: 4,
                root_window: 1,
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
        entry.payload["ledger"]["amount"] = serde_json::json!(1_000);
        entry.hash = entry_hash(
            &entry.prev_hash,
            entry.index,
            entry.at_ms,
            &entry.kind,
            &entry.payload,
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
