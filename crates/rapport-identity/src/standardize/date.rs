//! Dates to ISO 8601 (`YYYY-MM-DD`) from the forms people and exports commonly use. Numeric
//! forms with the day and month both at most 12 are read by a configured [`DateOrder`].

use serde::{Deserialize, Serialize};

use super::text::fold;
use crate::error::ValueProblem;

/// How to read an ambiguous `05/03/2024`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOrder {
    /// 05/03/2024 is 5 March (most of the world).
    #[default]
    DayFirst,
    /// 05/03/2024 is 3 May (United States).
    MonthFirst,
}

/// A calendar date that exists (leap years checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IsoDate {
    year: i32,
    month: u32,
    day: u32,
}

const MONTHS: &[(&str, u32)] = &[
    ("january", 1),
    ("february", 2),
    ("march", 3),
    ("april", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("september", 9),
    ("sept", 9),
    ("october", 10),
    ("november", 11),
    ("december", 12),
];

fn month_from_word(word: &str) -> Option<u32> {
    let w = word.trim_end_matches('.');
    if w.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .find(|(name, _)| name.starts_with(w) || *name == w)
        .map(|(_, m)| *m)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

impl IsoDate {
    /// A date from its parts, if it exists (years 1000-9999).
    pub fn new(year: i32, month: u32, day: u32) -> Option<Self> {
        ((1000..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month))
        .then_some(Self { year, month, day })
    }

    /// Parses the accepted forms: `2024-03-05`, `2024/03/05`, `20240305`, ISO date-times,
    /// `05/03/2024` / `05-03-2024` / `05.03.2024` (by `order`), `5 March 2024`, `5th Mar 2024`,
    /// `March 5, 2024`, `05-Mar-2024`.
    pub fn parse(raw: &str, order: DateOrder) -> Result<Self, ValueProblem> {
        let text = fold(raw);
        if text.is_empty() {
            return Err(ValueProblem::Empty);
        }
        let bad = || ValueProblem::BadDate(raw.trim().to_owned());
        // ISO date-time: keep the date part.
        let text = match text.split_once('t') {
            Some((d, t)) if d.len() == 10 && t.starts_with(|c: char| c.is_ascii_digit()) => {
                d.to_owned()
            }
            _ => text,
        };
        if text.len() == 8 && text.chars().all(|c| c.is_ascii_digit()) {
            let y = text[..4].parse().map_err(|_| bad())?;
            let m = text[4..6].parse().map_err(|_| bad())?;
            let d = text[6..].parse().map_err(|_| bad())?;
            return Self::new(y, m, d).ok_or_else(bad);
        }
        let parts: Vec<&str> = text
            .split(|c: char| c == '/' || c == '-' || c == '.' || c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .collect();
        if parts.len() != 3 {
            return Err(bad());
        }
        let num = |s: &str| -> Option<u32> {
            let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let suffix = &s[digits.len()..];
            let ok_suffix = matches!(suffix, "" | "st" | "nd" | "rd" | "th");
            (ok_suffix && !digits.is_empty() && digits.len() <= 4)
                .then(|| digits.parse().ok())
                .flatten()
        };
        let year = |s: &str| -> Option<i32> {
            (s.len() == 4 && s.chars().all(|c| c.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let date = match (parts[0], parts[1], parts[2]) {
            (a, b, c) if a.len() == 4 => {
                let y = year(a).ok_or_else(bad)?;
                let m = num(b).or_else(|| month_from_word(b)).ok_or_else(bad)?;
                Self::new(y, m, num(c).ok_or_else(bad)?)
            }
            (a, b, c) if month_from_word(a).is_some() => {
                let m = month_from_word(a).ok_or_else(bad)?;
                Self::new(year(c).ok_or_else(bad)?, m, num(b).ok_or_else(bad)?)
            }
            (a, b, c) if month_from_word(b).is_some() => {
                let m = month_from_word(b).ok_or_else(bad)?;
                Self::new(year(c).ok_or_else(bad)?, m, num(a).ok_or_else(bad)?)
            }
            (a, b, c) => {
                let (x, y2, yr) = (
                    num(a).ok_or_else(bad)?,
                    num(b).ok_or_else(bad)?,
                    year(c).ok_or_else(bad)?,
                );
                // An unambiguous value beats the configured order.
                let (d, m) = if x > 12 {
                    (x, y2)
                } else if y2 > 12 {
                    (y2, x)
                } else {
                    match order {
                        DateOrder::DayFirst => (x, y2),
                        DateOrder::MonthFirst => (y2, x),
                    }
                };
                Self::new(yr, m, d)
            }
        };
        date.ok_or_else(bad)
    }

    pub fn year(&self) -> i32 {
        self.year
    }
    pub fn month(&self) -> u32 {
        self.month
    }
    pub fn day(&self) -> u32 {
        self.day
    }

    /// Days since 1970-01-01 (negative before), for date-distance comparisons.
    pub fn days_since_epoch(&self) -> i64 {
        // Howard Hinnant's days-from-civil algorithm.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}

impl std::fmt::Display for IsoDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(raw: &str, order: DateOrder) -> String {
        IsoDate::parse(raw, order).expect(raw).to_string()
    }

    #[test]
    fn accepted_forms() {
        let d = DateOrder::DayFirst;
        for raw in [
            "2024-03-05",
            "2024/03/05",
            "20240305",
            "2024-03-05T10:11:12Z",
            "05/03/2024",
            "5.3.2024",
            "5 March 2024",
            "5th Mar 2024",
            "March 5, 2024",
            "mar 5 2024",
            "05-Mar-2024",
        ] {
            assert_eq!(iso(raw, d), "2024-03-05", "{raw}");
        }
        assert_eq!(iso("05/03/2024", DateOrder::MonthFirst), "2024-05-03");
        assert_eq!(iso("13/03/2024", DateOrder::MonthFirst), "2024-03-13");
        assert_eq!(iso("03/13/2024", DateOrder::DayFirst), "2024-03-13");
    }

    #[test]
    fn impossible_dates_are_refused() {
        let d = DateOrder::DayFirst;
        for raw in [
            "2023-02-29",
            "31/04/2024",
            "2024-13-01",
            "yesterday",
            "5 Smarch 2024",
            "1/2/24",
            "",
        ] {
            assert!(IsoDate::parse(raw, d).is_err(), "{raw}");
        }
        assert!(IsoDate::parse("2024-02-29", d).is_ok());
    }

    #[test]
    fn epoch_days() {
        assert_eq!(
            IsoDate::new(1970, 1, 1).map(|d| d.days_since_epoch()),
            Some(0)
        );
        assert_eq!(
            IsoDate::new(2000, 3, 1).map(|d| d.days_since_epoch()),
            Some(11_017)
        );
        assert_eq!(
            IsoDate::new(1969, 12, 31).map(|d| d.days_since_epoch()),
            Some(-1)
        );
    }
}
