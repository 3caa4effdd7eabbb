//! The SQLite and PostgreSQL migration folders describe one schema: after every migration
//! both engines have the same tables, the same columns in each (with the same nullability and
//! primary keys) and the same named indexes. Column types differ by engine on purpose (BIGINT
//! vs INTEGER and so on), so they are not compared.

use mikrobill_core::db::Db;
use mikrobill_tests::{Backend, TestDb, init_tracing};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// Table -> column -> (nullable, part of the primary key).
type Columns = BTreeMap<String, BTreeMap<String, (bool, bool)>>;

async fn sqlite_schema(db: &Db) -> (Columns, BTreeSet<String>) {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut columns = Columns::new();
    for t in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT name, \"notnull\" AS nn, pk FROM pragma_table_info('{t}')"
        )))
        .fetch_all(&db.pool)
        .await
        .unwrap();
        let cols = columns.entry(t).or_default();
        for r in rows {
            let name: String = r.try_get("name").unwrap();
            let notnull: i64 = r.try_get("nn").unwrap();
            let pk: i64 = r.try_get("pk").unwrap();
            // SQLite lets a primary key column be NULL unless it says NOT NULL; PostgreSQL
            // never does, so a key counts as not nullable on both.
            cols.insert(name, (notnull == 0 && pk == 0, pk > 0));
        }
    }
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    (columns, indexes.into_iter().collect())
}

async fn postgres_schema(db: &Db) -> (Columns, BTreeSet<String>) {
    let rows = sqlx::query(
        "SELECT c.table_name::text AS t, c.column_name::text AS col, c.is_nullable::text AS nullable, \
         (EXISTS (SELECT 1 FROM information_schema.table_constraints tc \
           JOIN information_schema.key_column_usage k ON k.constraint_name = tc.constraint_name \
             AND k.table_name = tc.table_name AND k.table_schema = tc.table_schema \
           WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public' \
             AND tc.table_name = c.table_name AND k.column_name = c.column_name))::int AS pk \
         FROM information_schema.columns c \
         WHERE c.table_schema = 'public' AND c.table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut columns = Columns::new();
    for r in rows {
        let t: String = r.try_get("t").unwrap();
        let col: String = r.try_get("col").unwrap();
        let nullable: String = r.try_get("nullable").unwrap();
        let pk: i32 = r.try_get("pk").unwrap();
        columns
            .entry(t)
            .or_default()
            .insert(col, (nullable == "YES", pk > 0));
    }
    // Indexes that back a constraint (primary keys, UNIQUE) are named by each engine its own
    // way; only the ones a migration names with CREATE INDEX are compared.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT i.indexname::text FROM pg_indexes i WHERE i.schemaname = 'public' \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    (columns, indexes.into_iter().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_have_the_same_schema() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::open(&mikrobill_core::db::sqlite_url_for_dir(dir.path()))
        .await
        .expect("migrate SQLite");
    let pg_db = TestDb::new(Backend::Postgres).await;
    let postgres = Db::open(pg_db.url.as_deref().expect("a PostgreSQL URL"))
        .await
        .expect("migrate PostgreSQL");
    let (lite_cols, lite_idx) = sqlite_schema(&sqlite).await;
    let (pg_cols, pg_idx) = postgres_schema(&postgres).await;

    assert!(
        lite_cols.len() > 20,
        "the scan found the tables: {lite_cols:?}"
    );
    let lite_tables: BTreeSet<_> = lite_cols.keys().collect();
    let pg_tables: BTreeSet<_> = pg_cols.keys().collect();
    assert_eq!(lite_tables, pg_tables, "tables differ");
    let mut differences = Vec::new();
    for (table, cols) in &lite_cols {
        let other = &pg_cols[table];
        for (col, shape) in cols {
            match other.get(col) {
                None => differences.push(format!("{table}.{col}: only in SQLite")),
                Some(o) if o != shape => differences.push(format!(
                    "{table}.{col}: SQLite (nullable, key) {shape:?}, PostgreSQL {o:?}"
                )),
                Some(_) => {}
            }
        }
        for col in other.keys().filter(|c| !cols.contains_key(*c)) {
            differences.push(format!("{table}.{col}: only in PostgreSQL"));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert_eq!(lite_idx, pg_idx, "named indexes differ");
    sqlite.close().await;
    postgres.close().await;
    pg_db.cleanup().await;
}
