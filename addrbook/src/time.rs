//! RFC 3339 times as Go's `time.Time` writes them in JSON (`RFC3339Nano`), through the
//! [`time`] crate.
//!
//! We write UTC (`Z`), with the fraction of a second only when it is not zero and without
//! trailing zeros, as Go does; we read any offset, as Go writes the local one. Go's zero time
//! `0001-01-01T00:00:00Z` stands for "never" and maps to `None`.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Go's zero `time.Time`.
pub(crate) const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Formats like Go `t.UTC().Format(time.RFC3339Nano)`. A time outside the years 0–9999
/// (which Go's JSON encoder refuses) is written as the nearest end of that range, so a save
/// never fails.
pub(crate) fn format(t: Option<SystemTime>) -> String {
    let Some(t) = t else {
        return GO_ZERO_TIME.to_owned();
    };
    let first = Date::MIN.midnight().assume_utc().replace_year(0);
    let last = PrimitiveDateTime::MAX.assume_utc();
    let t = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => Duration::try_from(after)
            .ok()
            .and_then(|d| OffsetDateTime::UNIX_EPOCH.checked_add(d))
            .unwrap_or(last),
        Err(before) => Duration::try_from(before.duration())
            .ok()
            .and_then(|d| OffsetDateTime::UNIX_EPOCH.checked_sub(d))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    };
    let t = match first {
        Ok(first) => t.clamp(first, last),
        Err(_) => t.min(last),
    };
    t.format(&Rfc3339)
        .unwrap_or_else(|_| GO_ZERO_TIME.to_owned())
}

/// A compact UTC stamp for file names: `20240501T120000.123456789Z`.
pub(crate) fn file_stamp(t: SystemTime) -> String {
    format(Some(t)).replace(['-', ':'], "")
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`); Go's zero time gives
/// `Some(None)`, malformed text `None`.
pub(crate) fn parse(s: &str) -> Option<Option<SystemTime>> {
    // Go's layout takes only an upper-case `T` and `Z`, where RFC 3339 also allows `t`, `z`
    // and a space; Go never writes an offset of a day or more, nor more than nine digits of
    // a second.
    if s.as_bytes().get(10) != Some(&b'T') || s.ends_with('z') || fraction_digits(s) > 9 {
        return None;
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    if t.offset().whole_hours().abs() > 23 {
        return None;
    }
    let t = t.to_offset(UtcOffset::UTC);
    if t.year() == 1 && t.ordinal() == 1 && t.time() == time::Time::MIDNIGHT {
        return Some(None);
    }
    Some(Some(t.into()))
}

/// Number of digits after the seconds' decimal point.
fn fraction_digits(s: &str) -> usize {
    s.get(19..)
        .and_then(|rest| rest.strip_prefix('.'))
        .map_or(0, |frac| {
            frac.bytes().take_while(u8::is_ascii_digit).count()
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(format(Some(far)), "9999-12-31T23:59:59.999999999Z");
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
            "2024-05-01t12:00:00Z",
            "2024-05-01T12:00:00z",
            "+024-05-01T12:00:00Z",
            "2024-05-01T12:00:00Zjunk",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(secs in -62_135_596_799_i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap()
                + Duration::from_nanos(u64::from(nanos));
            let t = SystemTime::from(t);
            let text = format(Some(t));
            prop_assert_eq!(parse(&text), Some(Some(t)));
        }
    }
}
