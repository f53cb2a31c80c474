//! Timestamps: Rapport stores instants as milliseconds since the Unix epoch and shows them as
//! RFC 3339 with milliseconds in UTC.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Parses an ISO 8601 / RFC 3339 timestamp as Segment's libraries send it. A missing offset is
/// read as UTC, as Segment does; a date alone is midnight UTC.
pub fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(raw, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}

/// Milliseconds since the epoch.
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant `ms` milliseconds after the epoch (clamped to chrono's range).
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// RFC 3339 with milliseconds and `Z`, the one text form Rapport emits.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_sdks_send() {
        let a = parse_timestamp("2024-03-01T10:00:00.123Z").unwrap();
        assert_eq!(format(a), "2024-03-01T10:00:00.123Z");
        let b = parse_timestamp("2024-03-01T12:00:00+02:00").unwrap();
        assert_eq!(format(b), "2024-03-01T10:00:00.000Z");
        assert!(parse_timestamp("2024-03-01T10:00:00").is_some());
        assert!(parse_timestamp("2024-03-01").is_some());
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("2024-13-01T00:00:00Z").is_none());
    }

    #[test]
    fn millis_round_trip() {
        let t = parse_timestamp("2025-01-02T03:04:05.678Z").unwrap();
        assert_eq!(from_millis(to_millis(t)), t);
    }
}
