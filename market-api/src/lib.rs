//! zkcohort-market: the marketplace. Studies, the issuers' registry,
//! anonymous enrollment, the token ledger and the audit log, all kept in one
//! [`Store`] over an embedded sled database; the HTTP API ([`http`], axum)
//! on top adds authentication, proof verification and the JSON bodies of
//! [`api`]. The store's modules know nothing about HTTP.
//!
//! Every state change is one sled transaction that also appends an entry to
//! the hash-chained, Merkle-rooted audit log, so a change and its audit entry
//! are written together or not at all, also under concurrent submissions.
//! Nothing with a side effect runs inside a transaction closure (sled may run
//! it more than once): times are read, signatures checked and heads signed
//! outside. Changes are durable once [`Store::flush`] returns; the HTTP layer
//! calls it before acknowledging money, nullifier or budget changes.
//!
//! # Modules
//!
//! - [`api_keys`]: API keys the operator creates at run time, stored as
//!   their SHA-256.
//! - [`store`]: [`Store`], its configuration and the transaction plumbing;
//!   the type boundary a PostgreSQL backend would re-implement.
//! - [`ledger`]: the double-entry token ledger: accounts, minting, signed
//!   transfers, study escrow and the conservation check.
//! - [`study`]: study records: create, fund, list, close with refund.
//! - [`enroll`]: enrollments held pending, and settled in batches of at least the
//!   minimum cohort (nullifiers, reward notes, audit entries).
//! - [`notes`]: the reward-note tree, its roots, and note transfers (spend, withdraw).
//! - [`audit`]: the audit log: entry hashing, the incremental Merkle tree,
//!   signed heads, inclusion proofs and their native verification.
//! - [`registry`]: persistence of the issuers' registry tree: leaves, roots,
//!   the window in which a replaced root stays acceptable.
//! - [`dp`]: differentially private releases of enrollment counts (OpenDP)
//!   and their epsilon accounting.
//! - [`releases`]: persisted DP releases: cache, budget, one transaction each.
//! - [`idempotency`]: idempotency keys, so a retried mint, post or append applies once.
//! - [`api`]: the HTTP API's request and response bodies, shared by the
//!   server and the `zkcohort` client.
//! - [`http`]: the axum JSON API over the store ([`http::app`], [`http::serve`]).

pub mod api;
pub mod api_keys;
pub mod audit;
pub mod bundle;
pub mod dp;
pub mod enroll;
pub mod http;
pub mod idempotency;
pub mod ledger;
pub mod notes;
pub mod registry;
pub mod releases;
pub mod store;
pub mod study;

pub use audit::{AuditEntry, AuditHead, InclusionProof, SignedHead};
pub use enroll::{Enrollment, EnrollmentStatus, ProofRecord};
pub use ledger::{Account, ConservationReport, LedgerEntry, LedgerKind, SignedTransfer};
pub use notes::{NoteTransfer, NoteTransferOrder};
pub use registry::{RegistryAppend, RootRecord, RootStatus};
pub use releases::PrivacyCaps;
pub use store::{
    CohortPolicy, Store, StoreConfig, DAY_MS, DEFAULT_MIN_COHORT, DEFAULT_ROOT_WINDOW_MS,
};
pub use study::{NewStudy, Study, StudyStatus};

/// A 32-byte value: a public key, a hash, a field element in big-endian
/// bytes. Serialized as lowercase hex in JSON.
pub type Bytes32 = [u8; 32];

/// Errors of the marketplace store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The storage engine failed (I/O, a corrupt file, a lock held by another
    /// process).
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    /// An earlier write failed ([`Store::fault`]): the store changes nothing until it
    /// is opened again.
    #[error("the store failed to write ({0}) and accepts no change until it is reopened")]
    Faulted(String),
    /// Stored data could not be read back: the store is corrupt or was
    /// written by an incompatible version.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The store was opened with a configuration that contradicts what it
    /// holds (a different registry depth).
    #[error("configuration: {0}")]
    Config(String),
    /// No study has this id.
    #[error("unknown study {0}")]
    UnknownStudy(u64),
    /// The study is closed: no enrollment, no funding.
    #[error("study {0} is closed")]
    StudyClosed(u64),
    /// The caller is not the study's researcher.
    #[error("study {0} belongs to another researcher")]
    NotStudyOwner(u64),
    /// A study definition is invalid (empty title, zero reward, ...).
    #[error("invalid study: {0}")]
    InvalidStudy(String),
    /// The operator suspended this issuer.
    #[error("this issuer is suspended: the marketplace takes no more records from it")]
    IssuerSuspended,
    /// A record an issuer appends is refused (an issue day after today).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// This nullifier already enrolled in this study.
    #[error("this nullifier has already enrolled in study {study}")]
    DuplicateNullifier {
        /// The study.
        study: u64,
    },
    /// The study has reached its maximum number of enrollments.
    #[error("study {study} is full ({max} enrollments)")]
    StudyFull {
        /// The study.
        study: u64,
        /// Its maximum number of enrollments.
        max: u64,
    },
    /// The study's escrow cannot pay one more reward.
    #[error("the escrow of study {study} holds {escrow}, less than the reward {reward}")]
    EscrowExhausted {
        /// The study.
        study: u64,
        /// What the escrow holds.
        escrow: u64,
        /// The reward per enrollment.
        reward: u64,
    },
    /// Before its first batch, a study's escrow must cover a whole minimum cohort.
    #[error(
        "the escrow of study {study} holds {escrow}, less than the {needed} its minimum \
         cohort's rewards need"
    )]
    EscrowBelowCohort {
        /// The study.
        study: u64,
        /// What the escrow holds.
        escrow: u64,
        /// The rewards of a minimum cohort.
        needed: u64,
    },
    /// An account holds less than an operation moves out of it.
    #[error("account {account} holds {balance}, less than {amount}")]
    InsufficientBalance {
        /// The account, as text.
        account: String,
        /// Its balance.
        balance: u64,
        /// The amount asked for.
        amount: u64,
    },
    /// An amount of zero, or an operation that moves nothing.
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    /// An amount would overflow the token supply (`u64`).
    #[error("amount overflows the token supply")]
    Overflow,
    /// A transfer's signature does not verify under the sender's key (or the
    /// key is not a valid ed25519 point).
    #[error("bad signature")]
    BadSignature,
    /// An API key request names a key id already bound or revoked.
    #[error("this API key is already bound or was revoked: draw a new key")]
    ApiKeyExists,
    /// An idempotency key that is not one ([`idempotency::IdempotencyClaim::new`]).
    #[error("invalid idempotency key: {0}")]
    InvalidIdempotencyKey(String),
    /// An idempotency key already used for another request of the same operation.
    #[error(
        "this idempotency key was used for a different request: draw a new key for a new request"
    )]
    IdempotencyKeyReused,
    /// A transfer's nonce is not the sender's next nonce (a replay or a gap).
    #[error("bad nonce: expected {expected}, got {got}")]
    BadNonce {
        /// The sender's next nonce.
        expected: u64,
        /// The nonce in the transfer.
        got: u64,
    },
    /// The registry root was never current.
    #[error("unknown registry root")]
    UnknownRoot,
    /// A note transfer spends under a note-tree root this marketplace never had.
    #[error("unknown note root: the note tree never had this root")]
    UnknownNoteRoot,
    /// A note transfer spends a note already spent (or names one nullifier twice).
    #[error("note already spent (nullifier {nullifier}..)")]
    NoteSpent {
        /// The nullifier's first 12 hex digits.
        nullifier: String,
    },
    /// The registry root was replaced too long ago.
    #[error(
        "registry root {seq} expired: it was replaced more than {window_ms} ms ago (the current root is {current})"
    )]
    RootExpired {
        /// The root's sequence number.
        seq: u64,
        /// The current root's sequence number.
        current: u64,
        /// How long a replaced root stays acceptable, in milliseconds.
        window_ms: u64,
    },
    /// The registry root is older than the study: records revoked before the study
    /// was posted could still be under it.
    #[error("registry root {seq} is older than study {study}, which takes root {min} or later")]
    RootBeforeStudy {
        /// The study.
        study: u64,
        /// The root's sequence number.
        seq: u64,
        /// The root current when the study was posted.
        min: u64,
    },
    /// Only the issuer that appended a registry leaf may revoke it.
    #[error("registry leaf {index} was appended by another issuer")]
    NotLeafIssuer {
        /// The leaf's index.
        index: u64,
    },
    /// A registry operation failed (zero leaf, full tree, unknown or revoked
    /// index, non-canonical field element).
    #[error("registry: {0}")]
    Registry(#[from] zkcohort_circuits::CircuitError),
    /// No audit entry at this index (or a proof asked for a tree size larger
    /// than the log).
    #[error("audit log: no entry {index} (size {size})")]
    AuditIndex {
        /// The index asked for.
        index: u64,
        /// The log's size.
        size: u64,
    },
    /// The audit log, a head signature or an inclusion proof does not verify.
    #[error("audit verification failed: {0}")]
    AuditVerification(String),
    /// The conservation invariant (balances + escrows == minted) is broken.
    #[error("conservation violated: {0}")]
    Conservation(String),
}

/// Serde helpers for byte arrays as hex strings: the verifier's, so both
/// crates write keys, hashes and signatures the same way.
pub(crate) use zkcohort_verifier::hex_serde as hex_bytes;
