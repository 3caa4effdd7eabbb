//! PostgreSQL's change notifications (migration 0032, `mikrobill_core::db::changes`): a
//! committed change-log entry or queued command wakes the listener, whichever connection
//! wrote it; a rolled-back one does not; a listener whose connection is killed connects again,
//! wakes once for what it may have missed, and goes on waking. SQLite has no listener.

use mikrobill_core::audit::Actor;
use mikrobill_core::db::{Db, changes};
use mikrobill_tests::{Backend, TestDb, init_tracing};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

async fn woken(wake: &Notify) -> bool {
    tokio::time::timeout(Duration::from_secs(10), wake.notified())
        .await
        .is_ok()
}

async fn quiet(wake: &Notify) -> bool {
    tokio::time::timeout(Duration::from_millis(700), wake.notified())
        .await
        .is_err()
}

async fn exec(db: &Db, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_has_no_listener() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&mikrobill_core::db::sqlite_url_for_dir(dir.path()))
        .await
        .unwrap();
    assert!(changes::spawn_listener(&db, Arc::new(Notify::new())).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_changes_and_commands_wake_the_listener() {
    init_tracing();
    let t = TestDb::new(Backend::Postgres).await;
    let db = Db::open(t.url.as_deref().unwrap()).await.unwrap();
    let site = mikrobill_core::sites::create(&db, &Actor::cli(), "North")
        .await
        .unwrap();
    // Another pool, as another replica or the CLI would write.
    let writer = Db::connect(t.url.as_deref().unwrap()).await.unwrap();
    let wake = Arc::new(Notify::new());
    let listener = changes::spawn_listener(&db, wake.clone()).expect("a listener");
    assert!(woken(&wake).await, "listening wakes once");
    assert!(quiet(&wake).await, "nothing committed yet");

    let change = "INSERT INTO sync_log (seq, site_id, item_kind, item_key, payload, created_at) \
                  VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM sync_log), NULL, 'plan', 'p1', NULL, 0)";
    let mut tx = writer.pool.begin().await.unwrap();
    sqlx::query(change).execute(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(quiet(&wake).await, "a rolled-back change wakes nobody");

    exec(&writer, change).await;
    assert!(woken(&wake).await, "a committed change");

    exec(
        &writer,
        &format!(
            "INSERT INTO commands (site_id, kind, command_json, status, created_by, created_at, \
             expires_at) VALUES ('{}', 'resync', '{{}}', 'pending', 'test', 0, 0)",
            site.id
        ),
    )
    .await;
    assert!(woken(&wake).await, "a queued command");

    // A batch of changes in one transaction wakes once.
    let mut tx = writer.pool.begin().await.unwrap();
    for _ in 0..20 {
        sqlx::query(change).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    assert!(woken(&wake).await, "a batch of changes");
    assert!(quiet(&wake).await, "one wake for one transaction");

    // The listener's connection dies (a PostgreSQL restart, a failover, a reaped idle
    // connection): it listens again and wakes for what it may have missed.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&writer.pool)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "one listening connection");
    assert!(woken(&wake).await, "listening again wakes");
    exec(&writer, change).await;
    assert!(woken(&wake).await, "a change after the reconnection");
    drop(listener);
}
