//! UTC dates in the forms AWS and HTTP use (`2026-11-27T10:13:39Z`, `Fri, 27 Nov 2026 12:13:39 GMT`), on the
//! `time` crate: the one home for every crate that formats a date or turns a calendar date into epoch days.
//! Instants outside the years 0000–9999 are clamped to them.

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime};

const SECONDS: &[BorrowedFormatItem<'_>] = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
const IMF_FIXDATE: &[BorrowedFormatItem<'_>] =
    format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");

/// The instant `nanos` after the epoch, clamped to what `time` represents.
fn at(nanos: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or_else(|_| {
        if nanos < 0 { PrimitiveDateTime::MIN.assume_utc() } else { PrimitiveDateTime::MAX.assume_utc() }
    })
}

fn format(t: OffsetDateTime, items: &[BorrowedFormatItem<'_>]) -> String {
    // Only fails for components an `OffsetDateTime` lacks, which these descriptions do not use.
    t.format(items).unwrap_or_default()
}

/// `2026-11-27T10:13:39Z` for whole epoch seconds (negative ones too).
pub fn iso8601(secs: i64) -> String {
    format!("{}Z", iso8601_seconds(secs))
}

/// `2026-11-27T10:13:39` (no zone) for whole epoch seconds, for callers that append a fraction or a zone.
pub fn iso8601_seconds(secs: i64) -> String {
    format(at(i128::from(secs) * 1_000_000_000), SECONDS)
}

/// `2026-11-27T10:13:39Z`, or `2026-11-27T10:13:39.250Z` when the milliseconds are not zero; `None` outside
/// the years 0000–9999.
pub fn iso8601_millis(millis: i64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()?;
    let ms = t.millisecond();
    let base = format(t, SECONDS);
    Some(if ms == 0 { format!("{base}Z") } else { format!("{base}.{ms:03}Z") })
}

/// `2026-11-27T10:13:39.123456Z`: an instant after the epoch to the microsecond.
pub fn iso8601_micros(since_epoch: std::time::Duration) -> String {
    let t = at(i128::try_from(since_epoch.as_nanos()).unwrap_or(i128::MAX));
    format!("{}.{:06}Z", format(t, SECONDS), t.microsecond())
}

/// `Thu, 03 Dec 2026 16:20:00 GMT` (RFC 9110's IMF-fixdate) for epoch seconds.
pub fn http_date(secs: u64) -> String {
    format(at(i128::from(secs) * 1_000_000_000), IMF_FIXDATE)
}

/// The date `(year, month, day)` of a day counted from 1970-01-01 (clamped to the years 0000–9999).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let epoch = i64::from(OffsetDateTime::UNIX_EPOCH.to_julian_day());
    let julian = i32::try_from(days.saturating_add(epoch)).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX });
    let date = Date::from_julian_day(julian).unwrap_or(if days < 0 {
        PrimitiveDateTime::MIN.date()
    } else {
        PrimitiveDateTime::MAX.date()
    });
    (i64::from(date.year()), i64::from(u8::from(date.month())), i64::from(date.day()))
}

/// Days since 1970-01-01 of the calendar date `year-month-day`, or `None` when there is no such date.
pub fn epoch_days(year: i64, month: i64, day: i64) -> Option<i64> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    Some(i64::from(date.to_julian_day() - OffsetDateTime::UNIX_EPOCH.to_julian_day()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_795_781_619, "2026-11-27T12:13:39Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (-86_400, "1969-12-31T00:00:00Z"),
            (1_563_278_400, "2019-07-16T12:00:00Z"),
        ] {
            assert_eq!(iso8601(secs), want);
            assert_eq!(iso8601_millis(secs * 1000).as_deref(), Some(want));
        }
        assert_eq!(iso8601_millis(1_696_897_800_250).as_deref(), Some("2023-10-10T00:30:00.250Z"));
        assert_eq!(iso8601_millis(i64::MAX), None);
        assert_eq!(iso8601(i64::MAX), "9999-12-31T23:59:59Z");
        let d = std::time::Duration::new(1_795_781_619, 123_456_789);
        assert_eq!(iso8601_micros(d), "2026-11-27T12:13:39.123456Z");
        for (secs, want) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (1_795_781_619, "Fri, 27 Nov 2026 12:13:39 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        ] {
            assert_eq!(http_date(secs), want);
        }
    }

    #[test]
    fn calendar_dates_count_days_from_the_epoch() {
        assert_eq!(epoch_days(1970, 1, 1), Some(0));
        assert_eq!(epoch_days(1969, 12, 31), Some(-1));
        assert_eq!(epoch_days(2000, 2, 29), Some(11_016));
        assert_eq!(epoch_days(2019, 7, 16), Some(18_093));
        for days in [-800_000, -1, 0, 11_016, 18_093, 800_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(epoch_days(y, m, d), Some(days));
        }
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for bad in [(2019, 2, 29), (2019, 13, 1), (2019, 4, 31), (2019, 0, 1), (2019, 1, 0)] {
            assert_eq!(epoch_days(bad.0, bad.1, bad.2), None, "{bad:?}");
        }
    }
}
