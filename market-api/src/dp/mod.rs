//! Differentially private releases of study enrollment counts, through OpenDP.
//!
//! A researcher never sees a true enrollment count: they ask for a [`ReleaseRequest`]
//! (the study, the [`Measure`], an [`Epsilon`], a [`Mechanism`] and an optional
//! [`PostProcess`]) and get a [`Release`] whose values carry noise drawn by OpenDP's
//! measurements with OpenDP's cryptographically secure sampler. Only
//! [`Measure::Count`] is released today; a breakdown ([`Measure::CountBy`]) is refused
//! until studies prove the attributes it counts.
//!
//! # Privacy unit and sensitivity
//!
//! Neighbouring data sets differ by one enrolled patient (add or remove one). One
//! patient changes the study count by 1: the sensitivity is 1.
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
//!    count, and draw the release with [`PreparedRelease::release_count`];
//! 3. in ONE transaction (a pure closure over values computed before it): if the key
//!    is now present (a concurrent request won), return that release and drop ours —
//!    an answer nobody saw leaks nothing; otherwise charge the study's budget
//!    ([`PrivacyBudget::charge`]; a refusal writes nothing), insert the release
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

//!
//! # Modules
//!
//! - [`budget`]: [`Epsilon`], held exactly, and [`PrivacyBudget`] (accounting);
//! - [`request`]: what a researcher asks ([`ReleaseRequest`], its [`ReleaseKey`]) and gets
//!   ([`Release`], with its post-processed display);
//! - [`mechanism`]: OpenDP's measurements, calibrated and checked ([`prepare`],
//!   [`PreparedRelease`]).

pub mod budget;
pub mod mechanism;
pub mod request;
#[cfg(test)]
mod tests;

pub use budget::{Epsilon, PrivacyBudget, MAX_EPSILON, MICROS_PER_EPSILON};
pub use mechanism::{prepare, PreparedRelease, GAUSSIAN_DELTA};
pub use request::{display, i2b2_display, Release, ReleaseKey, ReleaseRequest};
pub use zkcohort_verifier::records::{Measure, Mechanism, PostProcess, ReleasedCount};

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
    /// A breakdown has no name.
    #[error("a breakdown needs a name")]
    EmptyBreakdown,
    /// A count was asked of a request whose measure is not [`Measure::Count`].
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
