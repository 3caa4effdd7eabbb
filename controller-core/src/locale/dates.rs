//! How people read instants: local date (and time) at the operator's UTC offset, in pages,
//! messages and CSV exports.

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

/// The instant a local date (`2026-12-01`) starts at a UTC offset; `None` unless it is a real
/// calendar date between the years 1970 and 9999.
pub fn parse_local_date(text: &str, offset_minutes: i32) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let utc = date.midnight().assume_utc().unix_timestamp();
    Some((utc - offset_minutes as i64 * 60) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_dates_parse_back_to_the_start_of_the_day() {
        let wib = 7 * 60;
        let start = parse_local_date("2026-01-01", wib).unwrap();
        assert_eq!(local(start, wib, true), "2026-01-01 00:00");
        assert_eq!(local(start - 1, wib, false), "2025-12-31");
        for bad in [
            "",
            "2026-02-30",
            "2026-13-01",
            "26-1-1",
            "2026-01",
            "x-1-1",
            "1969-12-31",
        ] {
            assert_eq!(parse_local_date(bad, wib), None, "{bad}");
        }
    }

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
