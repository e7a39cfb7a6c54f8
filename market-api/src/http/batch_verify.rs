//! Enrollment proofs verified together: the [`ProofBatcher`] collects the proofs of
//! enroll requests that arrive together and checks them with one
//! [`verify_batch`](zkcohort_verifier::verify_batch) (a random linear combination: one
//! multi-Miller loop and one final exponentiation), then answers each request with its
//! own verdict.
//!
//! A single Groth16 check costs about five times what one more proof adds to a batch
//! (2.7 ms against 0.55 ms on one core of the shared 2-core machine `enroll_load` ran
//! on), so under concurrent enrollments the pairing stops being the bottleneck. Every proof
//! in a batch is for the one eligibility key; the statements differ.
//!
//! # When a batch goes
//!
//! A request announces itself as soon as its handler starts
//! ([`ProofBatcher::incoming`]) and hands its proof over once it has parsed it
//! ([`IncomingProof::verify`]). A dedicated thread takes the queued proofs and
//! verifies them as soon as either
//! - [`ProofBatching::max_proofs`] are queued, or
//! - no announced request is still on its way (a lone request never waits), or
//! - the oldest queued proof has waited [`ProofBatching::max_wait`].
//!
//! While a batch is being verified, the next one queues, so batches grow with the load
//! by themselves. One batch is verified at a time, on one core (a rayon pool of one
//! thread): spread over rayon's global pool, a batch's short parallel steps cost more
//! CPU than they save (`enroll_load` at concurrency 16 on 2 cores: about 3.2 ms of CPU
//! per enrollment, against 2.5 to 2.8 ms on one thread), and one core verifies about
//! 1,800 proofs a second in batches, more than the store takes (about 1 ms an
//! enrollment, serialized).
//!
//! # A bad proof
//!
//! When a batch's combined check fails, `verify_batch` checks each proof on its own
//! and names the bad ones: only their requests are refused, the others in the same
//! batch pass. A lone proof is checked on its own straight away (the prepared key's
//! `e(alpha, beta)` makes that cheaper than a batch of one). A batch with a bad proof
//! costs its combined check and then one check per proof, so a stream of bad proofs
//! brings verification back to one check per proof, on the one core.

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ark_bn254::Bn254;
use tokio::sync::oneshot;
use zkcohort_verifier::{PreparedVerifyingKey, Proof, Statement, VerifierError};

use super::ApiError;

/// How enrollment proofs are batched (`zkcohort serve --proof-batch-size
/// --proof-batch-wait-ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofBatching {
    /// The most proofs one batch verifies. 1 turns batching off: each proof is
    /// verified on its own on the blocking pool, as it arrives.
    pub max_proofs: NonZeroUsize,
    /// The longest the oldest proof of a batch waits for requests still on their way.
    pub max_wait: Duration,
}

impl ProofBatching {
    /// Each proof verified on its own (`max_proofs` = 1).
    pub const OFF: Self = Self {
        max_proofs: NonZeroUsize::MIN,
        max_wait: Duration::ZERO,
    };

    /// Whether proofs are batched at all.
    pub fn is_on(&self) -> bool {
        self.max_proofs.get() > 1
    }
}

impl Default for ProofBatching {
    /// Up to 64 proofs, waiting at most 2 ms.
    fn default() -> Self {
        Self {
            max_proofs: NonZeroUsize::new(64).expect("positive"),
            max_wait: Duration::from_millis(2),
        }
    }
}

/// What a [`ProofBatcher`] has verified so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Batches verified (a proof verified on its own counts as a batch of one).
    pub batches: u64,
    /// Proofs verified.
    pub proofs: u64,
    /// Final exponentiations computed: one per batch, plus one per proof of a batch
    /// whose combined check failed.
    pub final_exponentiations: u64,
}

/// Verifies eligibility proofs for one key, in batches of the requests that arrive
/// together: one batch check as soon as [`ProofBatching::max_proofs`] wait, no announced
/// request is still on its way, or the oldest has waited [`ProofBatching::max_wait`];
/// a failed batch falls back to checking each proof. Dropping it ends its thread once
/// the proofs queued are answered.
pub struct ProofBatcher {
    inner: Arc<Inner>,
}

struct Inner {
    key: PreparedVerifyingKey<Bn254>,
    policy: ProofBatching,
    queue: Mutex<Queue>,
    /// Signalled when a proof is queued, an announced request goes away, or the
    /// batcher closes.
    changed: Condvar,
    batches: AtomicU64,
    proofs: AtomicU64,
    final_exponentiations: AtomicU64,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<QueuedProof>,
    /// Requests announced and not yet queued: worth waiting for.
    on_the_way: usize,
    closed: bool,
}

struct QueuedProof {
    statement: Statement,
    proof: Proof<Bn254>,
    queued_at: Instant,
    verdict: oneshot::Sender<Result<bool, VerifierError>>,
}

impl ProofBatcher {
    /// A batcher verifying with `key` under `policy`; with batching on, it starts its
    /// threads (`proof-batcher` collects, `proof-verifier` verifies).
    ///
    /// # Panics
    ///
    /// When the operating system cannot start a thread.
    pub fn new(key: PreparedVerifyingKey<Bn254>, policy: ProofBatching) -> Self {
        let inner = Arc::new(Inner {
            key,
            policy,
            queue: Mutex::default(),
            changed: Condvar::new(),
            batches: AtomicU64::new(0),
            proofs: AtomicU64::new(0),
            final_exponentiations: AtomicU64::new(0),
        });
        if policy.is_on() {
            let worker = Arc::clone(&inner);
            let one_core = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .thread_name(|_| "proof-verifier".into())
                .build()
                .expect("starting the proof verifier's thread");
            std::thread::Builder::new()
                .name("proof-batcher".into())
                .spawn(move || {
                    while let Some(batch) = worker.next_batch() {
                        one_core.install(|| worker.verify(batch));
                    }
                })
                .expect("starting the proof batcher's thread");
        }
        Self { inner }
    }

    /// Announces a request that will hand over a proof soon: until it does (or is
    /// dropped), a batch waits for it, up to [`ProofBatching::max_wait`].
    pub fn incoming(&self) -> IncomingProof {
        if self.inner.policy.is_on() {
            self.inner.lock().on_the_way += 1;
        }
        IncomingProof {
            inner: Arc::clone(&self.inner),
            announced: self.inner.policy.is_on(),
        }
    }

    /// What has been verified so far.
    pub fn stats(&self) -> BatchStats {
        BatchStats {
            batches: self.inner.batches.load(Ordering::Relaxed),
            proofs: self.inner.proofs.load(Ordering::Relaxed),
            final_exponentiations: self.inner.final_exponentiations.load(Ordering::Relaxed),
        }
    }
}

impl Drop for ProofBatcher {
    fn drop(&mut self) {
        self.inner.lock().closed = true;
        self.inner.changed.notify_all();
    }
}

impl fmt::Debug for ProofBatcher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ProofBatcher")
            .field("policy", &self.inner.policy)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A request's place in the next batch ([`ProofBatcher::incoming`]).
pub struct IncomingProof {
    inner: Arc<Inner>,
    /// Counted in [`Queue::on_the_way`] and not yet queued.
    announced: bool,
}

impl IncomingProof {
    /// Whether `proof` verifies for `statement`: in the next batch, or on its own on the
    /// blocking pool with batching off.
    ///
    /// # Errors
    ///
    /// 500 (`internal`) when the key does not take the statement's public inputs, or
    /// the verification failed to run.
    pub async fn verify(
        mut self,
        statement: Statement,
        proof: Proof<Bn254>,
    ) -> Result<bool, ApiError> {
        let inner = Arc::clone(&self.inner);
        let verdict = if self.announced {
            let (verdict, answer) = oneshot::channel();
            {
                let mut queue = inner.lock();
                queue.on_the_way -= 1;
                self.announced = false;
                queue.waiting.push_back(QueuedProof {
                    statement,
                    proof,
                    queued_at: Instant::now(),
                    verdict,
                });
            }
            inner.changed.notify_one();
            // A closed channel: the batcher's thread panicked on this batch.
            answer.await.map_err(ApiError::internal)?
        } else {
            tokio::task::spawn_blocking(move || {
                let verdict = zkcohort_verifier::verify(&inner.key, &statement, &proof);
                inner.record(1, 1);
                verdict
            })
            .await
            .map_err(ApiError::internal)?
        };
        verdict.map_err(ApiError::internal)
    }
}

impl Drop for IncomingProof {
    fn drop(&mut self) {
        // Refused before its proof was checked (or cancelled): no batch waits for it.
        if self.announced {
            self.inner.lock().on_the_way -= 1;
            self.inner.changed.notify_one();
        }
    }
}

impl Inner {
    /// The queue, also after a panic elsewhere while it was held (every change to it is
    /// a single push, pop or count, so it is never left half-made).
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the next batch (see the module documentation); `None` once the batcher
    /// is closed and nothing is queued.
    fn next_batch(&self) -> Option<Vec<QueuedProof>> {
        let mut queue = self.lock();
        while queue.waiting.is_empty() {
            if queue.closed {
                return None;
            }
            queue = self
                .changed
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let max = self.policy.max_proofs.get();
        let deadline = queue.waiting[0].queued_at.checked_add(self.policy.max_wait);
        while queue.waiting.len() < max && queue.on_the_way > 0 && !queue.closed {
            queue = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.changed
                        .wait_timeout(queue, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                // A wait past what the clock can hold: wait for the requests themselves.
                None => self
                    .changed
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
        let take = queue.waiting.len().min(max);
        Some(queue.waiting.drain(..take).collect())
    }

    /// Verifies `batch` and answers each of its requests.
    fn verify(&self, batch: Vec<QueuedProof>) {
        // A request that has gone (timed out) costs no pairing.
        let (items, verdicts): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .filter(|queued| !queued.verdict.is_closed())
            .map(|queued| ((queued.statement, queued.proof), queued.verdict))
            .unzip();
        if items.is_empty() {
            return;
        }
        // A panic here would otherwise end the thread and leave every later enrollment
        // waiting; caught, it fails this batch's requests (their channels close) only.
        let checked = catch_unwind(AssertUnwindSafe(|| {
            if let [(statement, proof)] = items.as_slice() {
                zkcohort_verifier::verify(&self.key, statement, proof).map(|valid| {
                    self.record(1, 1);
                    vec![valid]
                })
            } else {
                zkcohort_verifier::verify_batch(&self.key, &items).map(|report| {
                    self.record(items.len(), report.final_exponentiations);
                    (0..items.len())
                        .map(|index| report.invalid.binary_search(&index).is_err())
                        .collect()
                })
            }
        }));
        let Ok(checked) = checked else {
            tracing::error!("verifying a batch of {} proofs panicked", items.len());
            return;
        };
        tracing::debug!("verified a batch of {} proofs", items.len());
        match checked {
            Ok(valid) => {
                for (verdict, valid) in verdicts.into_iter().zip(valid) {
                    // Its request may have gone meanwhile: nobody to tell.
                    let _ = verdict.send(Ok(valid));
                }
            }
            Err(error) => {
                for verdict in verdicts {
                    let _ = verdict.send(Err(error.clone()));
                }
            }
        }
    }

    /// Counts a verified batch of `proofs` that took `final_exponentiations`.
    fn record(&self, proofs: usize, final_exponentiations: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.proofs.fetch_add(proofs as u64, Ordering::Relaxed);
        self.final_exponentiations
            .fetch_add(final_exponentiations as u64, Ordering::Relaxed);
    }
}
