//! Persisted differentially private releases of what a study's settled
//! enrollments proved, and the privacy accounting of studies and researchers.
//!
//! [`Store::release`] answers a researcher's [`ReleaseRequest`] with a
//! [`ReleaseAnswer`]: a DP [`Release`] drawn by [`crate::dp`] from the measure
//! values of the study's settled enrollments, stored, charged to the study's
//! budget and to the researcher's, and recorded in the audit log. The cache is
//! looked up first (a cached release costs nothing); the noise is drawn outside
//! any sled transaction (a closure sled may re-run must not draw twice); then ONE
//! transaction re-checks the cache (a concurrent identical request may have won:
//! its release is answered and ours, which nobody saw, is dropped), charges both
//! budgets, stores the release and appends the `dp_release` audit entry. A
//! request past either budget is refused before any write, so nothing changes.
//!
//! # Budgets the researcher cannot raise
//!
//! The operator sets [`PrivacyCaps`]: the most a study may spend (epsilon 2 and
//! delta 10^-7 by default) and the most one researcher may spend across all
//! their studies in a rolling window (epsilon 5 and delta 5 x 10^-7 per 30 days).
//! A researcher chooses a study's budget at or below the study cap when posting
//! it; every release is charged to the study and to the researcher's window, so
//! re-posting a query as a new study, or posting overlapping ones, draws on the
//! same researcher budget. Charges leave the window 30 days after the bucket of
//! time they fell in ends (buckets of 1/720 of the window: an hour), never
//! earlier. Spent amounts are exact integers ([`Spend`]).
//!
//! # Data versions: fresh answers after new enrollments
//!
//! A release is cached under its request AND the study's settled enrollment count
//! at release time (its data version). The same request at the same count gets
//! the stored answer back, free; once more enrollments have settled, the same
//! request is a question about new data: it gets a fresh answer and is charged
//! again (sequential composition). The settled count is public (every [`Study`]
//! shows it), so whether an answer is fresh depends on nothing the researcher
//! does not already know, and the answer looks the same either way (status 200,
//! same shape). Post-processing ([`PostProcess`]) is not part of the key: the
//! i2b2 display of a release is the cached release, shown differently, free.
//!
//! Releases read settled enrollments only, and none is made before the study
//! has settled its minimum cohort. A closed study still releases: analysis
//! happens after recruitment ends, and the budgets, not the status, bound what
//! is learnt.
//!
//! # Layout in the `releases` tree
//!
//! | key | value |
//! |---|---|
//! | `r` + study id (u64 BE) + data version (u64 BE) + [`ReleaseKey`](crate::dp::ReleaseKey) | [`StudyRelease`] JSON |
//! | `b` + study id (u64 BE) | the study's [`Spend`] (JSON) |
//! | `w` + researcher account (32 bytes) | the researcher's charges in the window (JSON) |
//! | `m` + study id (u64 BE) + position (u64 BE) | a settled enrollment's measure values (JSON; [`Store::measure_values`]) |

use serde::{Deserialize, Serialize};
use zkcohort_cohort::query::{CompiledMeasure, MeasureKind};
use zkcohort_cohort::Catalog;
use zkcohort_verifier::events::{AuditEvent, BudgetSpent, DpReleaseRecord};

use crate::dp::{
    self, BudgetOwner, DpError, Epsilon, Mechanism, PostProcess, PrivacyBudget, Release,
    ReleaseData, ReleaseRequest, ReleasedSum, ReleasedValues, Spend, Statistic,
};
use crate::store::{decode_json, get_json, prefixed_u64, tx_get_json, tx_put_json, TxResult};
use crate::{audit, Bytes32, Store, StoreError, Study};

/// The key prefix of releases.
const RELEASE_PREFIX: u8 = b'r';
/// The key prefix of a study's spent budget.
const STUDY_SPENT_PREFIX: u8 = b'b';
/// The key prefix of a researcher's charges in the window.
const RESEARCHER_SPENT_PREFIX: u8 = b'w';
/// Buckets per window in a researcher's ledger.
const WINDOW_BUCKETS: u64 = 720;
/// The most cells a table may have.
pub const MAX_TABLE_CELLS: usize = 256;

/// The privacy caps the operator sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivacyCaps {
    /// The most one study may spend; a study's own budget is at most this.
    pub study: Spend,
    /// The most one researcher may spend across their studies in any window.
    pub researcher: Spend,
    /// The researcher window, in milliseconds.
    pub researcher_window_ms: u64,
}

/// Thirty days in milliseconds: the default researcher window.
pub const THIRTY_DAYS_MS: u64 = 30 * crate::DAY_MS;

impl Default for PrivacyCaps {
    /// Epsilon 2 and delta 10^-7 per study; epsilon 5 and delta 5 x 10^-7 per
    /// researcher in 30 days.
    fn default() -> Self {
        let epsilon = |whole: u64| {
            Epsilon::from_micros(whole * dp::MICROS_PER_EPSILON)
                .unwrap_or_else(|_| unreachable!("{whole} is below the largest epsilon"))
        };
        Self {
            study: Spend {
                epsilon: epsilon(2),
                delta_nanos: 100,
            },
            researcher: Spend {
                epsilon: epsilon(5),
                delta_nanos: 500,
            },
            researcher_window_ms: THIRTY_DAYS_MS,
        }
    }
}

impl PrivacyCaps {
    /// Checks the caps are usable.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for a zero window or a study cap above the
    /// researcher cap (a study could never spend it).
    pub fn check(&self) -> Result<(), StoreError> {
        if self.researcher_window_ms == 0 {
            return Err(StoreError::Config(
                "the researcher privacy window must be positive".into(),
            ));
        }
        if self.study.epsilon > self.researcher.epsilon
            || self.study.delta_nanos > self.researcher.delta_nanos
        {
            return Err(StoreError::Config(format!(
                "the study privacy cap ({}) must not exceed the researcher cap ({})",
                self.study, self.researcher
            )));
        }
        Ok(())
    }
}

/// What a researcher posts to ask for a release of a study (the study is in
/// the path): `{"statistic": {"histogram": "age"}, "epsilon": 0.5,
/// "mechanism": "discrete_laplace", "post_process": "i2b2"}`; `mechanism`
/// defaults to `discrete_laplace`, `post_process` to `none`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRelease {
    /// What to release.
    pub statistic: Statistic,
    /// The epsilon to spend: at least [`dp::MIN_RELEASE_EPSILON`], rounded to the
    /// nearest micro-epsilon.
    pub epsilon: f64,
    /// The noise distribution.
    #[serde(default)]
    pub mechanism: Mechanism,
    /// How the release is shown (post-processing, free).
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
            statistic: self.statistic,
            epsilon: Epsilon::new(self.epsilon)?,
            mechanism: self.mechanism,
        })
    }
}

/// A release as stored: the DP [`Release`] and when, on which data, it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRelease {
    /// The noisy values, the request they answer and their privacy parameters.
    pub release: Release,
    /// The study's settled enrollments the release was drawn from: its data version.
    pub enrollments: u64,
    /// When it was released, in milliseconds since the Unix epoch (public time).
    pub released_ms: u64,
    /// The `dp_release` audit entry that records it.
    pub audit_index: u64,
}

/// A budget as a researcher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseBudget {
    /// What it allows.
    pub cap: Spend,
    /// What releases charged.
    pub spent: Spend,
    /// What is left to spend.
    pub remaining: Spend,
}

impl From<PrivacyBudget> for ReleaseBudget {
    fn from(budget: PrivacyBudget) -> Self {
        Self {
            cap: budget.cap(),
            spent: budget.spent(),
            remaining: budget.remaining(),
        }
    }
}

/// The answer to a release request: the release (fresh or cached: nothing here
/// tells which), its values as post-processed for display, and both budgets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseAnswer {
    /// The release.
    pub release: StudyRelease,
    /// The post-processing of `shown`.
    pub post_process: PostProcess,
    /// Each count of the release as post-processed.
    pub shown: Vec<String>,
    /// A sum's mean in its unit, as post-processed (`None` when there is no sum or no
    /// count).
    pub mean: Option<String>,
    /// The study's budget now.
    pub study_budget: ReleaseBudget,
    /// The researcher's budget in the window now.
    pub researcher_budget: ReleaseBudget,
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
    /// The request is not a valid DP release (its epsilon), or a budget cannot
    /// pay ([`DpError::BudgetExceeded`]).
    #[error(transparent)]
    Dp(#[from] DpError),
    /// The study declares no such measure.
    #[error("study {study} has no measure {measure:?}; its measures: {known}")]
    UnknownMeasure {
        /// The study.
        study: u64,
        /// The name asked for.
        measure: String,
        /// The study's measures, numbered.
        known: String,
    },
    /// The measure cannot make this statistic (a histogram of a sum measure, a sum
    /// of a binned one, a table of one measure by itself or too many cells).
    #[error("{0}")]
    UnsuitableMeasure(String),
    /// The study has settled fewer than its minimum cohort: nothing about so few
    /// people is released.
    #[error("study {study} has fewer than {min_cohort} settled enrollments (its minimum cohort): nothing about it is released")]
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
    /// A budget cannot pay; nothing was written.
    Refused(DpError),
}

/// One bucket of a researcher's charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct WindowCharge {
    /// The bucket's start, in milliseconds since the Unix epoch.
    bucket_ms: u64,
    /// What was charged in it.
    spent: Spend,
}

/// A researcher's charges that are still in the window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ResearcherLedger {
    charges: Vec<WindowCharge>,
}

impl ResearcherLedger {
    /// Drops the charges whose bucket ended a whole window before `now`.
    fn expire(&mut self, caps: &PrivacyCaps, now: u64) {
        let bucket = bucket_ms(caps);
        self.charges.retain(|charge| {
            charge
                .bucket_ms
                .saturating_add(bucket)
                .saturating_add(caps.researcher_window_ms)
                > now
        });
    }

    /// The total still in the window.
    fn spent(&self) -> Result<Spend, StoreError> {
        self.charges
            .iter()
            .try_fold(Spend::ZERO, |total, charge| total.checked_add(charge.spent))
            .ok_or_else(|| StoreError::Corrupt("a researcher's charges overflow".into()))
    }

    /// Adds a charge made at `now`.
    fn add(&mut self, caps: &PrivacyCaps, now: u64, spend: Spend) -> Result<(), StoreError> {
        let bucket = bucket_ms(caps);
        let start = now / bucket * bucket;
        match self.charges.last_mut() {
            Some(last) if last.bucket_ms == start => {
                last.spent = last
                    .spent
                    .checked_add(spend)
                    .ok_or_else(|| StoreError::Corrupt("a researcher's charges overflow".into()))?;
            }
            _ => self.charges.push(WindowCharge {
                bucket_ms: start,
                spent: spend,
            }),
        }
        Ok(())
    }
}

fn bucket_ms(caps: &PrivacyCaps) -> u64 {
    (caps.researcher_window_ms / WINDOW_BUCKETS).max(1)
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

/// A study's cap: the budget its researcher chose (to the nearest micro-epsilon), at
/// most the operator's study cap, and the operator's delta cap.
fn study_cap(study: &Study, caps: &PrivacyCaps) -> Spend {
    let chosen = Epsilon::from_micros(study.epsilon_budget_micros()).unwrap_or(Epsilon::ZERO);
    Spend {
        epsilon: chosen.min(caps.study.epsilon),
        delta_nanos: caps.study.delta_nanos,
    }
}

fn researcher_key(researcher: &Bytes32) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[0] = RESEARCHER_SPENT_PREFIX;
    key[1..].copy_from_slice(researcher);
    key
}

fn spent_of(budget: &PrivacyBudget) -> BudgetSpent {
    BudgetSpent {
        epsilon_cap: budget.cap().epsilon.micros(),
        epsilon_spent: budget.spent().epsilon.micros(),
        delta_cap: budget.cap().delta_nanos,
        delta_spent: budget.spent().delta_nanos,
    }
}

/// A statistic's data and how its noisy values read.
struct Prepared<'a> {
    data: ReleaseData,
    rows: Vec<String>,
    columns: Vec<String>,
    sum: Option<&'a CompiledMeasure>,
}

impl Prepared<'_> {
    /// The released values of the noisy draw.
    fn values(&self, noisy: Vec<u64>) -> ReleasedValues {
        match self.sum {
            None => ReleasedValues {
                rows: self.rows.clone(),
                columns: self.columns.clone(),
                counts: noisy,
                sum: None,
            },
            Some(measure) => {
                let (low, high) = sum_bounds(measure);
                let (above_low, count) = (noisy[0], noisy[1]);
                let total = low
                    .saturating_mul(i64::try_from(count).unwrap_or(i64::MAX))
                    .saturating_add(i64::try_from(above_low).unwrap_or(i64::MAX));
                ReleasedValues {
                    rows: self.rows.clone(),
                    columns: Vec::new(),
                    counts: vec![count],
                    sum: Some(ReleasedSum {
                        total,
                        low,
                        high,
                        units_per_display: measure.units_per_display,
                        unit: measure.unit.clone(),
                    }),
                }
            }
        }
    }
}

/// A sum measure's clamping bounds `[low, high]`, in stored units.
fn sum_bounds(measure: &CompiledMeasure) -> (i64, i64) {
    (measure.uppers[0], measure.uppers[1] - 1)
}

/// The position of the measure `name` (its name, or its position from 1).
fn find_measure(
    study: u64,
    measures: &[CompiledMeasure],
    name: &str,
) -> Result<usize, ReleaseError> {
    let by_position = name
        .parse::<usize>()
        .ok()
        .filter(|position| (1..=measures.len()).contains(position))
        .map(|position| position - 1);
    by_position
        .or_else(|| measures.iter().position(|measure| measure.name == name))
        .ok_or_else(|| ReleaseError::UnknownMeasure {
            study,
            measure: name.to_string(),
            known: if measures.is_empty() {
                "none (the study's query declares no measure)".to_string()
            } else {
                measures
                    .iter()
                    .enumerate()
                    .map(|(position, measure)| format!("{} {:?}", position + 1, measure.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// Each enrollment's value of measure `position`.
fn column(values: &[Vec<u64>], position: usize) -> Result<Vec<u64>, StoreError> {
    values
        .iter()
        .map(|each| {
            each.get(position).copied().ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "a settled enrollment has no value for measure {}",
                    position + 1
                ))
            })
        })
        .collect()
}

/// The measure at `position` when it is binned.
fn binned<'a>(
    measures: &'a [CompiledMeasure],
    position: usize,
    statistic: &Statistic,
) -> Result<&'a CompiledMeasure, ReleaseError> {
    let measure = &measures[position];
    if measure.kind == MeasureKind::Sum {
        return Err(ReleaseError::UnsuitableMeasure(format!(
            "{statistic}: {:?} is a bounded sum; ask for its sum and mean",
            measure.name
        )));
    }
    Ok(measure)
}

/// The data `statistic` is drawn from: the measure values of the study's settled
/// enrollments, per category or above a sum's lower bound.
fn prepare_statistic<'a>(
    study: u64,
    statistic: &Statistic,
    measures: &'a [CompiledMeasure],
    values: &[Vec<u64>],
) -> Result<Prepared<'a>, ReleaseError> {
    match statistic {
        Statistic::Histogram(name) => {
            let position = find_measure(study, measures, name)?;
            let measure = binned(measures, position, statistic)?;
            Ok(Prepared {
                data: ReleaseData::Categories {
                    categories: measure.labels.len(),
                    of_each: column(values, position)?,
                },
                rows: measure.labels.clone(),
                columns: Vec::new(),
                sum: None,
            })
        }
        Statistic::Table(row_name, column_name) => {
            let rows = find_measure(study, measures, row_name)?;
            let columns = find_measure(study, measures, column_name)?;
            if rows == columns {
                return Err(ReleaseError::UnsuitableMeasure(format!(
                    "{statistic}: a table needs two different measures"
                )));
            }
            let (row_measure, column_measure) = (
                binned(measures, rows, statistic)?,
                binned(measures, columns, statistic)?,
            );
            let width = column_measure.labels.len();
            let cells = row_measure.labels.len() * width;
            if cells > MAX_TABLE_CELLS {
                return Err(ReleaseError::UnsuitableMeasure(format!(
                    "{statistic}: {cells} cells, at most {MAX_TABLE_CELLS}"
                )));
            }
            let of_each = column(values, rows)?
                .into_iter()
                .zip(column(values, columns)?)
                .map(|(row, column)| row * width as u64 + column)
                .collect();
            Ok(Prepared {
                data: ReleaseData::Categories {
                    categories: cells,
                    of_each,
                },
                rows: row_measure.labels.clone(),
                columns: column_measure.labels.clone(),
                sum: None,
            })
        }
        Statistic::Sum(name) => {
            let position = find_measure(study, measures, name)?;
            let measure = &measures[position];
            if measure.kind != MeasureKind::Sum {
                return Err(ReleaseError::UnsuitableMeasure(format!(
                    "{statistic}: {:?} is binned; ask for its histogram",
                    measure.name
                )));
            }
            let (low, high) = sum_bounds(measure);
            let above_low = column(values, position)?
                .into_iter()
                .filter_map(|value| measure.amount(value))
                .map(|amount| amount - low)
                .collect();
            Ok(Prepared {
                data: ReleaseData::BoundedSum {
                    width: high - low,
                    above_low,
                },
                rows: vec!["with a value".to_string()],
                columns: Vec::new(),
                sum: Some(measure),
            })
        }
    }
}

impl Store {
    /// Answers a DP release of `request.study` for its researcher: the cached
    /// release for this request and settled enrollment count if there is one
    /// (free), otherwise a fresh one, charged to the study's budget and the
    /// researcher's, stored and audited in one transaction; shown as
    /// `post_process` says. Closed studies release too.
    ///
    /// Flush ([`Store::flush`]) before showing the answer, cached or not: a
    /// cached answer may be a concurrent request's, not yet durable.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownStudy`], [`StoreError::NotStudyOwner`] (checked before the
    /// cache), [`ReleaseError::BelowMinimumCohort`], [`ReleaseError::UnknownMeasure`],
    /// [`ReleaseError::UnsuitableMeasure`], [`DpError::InvalidEpsilon`],
    /// [`DpError::BudgetExceeded`] (nothing changes), other [`DpError`]s if OpenDP
    /// fails, [`StoreError::Storage`].
    pub fn release(
        &self,
        researcher: Bytes32,
        request: &ReleaseRequest,
        post_process: PostProcess,
    ) -> Result<ReleaseAnswer, ReleaseError> {
        let study = self.study_of(request.study, &researcher)?;
        if study.enrolled < study.min_cohort {
            return Err(ReleaseError::BelowMinimumCohort {
                study: study.id,
                min_cohort: study.min_cohort,
            });
        }
        let key = release_key(study.id, study.enrolled, request);
        let release = match get_json(&self.releases, &key)? {
            Some(cached) => cached,
            None => self.draw_release(&study, researcher, request, &key)?,
        };
        let now = self.public_now();
        let counts = &release.release.values.counts;
        let shown = counts
            .iter()
            .map(|count| dp::display(post_process, *count))
            .collect();
        let mean = release.release.values.sum.as_ref().and_then(|sum| {
            let count = counts.first().copied().unwrap_or(0);
            // i2b2 shows nothing about fewer than 10.
            if post_process == PostProcess::I2b2 && count < 10 {
                return None;
            }
            sum.mean(count)
                .map(|mean| format!("{mean:.2} {}", sum.unit))
        });
        Ok(ReleaseAnswer {
            release,
            post_process,
            shown,
            mean,
            study_budget: self.study_budget(&study)?.into(),
            researcher_budget: self.researcher_budget(&researcher, now)?.into(),
        })
    }

    /// Draws, charges, stores and audits a fresh release (see [`Store::release`]).
    fn draw_release(
        &self,
        study: &Study,
        researcher: Bytes32,
        request: &ReleaseRequest,
        key: &[u8],
    ) -> Result<StudyRelease, ReleaseError> {
        let measures = study
            .query
            .compile(Catalog::bundled())
            .map_err(|error| StoreError::Corrupt(format!("study {}: {error}", study.id)))?
            .measures;
        let values = self.measure_values(study.id)?;
        if values.len() as u64 != study.enrolled {
            return Err(StoreError::Corrupt(format!(
                "study {} has {} settled enrollments but {} measure values",
                study.id,
                study.enrolled,
                values.len()
            ))
            .into());
        }
        let prepared = prepare_statistic(study.id, &request.statistic, &measures, &values)?;
        let spend = request.spend();
        let caps = self.config.privacy;
        // The window runs on the log's public time, so a sponsor replays it from the
        // entries' times.
        let at = self.public_now();
        // Refuse early, before OpenDP runs; the transaction checks again.
        self.study_budget(study)?.check(spend)?;
        self.researcher_budget(&researcher, at)?.check(spend)?;
        let calibrated = dp::prepare(request, &prepared.data)?;
        let release = Release {
            request: request.clone(),
            values: prepared.values(calibrated.draw(&prepared.data)?),
            epsilon: request.epsilon,
            delta_nanos: spend.delta_nanos,
            opendp_epsilon: calibrated.opendp_epsilon(),
            mechanism: request.mechanism,
            scale: calibrated.scale(),
        };
        let study_cap = study_cap(study, &caps);
        let study_key = prefixed_u64(STUDY_SPENT_PREFIX, study.id);
        let researcher_key = researcher_key(&researcher);
        let committed = self.transact(|tx| -> TxResult<Committed> {
            if let Some(cached) = tx_get_json(tx.releases, key)? {
                return Ok(Committed::Cached(cached));
            }
            let spent = tx_get_json(tx.releases, &study_key)?.unwrap_or(Spend::ZERO);
            let mut study_budget = PrivacyBudget::new(BudgetOwner::Study, study_cap, spent);
            if let Err(refusal) = study_budget.charge(spend) {
                return Ok(Committed::Refused(refusal));
            }
            let mut ledger: ResearcherLedger =
                tx_get_json(tx.releases, &researcher_key)?.unwrap_or_default();
            ledger.expire(&caps, at);
            let window_spent = match ledger.spent() {
                Ok(spent) => spent,
                Err(error) => return crate::store::abort(error),
            };
            let mut researcher_budget =
                PrivacyBudget::new(BudgetOwner::Researcher, caps.researcher, window_spent);
            if let Err(refusal) = researcher_budget.charge(spend) {
                return Ok(Committed::Refused(refusal));
            }
            if let Err(error) = ledger.add(&caps, at, spend) {
                return crate::store::abort(error);
            }
            tx_put_json(tx.releases, &study_key, &study_budget.spent())?;
            tx_put_json(tx.releases, &researcher_key, &ledger)?;
            let entry = audit::append(
                tx,
                at,
                AuditEvent::DpRelease(DpReleaseRecord {
                    study: study.id,
                    enrollments: study.enrolled,
                    key: request.cache_key().as_str().to_owned(),
                    statistic: request.statistic.clone(),
                    mechanism: request.mechanism,
                    epsilon_micros: spend.epsilon.micros(),
                    delta_nanos: spend.delta_nanos,
                    study_budget: spent_of(&study_budget),
                    researcher_budget: spent_of(&researcher_budget),
                    researcher_window_ms: caps.researcher_window_ms,
                    values: release.values.clone(),
                }),
            )?;
            let record = StudyRelease {
                release: release.clone(),
                enrollments: study.enrolled,
                released_ms: at,
                audit_index: entry.index,
            };
            let bytes = match serde_json::to_vec(&record) {
                Ok(bytes) => bytes,
                Err(error) => return crate::store::abort(StoreError::Corrupt(error.to_string())),
            };
            tx.releases.insert(key, bytes.as_slice())?;
            // Answer what a cache hit will read back, so the first answer and
            // every later one are identical to the last float bit.
            match decode_json(&bytes) {
                Ok(stored) => Ok(Committed::Stored(stored)),
                Err(error) => crate::store::abort(error),
            }
        })?;
        match committed {
            Committed::Cached(release) | Committed::Stored(release) => Ok(release),
            Committed::Refused(refusal) => Err(refusal.into()),
        }
    }

    /// A study's budget: its cap and what its releases charged.
    fn study_budget(&self, study: &Study) -> Result<PrivacyBudget, StoreError> {
        let spent = get_json(&self.releases, &prefixed_u64(STUDY_SPENT_PREFIX, study.id))?
            .unwrap_or(Spend::ZERO);
        Ok(PrivacyBudget::new(
            BudgetOwner::Study,
            study_cap(study, &self.config.privacy),
            spent,
        ))
    }

    /// A researcher's budget in the window ending `now`.
    fn researcher_budget(
        &self,
        researcher: &Bytes32,
        now: u64,
    ) -> Result<PrivacyBudget, StoreError> {
        let caps = self.config.privacy;
        let mut ledger: ResearcherLedger =
            get_json(&self.releases, &researcher_key(researcher))?.unwrap_or_default();
        ledger.expire(&caps, now);
        Ok(PrivacyBudget::new(
            BudgetOwner::Researcher,
            caps.researcher,
            ledger.spent()?,
        ))
    }

    /// A study's privacy budget and releases, by data version, then request.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownStudy`], [`StoreError::Storage`], [`StoreError::Corrupt`].
    pub fn releases(&self, study_id: u64) -> Result<StudyReleases, StoreError> {
        let study = self.study(study_id)?;
        let releases = self
            .releases
            .scan_prefix(prefixed_u64(RELEASE_PREFIX, study_id))
            .map(|item| decode_json(&item?.1))
            .collect::<Result<_, _>>()?;
        Ok(StudyReleases {
            budget: self.study_budget(&study)?.into(),
            releases,
        })
    }
}
