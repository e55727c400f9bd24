//! Calendar dates for people: the console, the CLI and the event log print
//! UTC times, and one conversion serves them all instead of a date crate.

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC, proleptic Gregorian).
/// Times before 1970 count backwards correctly.
pub fn utc_seconds(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Unix seconds as `YYYY-MM-DD HH:MM` (UTC).
pub fn utc_minutes(secs: i64) -> String {
    let mut text = utc_seconds(secs);
    text.truncate(16);
    text
}

/// Year, month, day of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(utc_seconds(0), "1970-01-01 00:00:00");
        assert_eq!(utc_seconds(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc_seconds(1_795_000_000), "2026-11-18 11:06:40");
        assert_eq!(utc_seconds(-1), "1969-12-31 23:59:59");
        assert_eq!(utc_minutes(1_795_000_000), "2026-11-18 11:06");
    }
}
