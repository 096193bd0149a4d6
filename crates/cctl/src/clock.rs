//! Times as people and Docker's tools read them.

/// A UTC civil time: year, month, day, hour, minute, second.
pub type Civil = (i64, i64, i64, i64, i64, i64);

/// The UTC civil time `seconds` after the Unix epoch.
pub fn civil(seconds: i64) -> Civil {
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rest / 3600, rest % 3600 / 60, rest % 60)
}

/// RFC 3339 in UTC with milliseconds, as `docker inspect` prints times;
/// Docker's zero time for a time that never was.
pub fn rfc3339_millis(ms: Option<u64>) -> String {
    let Some(ms) = ms.filter(|ms| *ms > 0) else {
        return "0001-01-01T00:00:00Z".to_owned();
    };
    let seconds = i64::try_from(ms / 1000).unwrap_or(i64::MAX / 2);
    let (y, mo, d, h, mi, s) = civil(seconds);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        ms % 1000
    )
}

/// RFC 3339 in UTC with nine digits of fraction, as Docker prints log
/// timestamps (`docker logs -t`).
pub fn rfc3339_nanos(ns: u64) -> String {
    let seconds = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX / 2);
    let (y, mo, d, h, mi, s) = civil(seconds);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z",
        ns % 1_000_000_000
    )
}

/// A time as Docker's clients send it (`since`, `until`): seconds since the
/// Unix epoch with an optional fraction of up to nine digits; in
/// nanoseconds.
pub fn unix_ns(text: &str) -> Option<u64> {
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: u64 = seconds.parse().ok()?;
    let nanos: u64 = format!("{fraction:0<9}").parse().ok()?;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Seconds since the Unix epoch of an RFC 3339 time (`2024-01-02T03:04:05Z`,
/// fractions and offsets allowed).
pub fn epoch_seconds(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let clock: String = time.chars().take(8).collect();
    let mut clock = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    let zone = &time[8.min(time.len())..];
    let zone = zone.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match zone {
        "" | "Z" | "z" => 0,
        signed => {
            let sign = if signed.starts_with('-') { -1 } else { 1 };
            let (h, m) = signed.get(1..)?.split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    // Days from the civil date (the inverse of civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_print_with_nanoseconds_and_clients_times_parse() {
        assert_eq!(
            rfc3339_nanos(1_709_251_199_000_000_042),
            "2024-02-29T23:59:59.000000042Z"
        );
        assert_eq!(unix_ns("12"), Some(12_000_000_000));
        assert_eq!(unix_ns("12.5"), Some(12_500_000_000));
        assert_eq!(unix_ns("1.000000001"), Some(1_000_000_001));
        assert_eq!(unix_ns("1.0000000001"), None);
        assert_eq!(unix_ns("soon"), None);
        assert_eq!(unix_ns("1.x"), None);
    }

    #[test]
    fn rfc3339_times_become_epoch_seconds() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            epoch_seconds("2024-02-29T12:34:56.789Z"),
            Some(1_709_210_096)
        );
        assert_eq!(
            epoch_seconds("2024-02-29T13:34:56+01:00"),
            Some(1_709_210_096)
        );
        for seconds in [0_i64, 951_782_400, 1_709_210_096, 4_102_444_799] {
            let (y, mo, d, h, mi, s) = civil(seconds);
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
            assert_eq!(epoch_seconds(&text), Some(seconds), "{text}");
        }
        assert_eq!(epoch_seconds("yesterday"), None);
    }

    #[test]
    fn times_print_as_rfc_3339() {
        assert_eq!(rfc3339_millis(Some(0)), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339_millis(None), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339_millis(Some(1)), "1970-01-01T00:00:00.001Z");
        // 2024-02-29T23:59:59.999Z, a leap day.
        assert_eq!(
            rfc3339_millis(Some(1_709_251_199_999)),
            "2024-02-29T23:59:59.999Z"
        );
    }
}
