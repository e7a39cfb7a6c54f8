//! What a researcher asks for ([`ReleaseRequest`], keyed by [`ReleaseKey`]), what the
//! store draws ([`Release`]) and how a released count reads under post-processing.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Epsilon, Mechanism, PostProcess, ReleasedValues, Spend, Statistic};

/// How a noisy count reads under `post_process`.
pub fn display(post_process: PostProcess, noisy: u64) -> String {
    match post_process {
        PostProcess::None => noisy.to_string(),
        PostProcess::I2b2 => i2b2_display(noisy),
    }
}

/// i2b2/SHRINE obfuscated display: `"<10"` below 10, else the nearest multiple of 5.
pub fn i2b2_display(noisy: u64) -> String {
    if noisy < 10 {
        "<10".to_string()
    } else {
        // u64::MAX leaves 0 when divided by 5, so rounding up (a remainder of 3 or 4)
        // never passes it.
        let remainder = noisy % 5;
        let rounded = if remainder >= 3 {
            noisy - remainder + 5
        } else {
            noisy - remainder
        };
        rounded.to_string()
    }
}

/// A researcher's question: a [`Statistic`] of a study, at a privacy loss, with a noise
/// distribution. Post-processing is not part of it: the display of a cached release
/// is free.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The study's id.
    pub study: u64,
    /// What to release.
    pub statistic: Statistic,
    /// The privacy loss to spend, charged to the study and the researcher.
    pub epsilon: Epsilon,
    /// The noise distribution.
    #[serde(default)]
    pub mechanism: Mechanism,
}

/// The deterministic cache key of a [`ReleaseRequest`]: the same request always has
/// the same key, and different requests have different keys (the statistic is written
/// as JSON, whose strings are quoted and escaped).
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
    /// What the release charges: its epsilon, and for the Gaussian its delta.
    pub fn spend(&self) -> Spend {
        Spend {
            epsilon: self.epsilon,
            delta_nanos: match self.mechanism {
                Mechanism::DiscreteLaplace => 0,
                Mechanism::DiscreteGaussian => super::GAUSSIAN_DELTA_NANOS,
            },
        }
    }

    /// The request's cache key: study, statistic, epsilon and mechanism.
    pub fn cache_key(&self) -> ReleaseKey {
        let statistic = serde_json::to_string(&self.statistic)
            .unwrap_or_else(|_| unreachable!("a statistic is strings in an enum"));
        ReleaseKey(format!(
            "dp2/{}/{statistic}/{}/{}",
            self.study,
            self.epsilon.micros(),
            self.mechanism.name(),
        ))
    }
}

/// A differentially private release: what the store caches and the researcher sees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// The request this answers.
    pub request: ReleaseRequest,
    /// The noisy values, with their labels.
    pub values: ReleasedValues,
    /// The epsilon charged.
    pub epsilon: Epsilon,
    /// The delta charged, in nano-deltas: 0 for discrete Laplace,
    /// [`GAUSSIAN_DELTA_NANOS`](super::GAUSSIAN_DELTA_NANOS) for the discrete Gaussian.
    pub delta_nanos: u64,
    /// OpenDP's privacy loss of the whole measurement at one added or removed
    /// enrollment (at most `epsilon`, compared exactly; at `delta` for the Gaussian).
    pub opendp_epsilon: f64,
    /// The noise distribution.
    pub mechanism: Mechanism,
    /// The noise scale of each count (a bounded sum's noise is this times its width).
    pub scale: f64,
}
