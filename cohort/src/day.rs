//! Calendar days as integers: every date in a record summary is a day count since
//! 1970-01-01, because the circuit compares integers, not calendar strings.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The earliest day a summary or query may mention (1900-01-01).
pub const DAY_MIN: Day = Day(-25_567);
/// The latest day a summary or query may mention (2199-12-31).
pub const DAY_MAX: Day = Day(84_005);

/// A calendar day, counted from 1970-01-01 (day 0); earlier days are negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Day(pub i32);

/// A date that could not be read or lies outside [`DAY_MIN`], [`DAY_MAX`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DayError(String);

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a valid date")
}

impl Day {
    /// The day of a calendar date.
    ///
    /// # Errors
    /// When the date lies outside the supported span 1900-01-01 ..= 2199-12-31.
    pub fn from_date(date: NaiveDate) -> Result<Self, DayError> {
        let days = (date - epoch()).num_days();
        let day = i32::try_from(days)
            .ok()
            .map(Day)
            .filter(|day| (DAY_MIN..=DAY_MAX).contains(day));
        day.ok_or_else(|| {
            DayError(format!(
                "{date} is outside the supported dates 1900-01-01 to 2199-12-31"
            ))
        })
    }

    /// The calendar date of this day.
    pub fn date(self) -> NaiveDate {
        let offset = Days::new(u64::from(self.0.unsigned_abs()));
        if self.0 >= 0 {
            epoch() + offset
        } else {
            epoch() - offset
        }
    }

    /// Reads the date part of a FHIR `date` or `dateTime` (`2019-05-02`,
    /// `2019-05-02T10:00:00+02:00`). The local calendar date is kept: a summary
    /// counts days, and the issuer's local day is the one the record means.
    ///
    /// # Errors
    /// When the text does not start with a full `YYYY-MM-DD` date or lies outside the supported span.
    pub fn parse_fhir(text: &str) -> Result<Self, DayError> {
        let date_part = text.get(..10).unwrap_or(text);
        let date = NaiveDate::parse_from_str(date_part, "%Y-%m-%d")
            .map_err(|_| DayError(format!("{text:?} is not a FHIR date (YYYY-MM-DD…)")))?;
        Self::from_date(date)
    }

    /// This day moved by `days` (negative moves back), clamped to the supported span.
    pub fn offset(self, days: i64) -> Day {
        let moved = i64::from(self.0).saturating_add(days);
        Day(moved.clamp(i64::from(DAY_MIN.0), i64::from(DAY_MAX.0)) as i32)
    }

    /// The same calendar day `years` years earlier (29 February becomes 28 February),
    /// or `None` when that falls before the supported span.
    pub fn years_before(self, years: u32) -> Option<Day> {
        self.date()
            .checked_sub_months(Months::new(years.saturating_mul(12)))
            .and_then(|date| Day::from_date(date).ok())
    }

    /// Whole years from `self` (a birth date) to `on`: the age on that day.
    pub fn years_until(self, on: Day) -> i32 {
        let (born, on) = (self.date(), on.date());
        let mut years = on.year() - born.year();
        if (on.month(), on.day()) < (born.month(), born.day()) {
            years -= 1;
        }
        years
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.date().format("%Y-%m-%d"))
    }
}

impl FromStr for Day {
    type Err = DayError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| DayError(format!("{text:?} is not a date: write YYYY-MM-DD")))?;
        Self::from_date(date)
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_the_documented_dates() {
        assert_eq!(DAY_MIN.to_string(), "1900-01-01");
        assert_eq!(DAY_MAX.to_string(), "2199-12-31");
        assert!("1899-12-31".parse::<Day>().is_err());
        assert!("2200-01-01".parse::<Day>().is_err());
    }

    #[test]
    fn fhir_date_times_keep_the_local_day() {
        assert_eq!(
            Day::parse_fhir("2019-05-02T23:37:54-05:00")
                .unwrap()
                .to_string(),
            "2019-05-02"
        );
        assert_eq!(Day::parse_fhir("1970-01-02").unwrap(), Day(1));
        assert_eq!(Day::parse_fhir("1969-12-31").unwrap(), Day(-1));
        assert!(Day::parse_fhir("2019-05").is_err());
        assert!(Day::parse_fhir("yesterday").is_err());
    }

    #[test]
    fn ages_count_whole_years_and_leap_days() {
        let born: Day = "1980-02-29".parse().unwrap();
        assert_eq!(born.years_until("2020-02-28".parse().unwrap()), 39);
        assert_eq!(born.years_until("2020-02-29".parse().unwrap()), 40);
        let index: Day = "2021-02-28".parse().unwrap();
        assert_eq!(index.years_before(1).unwrap().to_string(), "2020-02-28");
        assert_eq!(
            index.years_before(122),
            None,
            "1899 is before the supported span"
        );
        assert_eq!(
            "2020-02-29"
                .parse::<Day>()
                .unwrap()
                .years_before(1)
                .unwrap()
                .to_string(),
            "2019-02-28"
        );
    }
}
