//! RFC 3339 times as Go's `time.Time` writes them in JSON (`RFC3339Nano`).
//!
//! We write UTC (`Z`); we read any offset, as Go writes the local one. Go's zero time
//! `0001-01-01T00:00:00Z` stands for "never" and maps to `None`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Go's zero `time.Time`.
pub(crate) const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Formats like Go `t.UTC().Format(time.RFC3339Nano)` (fraction without trailing zeros).
pub(crate) fn format(t: Option<SystemTime>) -> String {
    let Some(t) = t else {
        return GO_ZERO_TIME.to_owned();
    };
    let (secs, nanos) = split(t);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// A compact UTC stamp for file names: `20240501T120000.123456789Z`.
pub(crate) fn file_stamp(t: SystemTime) -> String {
    format(Some(t)).replace(['-', ':'], "")
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`); Go's zero time gives
/// `Some(None)`, malformed text `None`.
pub(crate) fn parse(s: &str) -> Option<Option<SystemTime>> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    if sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = digits.parse::<i64>().ok()? * 10_i64.pow(9 - digits.len() as u32);
    }
    let offset = match &s[i..] {
        "Z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            if rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if rest.starts_with('-') { -off } else { off }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    if secs == GO_ZERO_SECS && nanos == 0 {
        return Some(None);
    }
    join(secs, nanos)
}

/// Unix seconds of Go's zero time (0001-01-01T00:00:00Z).
const GO_ZERO_SECS: i64 = -62_135_596_800;

fn split(t: SystemTime) -> (i64, i64) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, i64::from(d.subsec_nanos())),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (d.as_secs() as i64, i64::from(d.subsec_nanos()));
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    }
}

fn join(secs: i64, nanos: i64) -> Option<Option<SystemTime>> {
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs as u64, nanos as u32))?
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(nanos as u64))?
    };
    Some(Some(t))
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

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
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
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn go_examples() {
        let t = parse("2024-05-01T12:00:00.123456789+02:00")
            .unwrap()
            .unwrap();
        assert_eq!(format(Some(t)), "2024-05-01T10:00:00.123456789Z");
        assert_eq!(parse(GO_ZERO_TIME), Some(None));
        assert_eq!(format(None), GO_ZERO_TIME);
        let t = parse("1970-01-01T00:00:01.5Z").unwrap().unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!(format(Some(t)), "1970-01-01T00:00:01.5Z");
        assert_eq!(format(Some(UNIX_EPOCH)), "1970-01-01T00:00:00Z");
        let before = parse("1969-12-31T23:59:59.25Z").unwrap().unwrap();
        assert_eq!(format(Some(before)), "1969-12-31T23:59:59.25Z");
        assert_eq!(file_stamp(t), "19700101T000001.5Z");
        let leap = parse("2024-02-29T23:59:59-00:30").unwrap().unwrap();
        assert_eq!(format(Some(leap)), "2024-03-01T00:29:59Z");
    }

    #[test]
    fn malformed() {
        for s in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:00:60Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00.1234567890Z",
            "2024-05-01T12:00:00+0200",
            "2024-05-01T12:00:00+24:00",
            "2024-05-01 12:00:00Z",
            "+024-05-01T12:00:00Z",
            "2024-05-01T12:00:00Zjunk",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(secs in -62_135_596_799_i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
            let t = join(secs, i64::from(nanos)).unwrap().unwrap();
            let text = format(Some(t));
            prop_assert_eq!(parse(&text), Some(Some(t)));
        }
    }
}
