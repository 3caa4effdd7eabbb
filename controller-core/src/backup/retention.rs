//! Scheduled backups: their file names (the time they were taken, so a directory listing
//! sorts by age and a restart knows when the last one ran) and which ones retention removes.
//! Pure: the caller lists the directory and deletes.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

const PREFIX: &str = "mikrobill-backup-";
const PLAIN: &str = ".tar.gz";
const SEALED: &str = ".tar.gz.sealed";

/// The file name of a scheduled backup taken at `now` (UTC unix milliseconds).
pub fn file_name(now: i64, sealed: bool) -> String {
    let at = OffsetDateTime::from_unix_timestamp(now.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    format!("{PREFIX}{stamp}{}", if sealed { SEALED } else { PLAIN })
}

/// When a scheduled backup's file was taken (UTC unix milliseconds, whole seconds); `None`
/// for any other file, which retention never touches.
pub fn taken_at(name: &str) -> Option<i64> {
    let rest = name.strip_prefix(PREFIX)?;
    let stamp = rest
        .strip_suffix(SEALED)
        .or_else(|| rest.strip_suffix(PLAIN))?;
    let b = stamp.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let digits = stamp.get(r)?;
        digits
            .bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let date = Date::from_calendar_date(
        num(0..4)? as i32,
        Month::try_from(num(4..6)? as u8).ok()?,
        num(6..8)? as u8,
    )
    .ok()?;
    let time = Time::from_hms(num(9..11)? as u8, num(11..13)? as u8, num(13..15)? as u8).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp()
            * 1000,
    )
}

/// The scheduled backups among `names` to delete so that the `keep` newest remain (never
/// fewer than one: the backup just written is not deleted by its own run).
pub fn to_delete(names: &[String], keep: usize) -> Vec<String> {
    let mut ours: Vec<(i64, &String)> = names
        .iter()
        .filter_map(|n| taken_at(n).map(|t| (t, n)))
        .collect();
    ours.sort_by(|a, b| b.cmp(a));
    ours.into_iter()
        .skip(keep.max(1))
        .map(|(_, n)| n.clone())
        .collect()
}

/// When the next scheduled backup is due: `interval` after the newest one in `names`, or
/// now when there is none.
pub fn next_due(names: &[String], interval_ms: i64, now: i64) -> i64 {
    names
        .iter()
        .filter_map(|n| taken_at(n))
        .max()
        .map_or(now, |last| last + interval_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_carry_their_time() {
        // 2026-12-06 21:00:05 UTC.
        let t = 1_796_590_805_000;
        assert_eq!(
            file_name(t, false),
            "mikrobill-backup-20261206T210005Z.tar.gz"
        );
        assert_eq!(taken_at(&file_name(t, true)), Some(t));
        assert_eq!(taken_at("mikrobill-backup-20261206T210005Z.tar"), None);
        assert_eq!(taken_at("notes.txt"), None);
        assert_eq!(next_due(&[], 3_600_000, t), t);
        assert_eq!(
            next_due(&[file_name(t, false)], 3_600_000, t + 5),
            t + 3_600_000
        );
    }

    proptest! {
        #[test]
        fn retention_keeps_the_newest_and_nothing_else_is_touched(
            times in proptest::collection::btree_set(0i64..4_000_000_000, 0..30),
            strangers in proptest::collection::vec("[a-z.]{1,12}", 0..5),
            keep in 0usize..10,
        ) {
            let ours: Vec<String> = times.iter().map(|t| file_name(t * 1000, t % 2 == 0)).collect();
            let mut names = ours.clone();
            names.extend(strangers.iter().cloned());
            let gone = to_delete(&names, keep);
            let kept = keep.max(1).min(ours.len());
            prop_assert_eq!(gone.len(), ours.len() - kept);
            for g in &gone {
                prop_assert!(ours.contains(g));
            }
            // Every deleted backup is older than every kept one.
            let oldest_kept = ours.iter().filter(|n| !gone.contains(n)).filter_map(|n| taken_at(n)).min();
            for g in &gone {
                prop_assert!(Some(taken_at(g).unwrap()) < oldest_kept);
            }
        }
    }
}
