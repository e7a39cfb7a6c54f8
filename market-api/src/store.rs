//! The [`Store`]: the marketplace's state in one sled database, and the
//! transaction plumbing every operation goes through.
//!
//! # The storage boundary
//!
//! `Store` is the storage interface: the HTTP layer calls its domain
//! operations ([`Store::enroll`], [`Store::transfer`],
//! [`Store::append_records`], ...) and reads, and never sees a sled type
//! (except inside [`StoreError::Storage`]). A PostgreSQL backend for stateless API
//! nodes would re-implement these methods with the same signatures and the
//! same one-transaction-per-operation rule, in a type with the same name
//! behind a feature, or behind a trait extracted from this `impl` when a
//! second backend actually exists.
//!
//! # Layout
//!
//! One sled `Db` per data folder, opened once per process (sled locks the
//! folder; share the `Store` through an `Arc`). Its trees:
//!
//! | tree | keys | values |
//! |---|---|---|
//! | `studies` | study id (u64 BE) | [`Study`](crate::Study) JSON |
//! | `accounts` | `k`+public key, `e`+study id: balance; `n`+public key: next nonce | u64 BE |
//! | `nullifiers` | study id (u64 BE) + nullifier (32 bytes) | [`Enrollment`](crate::Enrollment) JSON |
//! | `ledger` | entry sequence number (u64 BE) | [`LedgerEntry`](crate::LedgerEntry) JSON |
//! | `registry` | `l`+index: leaf; `o`+index: issuer; `r`+seq: root record; `R`+root: seq; `head` | bytes, JSON |
//! | `notes` | `l`+index: note commitment; `r`+seq: root record; `R`+root: seq; `x`+nullifier: spend; `s`+seq: spent nullifier; `head`; `count_spent` | bytes, JSON |
//! | `audit` | `e`+index: entry; `n`+level+index: Merkle node; `head`: frontier | JSON, 32 bytes |
//! | `meta` | counters: `study_seq`, `ledger_seq`, `total_minted` | u64 BE |
//! | `pending` | `e`+study id+nullifier: [`PendingEnrollment`](crate::enroll::PendingEnrollment); `s`+study id: the study's pending nullifiers; `v`+study id+nullifier: why it was voided | JSON |
//! | `releases` | `r`+study id+data version+[`ReleaseKey`](crate::dp::ReleaseKey): release; `s`+study id: epsilon spent; `m`+study id+position: a settled enrollment's measure values (never public) | [`StudyRelease`](crate::releases::StudyRelease) JSON, micro-epsilons u64 BE |
//! | `idempotency` | SHA-256 of (principal, operation, client key) | the request's fingerprint and its outcome ([`idempotency`](crate::idempotency)) |
//!
//! Every operation is one transaction over all eleven trees (sled
//! transactions are serializable); its closure only reads and writes them.
//!
//! # Durability
//!
//! A committed transaction is in sled's page cache; [`Store::flush`] makes it
//! durable. Call it before acknowledging a change to money, nullifiers or
//! privacy budget.

use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use zkcohort_circuits::note::NOTE_TREE_DEPTH;
use zkcohort_circuits::registry::{RegistryTree, DEFAULT_REGISTRY_DEPTH};
use zkcohort_circuits::statement::fr_to_bytes;

use crate::releases::PrivacyCaps;
use crate::{Bytes32, StoreError};

/// How a [`Store`] is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// The registry tree depth (the circuit shape's registry depth). Fixed
    /// when the store is created; opening it with another depth fails.
    pub registry_depth: usize,
    /// How long a replaced registry root stays acceptable, in milliseconds
    /// from the moment the next root replaced it. `0` accepts only the current
    /// root.
    pub root_window_ms: u64,
    /// When enrollments become public: the minimum cohort and the batches.
    pub cohort: CohortPolicy,
    /// The operator's privacy caps on studies and researchers.
    pub privacy: PrivacyCaps,
}

/// When enrollments become public. A study's enrollments are held pending (proof
/// verified, nullifier reserved, nothing public) until `min_cohort` are pending; they
/// then settle together, and later ones settle in batches of `batch_size`, or of
/// whatever is pending once the oldest has waited `batch_age_ms`. Every time the store
/// makes public (audit entries, ledger entries, root records, studies) is rounded down
/// to a multiple of `time_unit_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CohortPolicy {
    /// The minimum cohort k: no public record reveals that a study has fewer than this
    /// many (and more than zero) enrollments.
    pub min_cohort: u64,
    /// A later batch settles once this many enrollments are pending.
    pub batch_size: u64,
    /// A later batch settles once its oldest enrollment has waited this long.
    pub batch_age_ms: u64,
    /// The resolution of public times, in milliseconds.
    pub time_unit_ms: u64,
}

/// The default minimum cohort.
pub const DEFAULT_MIN_COHORT: u64 = 10;

/// One day in milliseconds: the default resolution of public times and batch age.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

impl Default for CohortPolicy {
    /// k = 10, batches of 10 or a day old, public times to the day.
    fn default() -> Self {
        Self {
            min_cohort: DEFAULT_MIN_COHORT,
            batch_size: DEFAULT_MIN_COHORT,
            batch_age_ms: DAY_MS,
            time_unit_ms: DAY_MS,
        }
    }
}

impl CohortPolicy {
    /// Every enrollment public at once, times to the millisecond: no cohort protection,
    /// for tests of everything else.
    pub fn immediate() -> Self {
        Self {
            min_cohort: 1,
            batch_size: 1,
            batch_age_ms: 0,
            time_unit_ms: 1,
        }
    }

    /// Checks the policy is usable.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for a zero minimum cohort, batch size or time unit.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.min_cohort == 0 || self.batch_size == 0 || self.time_unit_ms == 0 {
            return Err(StoreError::Config(
                "the minimum cohort, the batch size and the time unit must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// The default root window: 24 hours.
pub const DEFAULT_ROOT_WINDOW_MS: u64 = DAY_MS;

impl Default for StoreConfig {
    /// The reference registry depth (20), a window of 24 hours and the default
    /// [`CohortPolicy`].
    fn default() -> Self {
        Self {
            registry_depth: DEFAULT_REGISTRY_DEPTH,
            root_window_ms: DEFAULT_ROOT_WINDOW_MS,
            cohort: CohortPolicy::default(),
            privacy: PrivacyCaps::default(),
        }
    }
}

/// The marketplace's state: studies, accounts and ledger, nullifiers, the
/// registry and the audit log, over one sled database. `Send + Sync`: share
/// it between threads with an `Arc`.
#[derive(Debug)]
pub struct Store {
    pub(crate) db: sled::Db,
    pub(crate) studies: sled::Tree,
    pub(crate) accounts: sled::Tree,
    pub(crate) nullifiers: sled::Tree,
    pub(crate) ledger: sled::Tree,
    pub(crate) registry: sled::Tree,
    pub(crate) audit: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) releases: sled::Tree,
    pub(crate) notes: sled::Tree,
    pub(crate) pending: sled::Tree,
    pub(crate) idempotency: sled::Tree,
    pub(crate) config: StoreConfig,
    /// The registry tree, in sync with the `registry` tree's leaves; locked
    /// for the whole of a registry change so roots are computed in order.
    pub(crate) registry_tree: Mutex<RegistryTree>,
    /// The reward-note tree, in sync with the `notes` tree's leaves; locked for the
    /// whole of an enrollment or a note transfer.
    pub(crate) note_tree: Mutex<RegistryTree>,
    /// Why a write failed, once one has: from then on the store changes nothing (see
    /// [`Store::fault`]).
    fault: Mutex<Option<String>>,
}

impl Store {
    /// Opens (or creates) the store in the folder `path`.
    ///
    /// A new store gets the empty registry root as root 0 and the audit
    /// entry that records it. An existing one has its registry tree rebuilt
    /// from the stored leaves and checked against the stored root.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`] if sled cannot open the folder (for instance when
    /// another process holds it); [`StoreError::Config`] if the registry depth
    /// differs from the stored one; [`StoreError::Corrupt`] if stored data does
    /// not read back or the rebuilt root differs; [`StoreError::Registry`] for an
    /// invalid depth.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Self, StoreError> {
        config.cohort.check()?;
        config.privacy.check()?;
        let db = open_db(path.as_ref())?;
        let open_tree = |name: &str| db.open_tree(name);
        let store = Self {
            studies: open_tree("studies")?,
            accounts: open_tree("accounts")?,
            nullifiers: open_tree("nullifiers")?,
            ledger: open_tree("ledger")?,
            registry: open_tree("registry")?,
            audit: open_tree("audit")?,
            meta: open_tree("meta")?,
            releases: open_tree("releases")?,
            notes: open_tree("notes")?,
            pending: open_tree("pending")?,
            idempotency: open_tree("idempotency")?,
            registry_tree: Mutex::new(RegistryTree::new(config.registry_depth)?),
            note_tree: Mutex::new(RegistryTree::new(NOTE_TREE_DEPTH)?),
            fault: Mutex::new(None),
            config,
            db,
        };
        store.init_registry()?;
        store.init_notes()?;
        Ok(store)
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> StoreConfig {
        self.config
    }

    /// The time to record publicly: now, rounded down to the policy's time unit. Read
    /// before a transaction starts (the closure may re-run; it reuses this value).
    pub(crate) fn public_now(&self) -> u64 {
        let unit = self.config.cohort.time_unit_ms;
        now_ms() / unit * unit
    }

    /// Writes every committed change to disk and returns the number of bytes
    /// flushed. Call before acknowledging money, nullifier or budget changes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`] on an I/O error.
    pub fn flush(&self) -> Result<usize, StoreError> {
        self.refuse_if_faulted()?;
        self.db.flush().map_err(|error| self.faulted(error))
    }

    /// Why the store failed to write, once it has (a full disk, an I/O error). A
    /// transaction committed before the failure may be in memory without being on disk,
    /// and sled refuses further writes, so from then on the store changes nothing and
    /// flushes nothing: whoever serves it stops answering from it and opens the folder
    /// again, which reads back exactly what was durable.
    pub fn fault(&self) -> Option<String> {
        self.fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records a storage failure (the first one is kept) and returns it as the error.
    fn faulted(&self, error: sled::Error) -> StoreError {
        let mut fault = self
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if fault.is_none() {
            tracing::error!(
                "the store failed to write: {error}; it accepts no change until it is opened again"
            );
            *fault = Some(error.to_string());
        }
        StoreError::Storage(error)
    }

    fn refuse_if_faulted(&self) -> Result<(), StoreError> {
        match self.fault() {
            Some(reason) => Err(StoreError::Faulted(reason)),
            None => Ok(()),
        }
    }

    /// Runs `operation` in one serializable transaction over all trees.
    /// `operation` may run several times: it must not have side effects
    /// beyond the transaction's reads and writes.
    pub(crate) fn transact<T>(
        &self,
        operation: impl Fn(&Tx<'_>) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        self.refuse_if_faulted()?;
        (
            &self.studies,
            &self.accounts,
            &self.nullifiers,
            &self.ledger,
            &self.registry,
            &self.audit,
            &self.meta,
            &self.releases,
            &self.notes,
            &self.pending,
            &self.idempotency,
        )
            .transaction(
                |(
                    studies,
                    accounts,
                    nullifiers,
                    ledger,
                    registry,
                    audit,
                    meta,
                    releases,
                    notes,
                    pending,
                    idempotency,
                )| {
                    operation(&Tx {
                        studies,
                        accounts,
                        nullifiers,
                        ledger,
                        registry,
                        audit,
                        meta,
                        releases,
                        notes,
                        pending,
                        idempotency,
                    })
                },
            )
            .map_err(|error| match error {
                TransactionError::Abort(error) => error,
                TransactionError::Storage(error) => self.faulted(error),
            })
    }

    /// Runs a change of an in-memory Merkle tree kept in sync with stored leaves:
    /// `change` updates the tree (and validates), then `write` persists it in one
    /// transaction, given the new root and leaf count; if either fails the tree is
    /// rebuilt from disk with `reload` (a change may have failed half-way). The tree stays locked throughout, so roots are
    /// computed and written in order.
    pub(crate) fn change_tree<T, R>(
        &self,
        tree: &Mutex<RegistryTree>,
        reload: impl Fn() -> Result<RegistryTree, StoreError>,
        change: impl FnOnce(&mut RegistryTree) -> Result<T, StoreError>,
        write: impl Fn(&Tx<'_>, &T, Bytes32, u64) -> TxResult<R>,
    ) -> Result<(T, R), StoreError> {
        let mut tree = lock_tree(tree, &reload);
        let changed = match change(&mut tree) {
            Ok(changed) => changed,
            Err(error) => {
                if let Ok(reloaded) = reload() {
                    *tree = reloaded;
                }
                return Err(error);
            }
        };
        let root = fr_to_bytes(&tree.root());
        let leaf_count = tree.len();
        match self.transact(|tx| write(tx, &changed, root, leaf_count)) {
            Ok(written) => Ok((changed, written)),
            Err(error) => {
                if let Ok(reloaded) = reload() {
                    *tree = reloaded;
                }
                Err(error)
            }
        }
    }
}

/// Locks an in-memory tree. A poisoned lock (a panic during a change) is recovered by
/// rebuilding the tree from disk.
pub(crate) fn lock_tree<'a>(
    tree: &'a Mutex<RegistryTree>,
    reload: impl Fn() -> Result<RegistryTree, StoreError>,
) -> std::sync::MutexGuard<'a, RegistryTree> {
    match tree.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            if let Ok(reloaded) = reload() {
                *guard = reloaded;
            }
            tree.clear_poison();
            guard
        }
    }
}

/// How long [`open_db`] waits for a previous handle's lock to go.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Opens the sled database, waiting a little while its folder lock is held:
/// sled 0.34 releases the lock from a background thread after the last
/// handle drops, so an immediate reopen in the same process (a restart)
/// can find it still taken.
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut pause = Duration::from_millis(5);
    loop {
        match sled::open(path) {
            Err(sled::Error::Io(error)) if is_lock_error(&error) && Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            result => return Ok(result?),
        }
    }
}

/// Whether sled failed to take the folder lock (sled 0.34 reports it as an
/// `Other` I/O error with this message).
fn is_lock_error(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::WouldBlock
        || (error.kind() == io::ErrorKind::Other
            && error.to_string().starts_with("could not acquire lock"))
}

/// The trees as seen inside one transaction.
pub(crate) struct Tx<'a> {
    pub(crate) studies: &'a TransactionalTree,
    pub(crate) accounts: &'a TransactionalTree,
    pub(crate) nullifiers: &'a TransactionalTree,
    pub(crate) ledger: &'a TransactionalTree,
    pub(crate) registry: &'a TransactionalTree,
    pub(crate) audit: &'a TransactionalTree,
    pub(crate) meta: &'a TransactionalTree,
    pub(crate) releases: &'a TransactionalTree,
    pub(crate) notes: &'a TransactionalTree,
    pub(crate) pending: &'a TransactionalTree,
    pub(crate) idempotency: &'a TransactionalTree,
}

/// What a transaction closure returns.
pub(crate) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Aborts the transaction with `error` (nothing it wrote is kept).
pub(crate) fn abort<T>(error: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(error))
}

/// Reads a JSON value inside a transaction.
pub(crate) fn tx_get_json<T: DeserializeOwned>(
    tree: &TransactionalTree,
    key: &[u8],
) -> TxResult<Option<T>> {
    match tree.get(key)? {
        None => Ok(None),
        Some(bytes) => match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Some(value)),
            Err(error) => abort(StoreError::Corrupt(format!("{error}"))),
        },
    }
}

/// Writes a JSON value inside a transaction.
pub(crate) fn tx_put_json<T: Serialize>(
    tree: &TransactionalTree,
    key: &[u8],
    value: &T,
) -> TxResult<()> {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            tree.insert(key, bytes)?;
            Ok(())
        }
        Err(error) => abort(StoreError::Corrupt(format!("{error}"))),
    }
}

/// Reads a `u64` (big-endian, absent = 0) inside a transaction.
pub(crate) fn tx_get_u64(tree: &TransactionalTree, key: &[u8]) -> TxResult<u64> {
    match tree.get(key)? {
        None => Ok(0),
        Some(bytes) => match decode_u64(&bytes) {
            Ok(value) => Ok(value),
            Err(error) => abort(error),
        },
    }
}

/// Writes a `u64` (big-endian) inside a transaction.
pub(crate) fn tx_put_u64(tree: &TransactionalTree, key: &[u8], value: u64) -> TxResult<()> {
    tree.insert(key, &value.to_be_bytes()[..])?;
    Ok(())
}

/// Reads a JSON value outside a transaction.
pub(crate) fn get_json<T: DeserializeOwned>(
    tree: &sled::Tree,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    tree.get(key)?.map(|bytes| decode_json(&bytes)).transpose()
}

/// Decodes stored JSON.
pub(crate) fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Corrupt(format!("{error}")))
}

/// Decodes a stored big-endian `u64`.
pub(crate) fn decode_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("expected 8 bytes, got {}", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

/// Reads a `u64` (absent = 0) outside a transaction.
pub(crate) fn get_u64(tree: &sled::Tree, key: &[u8]) -> Result<u64, StoreError> {
    tree.get(key)?.map_or(Ok(0), |bytes| decode_u64(&bytes))
}

/// A key of a one-byte prefix and a big-endian `u64`.
pub(crate) fn prefixed_u64(prefix: u8, value: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = prefix;
    key[1..].copy_from_slice(&value.to_be_bytes());
    key
}

/// A key of a one-byte prefix and 32 bytes.
pub(crate) fn prefixed_32(prefix: u8, value: &[u8; 32]) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[0] = prefix;
    key[1..].copy_from_slice(value);
    key
}

/// Milliseconds since the Unix epoch, read before a transaction starts (the
/// closure may re-run; it reuses this value).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
