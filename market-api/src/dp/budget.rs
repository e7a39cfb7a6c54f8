//! Privacy accounting: [`Epsilon`] as a whole number of micro-epsilons, and the
//! [`PrivacyBudget`] a study spends from. Integers only, so no float drift lets a
//! budget overspend.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DpError;

pub use zkcohort_verifier::records::{MAX_EPSILON, MICROS_PER_EPSILON};

/// The smallest epsilon one release may spend: below it the noise drowns any cohort
/// the marketplace serves, and it bounds how many charges a researcher's window holds.
pub const MIN_RELEASE_EPSILON: Epsilon = Epsilon {
    micros: zkcohort_verifier::records::MIN_RELEASE_EPSILON_MICROS,
};

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
    pub(super) fn covers(self, loss: f64) -> bool {
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
pub(super) fn f64_at_most_micros(x: f64, micros: u64) -> bool {
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

/// A privacy loss in both parameters: epsilon, and delta in whole nano-deltas (only
/// discrete Gaussian releases spend delta).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// The epsilon.
    pub epsilon: Epsilon,
    /// The delta, in units of 10^-9.
    pub delta_nanos: u64,
}

impl Spend {
    /// Nothing spent.
    pub const ZERO: Spend = Spend {
        epsilon: Epsilon::ZERO,
        delta_nanos: 0,
    };

    fn saturating_sub(self, other: Spend) -> Spend {
        Spend {
            epsilon: Epsilon {
                micros: self.epsilon.micros.saturating_sub(other.epsilon.micros),
            },
            delta_nanos: self.delta_nanos.saturating_sub(other.delta_nanos),
        }
    }

    /// Both parameters added, `None` on overflow.
    pub fn checked_add(self, other: Spend) -> Option<Spend> {
        Some(Spend {
            epsilon: Epsilon {
                micros: self.epsilon.micros.checked_add(other.epsilon.micros)?,
            },
            delta_nanos: self.delta_nanos.checked_add(other.delta_nanos)?,
        })
    }

    /// Is every parameter at most `cap`'s?
    fn within(self, cap: Spend) -> bool {
        self.epsilon <= cap.epsilon && self.delta_nanos <= cap.delta_nanos
    }
}

impl fmt::Display for Spend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epsilon {}", self.epsilon)?;
        if self.delta_nanos > 0 {
            write!(f, " and delta {}e-9", self.delta_nanos)?;
        }
        Ok(())
    }
}

/// Whose budget a charge draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetOwner {
    /// The study's own budget (the researcher's choice, at most the operator's cap).
    Study,
    /// The researcher's budget over the operator's rolling window, across all their
    /// studies.
    Researcher,
}

impl fmt::Display for BudgetOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BudgetOwner::Study => "the study's",
            BudgetOwner::Researcher => "the researcher's",
        })
    }
}

/// A privacy budget: what a study (or a researcher, in a window) may spend, and what it
/// has spent. Plain data, so the store persists it; every change goes through
/// [`PrivacyBudget::charge`], which refuses to pass the cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivacyBudget {
    owner: BudgetOwner,
    cap: Spend,
    spent: Spend,
}

impl PrivacyBudget {
    /// A budget of `cap` of which `spent` is spent (possibly more than the cap, for a
    /// cap the operator lowered: nothing more can then be charged).
    pub fn new(owner: BudgetOwner, cap: Spend, spent: Spend) -> Self {
        PrivacyBudget { owner, cap, spent }
    }

    /// What this budget allows in all.
    pub fn cap(&self) -> Spend {
        self.cap
    }

    /// What was charged so far.
    pub fn spent(&self) -> Spend {
        self.spent
    }

    /// What is still available.
    pub fn remaining(&self) -> Spend {
        self.cap.saturating_sub(self.spent)
    }

    /// Would charging `spend` fit?
    ///
    /// # Errors
    /// [`DpError::BudgetExceeded`] if it would pass the cap in either parameter.
    pub fn check(&self, spend: Spend) -> Result<(), DpError> {
        self.after(spend).map(|_| ())
    }

    /// Charges `spend`, or refuses and leaves the budget unchanged.
    ///
    /// # Errors
    /// [`DpError::BudgetExceeded`] if it would pass the cap in either parameter.
    pub fn charge(&mut self, spend: Spend) -> Result<(), DpError> {
        self.spent = self.after(spend)?;
        Ok(())
    }

    fn after(&self, spend: Spend) -> Result<Spend, DpError> {
        match self.spent.checked_add(spend) {
            Some(after) if after.within(self.cap) => Ok(after),
            _ => Err(DpError::BudgetExceeded {
                owner: self.owner,
                requested: spend,
                remaining: self.remaining(),
                cap: self.cap,
            }),
        }
    }
}
