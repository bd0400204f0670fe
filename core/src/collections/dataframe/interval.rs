//! Fixed time intervals written as pandas and Polars write them (`"1h"`,
//! `"15min"`, `"30s"`, `"2D"`, `"500ms"`), for `resample` and time-based
//! `rolling`. Calendar intervals (months, years) are not fixed and are refused.

use super::DataFrameError;
use polars::prelude::{DataType, TimeUnit};

/// Nanoseconds in one of each unit, by the names pandas and Polars use.
const UNITS: &[(&[&str], i64)] = &[
    (&["ns", "N"], 1),
    (&["us", "U", "µs"], 1_000),
    (&["ms", "L"], 1_000_000),
    (&["s", "S"], 1_000_000_000),
    (&["m", "min", "T"], 60_000_000_000),
    (&["h", "H"], 3_600_000_000_000),
    (&["d", "D"], 86_400_000_000_000),
    (&["w", "W"], 7 * 86_400_000_000_000),
];

/// A fixed, positive time interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Interval {
    nanoseconds: i64,
}

impl Interval {
    /// Parses `"15min"`, `"1h30m"` or `"h"` (one of the unit); the error names
    /// the text and the units known.
    pub(super) fn parse(text: &str) -> Result<Interval, DataFrameError> {
        let bad = |why: &str| {
            DataFrameError::Invalid(format!(
                "interval {text:?}: {why} (units: ns, us, ms, s, min or m, h, D or d, W or w)"
            ))
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad("it is empty"));
        }
        let mut total: i64 = 0;
        while !rest.is_empty() {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let count: i64 = if digits == 0 {
                1
            } else {
                rest[..digits]
                    .parse()
                    .map_err(|_| bad("the number is too large"))?
            };
            rest = &rest[digits..];
            let unit_len = rest.len() - rest.trim_start_matches(|c: char| c.is_alphabetic()).len();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let Some(&(_, per)) = UNITS.iter().find(|(names, _)| names.contains(&unit)) else {
                return Err(bad(&if unit.is_empty() {
                    "a number needs a unit".to_string()
                } else {
                    format!("{unit:?} is not a fixed unit")
                }));
            };
            total = count
                .checked_mul(per)
                .and_then(|n| total.checked_add(n))
                .ok_or_else(|| bad("it is too long"))?;
        }
        if total == 0 {
            return Err(bad("it must be longer than zero"));
        }
        Ok(Interval { nanoseconds: total })
    }

    /// The interval in ticks of a `Datetime` column of `dtype`; an interval
    /// finer than the column's unit, or a column that is not a datetime, is
    /// an error naming `column`.
    pub(super) fn ticks(self, dtype: &DataType, column: &str) -> Result<i64, DataFrameError> {
        let per_tick = match dtype {
            DataType::Datetime(TimeUnit::Nanoseconds, _) => 1,
            DataType::Datetime(TimeUnit::Microseconds, _) => 1_000,
            DataType::Datetime(TimeUnit::Milliseconds, _) => 1_000_000,
            other => {
                return Err(DataFrameError::Invalid(format!(
                    "column {column:?} is {other}, not a datetime"
                )))
            }
        };
        if self.nanoseconds % per_tick != 0 {
            return Err(DataFrameError::Invalid(format!(
                "an interval of {} ns is not a whole number of column {column:?}'s ticks ({dtype})",
                self.nanoseconds
            )));
        }
        Ok(self.nanoseconds / per_tick)
    }

    /// The interval as Polars writes it.
    pub(super) fn to_polars(self) -> String {
        format!("{}ns", self.nanoseconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pandas_and_polars_spellings() {
        let ns = |text: &str| Interval::parse(text).unwrap().nanoseconds;
        assert_eq!(ns("1h"), 3_600_000_000_000);
        assert_eq!(ns("H"), 3_600_000_000_000);
        assert_eq!(ns("15min"), 900_000_000_000);
        assert_eq!(ns("15m"), 900_000_000_000);
        assert_eq!(ns("1h30m"), 5_400_000_000_000);
        assert_eq!(ns("2D"), 172_800_000_000_000);
        assert_eq!(ns("500ms"), 500_000_000);
        for bad in [
            "",
            "0s",
            "1mo",
            "1y",
            "3",
            "h1",
            "99999999999999999999s",
            "9999999W",
        ] {
            let error = Interval::parse(bad).unwrap_err().to_string();
            assert!(error.contains(&format!("{bad:?}")), "{bad}: {error}");
        }
    }

    #[test]
    fn ticks_follow_the_column_unit() {
        let ms = DataType::Datetime(TimeUnit::Milliseconds, None);
        assert_eq!(
            Interval::parse("1s").unwrap().ticks(&ms, "t").unwrap(),
            1_000
        );
        assert!(Interval::parse("1us").unwrap().ticks(&ms, "t").is_err());
        let error = Interval::parse("1s")
            .unwrap()
            .ticks(&DataType::Int64, "t")
            .unwrap_err();
        assert!(error.to_string().contains("\"t\""), "{error}");
    }
}
