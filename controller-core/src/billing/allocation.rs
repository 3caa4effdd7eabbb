//! How money received is spread over a customer's unpaid invoices: the oldest due first
//! (ties by invoice number), each up to what it still owes, and whatever is left becomes
//! credit. Pure; `payments::record_in` (money received) and `credit::apply_balance` (the
//! customer's balance) load the invoices and store the outcome.

/// An unpaid invoice that money may go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvoice {
    /// Invoice id.
    pub id: String,
    /// Invoice number (orders invoices due the same day).
    pub number: String,
    /// Due date (unix ms).
    pub due_at: i64,
    /// What it still owes (minor units).
    pub outstanding: i64,
}

/// Where the money goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    /// (invoice id, amount), in the order paid; no zero amounts.
    pub parts: Vec<(String, i64)>,
    /// What no invoice needed, kept as the customer's credit.
    pub credit: i64,
}

/// Spreads `amount` over `open`, oldest due first. A negative amount pays nothing.
pub fn allocate(amount: i64, open: &[OpenInvoice]) -> Split {
    let mut order: Vec<&OpenInvoice> = open.iter().collect();
    order.sort_by(|a, b| (a.due_at, &a.number).cmp(&(b.due_at, &b.number)));
    let mut left = amount.max(0);
    let mut parts = Vec::new();
    for inv in order {
        if left == 0 {
            break;
        }
        let used = left.min(inv.outstanding.max(0));
        if used > 0 {
            parts.push((inv.id.clone(), used));
            left -= used;
        }
    }
    Split {
        parts,
        credit: left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn inv(n: u32, due_at: i64, outstanding: i64) -> OpenInvoice {
        OpenInvoice {
            id: format!("id-{n}"),
            number: format!("INV-2026-{n:06}"),
            due_at,
            outstanding,
        }
    }

    fn invoices() -> impl Strategy<Value = Vec<OpenInvoice>> {
        proptest::collection::vec((0i64..5, 0i64..1_000_000), 0..8).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (due, owed))| inv(i as u32, due * 86_400_000, owed))
                .collect()
        })
    }

    #[test]
    fn the_oldest_invoice_is_paid_first() {
        let open = [
            inv(2, 200, 50_000),
            inv(1, 100, 30_000),
            inv(3, 100, 10_000),
        ];
        let split = allocate(35_000, &open);
        assert_eq!(
            split.parts,
            vec![("id-1".to_string(), 30_000), ("id-3".to_string(), 5_000)]
        );
        assert_eq!(split.credit, 0);
        let split = allocate(100_000, &open);
        assert_eq!(split.parts.len(), 3);
        assert_eq!(split.credit, 10_000);
        assert_eq!(allocate(-5, &open), Split::default());
    }

    proptest! {
        #[test]
        fn no_money_is_lost_or_made(amount in 0i64..5_000_000, open in invoices()) {
            let split = allocate(amount, &open);
            let paid: i64 = split.parts.iter().map(|(_, a)| a).sum();
            prop_assert_eq!(paid + split.credit, amount);
            prop_assert!(split.credit >= 0);
        }

        #[test]
        fn no_invoice_gets_more_than_it_owes(amount in 0i64..5_000_000, open in invoices()) {
            let split = allocate(amount, &open);
            for (id, a) in &split.parts {
                let owed = open.iter().find(|i| &i.id == id).unwrap().outstanding;
                prop_assert!(*a > 0 && *a <= owed);
            }
            let mut ids: Vec<_> = split.parts.iter().map(|(id, _)| id).collect();
            ids.dedup();
            prop_assert_eq!(ids.len(), split.parts.len());
        }

        #[test]
        fn a_later_invoice_is_paid_only_after_every_earlier_one(
            amount in 0i64..5_000_000,
            open in invoices(),
        ) {
            let split = allocate(amount, &open);
            let got = |id: &str| split.parts.iter().find(|(p, _)| p == id).map_or(0, |(_, a)| *a);
            for later in &open {
                if got(&later.id) == 0 {
                    continue;
                }
                for earlier in &open {
                    if (earlier.due_at, &earlier.number) < (later.due_at, &later.number) {
                        prop_assert_eq!(got(&earlier.id), earlier.outstanding);
                    }
                }
            }
        }

        #[test]
        fn credit_only_once_everything_is_paid(amount in 0i64..5_000_000, open in invoices()) {
            let split = allocate(amount, &open);
            if split.credit > 0 {
                let owed: i64 = open.iter().map(|i| i.outstanding).sum();
                prop_assert_eq!(amount - split.credit, owed);
            }
        }
    }
}
