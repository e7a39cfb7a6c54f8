//! Persisted differentially private releases of a study's enrollment count,
//! and each study's epsilon accounting.
//!
//! [`Store::release`] answers a researcher's [`ReleaseRequest`] with a
//! [`StudyRelease`]: a DP [`Release`] drawn by [`crate::dp`], stored, charged
//! to the study's privacy budget and recorded in the audit log, in the order
//! [`crate::dp`] prescribes: the cache is looked up first (a cached release
//! costs nothing); the noise is drawn outside any sled transaction (a closure
//! sled may re-run must not draw twice); then ONE transaction re-checks the
//! cache (a concurrent identical request may have won: its release is
//! answered and ours, which nobody saw, is dropped), charges the budget,
//! stores the release and appends the `dp_release` audit entry. A request
//! past the budget is refused before any write, so nothing changes.
//!
//! # The budget
//!
//! A study's total is its `epsilon_budget`, rounded to the nearest
//! micro-epsilon ([`Epsilon`]); what it has spent is an exact count of
//! micro-epsilons, so no float drift lets a study overspend. Only the study's
//! budget is charged: researchers have no budget of their own yet.
//!
//! # Data versions: fresh answers after new enrollments
//!
//! A release is cached under its request AND the study's enrollment count at
//! release time (its data version). The same request at the same count gets
//! the stored answer back, free; once more patients have enrolled, the same
//! request is a new question about new data: it gets a fresh answer and costs
//! epsilon again. This is what a researcher expects while recruitment runs
//! (interim looks at the cohort without closing the study, which would stop
//! recruitment and refund the escrow), and it is sound: repeating a request
//! cannot average the noise away at a fixed data set, and every fresh answer
//! is paid for from the same bounded budget (sequential composition). The
//! enrollment count itself is public (every [`Study`] shows it),
//! so keying on it reveals nothing.
//!
//! A closed study still releases: analysis happens after recruitment ends,
//! and the budget, not the study's status, bounds what is learnt.
//!
//! # Breakdowns
//!
//! [`Measure::CountBy`] needs per-category counts the server has proof of;
//! enrollment proofs carry no category, so no study declares a breakdown yet
//! and such requests are refused with [`ReleaseError::UnsupportedBreakdown`].
//!
//! # Layout in the `releases` tree
//!
//! | key | value |
//! |---|---|
//! | `r` + study id (u64 BE) + data version (u64 BE) + [`ReleaseKey`](crate::dp::ReleaseKey) | [`StudyRelease`] JSON |
//! | `s` + study id (u64 BE) | micro-epsilons spent (u64 BE) |
//! | `m` + study id (u64 BE) + position (u64 BE) | a settled enrollment's measure values (JSON; [`Store::measure_values`]) |

use serde::{Deserialize, Serialize};
use zkcohort_verifier::events::{AuditEvent, BudgetMicros, DpReleaseRecord};

use crate::dp::{
    self, DpError, Epsilon, Measure, Mechanism, PostProcess, PrivacyBudget, Release, ReleaseRequest,
};
use crate::store::{decode_json, get_json, get_u64, prefixed_u64, tx_get_json, tx_get_u64};
use crate::store::{tx_put_u64, TxResult};
use crate::{audit, Bytes32, Store, StoreError, Study};

/// The key prefix of releases.
const RELEASE_PREFIX: u8 = b'r';
/// The key prefix of a study's spent epsilon.
const SPENT_PREFIX: u8 = b's';

/// What a researcher posts to ask for a release of a study (the study is in
/// the path): `{"measure": "count", "epsilon": 0.5, "mechanism":
/// "discrete_laplace", "post_process": "i2b2"}`; `mechanism` defaults to
/// `discrete_laplace`, `post_process` to `none`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRelease {
    /// What to release.
    pub measure: Measure,
    /// The epsilon to spend: above 0, at most [`dp::MAX_EPSILON`], rounded to
    /// the nearest micro-epsilon.
    pub epsilon: f64,
    /// The noise distribution.
    #[serde(default)]
    pub mechanism: Mechanism,
    /// How the release is shown.
    #[serde(default)]
    pub post_process: PostProcess,
}

impl NewRelease {
    /// The request for study `study`.
    ///
    /// # Errors
    ///
    /// [`DpError::InvalidEpsilon`] unless epsilon is a finite number above 0
    /// (after rounding) and at most [`dp::MAX_EPSILON`].
    pub fn into_request(self, study: u64) -> Result<ReleaseRequest, DpError> {
        Ok(ReleaseRequest {
            study,
            measure: self.measure,
            epsilon: Epsilon::new(self.epsilon)?,
            mechanism: self.mechanism,
            post_process: self.post_process,
        })
    }
}

/// A release as stored and answered: the DP [`Release`] and when, on which
/// data, it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRelease {
    /// The noisy values, the request they answer and their privacy parameters.
    pub release: Release,
    /// The study's enrollment count the release was drawn from: its data version.
    pub enrollments: u64,
    /// When it was released, in milliseconds since the Unix epoch.
    pub released_ms: u64,
    /// The `dp_release` audit entry that records it.
    pub audit_index: u64,
}

/// A study's privacy budget as a researcher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseBudget {
    /// The study's epsilon budget.
    pub total: Epsilon,
    /// The epsilon charged by its releases.
    pub spent: Epsilon,
    /// What is left to spend.
    pub remaining: Epsilon,
}

impl From<PrivacyBudget> for ReleaseBudget {
    fn from(budget: PrivacyBudget) -> Self {
        Self {
            total: budget.total(),
            spent: budget.spent(),
            remaining: budget.remaining(),
        }
    }
}

/// A study's releases and its budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyReleases {
    /// The study's privacy budget.
    pub budget: ReleaseBudget,
    /// Its releases, by data version, then by request.
    pub releases: Vec<StudyRelease>,
}

/// Errors of [`Store::release`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The store refused or failed ([`StoreError::UnknownStudy`],
    /// [`StoreError::NotStudyOwner`], storage).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request is not a valid DP release (its epsilon), or the budget is
    /// exhausted ([`DpError::BudgetExceeded`]).
    #[error(transparent)]
    Dp(#[from] DpError),
    /// The study declares no breakdown of this name.
    #[error("study {study} declares no breakdown {breakdown:?}: only its count can be released")]
    UnsupportedBreakdown {
        /// The study.
        study: u64,
        /// The breakdown asked for.
        breakdown: String,
    },
    /// The study has made no enrollment public: it has fewer than its minimum cohort,
    /// and nothing about so few people is released.
    #[error("study {study} has fewer than {min_cohort} enrollments (its minimum cohort): nothing about it is released")]
    BelowMinimumCohort {
        /// The study.
        study: u64,
        /// Its minimum cohort.
        min_cohort: u64,
    },
}

/// What the release transaction decided.
enum Committed {
    /// A concurrent identical request stored its release first.
    Cached(StudyRelease),
    /// Ours is charged and stored.
    Stored(StudyRelease),
    /// The budget cannot pay; nothing was written.
    Refused(DpError),
}

/// The key of a release: study, data version, request.
fn release_key(study: u64, enrollments: u64, request: &ReleaseRequest) -> Vec<u8> {
    let cache_key = request.cache_key();
    let mut key = Vec::with_capacity(17 + cache_key.as_bytes().len());
    key.push(RELEASE_PREFIX);
    key.extend_from_slice(&study.to_be_bytes());
    key.extend_from_slice(&enrollments.to_be_bytes());
    key.extend_from_slice(cache_key.as_bytes());
    key
}

/// The study's budget total: its `epsilon_budget` to the nearest
/// micro-epsilon, capped at [`dp::MAX_EPSILON`]. A budget that rounds to zero
/// allows nothing.
fn budget_total(study: &Study) -> Epsilon {
    Epsilon::new(study.epsilon_budget.min(dp::MAX_EPSILON as f64)).unwrap_or(Epsilon::ZERO)
}

/// The budget of a study with `total` that has spent `spent_micros`.
fn budget(total: Epsilon, spent_micros: u64) -> Result<PrivacyBudget, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("{spent_micros} micro-epsilon spent of {total}"));
    let mut budget = PrivacyBudget::new(total);
    let spent = Epsilon::from_micros(spent_micros).map_err(|_| corrupt())?;
    budget.charge(spent).map_err(|_| corrupt())?;
    Ok(budget)
}

impl Store {
    /// Answers a DP release of `request.study` for its researcher: the cached
    /// release for this request and enrollment count if there is one (free),
    /// otherwise a fresh one, charged to the study's budget, stored and
    /// audited in one transaction. Returns the release and whether it was
    /// cached. Closed studies release too.
    ///
    /// Flush ([`Store::flush`]) before showing the answer, cached or not: a
    /// cached answer may be a concurrent request's, not yet durable.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownStudy`], [`StoreError::NotStudyOwner`] (checked before the
    /// cache), [`ReleaseError::BelowMinimumCohort`], [`ReleaseError::UnsupportedBreakdown`],
    /// [`DpError::InvalidEpsilon`], [`DpError::BudgetExceeded`] (nothing
    /// changes), other [`DpError`]s if OpenDP fails, [`StoreError::Storage`].
    pub fn release(
        &self,
        researcher: Bytes32,
        request: &ReleaseRequest,
    ) -> Result<(StudyRelease, bool), ReleaseError> {
        let study_id = request.study;
        let study = self.study_of(study_id, &researcher)?;
        if study.enrolled < study.min_cohort {
            return Err(ReleaseError::BelowMinimumCohort {
                study: study_id,
                min_cohort: study.min_cohort,
            });
        }
        let key = release_key(study_id, study.enrolled, request);
        if let Some(cached) = get_json(&self.releases, &key)? {
            return Ok((cached, true));
        }
        if let Measure::CountBy { breakdown } = &request.measure {
            return Err(ReleaseError::UnsupportedBreakdown {
                study: study_id,
                breakdown: breakdown.clone(),
            });
        }
        let total = budget_total(&study);
        let spent_key = prefixed_u64(SPENT_PREFIX, study_id);
        // Refuse early, before OpenDP runs; the transaction checks again.
        budget(total, get_u64(&self.releases, &spent_key)?)?.check(request.epsilon)?;
        let drawn = dp::prepare(request)?.release_count(study.enrolled)?;
        let at = self.public_now();
        let committed = self.transact(|tx| -> TxResult<Committed> {
            if let Some(cached) = tx_get_json(tx.releases, &key)? {
                return Ok(Committed::Cached(cached));
            }
            let mut budget = match budget(total, tx_get_u64(tx.releases, &spent_key)?) {
                Ok(budget) => budget,
                Err(error) => return crate::store::abort(error),
            };
            if let Err(refusal) = budget.charge(drawn.epsilon) {
                return Ok(Committed::Refused(refusal));
            }
            tx_put_u64(tx.releases, &spent_key, budget.spent().micros())?;
            let entry = audit::append(
                tx,
                at,
                AuditEvent::DpRelease(DpReleaseRecord {
                    study: study_id,
                    enrollments: study.enrolled,
                    key: request.cache_key().as_str().to_owned(),
                    measure: request.measure.clone(),
                    mechanism: request.mechanism,
                    post_process: request.post_process,
                    epsilon_micros: drawn.epsilon.micros(),
                    budget_micros: BudgetMicros {
                        total: budget.total().micros(),
                        spent: budget.spent().micros(),
                        remaining: budget.remaining().micros(),
                    },
                    counts: drawn.counts.clone(),
                }),
            )?;
            let record = StudyRelease {
                release: drawn.clone(),
                enrollments: study.enrolled,
                released_ms: at,
                audit_index: entry.index,
            };
            let bytes = match serde_json::to_vec(&record) {
                Ok(bytes) => bytes,
                Err(error) => return crate::store::abort(StoreError::Corrupt(error.to_string())),
            };
            tx.releases.insert(key.as_slice(), bytes.as_slice())?;
            // Answer what a cache hit will read back, so the first answer and
            // every later one are identical to the last float bit.
            match decode_json(&bytes) {
                Ok(stored) => Ok(Committed::Stored(stored)),
                Err(error) => crate::store::abort(error),
            }
        })?;
        match committed {
            Committed::Cached(release) => Ok((release, true)),
            Committed::Stored(release) => Ok((release, false)),
            Committed::Refused(refusal) => Err(refusal.into()),
        }
    }

    /// A study's privacy budget and releases, by data version, then request.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownStudy`], [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn releases(&self, study_id: u64) -> Result<StudyReleases, StoreError> {
        let study = self.study(study_id)?;
        let spent = get_u64(&self.releases, &prefixed_u64(SPENT_PREFIX, study_id))?;
        let budget = budget(budget_total(&study), spent)?;
        let releases = self
            .releases
            .scan_prefix(prefixed_u64(RELEASE_PREFIX, study_id))
            .map(|item| decode_json(&item?.1))
            .collect::<Result<_, _>>()?;
        Ok(StudyReleases {
            budget: budget.into(),
            releases,
        })
    }
}
