//! The `/file` menu's own rules: a file's `size` follows its `contents`, and `/file/add`
//! exists only from RouterOS 7.9 on, so a fake router that reports an older version refuses
//! it as the real one does.

// Rows as the model holds them; spelled out so that this module, which the model calls,
// does not import the model back.
use std::collections::BTreeMap;

type Row = BTreeMap<String, String>;

/// The menu path.
pub(crate) const MENU: &str = "/file";

/// The first version with `/file/add`.
const ADD_SINCE: (u32, u32) = (7, 9);

/// Sets the properties the router derives from what was written.
pub(crate) fn derive(row: &mut Row) {
    if let Some(contents) = row.get("contents") {
        let size = contents.len().to_string();
        row.insert("size".into(), size);
    }
}

/// Whether a router reporting `version` (e.g. `7.16.1`, `7.8 (stable)`) has `/file/add`;
/// an unreadable version is taken as a current one.
pub(crate) fn add_exists(version: &str) -> bool {
    let number = version.split_whitespace().next().unwrap_or("");
    let mut parts = number.split('.').map(|p| {
        let digits = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
        p[..digits].parse::<u32>().ok()
    });
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), minor) => (major, minor.unwrap_or(0)) >= ADD_SINCE,
        (None, _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_arrives_with_7_9() {
        assert!(add_exists("7.16.1"));
        assert!(add_exists("7.9beta2"));
        assert!(!add_exists("7.8 (stable)"));
        assert!(!add_exists("6.49.10"));
        assert!(add_exists(""));
    }

    #[test]
    fn size_follows_contents() {
        let mut row = Row::new();
        row.insert("contents".into(), "hello".into());
        derive(&mut row);
        assert_eq!(row["size"], "5");
    }
}
