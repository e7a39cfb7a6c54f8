//! OpenDP's measurements for a release: [`prepare`] finds the smallest noise scale
//! whose privacy loss, by OpenDP's privacy map of the whole measurement at one added
//! or removed enrollment, is at most the epsilon charged (compared exactly); then
//! [`PreparedRelease::draw`] runs the measurement on the data.

use opendp::combinators::{
    make_chain_mt, make_chain_tt, make_composition, make_fix_delta, make_zCDP_to_approxDP,
};
use opendp::core::Measurement;
use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::{make_gaussian, make_laplace};
use opendp::measures::{MaxDivergence, ZeroConcentratedDivergence};
use opendp::metrics::{AbsoluteDistance, L1Distance, L2Distance, SymmetricDistance};
use opendp::transformations::{make_clamp, make_count, make_count_by_categories, make_sum};

use super::{DpError, Epsilon, Mechanism, ReleaseRequest, MIN_RELEASE_EPSILON};

/// The delta of one discrete Gaussian release, in nano-deltas: its guarantee is
/// (epsilon, 10^-9)-DP. Deltas add up across Gaussian releases.
pub const GAUSSIAN_DELTA_NANOS: u64 = 1;

/// What a release is drawn from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseData {
    /// Each settled enrollment's category, below `categories` (a histogram's bin, a
    /// table's cell).
    Categories {
        /// How many categories there are.
        categories: usize,
        /// The category of each enrollment.
        of_each: Vec<u64>,
    },
    /// For each settled enrollment that has a value, how far above the lower bound its
    /// clamped value is: at most `width`.
    BoundedSum {
        /// The bounds' distance (`high - low`), in stored units.
        width: i64,
        /// Each value minus the lower bound.
        above_low: Vec<i64>,
    },
}

/// A request whose measurement OpenDP has built and whose privacy loss is checked:
/// everything before the randomness. Preparing draws no noise.
#[derive(Clone, Debug)]
pub struct PreparedRelease {
    request: ReleaseRequest,
    scale: f64,
    opendp_epsilon: f64,
}

/// Calibrates the measurement of `request` over data shaped as `data` (its values are
/// not read, no noise is drawn).
///
/// # Errors
/// [`DpError::InvalidEpsilon`] below [`MIN_RELEASE_EPSILON`]; [`DpError::ChargeBelowLoss`]
/// if no scale keeps OpenDP's loss within the epsilon; [`DpError::OpenDp`] if OpenDP
/// refuses.
pub fn prepare(request: &ReleaseRequest, data: &ReleaseData) -> Result<PreparedRelease, DpError> {
    if request.epsilon < MIN_RELEASE_EPSILON {
        return Err(DpError::InvalidEpsilon(format!(
            "{} (a release spends at least {MIN_RELEASE_EPSILON})",
            request.epsilon
        )));
    }
    let mechanism = request.mechanism;
    let (scale, opendp_epsilon) = calibrate(request.epsilon, |scale| loss(mechanism, data, scale))?;
    Ok(PreparedRelease {
        request: request.clone(),
        scale,
        opendp_epsilon,
    })
}

impl PreparedRelease {
    /// The request.
    pub fn request(&self) -> &ReleaseRequest {
        &self.request
    }

    /// The noise scale of each count.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// OpenDP's privacy loss at one enrollment added or removed (at most the epsilon,
    /// exactly).
    pub fn opendp_epsilon(&self) -> f64 {
        self.opendp_epsilon
    }

    /// Runs the measurement on `data`: one noisy count per category, or for a bounded
    /// sum the noisy sum above the lower bound and the noisy count of values. Negative
    /// draws read as 0 (post-processing). Call it outside any sled transaction.
    ///
    /// # Errors
    /// [`DpError::OpenDp`] if sampling fails (for instance, the system has no entropy).
    pub fn draw(&self, data: &ReleaseData) -> Result<Vec<u64>, DpError> {
        let noisy = match (self.request.mechanism, data) {
            (
                Mechanism::DiscreteLaplace,
                ReleaseData::Categories {
                    categories,
                    of_each,
                },
            ) => counts_laplace(*categories, self.scale)?.invoke(of_each)?,
            (
                Mechanism::DiscreteGaussian,
                ReleaseData::Categories {
                    categories,
                    of_each,
                },
            ) => counts_gaussian(*categories, self.scale)?.invoke(of_each)?,
            (Mechanism::DiscreteLaplace, ReleaseData::BoundedSum { width, above_low }) => {
                sum_laplace(*width, self.scale)?.invoke(above_low)?
            }
            (Mechanism::DiscreteGaussian, ReleaseData::BoundedSum { width, above_low }) => {
                sum_gaussian(*width, self.scale)?.invoke(above_low)?
            }
        };
        Ok(noisy.into_iter().map(|v| v.max(0).unsigned_abs()).collect())
    }
}

type Rows<T> = VectorDomain<AtomDomain<T>>;
type Counts<MO> = Measurement<Rows<u64>, SymmetricDistance, MO, Vec<i64>>;
type BoundedSum<MO> = Measurement<Rows<i64>, SymmetricDistance, MO, Vec<i64>>;

fn rows<T: opendp::traits::CheckAtom>() -> Rows<T> {
    VectorDomain::new(AtomDomain::default())
}

/// Counts by category (OpenDP's `make_count_by_categories`), discrete Laplace noise on
/// each: one enrollment changes one count by one.
pub(super) fn counts_laplace(
    categories: usize,
    scale: f64,
) -> Result<Counts<MaxDivergence>, DpError> {
    let counts = make_count_by_categories::<L1Distance<i64>, u64, i64>(
        rows(),
        SymmetricDistance,
        (0..categories as u64).collect(),
        false,
    )?;
    let noise = make_laplace(
        counts.output_domain.clone(),
        counts.output_metric.clone(),
        scale,
        None,
    )?;
    Ok(make_chain_mt(&noise, &counts)?)
}

/// Counts by category, discrete Gaussian noise on each (zCDP).
pub(super) fn counts_gaussian(
    categories: usize,
    scale: f64,
) -> Result<Counts<ZeroConcentratedDivergence>, DpError> {
    let counts = make_count_by_categories::<L2Distance<i64>, u64, i64>(
        rows(),
        SymmetricDistance,
        (0..categories as u64).collect(),
        false,
    )?;
    let noise = make_gaussian(
        counts.output_domain.clone(),
        counts.output_metric.clone(),
        scale,
        None,
    )?;
    Ok(make_chain_mt(&noise, &counts)?)
}

/// The noise scale of a bounded sum of `width`: the count's scale times the sum's
/// sensitivity (at least 1).
fn sum_scale(width: i64, scale: f64) -> f64 {
    scale * width.max(1) as f64
}

/// Scalar noise on an `i64` at a scale: OpenDP's `make_laplace` or `make_gaussian`.
type ScalarNoise<MO> = fn(
    AtomDomain<i64>,
    AbsoluteDistance<i64>,
    f64,
    Option<i32>,
) -> opendp::error::Fallible<
    Measurement<AtomDomain<i64>, AbsoluteDistance<i64>, MO, i64>,
>;

/// A bounded sum (clamp into `[0, width]`, then sum) and the count of values, each with
/// `noise`, composed by OpenDP.
fn bounded_sum<MO>(
    width: i64,
    scale: f64,
    noise: ScalarNoise<MO>,
) -> Result<BoundedSum<MO>, DpError>
where
    MO: 'static + opendp::combinators::CompositionMeasure,
{
    let clamp = make_clamp(rows(), SymmetricDistance, (0, width.max(0)))?;
    let sum = make_chain_tt(
        &make_sum(clamp.output_domain.clone(), SymmetricDistance)?,
        &clamp,
    )?;
    let noisy_sum = make_chain_mt(
        &noise(
            sum.output_domain.clone(),
            sum.output_metric.clone(),
            sum_scale(width, scale),
            None,
        )?,
        &sum,
    )?;
    let count = make_count::<i64, i64>(rows(), SymmetricDistance)?;
    let noisy_count = make_chain_mt(
        &noise(
            count.output_domain.clone(),
            count.output_metric.clone(),
            scale,
            None,
        )?,
        &count,
    )?;
    Ok(make_composition(vec![noisy_sum, noisy_count])?)
}

/// A bounded sum and the count of values, each with discrete Laplace noise.
pub(super) fn sum_laplace(width: i64, scale: f64) -> Result<BoundedSum<MaxDivergence>, DpError> {
    bounded_sum(width, scale, make_laplace)
}

/// A bounded sum and the count of values, each with discrete Gaussian noise (zCDP).
pub(super) fn sum_gaussian(
    width: i64,
    scale: f64,
) -> Result<BoundedSum<ZeroConcentratedDivergence>, DpError> {
    bounded_sum(width, scale, make_gaussian)
}

/// OpenDP's epsilon of a zCDP measurement converted to approximate DP at the Gaussian
/// delta, at one added or removed enrollment.
fn approximate_epsilon<DI, TO>(
    measurement: Measurement<DI, SymmetricDistance, ZeroConcentratedDivergence, TO>,
) -> Result<f64, DpError>
where
    DI: opendp::core::Domain + 'static,
    TO: 'static,
    (DI, SymmetricDistance): opendp::core::MetricSpace,
{
    let delta = GAUSSIAN_DELTA_NANOS as f64 * 1e-9;
    Ok(make_fix_delta(&make_zCDP_to_approxDP(measurement)?, delta)?
        .map(&1)?
        .0)
}

/// OpenDP's epsilon of the release's measurement at `scale`.
fn loss(mechanism: Mechanism, data: &ReleaseData, scale: f64) -> Result<f64, DpError> {
    match (mechanism, data) {
        (Mechanism::DiscreteLaplace, ReleaseData::Categories { categories, .. }) => {
            Ok(counts_laplace(*categories, scale)?.map(&1)?)
        }
        (Mechanism::DiscreteGaussian, ReleaseData::Categories { categories, .. }) => {
            approximate_epsilon(counts_gaussian(*categories, scale)?)
        }
        (Mechanism::DiscreteLaplace, ReleaseData::BoundedSum { width, .. }) => {
            Ok(sum_laplace(*width, scale)?.map(&1)?)
        }
        (Mechanism::DiscreteGaussian, ReleaseData::BoundedSum { width, .. }) => {
            approximate_epsilon(sum_gaussian(*width, scale)?)
        }
    }
}

/// The smallest scale (to a float step) whose loss is at most `epsilon` exactly, with
/// that loss. Loss falls as the scale grows, for every measurement here.
fn calibrate(
    epsilon: Epsilon,
    loss: impl Fn(f64) -> Result<f64, DpError>,
) -> Result<(f64, f64), DpError> {
    const STEPS: usize = 80;
    let refused = |opendp: f64| DpError::ChargeBelowLoss {
        opendp,
        charged: epsilon,
    };
    // Bracket: `high` is covered, `low` is not.
    let mut high = 1.0_f64;
    let mut high_loss = loss(high)?;
    let mut doublings = 0;
    while !epsilon.covers(high_loss) {
        if doublings == STEPS {
            return Err(refused(high_loss));
        }
        high *= 2.0;
        high_loss = loss(high)?;
        doublings += 1;
    }
    let mut low = high / 2.0;
    let mut halvings = 0;
    loop {
        let low_loss = loss(low)?;
        if !epsilon.covers(low_loss) {
            break;
        }
        if halvings == STEPS {
            return Ok((low, low_loss));
        }
        (high, high_loss) = (low, low_loss);
        low /= 2.0;
        halvings += 1;
    }
    for _ in 0..STEPS {
        let middle = low + (high - low) / 2.0;
        if middle <= low || middle >= high {
            break;
        }
        let middle_loss = loss(middle)?;
        if epsilon.covers(middle_loss) {
            (high, high_loss) = (middle, middle_loss);
        } else {
            low = middle;
        }
    }
    Ok((high, high_loss))
}
