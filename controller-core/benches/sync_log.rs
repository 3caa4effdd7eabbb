//! Database size of the change log after 1,000,000 changes, without and with compaction.
//! Changes are appended through `sync_log::append` (voucher upserts spread over 100 sites,
//! a thousand per transaction, as a busy controller writes them), then the compaction job's
//! `sync_compaction::compact` runs with no agent connected and no retention, and the engine
//! gives the space back (SQLite `VACUUM`, PostgreSQL `VACUUM FULL`). The table shows rows,
//! bytes and the time each step took.
//!
//! `cargo bench -p mikrobill-core --bench sync_log` (SQLite in a temporary directory; with
//! `BENCH_POSTGRES_URL`, PostgreSQL as well). `BENCH_CHANGES` scales the log.

use mikrobill_core::db::{Backend, Db};
use mikrobill_protocol::items::{Item, Voucher, VoucherStatus};
use mikrobill_protocol::messages::ChangeOp;
use std::time::Instant;

async fn size(db: &Db) -> i64 {
    let sql = match db.backend {
        Backend::Sqlite => {
            "SELECT (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size())"
        }
        Backend::Postgres => "SELECT CAST(pg_total_relation_size('sync_log') AS BIGINT)",
    };
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.unwrap()
}

async fn rows(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sync_log")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn run(name: &str, db: &Db, changes: usize) {
    let started = Instant::now();
    let per_tx = 1000;
    for batch in 0..changes.div_ceil(per_tx) {
        let ops: Vec<ChangeOp> = (0..per_tx.min(changes - batch * per_tx))
            .map(|i| {
                ChangeOp::Upsert(Item::Voucher(Voucher {
                    code: format!("V{:08}", batch * per_tx + i),
                    password: None,
                    plan_id: "0b5d3c1e-plan".into(),
                    status: VoucherStatus::New,
                    activated_at_ms: None,
                    used_time_secs: 0,
                    used_bytes: 0,
                    sites: Vec::new(),
                    bound_mac: None,
                }))
            })
            .collect();
        let site = format!("site-{:03}", batch % 100);
        let mut tx = db.begin().await.unwrap();
        mikrobill_core::sync_log::append(&mut tx, Some(&site), &ops)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let filled = started.elapsed();
    let full_rows = rows(db).await;
    let full = size(db).await;
    db.set_setting(mikrobill_core::sync_compaction::RETENTION_SETTING, "0")
        .await
        .unwrap();
    let started = Instant::now();
    let deleted = mikrobill_core::sync_compaction::compact(db, mikrobill_core::db::now_ms())
        .await
        .unwrap();
    let compacted = started.elapsed();
    let vacuum = match db.backend {
        Backend::Sqlite => "VACUUM",
        Backend::Postgres => "VACUUM FULL sync_log",
    };
    sqlx::query(vacuum).execute(&db.pool).await.unwrap();
    let after_rows = rows(db).await;
    let after = size(db).await;
    println!("\n**{name}: {changes} changes**\n");
    println!("| state | rows | bytes | took |");
    println!("|---|---:|---:|---:|");
    println!(
        "| without compaction | {full_rows} | {full} | {:.1} s to append |",
        filled.as_secs_f64()
    );
    println!(
        "| after compaction (+ vacuum) | {after_rows} | {after} | {:.1} s to delete {deleted} |",
        compacted.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let changes: usize = std::env::var("BENCH_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&mikrobill_core::db::sqlite_url_for_dir(dir.path()))
        .await
        .unwrap();
    run("SQLite", &db, changes).await;
    db.close().await;
    if let Ok(url) = std::env::var("BENCH_POSTGRES_URL") {
        let db = Db::open(&url).await.unwrap();
        // A fresh log: whatever an earlier run left is cleared first.
        sqlx::query("DELETE FROM sync_log")
            .execute(&db.pool)
            .await
            .unwrap();
        run("PostgreSQL", &db, changes).await;
    }
}
