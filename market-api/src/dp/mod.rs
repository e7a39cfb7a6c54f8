//! Differentially private releases of what a study's enrollments proved, through
//! OpenDP.
//!
//! Each settled enrollment of a study carries the values of the study's measures (age
//! band, sex, a lab's bin or clamped value, ...), committed to in its proof and opened
//! to the marketplace alone. A researcher never sees them: they ask for a
//! [`ReleaseRequest`] (the study, a [`Statistic`] of its measures, an [`Epsilon`] and
//! a [`Mechanism`]) and get a [`Release`] whose counts carry noise drawn by OpenDP's
//! measurements with OpenDP's cryptographically secure sampler.
//!
//! # Privacy unit and sensitivity
//!
//! Neighbouring data sets differ by one settled enrollment (added or removed). The
//! measurements are OpenDP's over [`SymmetricDistance`](opendp::metrics::SymmetricDistance)
//! at distance 1: a histogram or table is `make_count_by_categories` (one enrollment
//! moves one cell by one) then noise on the vector; a bounded sum is `make_clamp` then
//! `make_sum` (sensitivity its width) composed by `make_composition` with `make_count`
//! of the enrollments that have a value, each with its own noise.
//!
//! # Accounting
//!
//! Epsilon is held exactly, as a whole number of micro-epsilons ([`Epsilon`]), delta
//! as whole nano-deltas ([`Spend`]); budgets ([`PrivacyBudget`]) add and compare
//! integers, so no float drift can let a study overspend. The privacy loss itself is
//! OpenDP's: [`prepare`] finds the smallest noise scale whose loss, by the privacy map
//! of the whole measurement (the composition included), is at most the epsilon to be
//! charged, compared exactly as rationals, and refuses if none is.
//!
//! The discrete Gaussian mechanism is (epsilon, delta)-DP: OpenDP's zCDP map is
//! converted to approximate DP at [`GAUSSIAN_DELTA_NANOS`] per release, and that delta
//! is charged too. Releases compose by adding epsilons and deltas (basic composition),
//! which bounds the loss of any sequence of them.
//!
//! # Order of operations (caching, and sled transactions)
//!
//! Drawing noise is a side effect: it must never happen inside a sled transaction
//! closure, which sled may run more than once. The store ([`crate::releases`]) looks
//! the request up in its cache, prepares and draws outside any transaction, then in
//! ONE transaction stores the release unless a concurrent request stored one first,
//! charging both budgets (a refusal writes nothing) and appending the audit entry.
//!
//! # Post-processing
//!
//! Negative draws read as 0, a mean is a noisy sum over a noisy count, and
//! [`PostProcess::I2b2`] shows what i2b2 and SHRINE show: a count below 10 as `"<10"`,
//! any other rounded to the nearest multiple of 5. Post-processing a DP release costs
//! no privacy: it is applied to the cached release when it is answered, never charged.
//!
//! # Modules
//!
//! - [`budget`]: [`Epsilon`], held exactly, [`Spend`] and [`PrivacyBudget`] (accounting);
//! - [`request`]: what a researcher asks ([`ReleaseRequest`], its [`ReleaseKey`]) and the
//!   store draws ([`Release`]), with the post-processed display;
//! - [`mechanism`]: OpenDP's measurements, calibrated and checked ([`prepare`],
//!   [`PreparedRelease`]).

pub mod budget;
pub mod mechanism;
pub mod request;
#[cfg(test)]
mod tests;

pub use budget::{
    BudgetOwner, Epsilon, PrivacyBudget, Spend, MAX_EPSILON, MICROS_PER_EPSILON,
    MIN_RELEASE_EPSILON,
};
pub use mechanism::{prepare, PreparedRelease, ReleaseData, GAUSSIAN_DELTA_NANOS};
pub use request::{display, i2b2_display, Release, ReleaseKey, ReleaseRequest};
pub use zkcohort_verifier::records::{
    Mechanism, PostProcess, ReleasedSum, ReleasedValues, Statistic,
};

/// Errors of differentially private releases and privacy budgets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpError {
    /// Epsilon is not a finite number above zero, or is outside the allowed range.
    #[error("epsilon must be a finite number above 0 and at most {MAX_EPSILON}, got {0}")]
    InvalidEpsilon(String),
    /// Charging would take a budget past its cap; nothing was charged.
    #[error("{owner} privacy budget cannot pay {requested}: {remaining} left of {cap}")]
    BudgetExceeded {
        /// Whose budget refused.
        owner: BudgetOwner,
        /// What the release would charge.
        requested: Spend,
        /// What the budget still allows.
        remaining: Spend,
        /// The budget's cap.
        cap: Spend,
    },
    /// OpenDP's privacy map reported a loss above the epsilon to be charged at every
    /// scale tried; the release is refused rather than under-charged.
    #[error("OpenDP's privacy loss {opendp} exceeds the epsilon charged {charged}")]
    ChargeBelowLoss {
        /// OpenDP's privacy map at one enrollment.
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
