//! OpenDP's measurements for a release: [`prepare`] calibrates the noise scale so that
//! OpenDP's privacy map at sensitivity 1 is at most the epsilon charged (compared
//! exactly), then [`PreparedRelease::release_count`] draws the noise.

use opendp::combinators::{make_fix_delta, make_zCDP_to_approxDP};
use opendp::core::Measurement;
use opendp::domains::AtomDomain;
use opendp::measurements::{make_gaussian, make_laplace};
use opendp::measures::{MaxDivergence, ZeroConcentratedDivergence};
use opendp::metrics::AbsoluteDistance;

use super::{
    display, DpError, Epsilon, Measure, Mechanism, PostProcess, Release, ReleaseRequest,
    ReleasedCount, MICROS_PER_EPSILON,
};

/// The delta of one discrete Gaussian release: its guarantee is
/// (epsilon, `GAUSSIAN_DELTA`)-DP. Deltas add up across Gaussian releases.
pub const GAUSSIAN_DELTA: f64 = 1e-9;

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
type GaussianScalar =
    Measurement<AtomDomain<i64>, AbsoluteDistance<i64>, ZeroConcentratedDivergence, i64>;

pub(super) fn laplace_scalar(scale: f64) -> Result<LaplaceScalar, DpError> {
    Ok(make_laplace(
        AtomDomain::<i64>::default(),
        AbsoluteDistance::<i64>::default(),
        scale,
        None,
    )?)
}

pub(super) fn gaussian_scalar(scale: f64) -> Result<GaussianScalar, DpError> {
    Ok(make_gaussian(
        AtomDomain::<i64>::default(),
        AbsoluteDistance::<i64>::default(),
        scale,
        None,
    )?)
}

/// OpenDP's epsilon for the discrete Laplace mechanism at `scale`, sensitivity 1.
fn laplace_loss(scale: f64) -> Result<f64, DpError> {
    Ok(laplace_scalar(scale)?.map(&1)?)
}

/// OpenDP's epsilon at [`GAUSSIAN_DELTA`] for the discrete Gaussian at `scale`,
/// sensitivity 1.
fn gaussian_loss(scale: f64) -> Result<f64, DpError> {
    Ok(make_fix_delta(
        &make_zCDP_to_approxDP(gaussian_scalar(scale)?)?,
        GAUSSIAN_DELTA,
    )?
    .map(&1)?
    .0)
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
