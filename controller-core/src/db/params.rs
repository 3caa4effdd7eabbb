//! Placeholders for statements built at run time with many bound values (multi-row inserts,
//! long `IN` lists).
//!
//! PostgreSQL needs numbered placeholders (`$1`). SQLite takes them too, but binding one costs
//! time linear in the statement's count of numbered parameters: sqlx asks SQLite each
//! parameter's name, and SQLite finds it by scanning a list. A 500-row insert of 17 columns
//! spent 70 % of an ingest there. Anonymous `?` placeholders have no name to look up, so on
//! SQLite a statement binds in linear time and can be as large as PostgreSQL's: a batch of
//! accounting becomes one or two statements instead of sixty round trips.

use super::Backend;

/// Most values one run-time-built statement binds: under SQLite's limit (32,766) and
/// PostgreSQL's (65,535), and large enough for a 500-record batch in two statements.
pub const MAX_PARAMS: usize = 8_192;
const _: () = assert!(MAX_PARAMS <= 32_766);

/// Hands out a statement's placeholders in bind order. On SQLite every placeholder is `?`, so
/// a statement must take its values in the order its placeholders appear and use each once.
#[derive(Debug)]
pub struct Params {
    backend: Backend,
    next: usize,
}

impl Params {
    /// The first placeholder of a statement for `backend`.
    pub fn new(backend: Backend) -> Params {
        Params { backend, next: 1 }
    }

    /// The first placeholder of a statement on `conn`'s engine.
    pub fn of(conn: &sqlx::AnyConnection) -> Params {
        Params::new(Backend::of(conn))
    }

    /// The next placeholder.
    pub fn one(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// `n` placeholders separated by commas, for an `IN (...)` list.
    pub fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.one()).collect::<Vec<_>>().join(", ")
    }

    /// `rows` parenthesised groups of `cols` placeholders, for a multi-row `VALUES`.
    pub fn rows(&mut self, rows: usize, cols: usize) -> String {
        (0..rows)
            .map(|_| format!("({})", self.list(cols)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Rows of `cols` values that fit one statement.
pub fn rows_per_statement(cols: usize) -> usize {
    (MAX_PARAMS / cols).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_numbers_in_bind_order() {
        let mut p = Params::new(Backend::Postgres);
        assert_eq!(p.one(), "$1");
        assert_eq!(p.rows(2, 2), "($2, $3), ($4, $5)");
        assert_eq!(p.list(2), "$6, $7");
    }

    #[test]
    fn sqlite_is_anonymous() {
        let mut p = Params::new(Backend::Sqlite);
        assert_eq!(p.one(), "?");
        assert_eq!(p.rows(2, 2), "(?, ?), (?, ?)");
        assert_eq!(p.list(3), "?, ?, ?");
    }

    #[test]
    fn statements_stay_under_both_limits() {
        for cols in [1, 6, 7, 13, 17] {
            let rows = rows_per_statement(cols);
            assert!(rows * cols <= MAX_PARAMS);
        }
        assert_eq!(rows_per_statement(17), 481);
    }
}
