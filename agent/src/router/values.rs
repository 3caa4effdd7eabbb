//! RouterOS property values: durations in its own notation, and when a value the router
//! prints means the same as the one the agent would set (so a second run changes nothing).

use std::time::Duration;

/// Keys whose values are durations.
const DURATION_KEYS: &[&str] = &[
    "timeout",
    "interim-update",
    "radius-interim-update",
    "limit-uptime",
    "session-timeout",
    "idle-timeout",
];

/// Formats a duration as RouterOS 7 prints it: `1w2d3h4m5s`, `300ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("w", 604_800_000u128),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        let n = ms / size;
        ms %= size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

/// Parses RouterOS durations: `1w2d3h4m5s`, `300ms`, `5m`, the older `00:05:00` and
/// `1d00:05:00`, and `none` (zero). `None` for anything else.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "none" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    // Leading unit groups, then an optional hh:mm:ss clock part.
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let after = &rest[digits..];
        if after.starts_with(':') {
            total += parse_clock(rest)?;
            return Some(total);
        }
        let (unit_len, size) = if after.starts_with("ms") {
            (2, Duration::from_millis(1))
        } else if after.starts_with("us") {
            (2, Duration::from_micros(1))
        } else {
            match after.chars().next() {
                Some('w') => (1, Duration::from_secs(604_800)),
                Some('d') => (1, Duration::from_secs(86_400)),
                Some('h') => (1, Duration::from_secs(3_600)),
                Some('m') => (1, Duration::from_secs(60)),
                Some('s') => (1, Duration::from_secs(1)),
                // A bare number is seconds, as RouterOS reads it.
                None => (0, Duration::from_secs(1)),
                Some(_) => return None,
            }
        };
        total += size.checked_mul(u32::try_from(n).ok()?)?;
        rest = after[unit_len..].trim_start();
    }
    Some(total)
}

fn parse_clock(s: &str) -> Option<Duration> {
    let parts: Vec<&str> = s.split(':').collect();
    let [h, m, sec] = parts.as_slice() else {
        return None;
    };
    let h: u64 = h.parse().ok()?;
    let m: u64 = m.parse().ok()?;
    let (sec, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let sec: u64 = sec.parse().ok()?;
    let frac_ms: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}")[..3].parse().ok()?
    };
    Some(Duration::from_millis(
        ((h * 60 + m) * 60 + sec) * 1000 + frac_ms,
    ))
}

/// Whether the router's `current` value (absent = `None`) already is `desired` (empty =
/// unset). The API prints booleans as `true`/`false` where commands take `yes`/`no`.
pub(crate) fn equivalent(key: &str, current: Option<&str>, desired: &str) -> bool {
    let current = current.unwrap_or("");
    if current == desired {
        return true;
    }
    if current.is_empty() || desired.is_empty() {
        return false;
    }
    if DURATION_KEYS.contains(&key)
        && let (Some(a), Some(b)) = (parse_duration(current), parse_duration(desired))
    {
        return a == b;
    }
    matches!(
        (current, desired),
        ("true", "yes") | ("yes", "true") | ("false", "no") | ("no", "false")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_in_routeros_notation() {
        for (text, secs_ms) in [
            ("0s", 0),
            ("300ms", 300),
            ("3s", 3_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1w1d1h1m1s", 694_861_000),
        ] {
            let d = Duration::from_millis(secs_ms);
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Some(d), "{text}");
        }
        assert_eq!(parse_duration("00:05:00"), Some(Duration::from_secs(300)));
        assert_eq!(
            parse_duration("1d00:00:01"),
            Some(Duration::from_secs(86_401))
        );
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("none"), Some(Duration::ZERO));
        assert_eq!(parse_duration("received"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn equivalence_knows_durations_and_booleans() {
        assert!(equivalent("timeout", Some("3000ms"), "3s"));
        assert!(equivalent("interim-update", Some("00:05:00"), "5m"));
        assert!(!equivalent("radius-interim-update", Some("received"), "5m"));
        assert!(equivalent("use-radius", Some("true"), "yes"));
        assert!(equivalent("disabled", Some("false"), "no"));
        assert!(!equivalent("disabled", Some("true"), "no"));
        assert!(equivalent("rate-limit", None, ""));
        assert!(equivalent("rate-limit", Some(""), ""));
        assert!(!equivalent("rate-limit", Some("1M/2M"), ""));
        assert!(!equivalent("rate-limit", None, "1M/2M"));
        assert!(
            !equivalent("name", Some("5m"), "300s"),
            "only duration keys"
        );
    }
}
