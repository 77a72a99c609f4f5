//! Calendar arithmetic for SigV4 and audit timestamps, without a clock dependency.
//!
//! All times are UTC seconds since the Unix epoch (`i64`).

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in seconds since the Unix epoch.
pub fn now_epoch() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(bytes: &[u8]) -> Option<u32> {
    let mut n: u32 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(b - b'0');
    }
    Some(n)
}

/// An ISO 8601 basic-format timestamp, `YYYYMMDD'T'HHMMSS'Z'`, as SigV4 uses it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AmzDate {
    epoch: i64,
    text: [u8; 16],
}

impl std::fmt::Debug for AmzDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AmzDate {
    /// Parses `YYYYMMDDTHHMMSSZ`. Returns `None` for anything else, including impossible dates.
    pub fn parse(s: &str) -> Option<Self> {
        let b: &[u8; 16] = s.as_bytes().try_into().ok()?;
        if b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[4..6])?;
        let day = digits(&b[6..8])?;
        let hour = digits(&b[9..11])?;
        let minute = digits(&b[11..13])?;
        let second = digits(&b[13..15])?;
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(i64::from(year), month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let days = days_from_civil(i64::from(year), month, day);
        let epoch = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        Some(Self { epoch, text: *b })
    }

    /// Formats an epoch time (seconds) as an `AmzDate`.
    pub fn from_epoch(epoch: i64) -> Self {
        let days = epoch.div_euclid(86_400);
        let secs = epoch.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let mut text = [0u8; 16];
        let year = year.clamp(0, 9999) as u32;
        let put = |buf: &mut [u8], mut v: u32| {
            for slot in buf.iter_mut().rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(&mut text[0..4], year);
        put(&mut text[4..6], month);
        put(&mut text[6..8], day);
        text[8] = b'T';
        put(&mut text[9..11], (secs / 3600) as u32);
        put(&mut text[11..13], ((secs % 3600) / 60) as u32);
        put(&mut text[13..15], (secs % 60) as u32);
        text[15] = b'Z';
        Self { epoch, text }
    }

    /// Parses an HTTP `Date` header value (RFC 7231 IMF-fixdate, RFC 850 or asctime).
    pub fn parse_http_date(s: &str) -> Option<Self> {
        let t = httpdate::parse_http_date(s).ok()?;
        let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
        Some(Self::from_epoch(i64::try_from(secs).ok()?))
    }

    /// Seconds since the Unix epoch.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// The `YYYYMMDDTHHMMSSZ` text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, `T` and `Z` are ever stored.
        std::str::from_utf8(&self.text).unwrap_or("00000000T000000Z")
    }

    /// The `YYYYMMDD` date part.
    pub fn date(&self) -> &str {
        self.as_str().get(..8).unwrap_or("")
    }
}

/// Formats an epoch time as ISO 8601 extended, `YYYY-MM-DDTHH:MM:SSZ` (CloudTrail's `eventTime`).
pub fn iso8601(epoch: i64) -> String {
    let (year, month, day) = civil_from_days(epoch.div_euclid(86_400));
    let secs = epoch.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let d = AmzDate::parse("20150830T123600Z").unwrap();
        assert_eq!(d.epoch(), 1_440_938_160);
        assert_eq!(
            AmzDate::from_epoch(1_440_938_160).as_str(),
            "20150830T123600Z"
        );
        assert_eq!(d.date(), "20150830");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn rejects_bad_dates() {
        for s in [
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20150230T000000Z",
            "20151301T000000Z",
            "2015083OT123600Z",
            "20150830T243600Z",
            "２0150830T12360Z",
        ] {
            assert!(AmzDate::parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn http_dates() {
        let d = AmzDate::parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT").unwrap();
        assert_eq!(d.as_str(), "20150830T123600Z");
    }

    #[test]
    fn every_day_round_trips() {
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
