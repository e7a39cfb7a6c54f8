//! What a researcher asks for ([`ReleaseRequest`], keyed by [`ReleaseKey`]) and what
//! they get back ([`Release`]), with the post-processed display.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Epsilon, Measure, Mechanism, PostProcess, ReleasedCount};

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
    /// The released values: one for [`Measure::Count`].
    pub counts: Vec<ReleasedCount>,
    /// The epsilon charged.
    pub epsilon: Epsilon,
    /// OpenDP's privacy loss at sensitivity 1 (at most `epsilon`, exactly).
    pub opendp_epsilon: f64,
    /// The delta of the guarantee: 0 for discrete Laplace, [`GAUSSIAN_DELTA`](super::GAUSSIAN_DELTA) for the
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
