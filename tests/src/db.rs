//! Per-test databases: a fresh SQLite file in the controller's data directory, or a fresh
//! PostgreSQL database created on the server named by `MIKROBILL_TEST_POSTGRES_URL`.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// Default server, as `scripts/test` and `.ci/run` provide it.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The storage engine a test runs the controller on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A database for one test.
#[derive(Debug)]
pub struct TestDb {
    /// The engine.
    pub backend: Backend,
    /// URL to pass as `--database-url` (None for SQLite in the data directory).
    pub url: Option<String>,
    admin_url: Option<String>,
    name: Option<String>,
}

fn admin_url() -> String {
    std::env::var("MIKROBILL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let base = match base.rfind('/') {
        Some(i) if i > base.find("://").map(|s| s + 2).unwrap_or(0) => &base[..i],
        _ => base,
    };
    format!("{base}/{db}{query}")
}

impl TestDb {
    /// Creates a fresh database on `backend`.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb {
                backend,
                url: None,
                admin_url: None,
                name: None,
            },
            Backend::Postgres => {
                let admin = admin_url();
                let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {admin}: {e}. The suite runs every controller test on \
                         PostgreSQL too: start a server (scripts/test does) or set MIKROBILL_TEST_POSTGRES_URL"
                    )
                });
                let name = format!("mbtest_{}_{}", std::process::id(), rand::random::<u32>());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                TestDb {
                    backend,
                    url: Some(with_database(&admin, &name)),
                    admin_url: Some(admin),
                    name: Some(name),
                }
            }
        }
    }

    /// Drops the database (PostgreSQL); call at the end of a test.
    pub async fn cleanup(self) {
        if let (Some(admin), Some(name)) = (self.admin_url, self.name)
            && let Ok(mut conn) = PgConnection::connect(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// A migrated core database on `backend` for tests that call the domain functions directly:
/// SQLite in a new temporary directory, or a new PostgreSQL database. Keep all three parts
/// alive for as long as the database is used.
pub async fn open_core(
    backend: Backend,
) -> (mikrobill_core::db::Db, Option<TestDb>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    match backend {
        Backend::Sqlite => {
            let url = mikrobill_core::db::sqlite_url_for_dir(dir.path());
            let db = mikrobill_core::db::Db::open(&url)
                .await
                .expect("open SQLite");
            (db, None, dir)
        }
        Backend::Postgres => {
            let t = TestDb::new(Backend::Postgres).await;
            let url = t.url.clone().expect("PostgreSQL URL");
            let db = mikrobill_core::db::Db::open(&url)
                .await
                .expect("open PostgreSQL");
            (db, Some(t), dir)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_swapped() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
