//! Keyset pagination shared by every list endpoint: `?limit=&cursor=` in, `{items,
//! next_cursor}` out. Cursors are opaque to clients and stay fast at any depth.

use crate::server::problem::Problem;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Largest page a client may ask for.
pub const MAX_LIMIT: u32 = 500;
/// Page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 50;

/// Paging parameters of a list request.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (1-500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The checked page size.
    pub fn limit(&self) -> Result<u32, Problem> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(Problem::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The decoded cursor: the sort key of the last item already seen ("" for the first page).
    pub fn after(&self) -> Result<String, Problem> {
        match &self.cursor {
            None => Ok(String::new()),
            Some(c) => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| Problem::invalid("cursor", "is not a cursor this API handed out")),
        }
    }
}

impl PageQuery {
    /// The cursor of a list ordered by a numeric id, newest first: the id of the last item
    /// seen, or `None` for the first page.
    pub fn after_id(&self) -> Result<Option<i64>, Problem> {
        let after = self.after()?;
        if after.is_empty() {
            return Ok(None);
        }
        after
            .parse()
            .map(Some)
            .map_err(|_| Problem::invalid("cursor", "is not a cursor this API handed out"))
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from a query that fetched `limit + 1` items: the extra one only tells that a
    /// next page exists. `key` gives an item's sort key.
    pub fn from_overfetch(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Page<T> {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items
                .last()
                .map(|last| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key(last)))
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

impl Page<Box<serde_json::value::RawValue>> {
    /// [`Page::from_overfetch`] for rows the database rendered as JSON: the cursor is the
    /// string field `key` of the last item kept.
    pub fn from_overfetch_json(
        items: Vec<Box<serde_json::value::RawValue>>,
        limit: u32,
        key: &str,
    ) -> Self {
        Page::from_overfetch(items, limit, |raw| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw.get())
                .ok()
                .and_then(|m| m.get(key).and_then(|v| v.as_str().map(str::to_string)))
                .unwrap_or_default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let page = Page::from_overfetch(vec!["a", "b", "c"], 2, |s| s.to_string());
        assert_eq!(page.items, vec!["a", "b"]);
        let q = PageQuery {
            limit: Some(2),
            cursor: page.next_cursor,
        };
        assert_eq!(q.after().unwrap(), "b");
        let last = Page::from_overfetch(vec!["c"], 2, |s| s.to_string());
        assert!(last.next_cursor.is_none());
        assert!(
            PageQuery {
                limit: Some(0),
                cursor: None
            }
            .limit()
            .is_err()
        );
        assert!(
            PageQuery {
                limit: None,
                cursor: Some("***".into())
            }
            .after()
            .is_err()
        );
    }
}
