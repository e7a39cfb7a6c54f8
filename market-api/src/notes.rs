//! The reward-note tree and note transfers.
//!
//! A reward is paid into a note ([`zkcohort_circuits::note`]): the enrollment
//! transaction appends `note_commitment(reward, receiver)` to the note tree and moves the
//! reward from the study's escrow to the note pool ([`Account::Notes`]). The tree is a
//! Poseidon tree of depth [`NOTE_TREE_DEPTH`], append-only, kept in memory (rebuilt from
//! the stored leaves at open) like the registry's, with a record of every root it has
//! had. Every one of those roots stays acceptable for a transfer: the tree only grows, so
//! a note under an old root is still a note, and the nullifiers, not the root, stop a
//! second spend; a wallet's proof never goes stale while it is in flight.
//!
//! [`Store::transfer_notes`] takes a verified note-transfer proof and does the rest in
//! one transaction: the root is one the tree had, neither nullifier was spent, both are
//! recorded spent, both output notes are appended, the withdrawal (when not zero) is
//! posted from the note pool to the recipient, and the audit entry is appended. Under
//! concurrent submissions of one note exactly one transaction commits; the others find
//! its nullifier spent.

use serde::{Deserialize, Serialize};
use zkcohort_circuits::note::NOTE_TREE_DEPTH;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::statement::{fr_from_bytes, fr_to_bytes};
use zkcohort_circuits::Fr;
use zkcohort_verifier::events::{AuditEvent, NoteAppend, NoteTransferRecord};
use zkcohort_verifier::snarkjs::SnarkjsProof;

use crate::ledger::{post, Account, LedgerKind};
use crate::store::{
    abort, decode_json, get_json, get_u64, lock_tree, prefixed_32, prefixed_u64, tx_get_json,
    tx_get_u64, tx_put_json, tx_put_u64, Tx, TxResult,
};
use crate::{audit, Bytes32, LedgerEntry, RootRecord, Store, StoreError};

/// Key prefixes and keys in the `notes` tree.
const LEAF: u8 = b'l';
const ROOT_RECORD: u8 = b'r';
const ROOT_INDEX: u8 = b'R';
const SPENT: u8 = b'x';
const SPENT_ORDER: u8 = b's';
const HEAD: &[u8] = b"head";
/// Starts with no prefix above, so no prefix scan reads it.
const SPENT_COUNT: &[u8] = b"count_spent";

/// A note transfer whose proof the caller verified: what its public inputs say, and the
/// proof for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteTransferOrder {
    /// The note-tree root the spent notes are under.
    pub note_root: Bytes32,
    /// The spent notes' nullifiers.
    pub nullifiers: [Bytes32; 2],
    /// The two output note commitments.
    pub outputs: [Bytes32; 2],
    /// The amount withdrawn to `recipient`.
    pub withdrawal: u64,
    /// The key the withdrawal is paid to.
    pub recipient: Bytes32,
    /// The proof, re-serialized from its parsed points.
    pub proof: SnarkjsProof,
    /// The public inputs as decimal strings, in circuit order.
    pub public_inputs: Vec<String>,
}

/// What [`Store::transfer_notes`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NoteTransfer {
    /// The index of the first output note (the second follows it).
    pub first_index: u64,
    /// The note root the outputs made current.
    pub root: RootRecord,
    /// The withdrawal's ledger entry, when the withdrawal is not zero.
    #[schema(value_type = Option<Object>)]
    pub ledger: Option<LedgerEntry>,
    /// The audit entry that records the transfer.
    pub audit_index: u64,
}

/// Records appended notes inside the transaction that appended them (see
/// [`Store::with_notes_appended`]): their leaves and the record of the root they make,
/// written by the audit entry `audit_index`.
pub(crate) fn record_notes(
    tx: &Tx<'_>,
    append: &NoteAppend,
    leaf_count: u64,
    audit_index: u64,
    at_ms: u64,
) -> TxResult<RootRecord> {
    let seq = match tx_get_json::<RootRecord>(tx.notes, HEAD)? {
        Some(head) => head.seq + 1,
        None => 0,
    };
    for (index, commitment) in (append.first_index..).zip(&append.commitments) {
        tx.notes
            .insert(&prefixed_u64(LEAF, index)[..], &commitment[..])?;
    }
    let record = RootRecord {
        seq,
        root: append.root,
        leaf_count,
        audit_index,
        at_ms,
    };
    tx_put_json(tx.notes, &prefixed_u64(ROOT_RECORD, seq), &record)?;
    tx.notes.insert(
        &prefixed_32(ROOT_INDEX, &append.root)[..],
        &seq.to_be_bytes()[..],
    )?;
    tx_put_json(tx.notes, HEAD, &record)?;
    Ok(record)
}

/// A stored 32-byte value.
fn bytes32(value: &[u8], what: &str) -> Result<Bytes32, StoreError> {
    value
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} length")))
}

impl Store {
    /// At open: rebuilds the in-memory note tree from the stored leaves and checks it
    /// against the stored current root.
    pub(crate) fn init_notes(&self) -> Result<(), StoreError> {
        let tree = self.load_note_tree()?;
        let head = get_json::<RootRecord>(&self.notes, HEAD)?;
        let consistent = match head {
            Some(head) => fr_to_bytes(&tree.root()) == head.root && tree.len() == head.leaf_count,
            None => tree.is_empty(),
        };
        if !consistent {
            return Err(StoreError::Corrupt(
                "the stored reward notes do not give the stored note root".into(),
            ));
        }
        *lock_tree(&self.note_tree, || self.load_note_tree()) = tree;
        Ok(())
    }

    /// The note tree rebuilt from the stored leaves.
    pub(crate) fn load_note_tree(&self) -> Result<RegistryTree, StoreError> {
        let leaves = self
            .notes
            .scan_prefix([LEAF])
            .map(|item| Ok(fr_from_bytes(&bytes32(&item?.1, "note")?)?))
            .collect::<Result<Vec<Fr>, StoreError>>()?;
        Ok(RegistryTree::from_leaves(NOTE_TREE_DEPTH, &leaves)?)
    }

    /// Appends `commitments` to the note tree and runs `write` in the same transaction,
    /// given the append (for its audit entry) and the new leaf count; `write` must call
    /// [`record_notes`] with the audit entry's index. On error nothing is appended.
    pub(crate) fn with_notes_appended<R>(
        &self,
        commitments: &[Fr],
        write: impl Fn(&Tx<'_>, &NoteAppend, u64) -> TxResult<R>,
    ) -> Result<R, StoreError> {
        let stored: Vec<Bytes32> = commitments.iter().map(fr_to_bytes).collect();
        let (_, written) = self.change_tree(
            &self.note_tree,
            || self.load_note_tree(),
            |tree| Ok(tree.extend(commitments)?),
            |tx, range, root, leaf_count| {
                let append = NoteAppend {
                    first_index: range.start,
                    commitments: stored.clone(),
                    root,
                };
                write(tx, &append, leaf_count)
            },
        )?;
        Ok(written)
    }

    /// Spends two notes into two new ones, with a withdrawal, on a note-transfer proof
    /// the caller has verified against `order`'s public inputs (see the module
    /// documentation).
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownNoteRoot`]; [`StoreError::NoteSpent`] for a nullifier spent
    /// before (or named twice); [`StoreError::Registry`] for an output that is not a
    /// canonical non-zero field element or a full note tree; [`StoreError::Storage`]. On
    /// error nothing changes.
    pub fn transfer_notes(&self, order: &NoteTransferOrder) -> Result<NoteTransfer, StoreError> {
        if order.nullifiers[0] == order.nullifiers[1] {
            return Err(spent(&order.nullifiers[0]));
        }
        let outputs = order
            .outputs
            .iter()
            .map(fr_from_bytes)
            .collect::<Result<Vec<Fr>, _>>()?;
        let at = self.public_now();
        self.with_notes_appended(&outputs, |tx, append, leaf_count| {
            if tx
                .notes
                .get(prefixed_32(ROOT_INDEX, &order.note_root))?
                .is_none()
            {
                return abort(StoreError::UnknownNoteRoot);
            }
            for nullifier in &order.nullifiers {
                if tx.notes.get(prefixed_32(SPENT, nullifier))?.is_some() {
                    return abort(spent(nullifier));
                }
            }
            let ledger = if order.withdrawal == 0 {
                None
            } else {
                Some(post(
                    tx,
                    LedgerKind::Withdrawal,
                    Account::Notes,
                    Account::Key(order.recipient),
                    order.withdrawal,
                    None,
                    at,
                )?)
            };
            let entry = audit::append(
                tx,
                at,
                AuditEvent::NoteTransfer(Box::new(NoteTransferRecord {
                    note_root: order.note_root,
                    nullifiers: order.nullifiers.to_vec(),
                    withdrawal: order.withdrawal,
                    recipient: order.recipient,
                    appended: append.clone(),
                    public_inputs: order.public_inputs.clone(),
                    proof: order.proof.clone(),
                    ledger: ledger.clone(),
                })),
            )?;
            let mut spent_count = tx_get_u64(tx.notes, SPENT_COUNT)?;
            for nullifier in &order.nullifiers {
                tx.notes.insert(
                    &prefixed_32(SPENT, nullifier)[..],
                    &entry.index.to_be_bytes()[..],
                )?;
                tx.notes
                    .insert(&prefixed_u64(SPENT_ORDER, spent_count)[..], &nullifier[..])?;
                spent_count += 1;
            }
            tx_put_u64(tx.notes, SPENT_COUNT, spent_count)?;
            let root = record_notes(tx, append, leaf_count, entry.index, at)?;
            Ok(NoteTransfer {
                first_index: append.first_index,
                root,
                ledger: ledger.clone(),
                audit_index: entry.index,
            })
        })
    }

    /// The note tree's current root, `None` while it holds no note.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn note_root(&self) -> Result<Option<RootRecord>, StoreError> {
        get_json(&self.notes, HEAD)
    }

    /// The record of `root` if the note tree ever had it (a transfer may spend under it).
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn note_root_record(&self, root: &Bytes32) -> Result<Option<RootRecord>, StoreError> {
        let Some(seq) = self.notes.get(prefixed_32(ROOT_INDEX, root))? else {
            return Ok(None);
        };
        get_json(
            &self.notes,
            &prefixed_u64(ROOT_RECORD, crate::store::decode_u64(&seq)?),
        )
    }

    /// Up to `limit` note commitments from index `start` on: the pages wallets download
    /// to find their notes and rebuild their paths.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn note_leaves(&self, start: u64, limit: usize) -> Result<Vec<Bytes32>, StoreError> {
        self.notes
            .range(prefixed_u64(LEAF, start)..=prefixed_u64(LEAF, u64::MAX))
            .take(limit)
            .map(|item| bytes32(&item?.1, "note"))
            .collect()
    }

    /// Up to `limit` spent note nullifiers, in the order they were spent, from position
    /// `start` on: wallets download them all to learn which of their notes are spent
    /// without asking about any one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn spent_note_nullifiers(
        &self,
        start: u64,
        limit: usize,
    ) -> Result<Vec<Bytes32>, StoreError> {
        self.notes
            .range(prefixed_u64(SPENT_ORDER, start)..=prefixed_u64(SPENT_ORDER, u64::MAX))
            .take(limit)
            .map(|item| bytes32(&item?.1, "nullifier"))
            .collect()
    }

    /// How many note nullifiers are spent.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn spent_note_count(&self) -> Result<u64, StoreError> {
        get_u64(&self.notes, SPENT_COUNT)
    }

    /// Whether a note nullifier is spent.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`].
    pub fn is_note_spent(&self, nullifier: &Bytes32) -> Result<bool, StoreError> {
        Ok(self.notes.get(prefixed_32(SPENT, nullifier))?.is_some())
    }

    /// Every root record of the note tree, from sequence number `start` on, up to `limit`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn note_root_history(
        &self,
        start: u64,
        limit: usize,
    ) -> Result<Vec<RootRecord>, StoreError> {
        self.notes
            .range(prefixed_u64(ROOT_RECORD, start)..=prefixed_u64(ROOT_RECORD, u64::MAX))
            .take(limit)
            .map(|item| decode_json(&item?.1))
            .collect()
    }
}

/// The error of a nullifier already spent.
fn spent(nullifier: &Bytes32) -> StoreError {
    StoreError::NoteSpent {
        nullifier: hex::encode(nullifier)[..12].to_string(),
    }
}
