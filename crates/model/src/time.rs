//! Time inside shotfix: an integer count of nanoseconds since the Unix epoch, UTC.
//!
//! Strings exist only at the edges (`parse_rfc3339`, `to_rfc3339`). Differences
//! between two instants are taken in integer nanoseconds first and only then
//! turned into seconds, so no precision is lost to large epoch offsets.

use std::fmt;

/// An instant, as nanoseconds since 1970-01-01T00:00:00Z (UTC, no leap seconds).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct UtcNanos(pub i64);

/// An RFC 3339 timestamp that could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bad UTC timestamp {text:?}: expected RFC 3339 such as 2018-12-19T00:49:27.467Z")]
pub struct TimeParseError {
    text: String,
}

impl UtcNanos {
    /// Reads an RFC 3339 timestamp (any offset; fractional seconds to the nanosecond).
    pub fn parse_rfc3339(text: &str) -> Result<UtcNanos, TimeParseError> {
        let err = || TimeParseError {
            text: text.to_owned(),
        };
        let dt = chrono::DateTime::parse_from_rfc3339(text.trim()).map_err(|_| err())?;
        dt.timestamp_nanos_opt().map(UtcNanos).ok_or_else(err)
    }

    /// Formats as RFC 3339 UTC with nanosecond precision, trailing zeros trimmed to
    /// milli-, micro- or nanoseconds (`2018-12-19T00:49:26.612345Z`).
    pub fn to_rfc3339(self) -> String {
        let dt = chrono::DateTime::from_timestamp_nanos(self.0);
        let nanos = dt.timestamp_subsec_nanos();
        let format = if nanos.is_multiple_of(1_000_000) {
            chrono::SecondsFormat::Millis
        } else if nanos.is_multiple_of(1_000) {
            chrono::SecondsFormat::Micros
        } else {
            chrono::SecondsFormat::Nanos
        };
        dt.to_rfc3339_opts(format, true)
    }

    /// `self - earlier`, in seconds.
    pub fn seconds_since(self, earlier: UtcNanos) -> f64 {
        (self.0 - earlier.0) as f64 * 1e-9
    }

    /// This instant moved by `seconds` (rounded to the nearest nanosecond),
    /// held at the ends of the representable range (about 1677–2262) rather
    /// than wrapping.
    pub fn offset_by_seconds(self, seconds: f64) -> UtcNanos {
        UtcNanos(self.0.saturating_add((seconds * 1e9).round() as i64))
    }
}

impl fmt::Display for UtcNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_stop_at_the_ends_of_the_range() {
        assert_eq!(
            UtcNanos(i64::MAX - 5).offset_by_seconds(30.0),
            UtcNanos(i64::MAX)
        );
        assert_eq!(
            UtcNanos(i64::MIN + 5).offset_by_seconds(-30.0),
            UtcNanos(i64::MIN)
        );
        assert_eq!(UtcNanos(7).offset_by_seconds(1e-9), UtcNanos(8));
    }

    #[test]
    fn round_trips_with_nanoseconds() {
        let t = UtcNanos::parse_rfc3339("2018-12-19T00:49:26.612345678Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2018-12-19T00:49:26.612345678Z");
        let ms = UtcNanos::parse_rfc3339("2018-12-19T00:49:27.467Z").unwrap();
        assert_eq!(ms.to_rfc3339(), "2018-12-19T00:49:27.467Z");
        assert_eq!(ms.seconds_since(t), 0.854654322);
    }

    #[test]
    fn rejects_garbage() {
        assert!(UtcNanos::parse_rfc3339("yesterday").is_err());
        assert!(UtcNanos::parse_rfc3339("2018-12-19 00:49").is_err());
    }

    proptest::proptest! {
        #[test]
        fn formatting_round_trips(ns in -2_000_000_000_000_000_000i64..4_000_000_000_000_000_000i64) {
            let t = UtcNanos(ns);
            proptest::prop_assert_eq!(UtcNanos::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
        }
    }
}
