//! A transaction in the controller reads and writes through its own connection only, never
//! through the pool it came from. On SQLite `Db::begin` takes the write lock at once; a
//! transaction that then waits for a second pooled connection can find every other one held by
//! a writer waiting for that lock, and all writers stall until the busy timeout fails them
//! ("database is locked" on a voucher batch in CI: the notification producer read its settings
//! through the pool inside its transaction).
//!
//! The check is textual: from each `X.begin().await` to the transaction's first `commit()` or
//! `rollback()`, the handle `X` may not be passed on nor its pool used.

use std::path::Path;

/// The expression a `.begin()` call at `at` is made on: `db`, `self.db`, `state.db`.
fn receiver(text: &str, at: usize) -> &str {
    let start = text[..at]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |i| i + 1);
    &text[start..at]
}

/// Whether `handle` is used in `body` other than through the transaction: as an argument, by
/// reference, or through its pool.
fn uses(body: &str, handle: &str) -> Vec<usize> {
    let mut found = Vec::new();
    for (at, _) in body.match_indices(handle) {
        let before = body[..at].chars().next_back().unwrap_or(' ');
        if before.is_ascii_alphanumeric() || before == '_' || before == '.' {
            continue;
        }
        let after = body[at + handle.len()..].trim_start();
        let passed = matches!(before, '(' | ',' | '&' | ' ' | '\n')
            && (after.starts_with(',') || after.starts_with(')'));
        let pooled = after.starts_with(".pool") || after.starts_with(".begin(");
        if passed || pooled {
            found.push(at);
        }
    }
    found
}

#[test]
fn transactions_use_only_their_own_connection() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in ["controller-core", "controller-http", "controller"] {
        files.extend(mikrobill_tests::rust_sources(&root.join(krate).join("src")));
    }
    let mut offenders = Vec::new();
    let mut seen = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, call) in text.match_indices(".begin().await") {
            let handle = receiver(&text, at);
            // `Db::begin` itself, on its pool.
            if handle.is_empty() || handle.ends_with("pool") {
                continue;
            }
            seen += 1;
            let from = at + call.len();
            let end = [".commit()", ".rollback()"]
                .iter()
                .filter_map(|end| text[from..].find(end))
                .min()
                .map_or(text.len(), |n| from + n);
            for used in uses(&text[from..end], handle) {
                let line = text[..from + used].lines().count();
                offenders.push(format!(
                    "{}:{line}: `{handle}` used inside its own transaction: {}",
                    file.display(),
                    text.lines().nth(line - 1).unwrap_or_default().trim()
                ));
            }
        }
    }
    assert!(seen >= 50, "found only {seen} transactions");
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

#[test]
fn the_check_sees_a_second_connection() {
    let body = "\n    let ctx = Context::load(db, &mut tx).await?;\n    plans::get(&db).await?;\n    \
                sqlx::query(\"\").execute(&db.pool).await?;\n    let x = db_name(tx);\n";
    assert_eq!(uses(body, "db").len(), 3);
    let line = "    let mut tx = state.db.begin().await?;";
    assert_eq!(receiver(line, line.find(".begin").unwrap()), "state.db");
}
