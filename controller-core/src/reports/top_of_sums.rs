//! The top groups of a sum over several months, read from each month's ranking index instead
//! of summing every group (Fagin's threshold algorithm, made exact for ties).
//!
//! Each month's rows are read in index order (octets descending, key ascending), a page at a
//! time; every key seen gets its total over all months by primary key. An unseen key has at
//! most, in each month still being read, the octets of that month's last entry read (and, at
//! that value, a larger key), so the sum of those values bounds its total. Once the `top`-th
//! best total known beats that bound under the ranking's order (more octets first, then the
//! smaller key), no unseen key can enter and the search is settled. On usage where the heavy
//! users of one month are the heavy users of the next this reads a few pages; on usage with no
//! such shape it reads more, and [`TopOfSums::gave_up`] tells the caller to sum every group
//! instead once it has seen more keys than that would cost.
//!
//! Pure: the caller reads what [`TopOfSums::reads`] and [`TopOfSums::unknown`] ask for and
//! hands the rows back.

use std::collections::{BTreeSet, HashMap};

/// Rows of one month read in the first round; each round doubles it.
const FIRST_PAGE: usize = 256;

/// A month's ranking index read so far.
#[derive(Debug, Clone, Default)]
struct Cursor {
    /// The last entry read (octets, key).
    last: Option<(i64, String)>,
    /// No entry is left after `last`.
    exhausted: bool,
    /// The octets of the month's first entry (0 for a month without rows), once read.
    first: Option<i64>,
}

/// One page to read: `limit` entries of month number `month` after `after` in index order
/// (from the first entry when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The month's position in the caller's list of months.
    pub month: usize,
    /// The last entry already read: (octets, key).
    pub after: Option<(i64, String)>,
    /// How many entries to read.
    pub limit: usize,
}

/// The search for the `top` keys with the largest sum over some months.
#[derive(Debug)]
pub struct TopOfSums {
    top: usize,
    cursors: Vec<Cursor>,
    /// Keys whose total over every month is known.
    totals: HashMap<String, i64>,
    /// Keys seen in a page whose total is still to be read.
    pending: BTreeSet<String>,
    page: usize,
    /// Keys seen after which the caller sums every group instead.
    give_up_after: usize,
}

impl TopOfSums {
    /// A search over `months` monthly rankings for the `top` largest sums; it gives up once it
    /// has seen `give_up_after` keys.
    pub fn new(months: usize, top: usize, give_up_after: usize) -> TopOfSums {
        TopOfSums {
            top,
            cursors: vec![Cursor::default(); months],
            totals: HashMap::new(),
            pending: BTreeSet::new(),
            page: FIRST_PAGE.max(top.saturating_mul(2)),
            give_up_after,
        }
    }

    /// The pages to read next: one per month with entries left.
    pub fn reads(&self) -> Vec<Read> {
        self.cursors
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.exhausted)
            .map(|(month, c)| Read {
                month,
                after: c.last.clone(),
                limit: self.page,
            })
            .collect()
    }

    /// Takes the page read for `read`: (key, octets) in index order.
    pub fn on_page(&mut self, read: &Read, rows: Vec<(String, i64)>) {
        let cursor = &mut self.cursors[read.month];
        cursor.exhausted = rows.len() < read.limit;
        if read.after.is_none() {
            cursor.first = Some(rows.first().map_or(0, |(_, octets)| *octets));
        }
        if let Some((key, octets)) = rows.last() {
            cursor.last = Some((*octets, key.clone()));
        }
        for (key, _) in rows {
            if !self.totals.contains_key(&key) {
                self.pending.insert(key);
            }
        }
    }

    /// Keys seen whose total over every month is still to be read.
    pub fn unknown(&self) -> Vec<String> {
        self.pending.iter().cloned().collect()
    }

    /// Takes totals read for keys [`TopOfSums::unknown`] named.
    pub fn on_totals(&mut self, totals: impl IntoIterator<Item = (String, i64)>) {
        for (key, total) in totals {
            self.pending.remove(&key);
            self.totals.insert(key, total);
        }
    }

    /// Ends a round: the next pages are twice as long.
    pub fn next_round(&mut self) {
        self.page = self.page.saturating_mul(2);
    }

    /// More keys seen than summing every group would cost: the caller should do that.
    pub fn gave_up(&self) -> bool {
        self.totals.len() + self.pending.len() > self.give_up_after
    }

    /// The best known keys, at most `top`, largest total first (then the smaller key).
    pub fn best(&self) -> Vec<(String, i64)> {
        let mut all: Vec<(String, i64)> =
            self.totals.iter().map(|(k, t)| (k.clone(), *t)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(self.top);
        all
    }

    /// The `top`-th best key known with its total: every key of the top ranks at least as high
    /// (a larger total, or the same total and a key no later).
    pub fn top_known(&self) -> Option<(String, i64)> {
        self.best().get(self.top.checked_sub(1)?).cloned()
    }

    /// The largest total any key can have: the sum of every month's first entry, once each
    /// month has been read.
    pub fn most_possible(&self) -> Option<i64> {
        self.cursors
            .iter()
            .try_fold(0i64, |sum, c| Some(sum.saturating_add(c.first?)))
    }

    /// The least octets that each month's row must hold (a month where a key has no row counts
    /// as 0) for the key's total to reach `least`, given that in every other month it holds at
    /// most that month's first entry. Every key of the top totals at least the total of
    /// [`TopOfSums::top_known`], so it holds that total's floors, and a key of the top with a
    /// larger total holds the floors of one more. After the search gives up, the caller may
    /// sum only the keys holding a floor above zero in one month.
    pub fn floors(&self, least: i64) -> Option<Vec<i64>> {
        let firsts = self
            .cursors
            .iter()
            .map(|c| c.first)
            .collect::<Option<Vec<i64>>>()?;
        let all = self.most_possible()?;
        Some(
            firsts
                .iter()
                .map(|f| least.saturating_sub(all.saturating_sub(*f)))
                .collect(),
        )
    }

    /// No key left unseen can be among the best: [`TopOfSums::best`] is the answer.
    pub fn settled(&self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        let open: Vec<&Cursor> = self.cursors.iter().filter(|c| !c.exhausted).collect();
        if open.is_empty() {
            return true;
        }
        // A month not read yet bounds nothing.
        let Some(fronts) = open
            .iter()
            .map(|c| c.last.as_ref())
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        if self.top == 0 {
            return true;
        }
        let best = self.best();
        let Some((last_key, last_total)) = best.get(self.top - 1) else {
            return false;
        };
        let bound: i64 = fronts.iter().map(|(o, _)| *o).sum();
        if bound != *last_total {
            return bound < *last_total;
        }
        // An unseen key reaching the bound has each open month's last octets, so it comes after
        // the last key read in every such month with octets above zero (where it may instead
        // have no row). It ranks after the top-th when that key is no later than one of those.
        fronts
            .iter()
            .filter(|(o, _)| *o > 0)
            .any(|(_, key)| last_key <= key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Runs the search over in-memory months (key -> octets each) as the database reads them,
    /// for at most `rounds` rounds of one entry each.
    fn run(months: &[BTreeMap<String, i64>], top: usize, rounds: usize) -> TopOfSums {
        let ranked: Vec<Vec<(String, i64)>> = months
            .iter()
            .map(|m| {
                let mut rows: Vec<(String, i64)> = m.iter().map(|(k, o)| (k.clone(), *o)).collect();
                rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                rows
            })
            .collect();
        let mut s = TopOfSums::new(months.len(), top, usize::MAX);
        s.page = 1;
        for _ in 0..rounds {
            if s.settled() {
                break;
            }
            for read in s.reads() {
                let rows = &ranked[read.month];
                let start = match &read.after {
                    None => 0,
                    Some((o, k)) => rows
                        .iter()
                        .position(|(rk, ro)| ro < o || (ro == o && rk > k))
                        .unwrap_or(rows.len()),
                };
                let page = rows[start..].iter().take(read.limit).cloned().collect();
                s.on_page(&read, page);
            }
            let totals: Vec<(String, i64)> = s
                .unknown()
                .into_iter()
                .map(|k| {
                    let t = months.iter().filter_map(|m| m.get(&k)).sum();
                    (k, t)
                })
                .collect();
            s.on_totals(totals);
            // One entry a round, so the search stops on its bound, not on reading everything.
            s.page = 1;
        }
        s
    }

    fn search(months: &[BTreeMap<String, i64>], top: usize) -> Option<Vec<(String, i64)>> {
        let s = run(months, top, 10_000);
        s.settled().then(|| s.best())
    }

    fn exact(months: &[BTreeMap<String, i64>], top: usize) -> Vec<(String, i64)> {
        let mut sums: BTreeMap<String, i64> = BTreeMap::new();
        for m in months {
            for (k, o) in m {
                *sums.entry(k.clone()).or_default() += o;
            }
        }
        let mut all: Vec<(String, i64)> = sums.into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(top);
        all
    }

    fn months() -> impl Strategy<Value = Vec<BTreeMap<String, i64>>> {
        // Few keys and few octet values: ties everywhere, as in generated or flat-rate usage.
        prop::collection::vec(
            prop::collection::btree_map("[a-h]{1,2}", 0i64..6, 0..60),
            1..5,
        )
    }

    proptest! {
        #[test]
        fn the_search_finds_exactly_the_top_sums(months in months(), top in 0usize..12) {
            let got = search(&months, top).expect("settles");
            prop_assert_eq!(got, exact(&months, top));
        }
    }

    proptest! {
        #[test]
        fn every_key_of_the_top_holds_its_floors(
            months in months(),
            top in 1usize..12,
            rounds in 1usize..8,
        ) {
            let s = run(&months, top, rounds);
            if let Some((_, least)) = s.top_known() {
                let floors = s.floors(least).expect("every month read");
                let above = s.floors(least + 1).expect("every month read");
                for (key, total) in exact(&months, top) {
                    let want = if total > least { &above } else { &floors };
                    for (m, floor) in months.iter().zip(want) {
                        let held = m.get(&key).copied().unwrap_or(0);
                        prop_assert!(held >= *floor, "{key} ({total}) holds {held} below its floor {floor}");
                    }
                }
            }
        }
    }

    /// Reads one page of every month into `s`, as the database would return it.
    fn read_one_round(s: &mut TopOfSums, months: &[BTreeMap<String, i64>]) {
        for read in s.reads() {
            let mut rows: Vec<(String, i64)> = months[read.month]
                .iter()
                .map(|(k, o)| (k.clone(), *o))
                .collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            rows.truncate(read.limit);
            s.on_page(&read, rows);
        }
    }

    #[test]
    fn floors_narrow_a_flat_month_to_its_heaviest() {
        // Month 0: a third of the keys at 4, the rest at 3; month 1: every tenth at 2, the rest
        // at 1 (the reports bench's shape). Once 50 keys at 4 + 2 are known, a key of the top
        // needs 2 in month 1.
        let months: Vec<BTreeMap<String, i64>> = vec![
            (0..3_000)
                .map(|i| (format!("k{i:04}"), if i % 3 == 0 { 4 } else { 3 }))
                .collect(),
            (0..3_000)
                .map(|i| (format!("k{i:04}"), if i % 10 == 0 { 2 } else { 1 }))
                .collect(),
        ];
        // One round reading 2,000 entries of each month: 50 keys at 4 + 2 are among them.
        let mut s = TopOfSums::new(2, 50, usize::MAX);
        s.page = 2_000;
        read_one_round(&mut s, &months);
        let totals: Vec<(String, i64)> = s
            .unknown()
            .into_iter()
            .map(|k| (k.clone(), months[0][&k] + months[1][&k]))
            .collect();
        s.on_totals(totals);
        assert_eq!(s.top_known(), Some(("k1470".to_string(), 6)));
        assert_eq!(s.most_possible(), Some(6));
        assert_eq!(s.floors(6), Some(vec![4, 2]));
        assert_eq!(s.floors(5), Some(vec![3, 1]));
    }

    #[test]
    fn heavy_users_of_every_month_settle_in_one_round() {
        let months: Vec<BTreeMap<String, i64>> = (0..2)
            .map(|m| {
                (0..10_000)
                    .map(|i| (format!("u{i:05}"), 1_000_000 / (i + 1) + m))
                    .collect()
            })
            .collect();
        let mut s = TopOfSums::new(2, 50, usize::MAX);
        read_one_round(&mut s, &months);
        let totals: Vec<(String, i64)> = s
            .unknown()
            .into_iter()
            .map(|k| {
                let t = months.iter().map(|m| m[&k]).sum();
                (k, t)
            })
            .collect();
        s.on_totals(totals);
        assert!(s.settled());
        assert_eq!(s.best(), exact(&months, 50));
    }

    #[test]
    fn it_gives_up_past_its_limit() {
        let mut s = TopOfSums::new(1, 5, 3);
        let read = s.reads().remove(0);
        s.on_page(&read, (0..4).map(|i| (format!("k{i}"), 10 - i)).collect());
        assert!(s.gave_up());
    }
}
