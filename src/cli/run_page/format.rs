//! How the report writes numbers, sizes, times and configuration values.

use std::time::{SystemTime, UNIX_EPOCH};

/// A whole number with thousands separators: 980032 -> "980,032".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Seconds as people read them: "8.98 s", "59.6 s", "2 min 05 s", "1 h 02 min".
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return format!("{seconds} s");
    }
    if seconds < 10.0 {
        return format!("{seconds:.2} s");
    }
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let whole = seconds.round() as u64;
    if whole < 3600 {
        format!("{} min {:02} s", whole / 60, whole % 60)
    } else {
        format!("{} h {:02} min", whole / 3600, whole % 3600 / 60)
    }
}

/// A value with at most six significant digits and no trailing zeros, in scientific notation
/// when it is very small or large (learning rates: 0.001, 0.000125, 1e-7).
pub fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return x.to_string();
    }
    let exponent = x.abs().log10().floor() as i32;
    if (-4..6).contains(&exponent) {
        let decimals = (5 - exponent).max(0) as usize;
        let s = format!("{x:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        let s = format!("{x:.5e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{exp}")
    }
}

/// A configuration value as text: strings without their quotes, `null` as "not set".
pub fn json_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "not set".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A file's time as a UTC date and minute, "2025-12-01 09:50 UTC" (civil from days, as in
/// Howard Hinnant's `civil_from_days`; no time-zone database needed).
pub fn utc(time: SystemTime) -> Option<String> {
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn numbers_sizes_and_times() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(980_032), "980,032");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(duration(8.976), "8.98 s");
        assert_eq!(duration(59.63), "59.6 s");
        assert_eq!(duration(125.2), "2 min 05 s");
        assert_eq!(duration(3725.0), "1 h 02 min");
        assert_eq!(short(0.001), "0.001");
        assert_eq!(short(0.0005000000000000001), "0.0005");
        assert_eq!(short(0.000125), "0.000125");
        assert_eq!(short(1e-7), "1e-7");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(3.0), "3");
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        // 2000-03-01 00:00 UTC is 951868800 s; 1970-01-01 is 0; 2024-02-29 12:34 is 1709210040
        let at = |s| utc(UNIX_EPOCH + Duration::from_secs(s)).unwrap();
        assert_eq!(at(0), "1970-01-01 00:00 UTC");
        assert_eq!(at(951_868_800), "2000-03-01 00:00 UTC");
        assert_eq!(at(1_709_210_040), "2024-02-29 12:34 UTC");
    }
}
