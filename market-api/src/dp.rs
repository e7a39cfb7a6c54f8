//! Differentially private releases of study enrollment counts, through OpenDP.
//!
//! A researcher never sees a true enrollment count: they ask for a [`ReleaseRequest`]
//! (the study, the [`Measure`] — the count, or counts by a breakdown the study
//! declared — an [`Epsilon`], a [`Mechanism`] and an optional [`PostProcess`]) and get a
//! [`Release`] whose values carry noise drawn by OpenDP's measurements with OpenDP's
//! cryptographically secure sampler.
//!
//! # Privacy unit and sensitivity
//!
//! Neighbouring data sets differ by one enrolled patient (add or remove one). One
//! patient changes the study count by 1 and, under a breakdown, exactly one category
//! count by 1: the sensitivity is 1 in the absolute, L1 and L2 distances alike.
//!
//! # Accounting
//!
//! Epsilon is held exactly, as a whole number of micro-epsilons ([`Epsilon`]); budgets
//! ([`PrivacyBudget`]) add and compare integers, so no float drift can let a study
//! overspend. The privacy loss itself is OpenDP's: [`prepare`] builds the measurement
//! and evaluates its privacy map at sensitivity 1, and refuses to go on unless that
//! loss is at most the epsilon that will be charged (compared exactly, as rationals).
//! For the discrete Laplace mechanism (scale `1/epsilon`) the map returns exactly the
//! requested epsilon for epsilons such as 1, 0.5, 0.25 or 2, and for others a value a
//! few float steps below it (the scale is nudged up until the map is not above).
//!
//! The discrete Gaussian mechanism is (epsilon, delta)-DP: OpenDP's zCDP map is
//! converted to approximate DP at a fixed [`GAUSSIAN_DELTA`] per release, and the
//! smallest noise scale whose epsilon at that delta fits the request is used.
//!
//! # Order of operations (caching, and sled transactions)
//!
//! Drawing noise is a side effect: it must never happen inside a sled transaction
//! closure, which sled may run more than once (each run would draw a different answer
//! and the losers would have been computed against the real data for nothing, or worse
//! be released). The store does this, in this order:
//!
//! 1. look the request's [`ReleaseRequest::cache_key`] up: a cached [`Release`] is
//!    returned as it is and costs nothing;
//! 2. outside any transaction: [`prepare`] the request (no randomness), read the true
//!    counts, and draw the release with [`PreparedRelease::release_count`] or
//!    [`PreparedRelease::release_counts_by`];
//! 3. in ONE transaction (a pure closure over values computed before it): if the key
//!    is now present (a concurrent request won), return that release and drop ours —
//!    an answer nobody saw leaks nothing; otherwise charge the study's budget
//!    ([`PrivacyBudget::charge`], or [`PrivacyBudget::charge_together`] once
//!    researchers have budgets too; a refusal writes nothing), insert the release
//!    under the key, append the audit entry;
//! 4. flush, then answer.
//!
//! A store that prefers to reserve first may charge in one transaction, sample outside
//! it, and persist the release in a second one; a crash between the two then loses the
//! reserved epsilon, which errs on the side of privacy.
//!
//! The cache key names the request, not the data: a store that wants fresh answers
//! after new enrollments keys its cache on this key plus a data version of its own, and
//! charges each fresh answer. [`crate::releases`] does: its data version is the
//! enrollment count at release time.
//!
//! # Post-processing
//!
//! [`PostProcess::I2b2`] reports what i2b2 and SHRINE show: a noisy count below 10 as
//! `"<10"`, any other rounded to the nearest multiple of 5. Post-processing a DP
//! release costs no privacy; under it only the rounded text is released.

use std::fmt;
use std::str::FromStr;

use opendp::combinators::{make_fix_delta, make_zCDP_to_approxDP};
use opendp::core::Measurement;
use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::{make_gaussian, make_laplace};
use opendp::measures::{MaxDivergence, ZeroConcentratedDivergence};
use opendp::metrics::{AbsoluteDistance, L1Distance, L2Distance};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Micro-epsilons per epsilon: the resolution of every epsilon in the marketplace.
pub const MICROS_PER_EPSILON: u64 = 1_000_000;

/// The largest epsilon accepted anywhere (a request or a budget), so that every
/// [`Epsilon`] converts to `f64` and back exactly.
pub const MAX_EPSILON: u64 = 1_000_000_000;

/// The delta of one discrete Gaussian release: its guarantee is
/// (epsilon, `GAUSSIAN_DELTA`)-DP. Deltas add up across Gaussian releases.
pub const GAUSSIAN_DELTA: f64 = 1e-9;

/// Errors of differentially private releases and privacy budgets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpError {
    /// Epsilon is not a finite number above zero, or is above [`MAX_EPSILON`].
    #[error("epsilon must be a finite number above 0 and at most {MAX_EPSILON}, got {0}")]
    InvalidEpsilon(String),
    /// Charging would take a budget past its total; nothing was charged.
    #[error("privacy budget exhausted: {requested} requested, {remaining} of {total} left")]
    BudgetExceeded {
        /// The epsilon asked for.
        requested: Epsilon,
        /// What the budget still allows.
        remaining: Epsilon,
        /// The budget's total.
        total: Epsilon,
    },
    /// A true count does not fit the signed 64-bit integers OpenDP adds noise to.
    #[error("count {0} is too large to release")]
    CountTooLarge(u64),
    /// A breakdown release was asked for with no categories, or a breakdown has no name.
    #[error("a breakdown needs a name and at least one category")]
    EmptyBreakdown,
    /// The counts given do not match the request's measure (one count for
    /// [`Measure::Count`], a vector for [`Measure::CountBy`]).
    #[error("the counts given do not match the request's measure")]
    MeasureMismatch,
    /// OpenDP's privacy map reported a loss above the epsilon to be charged; the release
    /// is refused rather than under-charged.
    #[error("OpenDP's privacy loss {opendp} exceeds the epsilon charged {charged}")]
    ChargeBelowLoss {
        /// OpenDP's privacy map at sensitivity 1.
        opendp: f64,
        /// The epsilon the request would charge.
        charged: Epsilon,
    },
    /// OpenDP refused to build or run a measurement.
    #[error("OpenDP: {0}")]
    OpenDp(String),
}

impl From<opendp::error::Error> for DpError {
    fn from(error: opendp::error::Error) -> Self {
        DpError::OpenDp(format!(
            "{:?}: {}",
            error.variant,
            error.message.unwrap_or_default()
        ))
    }
}

/// A privacy loss, held exactly as a whole number of micro-epsilons.
///
/// JSON carries it as a plain number (`0.5`); a request's epsilon is rounded to the
/// nearest micro-epsilon, and the rounded value is both the one OpenDP calibrates to
/// and the one charged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epsilon {
    micros: u64,
}

impl Epsilon {
    /// No privacy loss: what a fresh budget has spent.
    pub const ZERO: Epsilon = Epsilon { micros: 0 };

    /// A positive epsilon, rounded to the nearest micro-epsilon.
    ///
    /// # Errors
    /// [`DpError::InvalidEpsilon`] for zero, negative, NaN or infinite values, values
    /// that round to zero, and values above [`MAX_EPSILON`].
    pub fn new(epsilon: f64) -> Result<Self, DpError> {
        let eps = Self::non_negative(epsilon)?;
        if eps == Epsilon::ZERO {
            return Err(DpError::InvalidEpsilon(epsilon.to_string()));
        }
        Ok(eps)
    }

    /// A non-negative epsilon (zero allowed: a budget's spent amount), rounded to the
    /// nearest micro-epsilon.
    fn non_negative(epsilon: f64) -> Result<Self, DpError> {
        if !epsilon.is_finite() || epsilon < 0.0 || epsilon > MAX_EPSILON as f64 {
            return Err(DpError::InvalidEpsilon(epsilon.to_string()));
        }
        // At most 1e15 < 2^53: the product and its rounding are exact enough, and the
        // cast cannot saturate.
        let micros = (epsilon * MICROS_PER_EPSILON as f64).round() as u64;
        Ok(Epsilon { micros })
    }

    /// An epsilon of `micros` micro-epsilons.
    ///
    /// # Errors
    /// [`DpError::InvalidEpsilon`] above [`MAX_EPSILON`].
    pub fn from_micros(micros: u64) -> Result<Self, DpError> {
        if micros > MAX_EPSILON * MICROS_PER_EPSILON {
            return Err(DpError::InvalidEpsilon(format!("{micros} micro-epsilon")));
        }
        Ok(Epsilon { micros })
    }

    /// The number of micro-epsilons.
    pub fn micros(self) -> u64 {
        self.micros
    }

    /// The nearest `f64` (exact for every epsilon whose micro count is below 2^53,
    /// which [`MAX_EPSILON`] guarantees, up to the rounding of one division).
    pub fn to_f64(self) -> f64 {
        self.micros as f64 / MICROS_PER_EPSILON as f64
    }

    /// Is `loss` (a float from OpenDP) at most this epsilon, compared as exact rationals?
    fn covers(self, loss: f64) -> bool {
        f64_at_most_micros(loss, self.micros)
    }
}

impl fmt::Display for Epsilon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.micros / MICROS_PER_EPSILON;
        let frac = self.micros % MICROS_PER_EPSILON;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{frac:06}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl FromStr for Epsilon {
    type Err = DpError;

    /// Parses a decimal (`"0.1"`, `"2"`) exactly, with at most six fractional digits.
    fn from_str(text: &str) -> Result<Self, DpError> {
        let invalid = || DpError::InvalidEpsilon(text.to_string());
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty())
            || !all_digits(whole)
            || !all_digits(frac)
            || frac.len() > 6
        {
            return Err(invalid());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let frac: u64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<6}").parse().map_err(|_| invalid())?
        };
        let micros = whole
            .checked_mul(MICROS_PER_EPSILON)
            .and_then(|w| w.checked_add(frac))
            .ok_or_else(invalid)?;
        if micros == 0 {
            return Err(invalid());
        }
        Epsilon::from_micros(micros).map_err(|_| invalid())
    }
}

impl Serialize for Epsilon {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.to_f64())
    }
}

impl<'de> Deserialize<'de> for Epsilon {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Epsilon::non_negative(value).map_err(serde::de::Error::custom)
    }
}

/// Is the float `x` at most `micros / 10^6`, compared as exact rationals?
///
/// NaN is never covered; negative values always are.
fn f64_at_most_micros(x: f64, micros: u64) -> bool {
    if x.is_nan() || x == f64::INFINITY {
        return false;
    }
    if x <= 0.0 {
        return true;
    }
    // x = mantissa * 2^exp exactly.
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    let (mantissa, exp) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), biased - 1075)
    };
    // Compare mantissa * 2^exp * 10^6 <= micros; mantissa * 10^6 < 2^73.
    let lhs = u128::from(mantissa) * u128::from(MICROS_PER_EPSILON);
    if exp >= 0 {
        if exp > 54 {
            return false; // lhs * 2^exp >= 2^exp > 2^64 > micros
        }
        lhs << exp <= u128::from(micros)
    } else {
        let shift = exp.unsigned_abs();
        if micros == 0 {
            return false;
        }
        if shift >= 127 {
            return true; // micros * 2^shift >= 2^127 > lhs
        }
        match u128::from(micros).checked_mul(1u128 << shift) {
            Some(rhs) => lhs <= rhs,
            None => true, // rhs >= 2^128 > lhs
        }
    }
}

/// A privacy budget: the epsilon a study (or a researcher) may spend, and what it has
/// spent. Plain data, so the store persists it; every change goes through
/// [`PrivacyBudget::charge`], which refuses to pass the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyBudget {
    total: Epsilon,
    spent: Epsilon,
}

impl PrivacyBudget {
    /// A budget of `total` with nothing spent.
    pub fn new(total: Epsilon) -> Self {
        PrivacyBudget {
            total,
            spent: Epsilon::ZERO,
        }
    }

    /// The epsilon this budget allows in all.
    pub fn total(&self) -> Epsilon {
        self.total
    }

    /// The epsilon charged so far.
    pub fn spent(&self) -> Epsilon {
        self.spent
    }

    /// The epsilon still available.
    pub fn remaining(&self) -> Epsilon {
        Epsilon {
            micros: self.total.micros.saturating_sub(self.spent.micros),
        }
    }

    /// Would charging `epsilon` fit?
    ///
    /// # Errors
    /// [`DpError::BudgetExceeded`] if it would pass the total.
    pub fn check(&self, epsilon: Epsilon) -> Result<(), DpError> {
        match self.spent.micros.checked_add(epsilon.micros) {
            Some(after) if after <= self.total.micros => Ok(()),
            _ => Err(DpError::BudgetExceeded {
                requested: epsilon,
                remaining: self.remaining(),
                total: self.total,
            }),
        }
    }

    /// Charges `epsilon`, or refuses and leaves the budget unchanged.
    ///
    /// # Errors
    /// [`DpError::BudgetExceeded`] if it would pass the total.
    pub fn charge(&mut self, epsilon: Epsilon) -> Result<(), DpError> {
        self.check(epsilon)?;
        self.spent.micros += epsilon.micros;
        Ok(())
    }

    /// Charges `epsilon` to a study's and a researcher's budget together: both or
    /// neither.
    ///
    /// # Errors
    /// [`DpError::BudgetExceeded`] (for the first budget that would pass its total);
    /// then neither budget changes.
    pub fn charge_together(
        study: &mut PrivacyBudget,
        researcher: &mut PrivacyBudget,
        epsilon: Epsilon,
    ) -> Result<(), DpError> {
        study.check(epsilon)?;
        researcher.check(epsilon)?;
        study.charge(epsilon)?;
        researcher.charge(epsilon)
    }
}

pub use zkcohort_verifier::records::{Measure, Mechanism, PostProcess, ReleasedCount};

/// How a noisy count reads under `post_process`.
pub fn display(post_process: PostProcess, noisy: i64) -> String {
    match post_process {
        PostProcess::None => noisy.to_string(),
        PostProcess::I2b2 => i2b2_display(noisy),
    }
}

/// i2b2/SHRINE obfuscated display: `"<10"` below 10, else the nearest multiple of 5.
pub fn i2b2_display(noisy: i64) -> String {
    if noisy < 10 {
        "<10".to_string()
    } else {
        // noisy >= 10: no negative rounding. i64::MAX leaves 2 when divided by 5, so
        // rounding up (a remainder of 3 or 4) never passes it.
        let remainder = noisy % 5;
        let rounded = if remainder >= 3 {
            noisy - remainder + 5
        } else {
            noisy - remainder
        };
        rounded.to_string()
    }
}

/// A researcher's request for a DP release.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReleaseRequest {
    /// The study's id.
    pub study: u64,
    /// What to release.
    pub measure: Measure,
    /// The privacy loss to spend, charged to the study and the researcher.
    pub epsilon: Epsilon,
    /// The noise distribution.
    #[serde(default)]
    pub mechanism: Mechanism,
    /// How the release is shown.
    #[serde(default)]
    pub post_process: PostProcess,
}

/// The deterministic cache key of a [`ReleaseRequest`]: the same request always has
/// the same key, and different requests have different keys (every variable-length
/// part is length-prefixed).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReleaseKey(String);

impl ReleaseKey {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as bytes (for a sled tree).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Display for ReleaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ReleaseRequest {
    /// The request's cache key: study, measure, epsilon, mechanism and post-processing.
    pub fn cache_key(&self) -> ReleaseKey {
        let measure = match &self.measure {
            Measure::Count => "count".to_string(),
            Measure::CountBy { breakdown } => {
                format!("count_by:{}:{breakdown}", breakdown.len())
            }
        };
        ReleaseKey(format!(
            "dp1/{}/{measure}/{}/{}/{}",
            self.study,
            self.epsilon.micros(),
            self.mechanism.name(),
            self.post_process.name(),
        ))
    }
}

/// A differentially private release: what the researcher sees and the store caches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// The request this answers.
    pub request: ReleaseRequest,
    /// The released values: one for [`Measure::Count`], one per category for
    /// [`Measure::CountBy`].
    pub counts: Vec<ReleasedCount>,
    /// The epsilon charged.
    pub epsilon: Epsilon,
    /// OpenDP's privacy loss at sensitivity 1 (at most `epsilon`, exactly).
    pub opendp_epsilon: f64,
    /// The delta of the guarantee: 0 for discrete Laplace, [`GAUSSIAN_DELTA`] for the
    /// discrete Gaussian.
    pub delta: f64,
    /// The noise distribution.
    pub mechanism: Mechanism,
    /// The noise scale: `1/epsilon` for discrete Laplace, the standard deviation
    /// parameter for the discrete Gaussian.
    pub scale: f64,
    /// The post-processing applied.
    pub post_process: PostProcess,
}

/// A request whose measurement OpenDP has built and whose privacy loss is checked:
/// everything before the randomness. Preparing draws no noise.
#[derive(Clone, Debug)]
pub struct PreparedRelease {
    request: ReleaseRequest,
    scale: f64,
    opendp_epsilon: f64,
    delta: f64,
}

/// Builds and checks the measurement for `request` (no noise is drawn).
///
/// # Errors
/// [`DpError::EmptyBreakdown`] for a breakdown with no name;
/// [`DpError::InvalidEpsilon`] for a zero epsilon; [`DpError::ChargeBelowLoss`] if no
/// scale keeps OpenDP's loss within the epsilon; [`DpError::OpenDp`] if OpenDP refuses.
pub fn prepare(request: &ReleaseRequest) -> Result<PreparedRelease, DpError> {
    if request.epsilon == Epsilon::ZERO {
        return Err(DpError::InvalidEpsilon("0".to_string()));
    }
    if let Measure::CountBy { breakdown } = &request.measure {
        if breakdown.is_empty() {
            return Err(DpError::EmptyBreakdown);
        }
    }
    let (scale, opendp_epsilon, delta) = match request.mechanism {
        Mechanism::DiscreteLaplace => {
            let (scale, loss) = calibrate_laplace(request.epsilon)?;
            (scale, loss, 0.0)
        }
        Mechanism::DiscreteGaussian => {
            let (scale, loss) = calibrate_gaussian(request.epsilon)?;
            (scale, loss, GAUSSIAN_DELTA)
        }
    };
    Ok(PreparedRelease {
        request: request.clone(),
        scale,
        opendp_epsilon,
        delta,
    })
}

/// Releases one count: prepares `request` (which must measure [`Measure::Count`]) and
/// draws the noise.
///
/// # Errors
/// Those of [`prepare`] and [`PreparedRelease::release_count`].
pub fn release_count(true_count: u64, request: &ReleaseRequest) -> Result<Release, DpError> {
    prepare(request)?.release_count(true_count)
}

/// Releases counts by a breakdown: prepares `request` (which must measure
/// [`Measure::CountBy`]) and draws the noise.
///
/// # Errors
/// Those of [`prepare`] and [`PreparedRelease::release_counts_by`].
pub fn release_counts_by(
    true_counts: &[u64],
    request: &ReleaseRequest,
) -> Result<Release, DpError> {
    prepare(request)?.release_counts_by(true_counts)
}

impl PreparedRelease {
    /// The request.
    pub fn request(&self) -> &ReleaseRequest {
        &self.request
    }

    /// The epsilon to charge for this release.
    pub fn epsilon(&self) -> Epsilon {
        self.request.epsilon
    }

    /// The noise scale OpenDP will use.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// OpenDP's privacy loss at sensitivity 1 (at most [`Self::epsilon`], exactly).
    pub fn opendp_epsilon(&self) -> f64 {
        self.opendp_epsilon
    }

    /// Draws the noisy count. Call it outside any sled transaction.
    ///
    /// # Errors
    /// [`DpError::MeasureMismatch`] unless the request measures [`Measure::Count`];
    /// [`DpError::CountTooLarge`] above `i64::MAX`; [`DpError::OpenDp`] if sampling
    /// fails (for instance, the system has no entropy).
    pub fn release_count(&self, true_count: u64) -> Result<Release, DpError> {
        if self.request.measure != Measure::Count {
            return Err(DpError::MeasureMismatch);
        }
        let count = i64::try_from(true_count).map_err(|_| DpError::CountTooLarge(true_count))?;
        let noisy = match self.request.mechanism {
            Mechanism::DiscreteLaplace => laplace_scalar(self.scale)?.invoke(&count)?,
            Mechanism::DiscreteGaussian => gaussian_scalar(self.scale)?.invoke(&count)?,
        };
        Ok(self.finish(vec![noisy]))
    }

    /// Draws the noisy category counts. Call it outside any sled transaction.
    ///
    /// # Errors
    /// [`DpError::MeasureMismatch`] unless the request measures [`Measure::CountBy`];
    /// [`DpError::EmptyBreakdown`] for no categories; [`DpError::CountTooLarge`] above
    /// `i64::MAX`; [`DpError::OpenDp`] if sampling fails.
    pub fn release_counts_by(&self, true_counts: &[u64]) -> Result<Release, DpError> {
        if !matches!(self.request.measure, Measure::CountBy { .. }) {
            return Err(DpError::MeasureMismatch);
        }
        if true_counts.is_empty() {
            return Err(DpError::EmptyBreakdown);
        }
        let counts = true_counts
            .iter()
            .map(|&c| i64::try_from(c).map_err(|_| DpError::CountTooLarge(c)))
            .collect::<Result<Vec<i64>, DpError>>()?;
        let noisy = match self.request.mechanism {
            Mechanism::DiscreteLaplace => laplace_vector(self.scale)?.invoke(&counts)?,
            Mechanism::DiscreteGaussian => gaussian_vector(self.scale)?.invoke(&counts)?,
        };
        Ok(self.finish(noisy))
    }

    fn finish(&self, noisy: Vec<i64>) -> Release {
        let post_process = self.request.post_process;
        let counts = noisy
            .into_iter()
            .map(|v| ReleasedCount {
                value: (post_process == PostProcess::None).then_some(v),
                display: display(post_process, v),
            })
            .collect();
        Release {
            request: self.request.clone(),
            counts,
            epsilon: self.request.epsilon,
            opendp_epsilon: self.opendp_epsilon,
            delta: self.delta,
            mechanism: self.request.mechanism,
            scale: self.scale,
            post_process,
        }
    }
}

type LaplaceScalar = Measurement<AtomDomain<i64>, AbsoluteDistance<i64>, MaxDivergence, i64>;
type LaplaceVector =
    Measurement<VectorDomain<AtomDomain<i64>>, L1Distance<i64>, MaxDivergence, Vec<i64>>;
type GaussianScalar =
    Measurement<AtomDomain<i64>, AbsoluteDistance<i64>, ZeroConcentratedDivergence, i64>;
type GaussianVector = Measurement<
    VectorDomain<AtomDomain<i64>>,
    L2Distance<i64>,
    ZeroConcentratedDivergence,
    Vec<i64>,
>;

fn laplace_scalar(scale: f64) -> Result<LaplaceScalar, DpError> {
    Ok(make_laplace(
        AtomDomain::<i64>::default(),
        AbsoluteDistance::<i64>::default(),
        scale,
        None,
    )?)
}

fn laplace_vector(scale: f64) -> Result<LaplaceVector, DpError> {
    Ok(make_laplace(
        VectorDomain::new(AtomDomain::<i64>::default()),
        L1Distance::<i64>::default(),
        scale,
        None,
    )?)
}

fn gaussian_scalar(scale: f64) -> Result<GaussianScalar, DpError> {
    Ok(make_gaussian(
        AtomDomain::<i64>::default(),
        AbsoluteDistance::<i64>::default(),
        scale,
        None,
    )?)
}

fn gaussian_vector(scale: f64) -> Result<GaussianVector, DpError> {
    Ok(make_gaussian(
        VectorDomain::new(AtomDomain::<i64>::default()),
        L2Distance::<i64>::default(),
        scale,
        None,
    )?)
}

/// OpenDP's epsilon for the discrete Laplace mechanism at `scale`, sensitivity 1.
fn laplace_loss(scale: f64) -> Result<f64, DpError> {
    let scalar = laplace_scalar(scale)?.map(&1)?;
    let vector = laplace_vector(scale)?.map(&1)?;
    Ok(scalar.max(vector))
}

/// OpenDP's epsilon at [`GAUSSIAN_DELTA`] for the discrete Gaussian at `scale`,
/// sensitivity 1.
fn gaussian_loss(scale: f64) -> Result<f64, DpError> {
    let scalar = make_fix_delta(
        &make_zCDP_to_approxDP(gaussian_scalar(scale)?)?,
        GAUSSIAN_DELTA,
    )?
    .map(&1)?
    .0;
    let vector = make_fix_delta(
        &make_zCDP_to_approxDP(gaussian_vector(scale)?)?,
        GAUSSIAN_DELTA,
    )?
    .map(&1)?
    .0;
    Ok(scalar.max(vector))
}

/// The next float above a positive finite `x`.
fn next_up(x: f64) -> f64 {
    f64::from_bits(x.to_bits() + 1)
}

/// The scale `1/epsilon`, nudged up by float steps until OpenDP's loss is at most
/// `epsilon` exactly.
fn calibrate_laplace(epsilon: Epsilon) -> Result<(f64, f64), DpError> {
    let mut scale = MICROS_PER_EPSILON as f64 / epsilon.micros() as f64;
    let mut loss = laplace_loss(scale)?;
    for _ in 0..64 {
        if epsilon.covers(loss) {
            return Ok((scale, loss));
        }
        scale = next_up(scale);
        loss = laplace_loss(scale)?;
    }
    Err(DpError::ChargeBelowLoss {
        opendp: loss,
        charged: epsilon,
    })
}

/// The smallest scale (to within a float step of bisection) whose epsilon at
/// [`GAUSSIAN_DELTA`] is at most `epsilon` exactly.
fn calibrate_gaussian(epsilon: Epsilon) -> Result<(f64, f64), DpError> {
    let mut hi = 1.0_f64;
    let mut hi_loss = gaussian_loss(hi)?;
    let mut doublings = 0;
    while !epsilon.covers(hi_loss) {
        hi *= 2.0;
        hi_loss = gaussian_loss(hi)?;
        doublings += 1;
        if doublings > 80 {
            return Err(DpError::ChargeBelowLoss {
                opendp: hi_loss,
                charged: epsilon,
            });
        }
    }
    let mut lo = 0.0_f64;
    for _ in 0..64 {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            break;
        }
        // A loss too large for OpenDP to compute (its exponentials overflow at tiny
        // scales, when a large epsilon is asked for) is certainly not covered.
        match gaussian_loss(mid) {
            Ok(mid_loss) if epsilon.covers(mid_loss) => {
                hi = mid;
                hi_loss = mid_loss;
            }
            _ => lo = mid,
        }
    }
    Ok((hi, hi_loss))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(x: f64) -> Epsilon {
        Epsilon::new(x).unwrap()
    }

    fn count_request(
        epsilon: f64,
        mechanism: Mechanism,
        post_process: PostProcess,
    ) -> ReleaseRequest {
        ReleaseRequest {
            study: 1,
            measure: Measure::Count,
            epsilon: eps(epsilon),
            mechanism,
            post_process,
        }
    }

    #[test]
    fn invalid_epsilons_are_rejected() {
        for bad in [
            0.0,
            -0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-9,
            2e9,
        ] {
            assert!(
                matches!(Epsilon::new(bad), Err(DpError::InvalidEpsilon(_))),
                "{bad} accepted"
            );
        }
        for bad in [
            "",
            ".",
            "0",
            "0.0",
            "-1",
            "1e3",
            "0.1234567",
            "abc",
            "1.2.3",
        ] {
            assert!(bad.parse::<Epsilon>().is_err(), "{bad:?} accepted");
        }
        assert_eq!("0.1".parse::<Epsilon>().unwrap().micros(), 100_000);
        assert_eq!(".5".parse::<Epsilon>().unwrap().micros(), 500_000);
        assert_eq!("2".parse::<Epsilon>().unwrap().micros(), 2_000_000);
        assert_eq!(eps(0.1).micros(), 100_000);
        assert_eq!(eps(0.3).to_string(), "0.3");
        assert_eq!(eps(1.0).to_string(), "1");
        // A zero epsilon cannot be built through a request either.
        let mut request = count_request(1.0, Mechanism::DiscreteLaplace, PostProcess::None);
        request.epsilon = Epsilon::ZERO;
        assert!(matches!(prepare(&request), Err(DpError::InvalidEpsilon(_))));
        // JSON: numbers, non-negative only.
        assert!(serde_json::from_str::<Epsilon>("-0.5").is_err());
        assert_eq!(serde_json::from_str::<Epsilon>("0.25").unwrap(), eps(0.25));
        assert_eq!(serde_json::to_string(&eps(0.25)).unwrap(), "0.25");
        // Every epsilon survives a JSON round trip exactly (the store persists them).
        for micros in [
            1,
            7,
            100_000,
            300_000,
            123_456_789,
            MAX_EPSILON * MICROS_PER_EPSILON,
        ] {
            let e = Epsilon::from_micros(micros).unwrap();
            let back: Epsilon = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
            assert_eq!(back, e);
        }
        assert!(Epsilon::from_micros(MAX_EPSILON * MICROS_PER_EPSILON + 1).is_err());
    }

    #[test]
    fn exact_rational_comparison() {
        assert!(f64_at_most_micros(1.0, 1_000_000));
        assert!(!f64_at_most_micros(1.0, 999_999));
        // The double nearest 0.1 is slightly above 1/10, the one nearest 0.3 below 3/10.
        assert!(!f64_at_most_micros(0.1, 100_000));
        assert!(f64_at_most_micros(0.3, 300_000));
        assert!(f64_at_most_micros(0.0, 0));
        assert!(!f64_at_most_micros(f64::MIN_POSITIVE, 0));
        assert!(f64_at_most_micros(f64::MIN_POSITIVE, 1));
        assert!(!f64_at_most_micros(f64::NAN, u64::MAX));
        assert!(!f64_at_most_micros(f64::INFINITY, u64::MAX));
        assert!(!f64_at_most_micros(1e300, u64::MAX));
    }

    #[test]
    fn privacy_map_equals_the_epsilon_requested() {
        for x in [0.25, 0.5, 1.0, 2.0, 4.0] {
            let prepared = prepare(&count_request(
                x,
                Mechanism::DiscreteLaplace,
                PostProcess::None,
            ))
            .unwrap();
            assert_eq!(prepared.opendp_epsilon(), x, "epsilon {x}");
            assert_eq!(prepared.scale(), 1.0 / x);
            // Straight from OpenDP, at the scale the release uses.
            assert_eq!(
                laplace_scalar(prepared.scale()).unwrap().map(&1).unwrap(),
                x
            );
        }
        // Other epsilons: never above the charge, and within float rounding of it.
        for x in [0.1, 0.3, 0.7, 1.3, 0.000_001] {
            let prepared = prepare(&count_request(
                x,
                Mechanism::DiscreteLaplace,
                PostProcess::None,
            ))
            .unwrap();
            let loss = prepared.opendp_epsilon();
            assert!(eps(x).covers(loss), "epsilon {x}: loss {loss}");
            assert!((x - loss) / x < 1e-12, "epsilon {x}: loss {loss}");
            let release = prepared.release_count(10).unwrap();
            assert_eq!(release.epsilon, eps(x));
            assert_eq!(release.opendp_epsilon, loss);
        }
    }

    #[test]
    fn gaussian_releases_fit_their_epsilon_at_fixed_delta() {
        for x in [0.5, 1.0] {
            let prepared = prepare(&count_request(
                x,
                Mechanism::DiscreteGaussian,
                PostProcess::None,
            ))
            .unwrap();
            let loss = prepared.opendp_epsilon();
            assert!(eps(x).covers(loss), "epsilon {x}: loss {loss}");
            assert!(
                loss > x * 0.999,
                "scale not tight: epsilon {x}, loss {loss}"
            );
            let again = make_fix_delta(
                &make_zCDP_to_approxDP(gaussian_scalar(prepared.scale()).unwrap()).unwrap(),
                GAUSSIAN_DELTA,
            )
            .unwrap()
            .map(&1)
            .unwrap();
            assert_eq!(again, (loss, GAUSSIAN_DELTA));
            let release = prepared.release_count(50).unwrap();
            assert_eq!(release.delta, GAUSSIAN_DELTA);
            assert_eq!(release.counts.len(), 1);
        }
        let smaller = prepare(&count_request(
            0.5,
            Mechanism::DiscreteGaussian,
            PostProcess::None,
        ))
        .unwrap();
        let larger = prepare(&count_request(
            1.0,
            Mechanism::DiscreteGaussian,
            PostProcess::None,
        ))
        .unwrap();
        assert!(smaller.scale() > larger.scale());
    }

    #[test]
    fn different_epsilons_give_different_scales() {
        let a = prepare(&count_request(
            0.5,
            Mechanism::DiscreteLaplace,
            PostProcess::None,
        ))
        .unwrap();
        let b = prepare(&count_request(
            1.0,
            Mechanism::DiscreteLaplace,
            PostProcess::None,
        ))
        .unwrap();
        assert_eq!(a.scale(), 2.0);
        assert_eq!(b.scale(), 1.0);
        assert_ne!(a.request().cache_key(), b.request().cache_key());
    }

    #[test]
    fn budget_refuses_past_total_and_stays_unchanged() {
        let mut budget = PrivacyBudget::new(eps(1.0));
        budget.charge(eps(0.3)).unwrap();
        budget.charge(eps(0.3)).unwrap();
        budget.charge(eps(0.3)).unwrap();
        // 0.9 spent exactly: no float drift (0.3 + 0.3 + 0.3 != 0.9 in f64).
        assert_eq!(budget.spent(), eps(0.9));
        assert_eq!(budget.remaining(), eps(0.1));
        let before = budget;
        let err = budget.charge(eps(0.100_001)).unwrap_err();
        assert!(matches!(
            err,
            DpError::BudgetExceeded { requested, remaining, total }
                if requested == eps(0.100_001) && remaining == eps(0.1) && total == eps(1.0)
        ));
        assert_eq!(budget, before);
        budget.charge(eps(0.1)).unwrap();
        assert_eq!(budget.remaining(), Epsilon::ZERO);
        assert!(budget.charge(Epsilon::from_micros(1).unwrap()).is_err());

        // Study and researcher: both or neither.
        let mut study = PrivacyBudget::new(eps(2.0));
        let mut researcher = PrivacyBudget::new(eps(0.5));
        PrivacyBudget::charge_together(&mut study, &mut researcher, eps(0.5)).unwrap();
        let (s, r) = (study, researcher);
        assert!(PrivacyBudget::charge_together(&mut study, &mut researcher, eps(0.5)).is_err());
        assert_eq!((study, researcher), (s, r));
        assert_eq!(study.spent(), eps(0.5));

        // Round-trips through JSON for the store.
        let json = serde_json::to_string(&study).unwrap();
        assert_eq!(serde_json::from_str::<PrivacyBudget>(&json).unwrap(), study);
    }

    /// Statistical sanity of the discrete Laplace noise at epsilon = 1 (scale t = 1).
    ///
    /// The variance of discrete Laplace(t) is `2 e^{-1/t} / (1 - e^{-1/t})^2`, about
    /// 1.84 at t = 1. Over n = 2000 draws the standard error of the mean is about 0.03
    /// and that of the sample variance about 0.1 (excess kurtosis near 6), so the fixed
    /// tolerances below (0.25 on the mean, 25% on the variance) are more than 8 and 4
    /// standard errors: a correct sampler fails them with negligible probability, a
    /// wrong scale (e.g. t = 2, variance about 7.8) or a biased one fails them.
    #[test]
    fn discrete_laplace_noise_has_the_right_mean_and_variance() {
        let true_count = 1_000_u64;
        let prepared = prepare(&count_request(
            1.0,
            Mechanism::DiscreteLaplace,
            PostProcess::None,
        ))
        .unwrap();
        let n = 2000;
        let samples: Vec<i64> = (0..n)
            .map(|_| {
                prepared.release_count(true_count).unwrap().counts[0]
                    .value
                    .unwrap()
            })
            .collect();
        let mean = samples.iter().sum::<i64>() as f64 / n as f64;
        let var = samples
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / (n as f64 - 1.0);
        let q = (-1.0_f64).exp();
        let expected_var = 2.0 * q / (1.0 - q).powi(2);
        assert!((mean - true_count as f64).abs() < 0.25, "mean {mean}");
        assert!(
            (var / expected_var - 1.0).abs() < 0.25,
            "variance {var}, expected {expected_var}"
        );
        // Noise is really there.
        assert!(samples.iter().any(|&v| v != true_count as i64));
    }

    #[test]
    fn breakdown_counts_get_noise_per_category() {
        let request = ReleaseRequest {
            study: 1,
            measure: Measure::CountBy {
                breakdown: "sex".to_string(),
            },
            epsilon: eps(1.0),
            mechanism: Mechanism::DiscreteLaplace,
            post_process: PostProcess::None,
        };
        let prepared = prepare(&request).unwrap();
        assert_eq!(
            laplace_vector(prepared.scale()).unwrap().map(&1).unwrap(),
            1.0
        );
        let release = prepared.release_counts_by(&[120, 95, 3]).unwrap();
        assert_eq!(release.counts.len(), 3);
        for (c, truth) in release.counts.iter().zip([120, 95, 3]) {
            // 40 scales away has probability about e^-40.
            assert!((c.value.unwrap() - truth).abs() < 40);
        }
        assert!(matches!(
            prepared.release_count(5),
            Err(DpError::MeasureMismatch)
        ));
        assert!(matches!(
            prepared.release_counts_by(&[]),
            Err(DpError::EmptyBreakdown)
        ));
        let count = prepare(&count_request(
            1.0,
            Mechanism::DiscreteLaplace,
            PostProcess::None,
        ))
        .unwrap();
        assert!(matches!(
            count.release_counts_by(&[1, 2]),
            Err(DpError::MeasureMismatch)
        ));
        assert!(matches!(
            count.release_count(u64::MAX),
            Err(DpError::CountTooLarge(_))
        ));

        let gaussian = ReleaseRequest {
            mechanism: Mechanism::DiscreteGaussian,
            ..request
        };
        let release = release_counts_by(&[10, 20], &gaussian).unwrap();
        assert_eq!(release.counts.len(), 2);
    }

    #[test]
    fn i2b2_post_processing() {
        for (noisy, shown) in [
            (-3, "<10"),
            (0, "<10"),
            (9, "<10"),
            (10, "10"),
            (12, "10"),
            (13, "15"),
            (17, "15"),
            (18, "20"),
            (100, "100"),
            (102, "100"),
            (103, "105"),
            (i64::MAX, "9223372036854775805"),
        ] {
            assert_eq!(i2b2_display(noisy), shown, "{noisy}");
        }
        let release = release_count(
            4,
            &count_request(1.0, Mechanism::DiscreteLaplace, PostProcess::I2b2),
        )
        .unwrap();
        assert_eq!(release.counts[0].value, None);
        let shown = &release.counts[0].display;
        assert!(
            shown == "<10" || shown.parse::<i64>().is_ok_and(|v| v >= 10 && v % 5 == 0),
            "{shown}"
        );
        let plain = release_count(
            4,
            &count_request(1.0, Mechanism::DiscreteLaplace, PostProcess::None),
        )
        .unwrap();
        assert_eq!(
            plain.counts[0].display,
            plain.counts[0].value.unwrap().to_string()
        );
    }

    #[test]
    fn cache_keys_are_deterministic_and_distinct() {
        let base = count_request(1.0, Mechanism::DiscreteLaplace, PostProcess::None);
        assert_eq!(base.cache_key(), base.clone().cache_key());
        let variants = [
            ReleaseRequest {
                study: 2,
                ..base.clone()
            },
            ReleaseRequest {
                measure: Measure::CountBy {
                    breakdown: "sex".to_string(),
                },
                ..base.clone()
            },
            ReleaseRequest {
                epsilon: eps(0.5),
                ..base.clone()
            },
            ReleaseRequest {
                mechanism: Mechanism::DiscreteGaussian,
                ..base.clone()
            },
            ReleaseRequest {
                post_process: PostProcess::I2b2,
                ..base.clone()
            },
        ];
        let mut keys: Vec<ReleaseKey> = variants.iter().map(ReleaseRequest::cache_key).collect();
        keys.push(base.cache_key());
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n);
        // Length prefixes: a breakdown name cannot forge another request's key.
        let tricky = ReleaseRequest {
            measure: Measure::CountBy {
                breakdown: "a/1000000/discrete_laplace/none".to_string(),
            },
            ..base.clone()
        };
        let plain = ReleaseRequest {
            measure: Measure::CountBy {
                breakdown: "a".to_string(),
            },
            ..base.clone()
        };
        assert_ne!(tricky.cache_key(), plain.cache_key());
        assert_eq!(
            base.cache_key().as_str(),
            "dp1/1/count/1000000/discrete_laplace/none"
        );
        // The JSON form of a request round-trips, with defaults for the optional parts.
        let parsed: ReleaseRequest =
            serde_json::from_str(r#"{"study":1,"measure":{"kind":"count"},"epsilon":1.0}"#)
                .unwrap();
        assert_eq!(parsed, base);
        // A measure reads from its shorthand too, and writes in the tagged form.
        let count: Measure = serde_json::from_str(r#""count""#).unwrap();
        assert_eq!(count, Measure::Count);
        assert_eq!(
            serde_json::to_string(&count).unwrap(),
            r#"{"kind":"count"}"#
        );
        let by: Measure = serde_json::from_str(r#"{"kind":"count_by","breakdown":"sex"}"#).unwrap();
        assert_eq!(
            by,
            Measure::CountBy {
                breakdown: "sex".to_string()
            }
        );
        assert_eq!(
            serde_json::from_str::<Measure>(&serde_json::to_string(&by).unwrap()).unwrap(),
            by
        );
        for bad in [
            r#""count_by""#,
            r#""sum""#,
            r#"{"kind":"count_by"}"#,
            r#"{"kind":"count","breakdown":"sex"}"#,
            r#"{"kind":"sum"}"#,
            "3",
        ] {
            let error = serde_json::from_str::<Measure>(bad).unwrap_err();
            assert!(error.to_string().contains("a measure"), "{bad}: {error}");
        }
        let release = release_count(7, &base).unwrap();
        let json = serde_json::to_string(&release).unwrap();
        assert_eq!(serde_json::from_str::<Release>(&json).unwrap(), release);
    }
}
