//! How admin pages show instants: local date (and time) at the operator's UTC offset.

/// Formats unix ms at a UTC offset.
pub fn local(ms: i64, offset_minutes: i32, with_time: bool) -> String {
    let secs = ms.div_euclid(1000) + offset_minutes as i64 * 60;
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return "–".into();
    };
    if with_time {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute()
        )
    } else {
        format!("{:04}-{:02}-{:02}", t.year(), t.month() as u8, t.day())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_show_at_the_operators_offset() {
        // 2026-01-01 00:30 UTC is still 31 December west of Greenwich.
        let ms = 1_767_227_400_000;
        assert_eq!(local(ms, 0, true), "2026-01-01 00:30");
        assert_eq!(local(ms, 7 * 60, false), "2026-01-01");
        assert_eq!(local(ms, -60, true), "2025-12-31 23:30");
        assert_eq!(local(i64::MAX, 0, true), "–");
    }
}
