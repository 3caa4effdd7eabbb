//! Database access: one pool over SQLite (embedded default) or PostgreSQL, migrations for
//! both, and the conventions every domain module follows (timestamps are UTC unix
//! milliseconds in BIGINT columns, `$n` placeholders, integers and text only).

pub mod changes;
pub mod checkpoint;
pub mod data_steps;
pub mod params;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// How long an SQLite connection waits for a lock another connection holds.
const SQLITE_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 10000";

/// Pragmas every SQLite connection runs, after [`SQLITE_BUSY_TIMEOUT`].
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// Which database engine a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The engine behind a connection taken from a pool.
    pub fn of(conn: &sqlx::AnyConnection) -> Backend {
        if conn.backend_name() == "SQLite" {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names an engine we do not support.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A query or connection failed.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A connection pool plus the engine it talks to.
#[derive(Clone, Debug)]
pub struct Db {
    /// The pool; domain modules run their SQL on it.
    pub pool: AnyPool,
    /// Where [`Db::begin`]'s write transactions run: on SQLite a pool of one connection with
    /// a large page cache, on PostgreSQL the pool itself (see [`WRITER_CACHE_MIB`]).
    writer: AnyPool,
    /// The engine behind the pool.
    pub backend: Backend,
    /// Where [`changes::spawn_listener`] connects: PostgreSQL's URL; none for SQLite.
    listen_url: Option<ListenUrl>,
}

/// A database URL, which may hold a password: never printed.
#[derive(Clone)]
struct ListenUrl(std::sync::Arc<str>);

impl std::fmt::Debug for ListenUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// The newest migration this binary carries for `backend`.
pub fn latest_schema_version(backend: Backend) -> i64 {
    let migrator = match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The SQLite URL for the default database file inside a data directory.
pub fn sqlite_url_for_dir(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("mikrobill.db").display()
    )
}

/// Redacts the password of a database URL for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Db {
    /// Opens a pool for `url` (`sqlite://...` or `postgres://...`).
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        Db::connect_as(url, false).await
    }

    /// Opens and migrates the database of a serving controller, with SQLite's checkpoints
    /// moved off the commit path ([`checkpoint`]) for as long as the returned guard lives.
    pub async fn open_server(url: &str) -> Result<(Db, checkpoint::Checkpointer), DbError> {
        Db::open_server_with(url, checkpoint::Policy::default()).await
    }

    /// [`Db::open_server`] with its checkpoints run by `policy`.
    pub async fn open_server_with(
        url: &str,
        policy: checkpoint::Policy,
    ) -> Result<(Db, checkpoint::Checkpointer), DbError> {
        let db = Db::connect_as(url, true).await?;
        db.migrate().await?;
        let checkpointer = checkpoint::start(&db, policy);
        Ok((db, checkpointer))
    }

    async fn connect_as(url: &str, server: bool) -> Result<Db, DbError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(redact_url(url)));
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let pool = match backend {
            // WAL lets the admin CLI read and write while `serve` runs; the busy timeout makes
            // concurrent writers wait instead of failing with SQLITE_BUSY. It comes first:
            // switching a new database to WAL needs its lock, and without a timeout a
            // connection opened while another process (a CLI command, a starting `serve`)
            // holds it fails at once with "database is locked".
            Backend::Sqlite => {
                options
                    .max_connections(sqlite_pool_size())
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            conn.execute(SQLITE_BUSY_TIMEOUT).await?;
                            conn.execute(SQLITE_PRAGMAS).await?;
                            if server {
                                conn.execute(checkpoint::SERVER_PRAGMAS).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => options.max_connections(16).connect(url).await?,
        };
        let writer = match backend {
            Backend::Sqlite => sqlite_writer(url, server).await?,
            Backend::Postgres => pool.clone(),
        };
        let listen_url = (backend == Backend::Postgres).then(|| ListenUrl(url.into()));
        Ok(Db {
            pool,
            writer,
            backend,
            listen_url,
        })
    }

    /// Applies pending migrations for this backend.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        data_steps::run_pending(self).await?;
        Ok(())
    }

    /// Whether every migration embedded in this binary has been applied successfully.
    pub async fn migrations_applied(&self) -> Result<bool, DbError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await?;
        Ok(migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .all(|m| applied.contains(&m.version)))
    }

    /// The newest migration applied to this database (0 when none is).
    pub async fn schema_version(&self) -> Result<i64, DbError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(v.unwrap_or(0))
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads and then writes fails with
    /// SQLITE_BUSY_SNAPSHOT, without waiting, whenever another connection committed in between.
    ///
    /// On SQLite every such transaction runs on one connection ([`WRITER_CACHE_MIB`]), so
    /// writers queue in the order they asked instead of sleeping in SQLite's busy handler.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Closes every connection (before the database file is replaced or removed).
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Opens and migrates in one step, as every command does at start.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Reads a setting.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, DbError> {
        let v: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.map(|(v,)| v))
    }

    /// Writes a setting, replacing any previous value.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), DbError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Reads a setting, creating it with `make()` if absent; concurrent callers agree on one value.
    pub async fn setting_or_init(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String, DbError> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(make())
        .execute(&self.pool)
        .await?;
        Ok(self
            .setting(key)
            .await?
            .expect("setting exists after insert"))
    }
}

/// Current time as UTC unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats a unix-millisecond timestamp as RFC 3339 UTC.
pub fn format_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The operator's UTC offset in minutes from the stored billing settings, read inside the
/// caller's transaction (UTC+7, the settings' default, until an admin saves them). Here
/// rather than in `settings` because the data steps, below every domain module, need it as
/// much as the summaries written with each row.
pub(crate) async fn billing_utc_offset(conn: &mut sqlx::AnyConnection) -> Result<i32, DbError> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'billing'")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(stored
        .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
        .and_then(|v| v["utc_offset_minutes"].as_i64())
        .and_then(|m| i32::try_from(m).ok())
        .unwrap_or(420))
}

/// Escapes LIKE's wildcards (and the escape character) in user text, for `ESCAPE '\'`.
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Runs `inner` (a SELECT with its WHERE, ORDER BY and LIMIT) and has the database render
/// its rows as JSON objects in one result row. A page of 50 rows then crosses the driver as
/// one value instead of 50 decoded rows, which is most of a list request's cost.
/// `fields` are `json_object` arguments (`'id', id, 'name', name`), `order` the ordering
/// of `inner` in terms of its output columns.
pub async fn json_rows<'q>(
    db: &'q Db,
    fields: &str,
    inner: &str,
    order: &str,
    bind: impl FnOnce(
        sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
) -> Result<Vec<Box<serde_json::value::RawValue>>, DbError> {
    let sql = match db.backend {
        // SQLite feeds an aggregate the rows of an ordered subquery in that order, so the
        // aggregate needs no sorter of its own (dropping it took a 50-row page from 5.9k to
        // 7.8k requests/s in scripts/bench-api); the paging test checks the order.
        Backend::Sqlite => {
            let _ = order;
            format!("SELECT json_group_array(json_object({fields})) AS j FROM ({inner}) t")
        }
        Backend::Postgres => format!(
            "SELECT CAST(COALESCE(json_agg(json_build_object({fields}) ORDER BY {order}), '[]') AS TEXT) AS j FROM ({inner}) t"
        ),
    };
    let row = bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
        .fetch_one(&db.pool)
        .await?;
    let text: String = sqlx::Row::try_get(&row, "j")?;
    serde_json::from_str(&text).map_err(|e| {
        DbError::Sqlx(sqlx::Error::Decode(
            format!("the database rendered invalid JSON: {e}").into(),
        ))
    })
}

/// The page cache of SQLite's writer connection, in MiB (`MIKROBILL_SQLITE_WRITER_CACHE_MIB`
/// overrides it).
///
/// Accounting records are keyed by a hash, so each insert lands on a random leaf of the
/// primary key's index. A connection's cache is only kept while no other connection writes,
/// and with writes taking turns over the pool each transaction started cold and read those
/// leaves back from the log or the file. One writer connection keeps the index's hot pages
/// across transactions (a million-record drain: 119.7 s before, 111.2 s with it alone; see
/// BENCHMARKS.md); 64 MiB holds the index of a few million records, taken only as pages are
/// read.
pub const WRITER_CACHE_MIB: u32 = 64;

fn sqlite_writer_cache_mib() -> u32 {
    std::env::var("MIKROBILL_SQLITE_WRITER_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=4096).contains(n))
        .unwrap_or(WRITER_CACHE_MIB)
}

/// SQLite's writer: one connection, kept open for good so its cache stays warm.
async fn sqlite_writer(url: &str, server: bool) -> Result<AnyPool, sqlx::Error> {
    let cache_kib = i64::from(sqlite_writer_cache_mib()) * 1024;
    AnyPoolOptions::new()
        .max_connections(1)
        // Writers wait here for each other; SQLite's own busy timeout (10 s) still bounds a
        // wait for a write lock held by another process.
        .acquire_timeout(Duration::from_secs(30))
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(SQLITE_BUSY_TIMEOUT).await?;
                conn.execute(SQLITE_PRAGMAS).await?;
                let cache = format!("PRAGMA cache_size = -{cache_kib}");
                conn.execute(sqlx::AssertSqlSafe(cache)).await?;
                if server {
                    conn.execute(checkpoint::SERVER_PRAGMAS).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// SQLite connections in the pool: each runs on its own thread, and on a small machine more
/// threads than cores mostly buy context switches (measured with scripts/bench-api).
fn sqlite_pool_size() -> u32 {
    std::env::var("MIKROBILL_SQLITE_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=64).contains(n))
        .unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
            (cores * 2).clamp(4, 16)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://bob:secret@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://bob@db/x"), "postgres://bob@db/x");
        assert_eq!(redact_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    }
}
