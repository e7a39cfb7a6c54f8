//! The marketplace's audit log, as a sponsor checks it: entries, heads, signed
//! heads and RFC 9162 inclusion proofs, with their verification. Pure
//! functions over sha2, ed25519-dalek and serde_json: the marketplace
//! (`zkcohort-market`) appends and stores entries with exactly these types
//! and hashes, so there is one implementation of both sides.
//!
//! # Entries and the chain
//!
//! Entry `i` is `{index, at_ms, kind, payload, study_prev, prev_hash, hash}`
//! where `prev_hash` is entry `i - 1`'s hash (32 zero bytes for entry 0) and
//! `hash = SHA-256(prev_hash || canonical bytes)` ([`entry_hash`]). The
//! canonical bytes are `"zkcohort-audit-v2"`, then `index` and `at_ms` as
//! u64 big-endian, then the [`AuditEvent`]'s `kind` and its payload's compact
//! JSON (serde_json, object keys sorted), each as a u32 big-endian length and
//! the bytes, then `study_prev + 1` as u64 big-endian (0 for none).
//!
//! # Study chains
//!
//! The entries of one study (those whose [`AuditEvent::study`] names it) form a
//! chain of their own: each names the index of the study's previous entry in
//! `study_prev`, the study's `study_created` entry none. A [`SignedStudyHead`]
//! commits to a study's latest entry and its number of entries together with the
//! log's head, so a bundle that leaves out an entry of its study (an enrollment, the
//! close) breaks the chain it must hold, or needs a signed head that the log itself
//! contradicts.
//!
//! # The Merkle tree
//!
//! The root over all entry hashes is the Merkle tree hash of RFC 9162
//! (Certificate Transparency 2.0) with SHA-256: leaf `SHA-256(0x00 || entry
//! hash)`, node `SHA-256(0x01 || left || right)`, a tree of `n` leaves split
//! at the largest power of two below `n`, the empty tree hashing to
//! `SHA-256("")`. [`verify_inclusion`] checks an RFC 9162 §2.1.3 audit path.
//!
//! # Signed heads
//!
//! The head `{size, root, last_hash}` is signed with ed25519 over
//! `"zkcohort-audit-head-v1" || size (u64 BE) || root || last_hash`
//! ([`head_message`]). A study head is signed over `"zkcohort-study-head-v1" ||
//! head_message || study || last_index || entries` (u64 BE each,
//! [`study_head_message`]).

use std::collections::{BTreeMap, HashSet};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zkcohort_circuits::note::NOTE_TREE_DEPTH;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::statement::{fr_from_bytes, fr_to_bytes};
use zkcohort_circuits::Fr;

use crate::events::AuditEvent;
use crate::release_budgets::ReleaseBudgets;

/// A 32-byte value: a public key, a hash. Lowercase hex in JSON.
pub type Bytes32 = [u8; 32];

/// Why an audit log, a signed head or an inclusion proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuditError(pub String);

/// The domain separator of entry hashes.
const ENTRY_DOMAIN: &[u8] = b"zkcohort-audit-v2";
/// The domain separator of signed heads.
const HEAD_DOMAIN: &[u8] = b"zkcohort-audit-head-v1";
/// The domain separator of signed study heads.
const STUDY_HEAD_DOMAIN: &[u8] = b"zkcohort-study-head-v1";

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its position in the log, from 0.
    pub index: u64,
    /// When it was appended, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What changed: `kind` and `payload` in JSON.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// For an entry of a study: the index of the study's previous entry (none for
    /// its `study_created`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study_prev: Option<u64>,
    /// The previous entry's hash (zeros for entry 0).
    #[serde(with = "crate::hex_serde")]
    pub prev_hash: Bytes32,
    /// `SHA-256(prev_hash || canonical bytes)`.
    #[serde(with = "crate::hex_serde")]
    pub hash: Bytes32,
}

impl AuditEntry {
    /// Whether `hash` is the hash of this entry's content and `prev_hash`.
    pub fn hash_is_valid(&self) -> bool {
        entry_hash(
            &self.prev_hash,
            self.index,
            self.at_ms,
            &self.event,
            self.study_prev,
        ) == self.hash
    }
}

/// The head of the log: what a signature commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// The number of entries.
    pub size: u64,
    /// The Merkle root over the entry hashes.
    #[serde(with = "crate::hex_serde")]
    pub root: Bytes32,
    /// The last entry's hash (zeros for an empty log).
    #[serde(with = "crate::hex_serde")]
    pub last_hash: Bytes32,
}

/// A head signed by the marketplace key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHead {
    /// The head.
    pub head: AuditHead,
    /// The marketplace's ed25519 public key.
    #[serde(with = "crate::hex_serde")]
    pub public_key: Bytes32,
    /// The signature over [`head_message`].
    #[serde(with = "crate::hex_serde")]
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
    /// [`AuditError`] if the key differs or the signature does
    /// not verify.
    pub fn verify(&self, expected_key: Option<&Bytes32>) -> Result<(), AuditError> {
        verify_head_signature(
            &self.public_key,
            &self.signature,
            &head_message(&self.head),
            expected_key,
        )
    }
}

/// Where a study's chain ends in a log: its latest entry and how many it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyHead {
    /// The study.
    pub study: u64,
    /// The index of the study's latest entry.
    pub last_index: u64,
    /// The number of the study's entries, `study_created` included.
    pub entries: u64,
}

/// A log head and a study's head in it, signed together by the marketplace key: what
/// a study bundle is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedStudyHead {
    /// The log's head.
    pub head: AuditHead,
    /// The study's head in that log.
    pub study: StudyHead,
    /// The marketplace's ed25519 public key.
    #[serde(with = "crate::hex_serde")]
    pub public_key: Bytes32,
    /// The signature over [`study_head_message`].
    #[serde(with = "crate::hex_serde")]
    pub signature: [u8; 64],
}

impl SignedStudyHead {
    /// Signs `head` and `study` with `key`.
    pub fn sign(head: AuditHead, study: StudyHead, key: &SigningKey) -> Self {
        Self {
            head,
            study,
            public_key: key.verifying_key().to_bytes(),
            signature: key.sign(&study_head_message(&head, &study)).to_bytes(),
        }
    }

    /// Checks the signature, and that it was made by `expected_key` when one is given.
    ///
    /// # Errors
    ///
    /// [`AuditError`] if the key differs or the signature does not verify.
    pub fn verify(&self, expected_key: Option<&Bytes32>) -> Result<(), AuditError> {
        verify_head_signature(
            &self.public_key,
            &self.signature,
            &study_head_message(&self.head, &self.study),
            expected_key,
        )
    }
}

/// Checks a head's strict ed25519 `signature` over `message` by `public_key`, which
/// must be `expected_key` when one is given.
fn verify_head_signature(
    public_key: &Bytes32,
    signature: &[u8; 64],
    message: &[u8],
    expected_key: Option<&Bytes32>,
) -> Result<(), AuditError> {
    if expected_key.is_some_and(|key| key != public_key) {
        return Err(AuditError("the head is signed by another key".into()));
    }
    let key = VerifyingKey::from_bytes(public_key)
        .map_err(|_| AuditError("invalid public key".into()))?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| AuditError("bad head signature".into()))
}

/// The message a study head signature covers.
pub fn study_head_message(head: &AuditHead, study: &StudyHead) -> Vec<u8> {
    let mut message = STUDY_HEAD_DOMAIN.to_vec();
    message.extend_from_slice(&head_message(head));
    for value in [study.study, study.last_index, study.entries] {
        message.extend_from_slice(&value.to_be_bytes());
    }
    message
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
    #[serde(with = "crate::hex_serde::vec32")]
    pub path: Vec<Bytes32>,
}

/// The canonical bytes and hash of an entry: `SHA-256(prev_hash ||
/// canonical bytes)`.
pub fn entry_hash(
    prev_hash: &Bytes32,
    index: u64,
    at_ms: u64,
    event: &AuditEvent,
    study_prev: Option<u64>,
) -> Bytes32 {
    // The event's types have string map keys and no fallible serializers.
    let payload = match serde_json::to_value(event).expect("audit events serialize") {
        serde_json::Value::Object(mut fields) => fields.remove("payload").unwrap_or_default(),
        _ => serde_json::Value::Null,
    };
    let payload = payload.to_string();
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(ENTRY_DOMAIN);
    hasher.update(index.to_be_bytes());
    hasher.update(at_ms.to_be_bytes());
    for part in [event.kind().as_bytes(), payload.as_bytes()] {
        // Lengths above u32::MAX cannot be stored; saturate rather than panic.
        let length = u32::try_from(part.len()).unwrap_or(u32::MAX);
        hasher.update(length.to_be_bytes());
        hasher.update(part);
    }
    hasher.update(study_prev.map_or(0, |index| index + 1).to_be_bytes());
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
pub fn largest_power_of_two_below(n: u64) -> u64 {
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
/// [`AuditError`] if the proof does not lead to `root`.
pub fn verify_inclusion(
    entry_hash: &Bytes32,
    proof: &InclusionProof,
    root: &Bytes32,
) -> Result<(), AuditError> {
    let fail = |why: &str| Err(AuditError(format!("inclusion proof: {why}")));
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

/// An RFC 9162 consistency proof: the log of `first` entries is a prefix of the log of
/// `second` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The older head's size.
    pub first: u64,
    /// The newer head's size.
    pub second: u64,
    /// The RFC 9162 consistency path.
    #[serde(with = "crate::hex_serde::vec32")]
    pub path: Vec<Bytes32>,
}

/// Checks that `proof` shows the log of head `first` to be a prefix of the log of head
/// `second` (RFC 9162, section 2.1.4.2): whoever signed both cannot have rewritten,
/// dropped or reordered an entry the older head covered.
///
/// # Errors
///
/// [`AuditError`] if the proof is for other sizes or does not lead to both roots.
pub fn verify_consistency(
    first: &AuditHead,
    second: &AuditHead,
    proof: &ConsistencyProof,
) -> Result<(), AuditError> {
    let fail = |why: &str| Err(AuditError(format!("consistency proof: {why}")));
    if (proof.first, proof.second) != (first.size, second.size) {
        return fail("it is for other sizes than the heads'");
    }
    if first.size > second.size {
        return fail("the first head is larger than the second");
    }
    if first.size == second.size {
        return if proof.path.is_empty() && first.root == second.root {
            Ok(())
        } else {
            fail("two heads of one size with different roots")
        };
    }
    if first.size == 0 {
        // The empty log is a prefix of every log.
        return if proof.path.is_empty() {
            Ok(())
        } else {
            fail("a path for the empty log")
        };
    }
    let mut path = proof.path.iter();
    let seed = if first.size.is_power_of_two() {
        first.root
    } else {
        match path.next() {
            Some(hash) => *hash,
            None => return fail("path too short"),
        }
    };
    let mut first_index = first.size - 1;
    let mut second_index = second.size - 1;
    while first_index & 1 == 1 {
        first_index >>= 1;
        second_index >>= 1;
    }
    let (mut first_root, mut second_root) = (seed, seed);
    for hash in path {
        if second_index == 0 {
            return fail("path too long");
        }
        if first_index & 1 == 1 || first_index == second_index {
            first_root = node_hash(hash, &first_root);
            second_root = node_hash(hash, &second_root);
            while first_index & 1 == 0 && first_index != 0 {
                first_index >>= 1;
                second_index >>= 1;
            }
        } else {
            second_root = node_hash(&second_root, hash);
        }
        first_index >>= 1;
        second_index >>= 1;
    }
    if second_index != 0 {
        return fail("path too short");
    }
    if first_root != first.root || second_root != second.root {
        return fail("root mismatch");
    }
    Ok(())
}

/// Checks a whole log from entry 0: indices in order, each hash valid, each
/// entry chained to the previous one and each study entry to its study's previous
/// entry, and each enrollment naming as current the root the log made current last
/// (so a bundle cannot hide that an enrollment's root had been replaced). The reward-note
/// tree is rebuilt from the log's note appends: each must start where the last ended and
/// name the root the rebuilt tree has, and each note transfer must spend under a root the
/// log made and use nullifiers no earlier transfer used, so the marketplace cannot add,
/// drop or reorder a note, or accept a double spend, without breaking the log. The DP
/// releases' budgets are replayed ([`ReleaseBudgets`]), every researcher's window across
/// all their studies. Returns the head it computes.
///
/// # Errors
///
/// [`AuditError`] naming the first bad entry.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<AuditHead, AuditError> {
    let mut prev_hash = [0u8; 32];
    let mut hashes = Vec::with_capacity(entries.len());
    let mut studies = StudyHeads::default();
    let mut current_root = None;
    let mut notes = NoteLog::new();
    let mut release_budgets = ReleaseBudgets::default();
    for (position, entry) in entries.iter().enumerate() {
        let bad = |why: &str| Err(AuditError(format!("entry {position}: {why}")));
        if entry.index != position as u64 {
            return bad("index out of order");
        }
        if entry.prev_hash != prev_hash {
            return bad("does not chain to the previous entry");
        }
        if !entry.hash_is_valid() {
            return bad("hash does not match its content");
        }
        if let Err(why) = studies.push(entry) {
            return bad(&why);
        }
        if let Some(change) = entry.event.root_change() {
            current_root = Some(change.root_seq);
        }
        if let AuditEvent::Enroll(enrollment) = &entry.event {
            if Some(enrollment.current_root_seq) != current_root
                || enrollment.root_seq > enrollment.current_root_seq
            {
                return bad(&format!(
                    "the enrollment says root {} was current, the log says {current_root:?}",
                    enrollment.current_root_seq
                ));
            }
        }
        if let Err(why) = notes.replay(&entry.event) {
            return bad(&why);
        }
        if let Err(why) = release_budgets.push(entry) {
            return bad(&why);
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

/// The reward-note tree as the log builds it, with every root it had and every note
/// nullifier spent.
struct NoteLog {
    tree: RegistryTree,
    roots: HashSet<Bytes32>,
    spent: HashSet<Bytes32>,
}

impl NoteLog {
    fn new() -> Self {
        let tree = RegistryTree::new(NOTE_TREE_DEPTH).expect("the note depth is valid");
        let roots = HashSet::from([fr_to_bytes(&tree.root())]);
        Self {
            tree,
            roots,
            spent: HashSet::new(),
        }
    }

    /// Applies an event's note changes, or says why the log contradicts itself.
    fn replay(&mut self, event: &AuditEvent) -> Result<(), String> {
        if let AuditEvent::NoteTransfer(transfer) = event {
            if !self.roots.contains(&transfer.note_root) {
                return Err("a note transfer spends under a note root the log never made".into());
            }
            for nullifier in &transfer.nullifiers {
                if !self.spent.insert(*nullifier) {
                    return Err(format!(
                        "note nullifier {}.. spent twice",
                        &hex::encode(nullifier)[..12]
                    ));
                }
            }
        }
        let Some(append) = event.note_append() else {
            return Ok(());
        };
        if append.first_index != self.tree.len() {
            return Err(format!(
                "notes appended at {}, the note tree holds {}",
                append.first_index,
                self.tree.len()
            ));
        }
        let commitments = append
            .commitments
            .iter()
            .map(fr_from_bytes)
            .collect::<Result<Vec<Fr>, _>>()
            .map_err(|_| "a note commitment is not a field element".to_string())?;
        self.tree
            .extend(&commitments)
            .map_err(|error| format!("the note tree refuses the append: {error}"))?;
        if fr_to_bytes(&self.tree.root()) != append.root {
            return Err("the note root differs from the tree its appends build".into());
        }
        self.roots.insert(append.root);
        Ok(())
    }
}

/// The head of every study's chain, built entry by entry from the start of a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StudyHeads(pub BTreeMap<u64, StudyHead>);

impl StudyHeads {
    /// Adds the next entry of the log.
    ///
    /// # Errors
    ///
    /// Why the entry's `study_prev` is not its study's latest entry (or is set on an
    /// entry of no study).
    pub fn push(&mut self, entry: &AuditEntry) -> Result<(), String> {
        let Some(study) = entry.event.study() else {
            return match entry.study_prev {
                None => Ok(()),
                Some(_) => Err("names a previous study entry but concerns no study".into()),
            };
        };
        let head = self.0.get(&study);
        if head.is_none() != matches!(entry.event, AuditEvent::StudyCreated(_)) {
            return Err(format!(
                "study {study}'s chain must start with its study_created entry, once"
            ));
        }
        let expected = head.map(|head| head.last_index);
        if entry.study_prev != expected {
            return Err(format!(
                "names {:?} as study {study}'s previous entry, which is {expected:?}",
                entry.study_prev
            ));
        }
        self.0.insert(
            study,
            StudyHead {
                study,
                last_index: entry.index,
                entries: head.map_or(0, |head| head.entries) + 1,
            },
        );
        Ok(())
    }
}

/// Checks a whole log against a signed head: the signature (by
/// `expected_key` when given), the chain, that the entries give exactly
/// the signed size, root and last hash, and that every API key binding and escrow
/// funding carries its account holder's signature for this marketplace.
///
/// # Errors
///
/// [`AuditError`] naming what does not match.
pub fn verify_log(
    entries: &[AuditEntry],
    signed: &SignedHead,
    expected_key: Option<&Bytes32>,
) -> Result<(), AuditError> {
    signed.verify(expected_key)?;
    let computed = verify_chain(entries)?;
    if computed != signed.head {
        return Err(AuditError(format!(
            "the entries give size {} and another root or last hash than the signed head (size {})",
            computed.size, signed.head.size
        )));
    }
    for entry in entries {
        if !holder_signature_is_valid(&entry.event, &signed.public_key) {
            return Err(AuditError(format!(
                "entry {}: its {} carries no valid signature of the account holder for this marketplace",
                entry.index,
                entry.event.kind()
            )));
        }
    }
    Ok(())
}

/// Whether an event that needs an account holder's consent carries the holder's
/// signature for the marketplace `marketplace_key`: an API key bound to an account (its
/// proof of possession), an escrow funded from a researcher's account. Other events need
/// none.
pub(crate) fn holder_signature_is_valid(event: &AuditEvent, marketplace_key: &Bytes32) -> bool {
    match event {
        AuditEvent::ApiKeyCreated(created) => crate::records::api_key_possession_is_valid(
            marketplace_key,
            &created.account,
            created.role,
            &created.key_id,
            &created.possession,
        ),
        AuditEvent::EscrowFunded(funded) => {
            let (crate::records::Account::Key(researcher), Some(study)) =
                (funded.ledger.debit, funded.ledger.study)
            else {
                return false;
            };
            crate::records::funding_signature_is_valid(
                marketplace_key,
                &researcher,
                study,
                funded.ledger.amount,
                funded.nonce,
                &funded.signature,
            )
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn every_inclusion_proof_of_a_small_log_verifies_and_a_wrong_leaf_does_not() {
        let hashes: Vec<Bytes32> = (0u64..11)
            .map(|i| Sha256::digest(i.to_be_bytes()).into())
            .collect();
        for size in 1..=hashes.len() {
            let root = merkle_root(&hashes[..size]);
            for index in 0..size {
                let proof = InclusionProof {
                    index: index as u64,
                    size: size as u64,
                    path: audit_path(&hashes[..size], index),
                };
                verify_inclusion(&hashes[index], &proof, &root).unwrap();
                let other = hashes[(index + 1) % hashes.len()];
                assert!(verify_inclusion(&other, &proof, &root).is_err());
            }
        }
    }

    /// RFC 9162 `PATH(m, D[n])`, recursively (the store reads stored nodes).
    fn audit_path(hashes: &[Bytes32], m: usize) -> Vec<Bytes32> {
        if hashes.len() <= 1 {
            return Vec::new();
        }
        let split = largest_power_of_two_below(hashes.len() as u64) as usize;
        if m < split {
            let mut path = audit_path(&hashes[..split], m);
            path.push(merkle_root(&hashes[split..]));
            path
        } else {
            let mut path = audit_path(&hashes[split..], m - split);
            path.push(merkle_root(&hashes[..split]));
            path
        }
    }
}
