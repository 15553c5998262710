//! The simulator's clock: real time plus an offset that tests move forward, so nothing sleeps.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct SimClock {
    offset: AtomicI64,
}

impl SimClock {
    /// Seconds since the Unix epoch, as the simulator sees them.
    pub fn now(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        real + self.offset.load(Ordering::Relaxed)
    }

    /// Moves the clock forward; returns the new time.
    pub fn advance(&self, seconds: i64) -> i64 {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
        self.now()
    }
}

/// RFC 3339 in UTC with Bitbucket's `+00:00` suffix, e.g. `2026-05-04T10:00:00.000000+00:00`.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000000+00:00",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(rfc3339(1_777_888_800), "2026-05-04T10:00:00.000000+00:00");
    }

    #[test]
    fn advancing_moves_now() {
        let clock = SimClock::default();
        let before = clock.now();
        assert!(clock.advance(3600) >= before + 3600);
    }
}
