//! Exact decimal constants for queries: `6.5` stays 65 tenths, so fixed-point
//! thresholds are not bent by binary floating point.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most decimal places a query constant may carry.
const MAX_DECIMALS: u32 = 9;

/// A decimal number: `digits / 10^decimals`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Decimal {
    digits: i64,
    decimals: u32,
}

impl Decimal {
    /// `digits / 10^decimals`.
    ///
    /// # Panics
    /// When `decimals` exceeds 9 (a programming error: parsing never produces it).
    pub fn new(digits: i64, decimals: u32) -> Self {
        assert!(
            decimals <= MAX_DECIMALS,
            "at most {MAX_DECIMALS} decimal places"
        );
        Decimal { digits, decimals }.normalized()
    }

    /// Trailing zero decimals dropped, so equal values compare equal (`6.50` is `6.5`).
    fn normalized(mut self) -> Self {
        while self.decimals > 0 && self.digits % 10 == 0 {
            self.digits /= 10;
            self.decimals -= 1;
        }
        self
    }

    /// The value with exactly `scale` decimals as an integer, or `None` when it has
    /// more significant decimals than that (or overflows).
    pub fn to_fixed(self, scale: u32) -> Option<i64> {
        if self.decimals <= scale {
            self.digits
                .checked_mul(10_i64.checked_pow(scale - self.decimals)?)
        } else {
            let divisor = 10_i64.pow(self.decimals - scale);
            (self.digits % divisor == 0).then_some(self.digits / divisor)
        }
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.digits == 0
    }

    pub(crate) fn digits(self) -> i64 {
        self.digits
    }

    pub(crate) fn decimals(self) -> u32 {
        self.decimals
    }

    /// The value as a float, for unit conversion.
    pub fn to_f64(self) -> f64 {
        self.digits as f64 / 10_f64.powi(self.decimals as i32)
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let common = self.decimals.max(other.decimals);
        let scaled =
            |value: &Decimal| i128::from(value.digits) * 10_i128.pow(common - value.decimals);
        scaled(self).cmp(&scaled(other))
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.decimals == 0 {
            return write!(f, "{}", self.digits);
        }
        let one = 10_u64.pow(self.decimals);
        let sign = if self.digits < 0 { "-" } else { "" };
        let magnitude = self.digits.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0width$}",
            magnitude / one,
            magnitude % one,
            width = self.decimals as usize
        )
    }
}

impl FromStr for Decimal {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{text:?} is not a number");
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let all_digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(fraction)
            || (unsigned.contains('.') && fraction.is_empty())
        {
            return Err(invalid());
        }
        let decimals = u32::try_from(fraction.len()).map_err(|_| invalid())?;
        if decimals > MAX_DECIMALS {
            return Err(format!(
                "{text:?} has more than {MAX_DECIMALS} decimal places"
            ));
        }
        let magnitude: i64 = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| format!("{text:?} is too large"))?;
        Ok(Decimal {
            digits: if negative { -magnitude } else { magnitude },
            decimals,
        }
        .normalized())
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.to_fixed(0) {
            Some(whole) if self.decimals == 0 => serializer.serialize_i64(whole),
            _ => serializer.serialize_f64(self.to_f64()),
        }
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A JSON number prints in its shortest round-trip form, which is the decimal the
        // author wrote (`6.5`, not 6.4999…); strings are accepted for exactness.
        let value = serde_json::Value::deserialize(deserializer)?;
        let text = match value {
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::String(text) => text,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a number, found {other}"
                )))
            }
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_scales_exactly() {
        let value: Decimal = "6.5".parse().unwrap();
        assert_eq!(value.to_fixed(1), Some(65));
        assert_eq!(value.to_fixed(2), Some(650));
        assert_eq!(value.to_fixed(0), None);
        assert_eq!("6.50".parse::<Decimal>().unwrap(), value);
        assert!(
            "6.45".parse::<Decimal>().unwrap() < value && value < "7".parse::<Decimal>().unwrap()
        );
        assert_eq!("-1.25".parse::<Decimal>().unwrap().to_fixed(2), Some(-125));
        for bad in [
            "",
            "-",
            "1.",
            ".5",
            "1e3",
            "abc",
            "1.2.3",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<Decimal>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(digits in -1_000_000_000_i64..1_000_000_000, decimals in 0_u32..=6) {
            let value = Decimal::new(digits, decimals);
            prop_assert_eq!(value.to_string().parse::<Decimal>().unwrap(), value);
        }
    }
}
