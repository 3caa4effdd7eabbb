//! SQLite's write-ahead log under a steady stream of commits: a serving controller's
//! background checkpoint keeps the log bounded (passive checkpoints alone never rewind it
//! while commits keep arriving, and a drain grew it to 4 GB), and nothing written is lost.

use mikrobill_core::db::Db;
use mikrobill_core::db::checkpoint::{Checkpointer, Policy};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const ROW_BYTES: usize = 4000;
const ROWS_PER_COMMIT: usize = 16;
/// About 96 MiB of pages: 24 times the 4 MiB past which the first test rewinds the log.
const COMMITS: usize = 1_500;

/// A serving controller's SQLite database in a new directory, checkpointed every 50 ms and
/// rewound past `restart_at_frames`, with a table to fill.
async fn open(restart_at_frames: i64) -> (tempfile::TempDir, Db, Checkpointer) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("log.db").display());
    let policy = Policy {
        interval: Duration::from_millis(50),
        restart_at_frames,
    };
    let (db, checkpointer) = Db::open_server_with(&url, policy).await.unwrap();
    sqlx::query("CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    (dir, db, checkpointer)
}

/// Commits [`ROWS_PER_COMMIT`] rows of [`ROW_BYTES`] through the writer; how long it took.
async fn commit(db: &Db) -> Duration {
    let body = vec![0x5au8; ROW_BYTES];
    let started = std::time::Instant::now();
    let mut tx = db.begin().await.unwrap();
    for _ in 0..ROWS_PER_COMMIT {
        sqlx::query("INSERT INTO filler (body) VALUES ($1)")
            .bind(body.clone())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_stays_bounded_while_commits_never_stop() {
    let (dir, db, _checkpointer) = open(1_024).await;

    // Readers come and go through the pool all the time, as the API's do.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let db = db.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM filler")
                    .fetch_one(&db.pool)
                    .await
                    .unwrap();
                reads += 1;
            }
            reads
        })
    };

    let wal = dir.path().join("log.db-wal");
    let mut largest_log = 0u64;
    for _ in 0..COMMITS {
        commit(&db).await;
        largest_log = largest_log.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.await.unwrap();

    let written = (COMMITS * ROWS_PER_COMMIT * ROW_BYTES) as u64;
    eprintln!(
        "wrote {} MiB; the log peaked at {} MiB; {reads} reads meanwhile",
        written >> 20,
        largest_log >> 20
    );
    assert!(reads > 0, "the reader ran alongside the writer");
    // Rewound at 4 MiB, the log holds what arrives between two runs on top of that; never
    // rewound, it would hold every page written.
    assert!(
        largest_log < 32 << 20,
        "the log grew to {} MiB while {} MiB were written",
        largest_log >> 20,
        written >> 20
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM filler")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows as usize, COMMITS * ROWS_PER_COMMIT, "every row kept");
    db.close().await;
}

/// A reader that keeps a snapshot for seconds (a long report) holds back the log's rewind, but
/// not the writers queued behind it: the rewind gives up quickly and tries again later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_reader_does_not_stall_the_writers() {
    let (_dir, db, _checkpointer) = open(256).await;
    // The log holds frames, so the reader below reads from it and a rewind must wait for it.
    for _ in 0..20 {
        commit(&db).await;
    }
    let reader = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut conn = db.pool.acquire().await.unwrap();
            sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
            let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM filler")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(4)).await;
            sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
        })
    };
    let mut slowest = Duration::ZERO;
    let mut commits = 0;
    while !reader.is_finished() {
        slowest = slowest.max(commit(&db).await);
        commits += 1;
    }
    reader.await.unwrap();
    eprintln!("{commits} commits while the reader held its snapshot; slowest {slowest:?}");
    assert!(commits > 10, "the writer went on: {commits} commits");
    // The rewind waits at most a quarter of a second for the reader each time it tries; with
    // SQLite's busy timeout it would hold the writers until the reader let go, 4 s later.
    assert!(
        slowest < Duration::from_millis(1_500),
        "a commit waited {slowest:?} behind the log's rewind"
    );
    db.close().await;
}
