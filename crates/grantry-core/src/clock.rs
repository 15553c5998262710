//! Time, injected so expiry, refresh and leases are tested without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A moment, in whole seconds since the Unix epoch (UTC).
///
/// Its own type, so that a count of seconds, a version or a failure count cannot be stored
/// where a moment belongs, nor two moments added. Moments move by `Duration`s (`now + lease`);
/// the distance between two is signed seconds (`expires_at - now`). It has no `Display`, so
/// every place that writes one chooses: RFC 3339 through [`Rfc3339`] in answers, the integer
/// (`unix()`) where a protocol wants seconds (git's `password_expiry_utc`); the stores, and
/// records sealed as JSON, keep the integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix(seconds: i64) -> Timestamp {
        Timestamp(seconds)
    }

    /// Seconds since the Unix epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// `seconds` later, or earlier when negative (a provider's `expires_in`, say), saturating.
    pub const fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds))
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, duration: Duration) -> Timestamp {
        self.plus_seconds(seconds(duration))
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;

    fn sub(self, duration: Duration) -> Timestamp {
        self.plus_seconds(seconds(duration).saturating_neg())
    }
}

/// Signed seconds from `earlier` to `self`.
impl std::ops::Sub for Timestamp {
    type Output = i64;

    fn sub(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Whole seconds of a setting's `Duration`, to compare with the distance between `Timestamp`s.
pub fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| Timestamp(seconds(since)))
            .unwrap_or(Timestamp(0))
    }
}

/// Real time plus an offset a test moves forward.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset: AtomicI64,
}

impl ManualClock {
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        SystemClock
            .now()
            .plus_seconds(self.offset.load(Ordering::SeqCst))
    }
}

/// RFC 3339 in UTC, e.g. `2026-05-04T10:00:00Z`.
pub fn rfc3339(unix: Timestamp) -> String {
    Rfc3339(unix).to_string()
}

/// A timestamp written as RFC 3339 in UTC wherever it is formatted (or serialized), without an
/// intermediate string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub Timestamp);

impl Rfc3339 {
    /// The civil date and time: year, month, day, hour, minute, second.
    fn parts(self) -> (i64, i64, i64, i64, i64, i64) {
        let unix = self.0.unix();
        let days = unix.div_euclid(86_400);
        let secs = unix.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day, secs / 3600, secs % 3600 / 60, secs % 60)
    }

    /// The 20 bytes of `YYYY-MM-DD'T'hh:mm:ss'Z'`, for years 0 to 9999 (every time Grantry
    /// keeps); written digit by digit, because token reads write one on every answer.
    fn ascii(self) -> Option<[u8; 20]> {
        let (year, month, day, hour, minute, second) = self.parts();
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut out = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, value: i64, width: usize| {
            let mut value = value;
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, year, 4);
        put(5, month, 2);
        put(8, day, 2);
        put(11, hour, 2);
        put(14, minute, 2);
        put(17, second, 2);
        Some(out)
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(ascii) = self.ascii() {
            return f.write_str(std::str::from_utf8(&ascii).map_err(|_| std::fmt::Error)?);
        }
        let (year, month, day, hour, minute, second) = self.parts();
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"
        )
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.ascii() {
            Some(ascii) => serializer
                .serialize_str(std::str::from_utf8(&ascii).map_err(serde::ser::Error::custom)?),
            None => serializer.collect_str(self),
        }
    }
}

impl Rfc3339 {
    /// Any RFC 3339 time, with any offset; fractions of a second are dropped.
    pub fn parse(text: &str) -> Option<Rfc3339> {
        let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()?;
        Some(Rfc3339(Timestamp(at.unix_timestamp())))
    }
}

/// Reads an RFC 3339 string, as every answer writes times, or (as requests have accepted
/// before) whole unix seconds.
impl<'de> serde::Deserialize<'de> for Rfc3339 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Unexpected};

        struct Time;
        impl serde::de::Visitor<'_> for Time {
            type Value = Rfc3339;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 time such as 2030-06-01T00:00:00Z (or unix seconds)")
            }

            fn visit_i64<E: Error>(self, unix: i64) -> Result<Rfc3339, E> {
                Ok(Rfc3339(Timestamp(unix)))
            }

            fn visit_u64<E: Error>(self, unix: u64) -> Result<Rfc3339, E> {
                i64::try_from(unix)
                    .map(|unix| Rfc3339(Timestamp(unix)))
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(unix), &self))
            }

            fn visit_str<E: Error>(self, text: &str) -> Result<Rfc3339, E> {
                Rfc3339::parse(text).ok_or_else(|| E::invalid_value(Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_any(Time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        let at = Timestamp::from_unix;
        assert_eq!(rfc3339(at(1_777_888_800)), "2026-05-04T10:00:00Z");
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(253_402_300_799)), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(at(253_402_300_800)), "10000-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(-1)), "1969-12-31T23:59:59Z");
        assert_eq!(
            serde_json::to_string(&Rfc3339(at(1_777_888_800))).unwrap(),
            "\"2026-05-04T10:00:00Z\""
        );
    }

    #[test]
    fn reads_rfc_3339_with_any_offset_and_unix_seconds() {
        let read = |json: &str| serde_json::from_str::<Rfc3339>(json).map(|t| t.0.unix());
        assert_eq!(read("\"2026-05-04T10:00:00Z\"").unwrap(), 1_777_888_800);
        assert_eq!(
            read("\"2026-05-04T12:00:00+02:00\"").unwrap(),
            1_777_888_800
        );
        assert_eq!(read("\"2026-05-04T10:00:00.999Z\"").unwrap(), 1_777_888_800);
        assert_eq!(read("1777888800").unwrap(), 1_777_888_800);
        for bad in [
            "\"2026-05-04\"",
            "\"tomorrow\"",
            "true",
            "18446744073709551615",
        ] {
            let error = read(bad).unwrap_err().to_string();
            assert!(error.contains("RFC 3339"), "{bad}: {error}");
        }
    }
}
