//! Keyset pagination for HTML lists: pages are fetched with one row more than shown, and the
//! "next" link carries the last row's key with the current filters, so a page costs the same
//! at row 100,000 as at row 1.

/// Rows per page of an HTML list.
pub const PAGE_ROWS: u32 = 50;

/// The link to the following page, if there is one.
#[derive(Debug, Clone, Default)]
pub struct Pager {
    /// `?...&after=...` for the next page, when more rows exist.
    pub next: Option<String>,
    /// Whether this is not the first page (a link back to the first is shown).
    pub first: Option<String>,
}

impl Pager {
    /// Trims the overfetched `rows` to [`PAGE_ROWS`] and builds the links: `filters` are
    /// the current query pairs (empty values dropped), `key` the keyset column of a row.
    pub fn split<T>(
        rows: &mut Vec<T>,
        filters: &[(&str, &str)],
        after: &str,
        key: impl Fn(&T) -> String,
    ) -> Pager {
        let mut pager = Pager::default();
        let base = query(filters);
        if rows.len() > PAGE_ROWS as usize {
            rows.truncate(PAGE_ROWS as usize);
            if let Some(last) = rows.last() {
                let mut pairs: Vec<(&str, &str)> = filters.to_vec();
                let k = key(last);
                pairs.push(("after", &k));
                pager.next = Some(query(&pairs));
            }
        }
        if !after.is_empty() {
            pager.first = Some(if base.is_empty() { "?".into() } else { base });
        }
        pager
    }
}

/// `?a=1&b=2` from pairs, skipping empty values; empty when nothing is left.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    if kept.is_empty() {
        return String::new();
    }
    format!(
        "?{}",
        serde_urlencoded::to_string(kept).expect("string pairs encode")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_keeps_filters_and_the_last_key() {
        let mut rows: Vec<u32> = (0..=PAGE_ROWS).collect();
        let p = Pager::split(&mut rows, &[("status", "new"), ("q", "")], "", |r| {
            format!("k{r}")
        });
        assert_eq!(rows.len(), PAGE_ROWS as usize);
        assert_eq!(p.next.as_deref(), Some("?status=new&after=k49"));
        assert!(p.first.is_none());
        let mut short = vec![1, 2];
        let p = Pager::split(&mut short, &[], "k3", |r| r.to_string());
        assert!(p.next.is_none());
        assert_eq!(p.first.as_deref(), Some("?"));
    }
}
