//! The SQL forms of the pure billing rules agree with the Rust functions on both backends:
//! queries that filter in the database (the isolation sweep's candidates, the dashboard's
//! overdue count, the invoice list's filter, the voucher writers' `status IN (...)`, the
//! voucher read model's `throttled`) decide exactly as the functions the rest of the code asks.

use mikrobill_core::billing::overdue;
use mikrobill_core::db::Db;
use mikrobill_core::vouchers::State;
use mikrobill_core::vouchers::lifecycle::{self, Event};
use mikrobill_tests::{Backend, TestDb, init_tracing, on_both_backends};
use rand::Rng;
use sqlx::Row;

on_both_backends!(
    overdue_in_sql_is_overdue_in_rust,
    voucher_state_filters_match_the_table,
    throttled_in_sql_is_throttled_in_rust
);

async fn open(db: &TestDb, dir: &std::path::Path) -> Db {
    let url = db
        .url
        .clone()
        .unwrap_or_else(|| mikrobill_core::db::sqlite_url_for_dir(dir));
    Db::open(&url)
        .await
        .expect("open and migrate the test database")
}

async fn overdue_in_sql_is_overdue_in_rust(backend: Backend) {
    init_tracing();
    let test_db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let db = open(&test_db, dir.path()).await;
    let sql = format!(
        "SELECT CASE WHEN {} THEN 1 ELSE 0 END AS overdue \
         FROM (SELECT CAST($1 AS TEXT) AS status, CAST($2 AS BIGINT) AS due_at) i \
         LEFT JOIN (SELECT CAST($3 AS BIGINT) AS grace_days) s ON 1 = 1",
        overdue::sql("$4")
    );
    let day = overdue::DAY_MS;
    let due = 1_780_000_000_000i64;
    let mut cases: Vec<(&str, i64, Option<i64>, i64)> = Vec::new();
    // The edges: the last moment of grace and the one after, with and without a subscription.
    for grace in [None, Some(0), Some(3), Some(60)] {
        let end = due + grace.unwrap_or(0) * day;
        for now in [end - 1, end, end + 1, due - day, end + 30 * day] {
            cases.push(("unpaid", due, grace, now));
            cases.push(("paid", due, grace, now));
        }
    }
    let mut rng = rand::rng();
    for _ in 0..200 {
        let grace = rng.random_range(0..=60);
        let now = due + rng.random_range(-5 * day..70 * day);
        cases.push(("unpaid", due, Some(grace), now));
    }
    for (status, due_at, grace, now) in cases {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(status)
            .bind(due_at)
            .bind(grace)
            .bind(now)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        let in_sql = row.try_get::<i32, _>("overdue").unwrap() == 1;
        let in_rust = status == "unpaid" && overdue::is_overdue(due_at, grace.unwrap_or(0), now);
        assert_eq!(
            in_sql, in_rust,
            "status {status}, due {due_at}, grace {grace:?}, now {now}"
        );
    }
    db.close().await;
    test_db.cleanup().await;
}

async fn voucher_state_filters_match_the_table(backend: Backend) {
    init_tracing();
    let test_db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let db = open(&test_db, dir.path()).await;
    for event in Event::ALL {
        let sql = format!(
            "SELECT CASE WHEN {} THEN 1 ELSE 0 END AS applies FROM (SELECT CAST($1 AS TEXT) AS status) v",
            lifecycle::applies_sql("v.status", event)
        );
        for state in State::ALL {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(state.as_str())
                .fetch_one(&db.pool)
                .await
                .unwrap();
            assert_eq!(
                row.try_get::<i32, _>("applies").unwrap() == 1,
                lifecycle::next(state, event).is_some(),
                "{state:?} {event:?}"
            );
        }
    }
    db.close().await;
    test_db.cleanup().await;
}

async fn throttled_in_sql_is_throttled_in_rust(backend: Backend) {
    use mikrobill_core::vouchers::usage_state::{self, Limits, Used};
    init_tracing();
    let test_db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let db = open(&test_db, dir.path()).await;
    let sql = format!(
        "SELECT CASE WHEN {} THEN 1 ELSE 0 END AS throttled \
         FROM (SELECT CAST($1 AS TEXT) AS status, CAST($2 AS BIGINT) AS used_bytes) v, \
         (SELECT CAST($3 AS TEXT) AS fup_rate_limit, CAST($4 AS BIGINT) AS data_limit_bytes) p",
        usage_state::throttled_sql("v", "p")
    );
    for state in State::ALL {
        for fup in [None, Some("256k/512k")] {
            for limit in [None, Some(1_000_000i64)] {
                for bytes in [0i64, 999_999, 1_000_000, 5_000_000] {
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(state.as_str())
                        .bind(bytes)
                        .bind(fup)
                        .bind(limit)
                        .fetch_one(&db.pool)
                        .await
                        .unwrap();
                    let limits = Limits {
                        data_bytes: limit,
                        fair_usage: fup.is_some(),
                        ..Limits::default()
                    };
                    assert_eq!(
                        row.try_get::<i32, _>("throttled").unwrap() == 1,
                        usage_state::throttled(state, &limits, Used { secs: 0, bytes }),
                        "{state:?} {fup:?} {limit:?} {bytes}"
                    );
                }
            }
        }
    }
    db.close().await;
    test_db.cleanup().await;
}
