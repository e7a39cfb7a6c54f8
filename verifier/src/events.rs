//! What each audit log entry records, typed: [`AuditEvent`].
//!
//! The marketplace appends events and the sponsor's verifier matches on
//! them; neither side spells a kind or a payload field as a string. An
//! event's JSON form is `{"kind": "...", "payload": {...}}`; the kind and the
//! payload are what [`entry_hash`](crate::audit::entry_hash) hashes, so the
//! serialized form of every variant is pinned by `tests/vectors/audit_events.json`.

use serde::{Deserialize, Serialize};

use crate::audit::Bytes32;
use crate::records::{ApiKeyRole, LedgerEntry, Mechanism, ReleasedValues, Statistic, Study};
use crate::snarkjs::SnarkjsProof;

/// One state change of the marketplace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum AuditEvent {
    /// The operator created an API key on its holder's request
    /// ([`crate::records::api_key_message`]).
    ApiKeyCreated(ApiKeyCreation),
    /// The operator revoked an API key.
    ApiKeyRevoked(ApiKeyChange),
    /// The registry was created empty.
    RegistryCreated(RegistryCreated),
    /// An issuer appended leaves.
    RegistryAppend(RegistryAppend),
    /// An issuer revoked one of its leaves.
    RegistryRevoke(RegistryRevoke),
    /// A researcher posted a study.
    StudyCreated(StudyCreated),
    /// A researcher funded a study's escrow, on its signed order
    /// ([`crate::records::funding_message`]).
    EscrowFunded(SignedLedgerChange),
    /// A researcher closed a study (with the refund of its escrow, if any).
    StudyClosed(StudyClosed),
    /// An enrollment was accepted and its reward paid (boxed: the largest
    /// payload by far, with its proof).
    Enroll(Box<EnrollmentRecord>),
    /// The operator minted tokens.
    Mint(LedgerChange),
    /// A signed transfer between key accounts.
    Transfer(SignedLedgerChange),
    /// A differentially private release was charged and stored.
    DpRelease(DpReleaseRecord),
    /// The operator suspended an issuer: its leaves are revoked, its appends are
    /// refused and studies posted later do not accept it.
    IssuerSuspended(IssuerSuspension),
    /// Two reward notes were spent into two new ones, with a withdrawal of part of
    /// their value to a key (boxed, with its proof).
    NoteTransfer(Box<NoteTransferRecord>),
}

impl AuditEvent {
    /// The event's kind, as in JSON (`enroll`, `study_created`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::ApiKeyCreated(_) => "api_key_created",
            AuditEvent::ApiKeyRevoked(_) => "api_key_revoked",
            AuditEvent::RegistryCreated(_) => "registry_created",
            AuditEvent::RegistryAppend(_) => "registry_append",
            AuditEvent::RegistryRevoke(_) => "registry_revoke",
            AuditEvent::StudyCreated(_) => "study_created",
            AuditEvent::EscrowFunded(_) => "escrow_funded",
            AuditEvent::StudyClosed(_) => "study_closed",
            AuditEvent::Enroll(_) => "enroll",
            AuditEvent::Mint(_) => "mint",
            AuditEvent::Transfer(_) => "transfer",
            AuditEvent::DpRelease(_) => "dp_release",
            AuditEvent::IssuerSuspended(_) => "issuer_suspended",
            AuditEvent::NoteTransfer(_) => "note_transfer",
        }
    }

    /// The study whose bundle records this event: its creation, fundings,
    /// enrollments, releases and close.
    pub fn study(&self) -> Option<u64> {
        match self {
            AuditEvent::StudyCreated(created) => Some(created.study.id),
            AuditEvent::EscrowFunded(funded) => funded.ledger.study,
            AuditEvent::StudyClosed(closed) => Some(closed.study),
            AuditEvent::Enroll(enrollment) => Some(enrollment.study),
            AuditEvent::DpRelease(release) => Some(release.study),
            _ => None,
        }
    }

    /// The registry root this event made current, if it changed the registry.
    pub fn root_change(&self) -> Option<&RootChange> {
        match self {
            AuditEvent::RegistryCreated(created) => Some(&created.root),
            AuditEvent::RegistryAppend(append) => Some(&append.root),
            AuditEvent::RegistryRevoke(revoke) => Some(&revoke.root),
            AuditEvent::IssuerSuspended(suspension) => suspension.root.as_ref(),
            _ => None,
        }
    }

    /// The reward notes this event appended to the note tree, if any.
    pub fn note_append(&self) -> Option<&NoteAppend> {
        match self {
            AuditEvent::Enroll(enrollment) => Some(&enrollment.note),
            AuditEvent::NoteTransfer(transfer) => Some(&transfer.appended),
            _ => None,
        }
    }
}

/// An API key created on its account holder's signed request (never the key itself,
/// which the operator never sees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyCreation {
    /// The key's id (SHA-256 of the key).
    #[serde(with = "crate::hex_serde")]
    pub key_id: Bytes32,
    /// What the key may do.
    pub role: ApiKeyRole,
    /// The account it acts as.
    #[serde(with = "crate::hex_serde")]
    pub account: Bytes32,
    /// The account's signature over the request, its proof of possession.
    #[serde(with = "crate::hex_serde")]
    pub possession: [u8; 64],
}

/// An API key revoked (never the key itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyChange {
    /// The key's id (SHA-256 of the key).
    #[serde(with = "crate::hex_serde")]
    pub key_id: Bytes32,
    /// What the key may do.
    pub role: ApiKeyRole,
    /// The account it acts as.
    #[serde(with = "crate::hex_serde")]
    pub account: Bytes32,
}

/// An issuer the operator suspended: every leaf it appended is revoked in one new root,
/// so its records stop enrolling in every study once the root window has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerSuspension {
    /// The issuer's account.
    #[serde(with = "crate::hex_serde")]
    pub issuer: Bytes32,
    /// The indices of the leaves revoked, ascending.
    pub revoked: Vec<u64>,
    /// The root after the revocations; none when the issuer had no leaf left to revoke.
    pub root: Option<RootChange>,
}

/// The registry root a registry change made current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootChange {
    /// The new root, 32 big-endian bytes.
    #[serde(with = "crate::hex_serde")]
    pub root: Bytes32,
    /// Its sequence number.
    pub root_seq: u64,
    /// The number of leaves under it.
    pub leaf_count: u64,
}

/// One record an issuer appended: what it posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendedRecord {
    /// `Poseidon(identity_commitment, record_root)`, 32 big-endian bytes.
    #[serde(with = "crate::hex_serde")]
    pub commitment: Bytes32,
    /// The day the issuer issued the record.
    pub issued_at: zkcohort_cohort::Day,
}

/// The registry's creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryCreated {
    /// The tree's depth.
    pub depth: usize,
    /// The empty tree's root.
    #[serde(flatten)]
    pub root: RootChange,
}

/// Records appended by an issuer. Each leaf is
/// `Poseidon(commitment, issuer_id(issuer), issued_at)`
/// ([`zkcohort_circuits::record::registry_leaf`]): anyone can recompute the leaves from
/// this entry and see that each one carries the id of the issuer that appended it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAppend {
    /// The issuer's account.
    #[serde(with = "crate::hex_serde")]
    pub issuer: Bytes32,
    /// The index of the first leaf appended.
    pub first_index: u64,
    /// The records, in leaf order.
    pub records: Vec<AppendedRecord>,
    /// The root after the append.
    #[serde(flatten)]
    pub root: RootChange,
}

/// A leaf revoked by its issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRevoke {
    /// The issuer's account.
    #[serde(with = "crate::hex_serde")]
    pub issuer: Bytes32,
    /// The leaf's index.
    pub index: u64,
    /// The root after the revocation.
    #[serde(flatten)]
    pub root: RootChange,
}

/// A study posted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyCreated {
    /// The study as created.
    pub study: Study,
}

/// A change that is one ledger entry (a mint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerChange {
    /// The entry.
    pub ledger: LedgerEntry,
}

/// A study closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyClosed {
    /// The study's id.
    pub study: u64,
    /// Its enrollments at the close.
    pub enrolled: u64,
    /// The refund of the escrow's remainder, if there was one.
    pub refund: Option<LedgerEntry>,
}

/// An accepted enrollment: its proof, public inputs and payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentRecord {
    /// The study.
    pub study: u64,
    /// The nullifier, 32 big-endian bytes.
    #[serde(with = "crate::hex_serde")]
    pub nullifier: Bytes32,
    /// The registry root the proof is against.
    #[serde(with = "crate::hex_serde")]
    pub registry_root: Bytes32,
    /// The root's sequence number.
    pub root_seq: u64,
    /// The registry's current root when the enrollment was accepted: when it is
    /// later than `root_seq`, the proof's root had been replaced, and the bundle shows
    /// by root `root_seq + 1` that this was within the study's window.
    pub current_root_seq: u64,
    /// The public inputs as decimal strings, in circuit order.
    pub public_inputs: Vec<String>,
    /// The proof, re-serialized from its parsed points.
    pub proof: SnarkjsProof,
    /// The one-time receiver the proof's `signal_hash` binds, a field element (32
    /// big-endian bytes): the reward note is `note_commitment(reward, receiver)`.
    #[serde(with = "crate::hex_serde")]
    pub reward_receiver: Bytes32,
    /// The reward note appended to the note tree.
    pub note: NoteAppend,
    /// The reward's payout from the study's escrow into the note pool.
    pub ledger: LedgerEntry,
}

/// Reward notes appended to the note tree, and the root they made current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteAppend {
    /// The index of the first appended note.
    pub first_index: u64,
    /// The note commitments, in order, 32 big-endian bytes each.
    #[serde(with = "crate::hex_serde::vec32")]
    pub commitments: Vec<Bytes32>,
    /// The note tree's root after the append.
    #[serde(with = "crate::hex_serde")]
    pub root: Bytes32,
}

/// A note transfer: what its proof's public inputs say, and what it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteTransferRecord {
    /// The note-tree root the spent notes are under.
    #[serde(with = "crate::hex_serde")]
    pub note_root: Bytes32,
    /// The spent notes' nullifiers.
    #[serde(with = "crate::hex_serde::vec32")]
    pub nullifiers: Vec<Bytes32>,
    /// The amount withdrawn to `recipient` (0 for a merge).
    pub withdrawal: u64,
    /// The key the withdrawal is paid to, bound into the proof.
    #[serde(with = "crate::hex_serde")]
    pub recipient: Bytes32,
    /// The two output notes.
    pub appended: NoteAppend,
    /// The public inputs as decimal strings, in circuit order.
    pub public_inputs: Vec<String>,
    /// The proof, re-serialized from its parsed points.
    pub proof: SnarkjsProof,
    /// The withdrawal's ledger entry (notes → recipient), when it is not zero.
    pub ledger: Option<LedgerEntry>,
}

/// A ledger entry moved on the debited account's signature: a transfer between key
/// accounts, or a researcher funding its study's escrow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedLedgerChange {
    /// The ledger entry.
    pub ledger: LedgerEntry,
    /// The nonce of the debited account it used.
    pub nonce: u64,
    /// The debited account's ed25519 signature over the order (a transfer's or a
    /// funding's message).
    #[serde(with = "crate::hex_serde")]
    pub signature: [u8; 64],
}

/// A DP release, charged to its study's budget and its researcher's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpReleaseRecord {
    /// The study.
    pub study: u64,
    /// Its settled enrollments, the data the release was drawn from.
    pub enrollments: u64,
    /// The release's cache key.
    pub key: String,
    /// What was released.
    pub statistic: Statistic,
    /// The noise distribution.
    pub mechanism: Mechanism,
    /// The epsilon charged, in micro-epsilons (integers hash and read back exactly).
    pub epsilon_micros: u64,
    /// The delta charged, in nano-deltas (0 for discrete Laplace).
    pub delta_nanos: u64,
    /// The study's budget after the charge.
    pub study_budget: BudgetSpent,
    /// The researcher's budget in its rolling window after the charge.
    pub researcher_budget: BudgetSpent,
    /// The length of the researcher's window, in milliseconds: the budget counts at
    /// least every charge of the researcher's made less than this before this one
    /// (by the entries' `at_ms`).
    pub researcher_window_ms: u64,
    /// The released values.
    pub values: ReleasedValues,
}

/// A privacy budget after a charge: epsilon in micro-epsilons, delta in nano-deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSpent {
    /// The epsilon cap.
    pub epsilon_cap: u64,
    /// Epsilon spent.
    pub epsilon_spent: u64,
    /// The delta cap.
    pub delta_cap: u64,
    /// Delta spent.
    pub delta_spent: u64,
}
