//! UTC timestamps as Smile ID signs them: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
//!
//! The HMAC treats the timestamp as an opaque string, but the server parses it to check
//! freshness, so the agent always emits the JS/Android form and the sandbox accepts every
//! form an official SDK sends (Python's `+00:00` with microseconds, Ruby's `YYYY-MM-DD hh:mm:ss +zzzz`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, the one time type the sans-IO core takes as input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    pub fn from_system(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => UnixMillis(d.as_millis() as i64),
            Err(e) => UnixMillis(-(e.duration().as_millis() as i64)),
        }
    }

    pub fn plus(self, d: Duration) -> Self {
        UnixMillis(self.0.saturating_add(d.as_millis() as i64))
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// The IMF-fixdate form of an HTTP `Date` header: `Sun, 06 Nov 1994 08:49:37 GMT`.
    pub fn to_http_date(self) -> String {
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MON: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        format!(
            "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
            WD[days.rem_euclid(7) as usize],
            MON[(m - 1) as usize],
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the format the agent signs with.
    pub fn to_iso(self) -> String {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", sod / 3600, (sod / 60) % 60, sod % 60)
    }
}

/// Parses the timestamp forms the official SDKs send; `None` for anything else.
///
/// Accepted: `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM|±HHMM)` and the same with a space
/// instead of `T` and an optional space before the offset (Ruby's `Time#to_s`).
pub fn parse(s: &str) -> Option<UnixMillis> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 3)];
        millis = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
    }
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let rest = &s[i..];
    let offset_min = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) || rest.len() > 6 {
                return None;
            }
            let oh: i64 = digits[0..2].parse().ok()?;
            let om: i64 = digits[2..4].parse().ok()?;
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Some(UnixMillis(secs * 1000 + millis))
}

/// Parses an HTTP `Date` header (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(s: &str) -> Option<UnixMillis> {
    let mut it = s.split_whitespace();
    let (_wd, d, mon, y, hms, gmt) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if gmt != "GMT" || it.next().is_some() {
        return None;
    }
    const MON: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m = MON.iter().position(|x| *x == mon)? as i64 + 1;
    let (d, y): (i64, i64) = (d.parse().ok()?, y.parse().ok()?);
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    if d < 1 || d > days_in_month(y, m) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(UnixMillis((days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + se) * 1000))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-calendar algorithms: exact for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_js_iso() {
        assert_eq!(UnixMillis(1_714_557_600_000).to_iso(), "2024-05-01T10:00:00.000Z");
        assert_eq!(UnixMillis(1_767_225_599_999).to_iso(), "2025-12-31T23:59:59.999Z");
        assert_eq!(UnixMillis(0).to_iso(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn parses_every_sdk_form() {
        let want = UnixMillis(1_714_557_600_000);
        assert_eq!(parse("2024-05-01T10:00:00.000Z"), Some(want));
        assert_eq!(parse("2024-05-01T10:00:00.123456+00:00"), Some(UnixMillis(want.0 + 123)));
        assert_eq!(parse("2024-05-01 10:00:00 +0000"), Some(want));
        assert_eq!(parse("2024-05-01T13:00:00+03:00"), Some(want));
        assert_eq!(parse("2024-02-29T12:34:56.789+03:00"), Some(UnixMillis(1_709_199_296_789)));
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "1714557600000",
            "2024-05-01T10:00:00",
            "2024-13-01T10:00:00Z",
            "2023-02-29T10:00:00Z",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00+0",
            "2024-05-01T10:00:00Zjunk",
            "２０２４-05-01T10:00:00Z",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }

    #[test]
    fn http_date() {
        assert_eq!(UnixMillis(784_111_777_000).to_http_date(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(UnixMillis(784_111_777_000)));
        assert_eq!(parse_http_date("Sun, 31 Feb 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn round_trips() {
        for ms in [0, 951_782_400_123, 1_709_164_800_000, 4_102_444_799_999] {
            assert_eq!(parse(&UnixMillis(ms).to_iso()), Some(UnixMillis(ms)));
        }
    }
}
