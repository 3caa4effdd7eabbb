//! The one definition of "overdue": an unpaid invoice whose due date plus its subscription's
//! grace days has passed. The isolation sweep, the payment that lifts an isolation, the
//! dashboard and the invoice list all ask this module, in Rust or through [`SQL`]. Migration
//! 0033's triggers keep each subscription's [`overdue_after`] of its earliest unpaid invoice
//! in `subscriptions.overdue_after` (NULL while nothing is unpaid), so "overdue at `now`" is
//! also `overdue_after < now` there; the dashboard counts from it.

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The instant after which an invoice due at `due_at` is overdue, given `grace_days`.
pub fn overdue_after(due_at: i64, grace_days: i64) -> i64 {
    due_at.saturating_add(grace_days.max(0).saturating_mul(DAY_MS))
}

/// Whether an unpaid invoice due at `due_at` is overdue at `now`.
pub fn is_overdue(due_at: i64, grace_days: i64, now: i64) -> bool {
    now > overdue_after(due_at, grace_days)
}

/// Whether any of a subscription's unpaid invoices (their due dates) is overdue at `now`.
pub fn any_overdue(unpaid_due_dates: &[i64], grace_days: i64, now: i64) -> bool {
    unpaid_due_dates
        .iter()
        .any(|due| is_overdue(*due, grace_days, now))
}

/// [`is_overdue`] as an SQL condition over `invoices i LEFT JOIN subscriptions s ON s.id =
/// i.subscription_id`, with `$now` standing for the bound instant (replace it with the
/// placeholder). Invoices without a subscription have no grace days.
pub const SQL: &str =
    "(i.status = 'unpaid' AND i.due_at + COALESCE(s.grace_days, 0) * 86400000 < $now)";

/// [`SQL`] with `$now` replaced by the placeholder `param` (such as `$2`).
pub fn sql(param: &str) -> String {
    SQL.replace("$now", param)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_sql_spells_the_same_day() {
        assert!(SQL.contains(&DAY_MS.to_string()));
        assert_eq!(
            sql("$7"),
            "(i.status = 'unpaid' AND i.due_at + COALESCE(s.grace_days, 0) * 86400000 < $7)"
        );
    }

    #[test]
    fn the_last_grace_day_is_not_overdue_yet() {
        let due = 1_700_000_000_000;
        assert!(!is_overdue(due, 3, due + 3 * DAY_MS));
        assert!(is_overdue(due, 3, due + 3 * DAY_MS + 1));
        assert!(is_overdue(due, 0, due + 1));
        assert!(!is_overdue(due, 0, due));
    }

    proptest! {
        #[test]
        fn more_grace_never_makes_an_invoice_overdue(
            due in -1_000_000_000_000i64..4_000_000_000_000,
            grace in 0i64..=60,
            more in 0i64..=60,
            now in -1_000_000_000_000i64..4_000_000_000_000,
        ) {
            if is_overdue(due, grace + more, now) {
                prop_assert!(is_overdue(due, grace, now));
            }
        }

        #[test]
        fn once_overdue_always_overdue(
            due in -1_000_000_000_000i64..4_000_000_000_000,
            grace in 0i64..=60,
            now in -1_000_000_000_000i64..4_000_000_000_000,
            later in 0i64..1_000_000_000_000,
        ) {
            if is_overdue(due, grace, now) {
                prop_assert!(is_overdue(due, grace, now + later));
            }
        }

        #[test]
        fn extreme_inputs_do_not_overflow(due: i64, grace: i64, now: i64) {
            let _ = is_overdue(due, grace, now);
        }

        #[test]
        fn a_subscription_is_overdue_when_one_invoice_is(
            dues in proptest::collection::vec(0i64..4_000_000_000_000, 0..6),
            grace in 0i64..=60,
            now in 0i64..4_000_000_000_000,
        ) {
            prop_assert_eq!(
                any_overdue(&dues, grace, now),
                dues.iter().any(|d| now > d + grace * DAY_MS)
            );
        }
    }
}
