//! Every statement with `RETURNING` in the controller is read with `fetch_all`. SQLite
//! finishes such a statement only when its rows are read to the end: `fetch_one` and
//! `fetch_optional` leave it open on the pooled connection, and outside a transaction that
//! connection keeps the database's write lock until it is next used, so every other writer
//! waits and, after the busy timeout, fails with "database is locked" (seen as 500s on logins
//! and payments under load).

use std::path::Path;

/// The `fetch_*` call that runs the statement starting at byte `at`: the first one after it.
fn fetch_after(text: &str, at: usize) -> Option<&str> {
    let rest = &text[at..];
    let call = rest.find(".fetch_")?;
    let name = &rest[call + 1..];
    Some(&name[..name.find('(')?])
}

#[test]
fn returning_rows_are_read_to_the_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in ["controller-core", "controller-http", "controller", "agent"] {
        files.extend(mikrobill_tests::rust_sources(&root.join(krate).join("src")));
    }
    let mut offenders = Vec::new();
    let mut seen = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("RETURNING ") {
            let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
            if text[line_start..at].trim_start().starts_with("//") {
                continue;
            }
            seen += 1;
            match fetch_after(&text, at) {
                Some("fetch_all") => {}
                other => offenders.push(format!(
                    "{}:{}: RETURNING read with {other:?}",
                    file.display(),
                    text[..at].lines().count()
                )),
            }
        }
    }
    assert!(seen >= 10, "found only {seen} RETURNING statements");
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}
