//! Group commit and the background fold against one transaction per batch, on both engines:
//! the same accounting sent as single batches, as groups the edge's `Ingester` forms from
//! concurrent batches, as one group holding every batch twice, folded a few records at a time,
//! by two replicas at once, or by the next process after a crash, leaves the same ledger
//! (records, sessions, days, months, account, customer and site summaries, vouchers'
//! fleet-wide use and state), folds every record once, and answers each batch with its own
//! counts.

use mikrobill_core::accounting::fold::{fold_pending, fold_until_current};
use mikrobill_core::accounting::writer::Ingester;
use mikrobill_core::accounting::{Batch, IngestError, ingest, ingest_group, store_group};
use mikrobill_core::audit::Actor;
use mikrobill_core::db::{Db, now_ms};
use mikrobill_core::plans::{PlanInput, PlanKind};
use mikrobill_core::vouchers::ScopeKind;
use mikrobill_core::vouchers::batch::BatchSpec;
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus, RecordId};
use mikrobill_tests::{Backend, init_tracing};

mikrobill_tests::on_both_backends!(
    groups_store_what_single_batches_store,
    small_folds_and_two_replicas_folding_at_once_leave_the_same_ledger,
    an_edge_starting_folds_what_an_earlier_process_stored,
    a_site_that_cannot_fold_does_not_hold_back_the_others,
    a_stored_record_repeated_with_more_octets_raises_the_ledger,
    a_full_lane_refuses_batches_as_busy_and_stores_nothing_of_them
);

/// The sites, vouchers and subscriptions every database of the test starts with, under the
/// same ids, so their ledgers can be compared row by row.
async fn seed(db: &Db, now: i64) -> Vec<String> {
    let actor = Actor::cli();
    for site in ["north", "south"] {
        sqlx::query("INSERT INTO sites (id, name, created_at) VALUES ($1, $1, $2)")
            .bind(site)
            .bind(now)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let mut tx = db.begin().await.unwrap();
    let plan = mikrobill_core::plans::create_in(
        &mut tx,
        &actor,
        &PlanInput {
            name: "day pass".into(),
            kind: PlanKind::Hotspot,
            price: 5000,
            rate_limit: None,
            // Small enough that the heavy users exhaust theirs during the test.
            time_limit_secs: Some(4 * 3600),
            data_limit_bytes: None,
            validity_secs: Some(86_400),
            shared_users: Some(2),
            interim_interval_secs: Some(300),
            router_group: None,
            address_list: None,
            mac_lock: false,
            fup_rate_limit: None,
            isolation_profile: None,
        },
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    mikrobill_core::vouchers::batch::generate(
        db,
        &actor,
        BatchSpec {
            plan_id: plan.id.clone(),
            count: 6,
            scope: ScopeKind::All,
            site_id: None,
            group_id: None,
            prefix: Some("G".into()),
            length: Some(8),
            password_mode: None,
            password_length: None,
            password_digits: false,
            price: None,
            note: None,
        },
    )
    .await
    .unwrap();
    let generated: Vec<String> = sqlx::query_scalar("SELECT code FROM vouchers ORDER BY code")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    // Every database gets the same codes, so ledgers compare by key.
    let codes: Vec<String> = (0..generated.len()).map(|n| format!("GCODE{n}")).collect();
    for (old, new) in generated.iter().zip(&codes) {
        sqlx::query("UPDATE vouchers SET code = $1 WHERE code = $2")
            .bind(new)
            .bind(old)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO plans (id, name, price, kind, created_at) VALUES ('ppp', 'ppp', 100000, 'pppoe', $1)",
    )
    .bind(now)
    .execute(&db.pool)
    .await
    .unwrap();
    for n in 0..4 {
        let site = if n % 2 == 0 { "north" } else { "south" };
        // Two accounts per customer, so customer months add up accounts of both sites.
        let customer = format!("cust-{}", n / 2);
        sqlx::query(
            "INSERT INTO customers (id, number, name, created_at, updated_at) VALUES ($1, $1, $1, $2, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&customer)
        .bind(now)
        .execute(&db.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO subscriptions (id, customer_id, plan_id, site_id, username, password, \
             billing_day, due_days, grace_days, status, next_cycle_at, started_at, created_at, \
             updated_at) VALUES ($1, $2, 'ppp', $3, $4, 'x', 1, 7, 3, 'active', $5, $5, $5, $5)",
        )
        .bind(format!("sub-{n}"))
        .bind(&customer)
        .bind(site)
        .bind(format!("ppp-{n}"))
        .bind(now)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    codes
}

/// A NAS's accounting at both sites: PPPoE accounts and vouchers (two of them used at both
/// sites) online, a Start each and Interim-Updates with growing counters every five minutes
/// across a local midnight, some sessions stopping and starting again; cut into batches of
/// one site each, in send order.
fn batches(codes: &[String], start: i64) -> Vec<(&'static str, Vec<AccountingRecord>)> {
    struct Online {
        site: &'static str,
        user: String,
        session: u32,
        secs: u64,
        octets: u64,
    }
    let mut online: Vec<Online> = Vec::new();
    for n in 0..4 {
        let site = if n % 2 == 0 { "north" } else { "south" };
        online.push(Online {
            site,
            user: format!("ppp-{n}"),
            session: 0,
            secs: 0,
            octets: 0,
        });
    }
    for (n, code) in codes.iter().enumerate() {
        for site in ["north", "south"] {
            if site == "south" && n >= 2 {
                continue;
            }
            online.push(Online {
                site,
                user: code.clone(),
                session: 0,
                secs: 0,
                octets: 0,
            });
        }
    }
    let record = |o: &Online, status: AcctStatus, at: i64| {
        let session_id = format!("{}-{}-{}", o.site, o.user, o.session);
        AccountingRecord {
            id: RecordId::derive(o.site, &session_id, status, o.secs),
            nas_identifier: o.site.to_string(),
            nas_ip: Some("10.0.0.1".parse().unwrap()),
            session_id,
            username: o.user.clone(),
            status,
            event_time_ms: at,
            session_time_secs: o.secs,
            input_octets: o.octets / 4,
            output_octets: o.octets,
            input_packets: o.octets / 1000,
            output_packets: o.octets / 900,
            terminate_cause: (status == AcctStatus::Stop).then_some(1),
            framed_ip: None,
            calling_station_id: Some(format!("AA:BB:CC:00:00:{:02X}", o.user.len())),
        }
    };
    let mut per_site: Vec<(&'static str, Vec<AccountingRecord>)> =
        vec![("north", Vec::new()), ("south", Vec::new())];
    let push = |per_site: &mut Vec<(&'static str, Vec<AccountingRecord>)>, r: AccountingRecord| {
        let i = usize::from(r.nas_identifier == "south");
        per_site[i].1.push(r);
    };
    for o in &online {
        push(&mut per_site, record(o, AcctStatus::Start, start));
    }
    for round in 1..=60i64 {
        let at = start + round * 300_000;
        for (i, o) in online.iter_mut().enumerate() {
            o.secs += 300;
            o.octets += 1_000_000 * (1 + i as u64 % 3);
            if (i as i64 + round) % 17 == 0 {
                push(&mut per_site, record(o, AcctStatus::Stop, at));
                o.session += 1;
                o.secs = 0;
                o.octets = 0;
                push(&mut per_site, record(o, AcctStatus::Start, at));
            } else {
                push(&mut per_site, record(o, AcctStatus::InterimUpdate, at));
            }
        }
    }
    // Batches of a few records, the two sites' interleaved as they would arrive.
    let mut out = Vec::new();
    let chunks: Vec<Vec<_>> = per_site
        .iter()
        .map(|(site, records)| {
            records
                .chunks(7)
                .map(|c| (*site, c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    let longest = chunks.iter().map(Vec::len).max().unwrap();
    for i in 0..longest {
        for site_chunks in &chunks {
            if let Some(c) = site_chunks.get(i) {
                out.push(c.clone());
            }
        }
    }
    out
}

/// Every ledger table, each row as text, in key order.
async fn ledger(db: &Db) -> Vec<String> {
    let queries = [
        "SELECT site_id || '|' || record_id || '|' || status || '|' || CAST(input_octets AS TEXT) \
         FROM accounting_records ORDER BY site_id, record_id",
        "SELECT site_id || '|' || session_id || '|' || username || '|' || CAST(session_time_secs AS TEXT) \
         || '|' || CAST(input_octets AS TEXT) || '|' || CAST(output_octets AS TEXT) || '|' \
         || CAST(first_at AS TEXT) || '|' || CAST(last_at AS TEXT) || '|' || COALESCE(CAST(stopped_at AS TEXT), '-') \
         FROM usage_sessions ORDER BY site_id, session_id",
        "SELECT CAST(day AS TEXT) || '|' || site_id || '|' || username || '|' || CAST(session_time_secs AS TEXT) \
         || '|' || CAST(input_octets AS TEXT) || '|' || CAST(output_octets AS TEXT) || '|' || CAST(sessions AS TEXT) \
         FROM usage_daily ORDER BY day, site_id, username",
        "SELECT CAST(month AS TEXT) || '|' || site_id || '|' || username || '|' || CAST(session_time_secs AS TEXT) \
         || '|' || CAST(input_octets AS TEXT) || '|' || CAST(output_octets AS TEXT) || '|' || CAST(sessions AS TEXT) \
         FROM usage_monthly ORDER BY month, site_id, username",
        "SELECT CAST(month AS TEXT) || '|' || username || '|' || CAST(session_time_secs AS TEXT) || '|' \
         || CAST(octets AS TEXT) || '|' || CAST(sessions AS TEXT) FROM usage_account_monthly ORDER BY month, username",
        "SELECT CAST(month AS TEXT) || '|' || customer_id || '|' || CAST(session_time_secs AS TEXT) || '|' \
         || CAST(octets AS TEXT) || '|' || CAST(sessions AS TEXT) FROM usage_customer_monthly ORDER BY month, customer_id",
        "SELECT CAST(day AS TEXT) || '|' || site_id || '|' || CAST(session_time_secs AS TEXT) || '|' \
         || CAST(input_octets AS TEXT) || '|' || CAST(sessions AS TEXT) FROM usage_site_daily ORDER BY day, site_id",
        "SELECT code || '|' || status || '|' || COALESCE(CAST(activated_at AS TEXT), '-') || '|' \
         || CAST(used_time_secs AS TEXT) || '|' || CAST(used_bytes AS TEXT) || '|' || COALESCE(fleet_usage, '-') \
         FROM vouchers ORDER BY code",
    ];
    let mut rows = Vec::new();
    for sql in queries {
        let table: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&db.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        assert!(!table.is_empty(), "nothing stored for {sql}");
        rows.push(format!("-- {}", &sql[..60.min(sql.len())]));
        rows.extend(table);
    }
    rows
}

async fn groups_store_what_single_batches_store(backend: Backend) {
    init_tracing();
    let now = now_ms();
    // Six hours ending an hour ago: long enough to cross a local midnight somewhere in most
    // runs and to exhaust the vouchers' four hours.
    let start = now - 7 * 3600 * 1000;
    let mut dbs = Vec::new();
    for _ in 0..3 {
        let opened = mikrobill_tests::db::open_core(backend).await;
        let codes = seed(&opened.0, now).await;
        dbs.push((opened, codes));
    }
    let codes = dbs[0].1.clone();
    let sent = batches(&codes, start);
    let total: usize = sent.iter().map(|(_, r)| r.len()).sum();
    assert!(sent.len() > 100, "{} batches", sent.len());

    // One transaction per batch, in send order.
    let single = &dbs[0].0.0;
    let mut inserted = 0;
    for (site, records) in &sent {
        let o = ingest(single, site, records).await.unwrap();
        assert_eq!(o.duplicates, 0);
        inserted += o.inserted as usize;
    }
    assert_eq!(inserted, total);

    // Every batch sent at once through the edge's ingester, queued in send order (each
    // request is polled once, which queues it, before the next): the lanes form groups of what
    // queued while the previous one committed. Order matters for the days: a reading that
    // commits before an earlier one of its session takes the growth to its own day, and the
    // earlier one then adds nothing.
    let grouped = &dbs[1].0.0;
    let ingester = Ingester::start(grouped);
    let mut answers: Vec<_> = sent
        .iter()
        .map(|(site, records)| Box::pin(ingester.ingest(site, records.clone())))
        .collect();
    for answer in &mut answers {
        std::future::poll_fn(|cx| {
            assert!(
                answer.as_mut().poll(cx).is_pending(),
                "answered before its commit"
            );
            std::task::Poll::Ready(())
        })
        .await;
    }
    let mut inserted = 0;
    for answer in answers {
        let o = answer.await.unwrap();
        assert_eq!(o.duplicates, 0);
        inserted += o.inserted as usize;
    }
    assert_eq!(inserted, total);
    let committed = ingester.committed();
    assert_eq!(committed.batches, sent.len() as u64);
    assert!(
        committed.groups < committed.batches / 2,
        "batches sent together were not grouped: {committed:?}"
    );
    // The answers came once the records were stored; the ledger follows in the background
    // fold, which this waits out.
    fold_until_current(grouped).await.unwrap();
    // A malformed batch is refused before it joins a group, and the others still commit.
    let bad = vec![AccountingRecord {
        username: "x".repeat(300),
        ..sent[0].1[0].clone()
    }];
    let refused = ingester.ingest("north", bad).await;
    assert!(
        matches!(&refused, Err(IngestError::Invalid(m)) if m.contains("username longer than 253")),
        "{refused:?}"
    );

    // One group holding every batch twice, in reverse order: the second copy of each batch
    // is all duplicates and the ledger moves once.
    let doubled = &dbs[2].0.0;
    let mut twice: Vec<Batch<'_>> = Vec::new();
    for (site, records) in sent.iter().rev() {
        twice.push(Batch {
            site_id: site,
            records,
        });
    }
    for (site, records) in sent.iter().rev() {
        twice.push(Batch {
            site_id: site,
            records,
        });
    }
    let outcomes = ingest_group(doubled, &twice).await.unwrap();
    let half = sent.len();
    for (n, (o, b)) in outcomes.iter().zip(&twice).enumerate() {
        let len = b.records.len() as u32;
        let expected = if n < half { (len, 0) } else { (0, len) };
        assert_eq!((o.inserted, o.duplicates), expected, "batch {n}");
    }

    let want = ledger(single).await;
    // The vouchers did change: some are exhausted, and two were used at both sites.
    assert!(
        want.iter()
            .any(|r| r.starts_with("GCODE") && r.contains("|exhausted|")),
        "{want:#?}"
    );
    assert!(
        want.iter()
            .any(|r| r.starts_with("GCODE0|") && r.contains("south")),
        "{want:#?}"
    );
    assert_same(&ledger(grouped).await, &want, "grouped by the ingester");
    assert_same(
        &ledger(doubled).await,
        &want,
        "one group with every batch twice",
    );
    drop(dbs);
}

/// Stored records wait for a fold and leave the ledger as one transaction per batch does,
/// whether folded a few groups at a time (cut at group boundaries) or by two replicas at once.
async fn small_folds_and_two_replicas_folding_at_once_leave_the_same_ledger(backend: Backend) {
    init_tracing();
    let now = now_ms();
    let start = now - 7 * 3600 * 1000;
    let (single, _pg1, _dir1) = mikrobill_tests::db::open_core(backend).await;
    let codes = seed(&single, now).await;
    let sent = batches(&codes, start);
    for (site, records) in &sent {
        ingest(&single, site, records).await.unwrap();
    }
    let want = ledger(&single).await;

    let (stepped, _pg2, _dir2) = mikrobill_tests::db::open_core(backend).await;
    seed(&stepped, now).await;
    for (site, records) in &sent {
        store_group(
            &stepped,
            &[Batch {
                site_id: site,
                records,
            }],
        )
        .await
        .unwrap();
    }
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_sessions")
        .fetch_one(&stepped.pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0, "stored records wait for a fold");
    // Budgets smaller than a group (of 7 records: the fold takes the one group whole) and
    // between one and two groups (the second is cut short and waits): every fold takes
    // whole groups.
    let total: usize = sent.iter().map(|(_, r)| r.len()).sum();
    let (mut folds, mut folded) = (0, 0);
    let mut cursor = None;
    loop {
        let budget = if folds % 2 == 0 { 10 } else { 5 };
        let o = fold_pending(&stepped, budget, cursor.as_deref())
            .await
            .unwrap();
        if o.sites == 0 {
            assert!(!o.more, "nothing else folds here: {o:?}");
            break;
        }
        folds += 1;
        folded += o.records;
        cursor = o.last_site;
    }
    assert!(folds >= sent.len() / 2, "{folds} folds");
    assert_eq!(folded, total as u64, "every record folded once");
    assert_same(
        &ledger(&stepped).await,
        &want,
        "folded a few records at a time",
    );

    // Two handles on one database fold at once while the groups are stored.
    let (shared, pg3, dir3) = mikrobill_tests::db::open_core(backend).await;
    seed(&shared, now).await;
    let url = match &pg3 {
        Some(t) => t.url.clone().expect("PostgreSQL URL"),
        None => mikrobill_core::db::sqlite_url_for_dir(dir3.path()),
    };
    let replica = Db::open(&url).await.unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let folders: Vec<_> = [shared.clone(), replica.clone()]
        .into_iter()
        .map(|db| {
            let done = done.clone();
            tokio::spawn(async move {
                let mut cursor: Option<String> = None;
                let mut records = 0;
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                    let o = fold_pending(&db, 40, cursor.as_deref()).await.unwrap();
                    records += o.records;
                    if o.sites > 0 {
                        cursor = o.last_site;
                    } else if finished && !o.more {
                        return records;
                    } else {
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    }
                }
            })
        })
        .collect();
    for (site, records) in &sent {
        store_group(
            &shared,
            &[Batch {
                site_id: site,
                records,
            }],
        )
        .await
        .unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut folded = Vec::new();
    for f in folders {
        folded.push(f.await.unwrap());
    }
    fold_until_current(&replica).await.unwrap();
    assert_eq!(
        folded.iter().sum::<u64>(),
        total as u64,
        "every record folded once"
    );
    assert_same(
        &ledger(&shared).await,
        &want,
        "two replicas folding at once",
    );
}

/// The same accounting ingested (stored and folded) into one database and only stored into a
/// second, as a process that stopped before folding leaves it; with what keeps both alive.
async fn stored_and_ingested(backend: Backend, now: i64) -> (Db, Db, impl Sized) {
    let (want_db, pg1, dir1) = mikrobill_tests::db::open_core(backend).await;
    let codes = seed(&want_db, now).await;
    let sent = batches(&codes, now - 7 * 3600 * 1000);
    for (site, records) in &sent {
        ingest(&want_db, site, records).await.unwrap();
    }
    let (db, pg2, dir2) = mikrobill_tests::db::open_core(backend).await;
    seed(&db, now).await;
    for (site, records) in &sent {
        store_group(
            &db,
            &[Batch {
                site_id: site,
                records,
            }],
        )
        .await
        .unwrap();
    }
    (want_db, db, (pg1, dir1, pg2, dir2))
}

/// Records stored by a process that stopped before folding them (a crash between the answer
/// and the fold) are folded by the next edge's background fold as it starts, with nothing
/// sent to it.
async fn an_edge_starting_folds_what_an_earlier_process_stored(backend: Backend) {
    init_tracing();
    let now = now_ms();
    let (want_db, db, _keep) = stored_and_ingested(backend, now).await;
    let _edge = Ingester::start(&db);
    mikrobill_tests::agents::folded(&db, std::time::Duration::from_secs(20)).await;
    assert_same(
        &ledger(&db).await,
        &ledger(&want_db).await,
        "folded by the next edge",
    );
}

/// A stored row changed by hand so it no longer reads back stops its own site's fold, not the
/// fleet's: the other site's ledger is written while the damaged site waits, held back, and
/// once the row is mended that site folds too and the ledger is the one undamaged storage
/// gives.
async fn a_site_that_cannot_fold_does_not_hold_back_the_others(backend: Backend) {
    init_tracing();
    let now = now_ms();
    let (want_db, db, _keep) = stored_and_ingested(backend, now).await;
    let (damaged, status): (String, String) = sqlx::query_as(
        "SELECT record_id, status FROM accounting_records WHERE site_id = 'south' \
         ORDER BY stored_seq, record_id LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let set_status = |to: &str| {
        sqlx::query(
            "UPDATE accounting_records SET status = $1 WHERE site_id = 'south' AND record_id = $2",
        )
        .bind(to.to_string())
        .bind(damaged.clone())
    };
    set_status("Bogus").execute(&db.pool).await.unwrap();

    let _edge = Ingester::start(&db);
    let marks = |db: &Db| {
        let db = db.clone();
        async move {
            sqlx::query_as::<_, (String, i64, i64)>(
                "SELECT s.site_id, s.seq, f.seq FROM accounting_stored s \
                 JOIN accounting_folded f ON f.site_id = s.site_id ORDER BY s.site_id",
            )
            .fetch_all(&db.pool)
            .await
            .unwrap()
        }
    };
    mikrobill_tests::eventually(
        std::time::Duration::from_secs(20),
        "north folded while south is damaged",
        || async {
            let marks = marks(&db).await;
            marks
                .iter()
                .any(|(site, stored, folded)| site == "north" && folded == stored)
                .then_some(())
        },
    )
    .await;
    // Held back, south is tried again alone and keeps failing; none of its groups folds.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let south: Vec<_> = marks(&db)
        .await
        .into_iter()
        .filter(|(site, _, _)| site == "south")
        .collect();
    assert_eq!(south.len(), 1);
    assert!(
        south[0].2 < south[0].1,
        "the damaged site stays pending: {south:?}"
    );
    let (folded_south,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM usage_sessions WHERE site_id = 'south'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        folded_south, 0,
        "nothing of the damaged site's groups reached the ledger"
    );

    set_status(&status).execute(&db.pool).await.unwrap();
    // Retried within the hold's backoff (at most 30 s).
    mikrobill_tests::agents::folded(&db, std::time::Duration::from_secs(45)).await;
    assert_same(
        &ledger(&db).await,
        &ledger(&want_db).await,
        "folded once the row was mended",
    );
}

/// A NAS may repeat a reading's session time with more octets, which gives the same record
/// id: the stored record takes the higher counters and the fold raises the session with them;
/// the same copy again changes nothing.
async fn a_stored_record_repeated_with_more_octets_raises_the_ledger(backend: Backend) {
    init_tracing();
    let now = now_ms();
    let (db, _pg, _dir) = mikrobill_tests::db::open_core(backend).await;
    let codes = seed(&db, now).await;
    let sent = batches(&codes, now - 7 * 3600 * 1000);
    let (site, records) = &sent[0];
    let first = records[0].clone();
    ingest(&db, site, std::slice::from_ref(&first))
        .await
        .unwrap();
    let high = |db: &Db| {
        let (db, session) = (db.clone(), first.session_id.clone());
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT input_octets FROM usage_sessions WHERE session_id = $1",
            )
            .bind(session)
            .fetch_one(&db.pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(high(&db).await, first.input_octets as i64);
    let more = AccountingRecord {
        input_octets: first.input_octets + 1_000_000,
        ..first.clone()
    };
    let o = ingest(&db, site, &[more.clone(), more.clone()])
        .await
        .unwrap();
    assert_eq!((o.inserted, o.duplicates), (1, 1), "raised once");
    assert_eq!(high(&db).await, more.input_octets as i64);
    let o = ingest(&db, site, std::slice::from_ref(&more))
        .await
        .unwrap();
    assert_eq!((o.inserted, o.duplicates), (0, 1));
    let o = ingest(&db, site, std::slice::from_ref(&first))
        .await
        .unwrap();
    assert_eq!(
        (o.inserted, o.duplicates),
        (0, 1),
        "lower counters change nothing"
    );
    assert_eq!(high(&db).await, more.input_octets as i64);
}

/// Fails with the first row that differs and the table it is in.
fn assert_same(got: &[String], want: &[String], what: &str) {
    let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) else {
        return;
    };
    let table = want[..i.min(want.len())]
        .iter()
        .rev()
        .find(|r| r.starts_with("-- "))
        .map_or("", String::as_str);
    panic!(
        "{what}: row {i} differs ({table}):\n   got {:?}\n  want {:?}",
        got.get(i),
        want.get(i)
    );
}

/// While a lane holds more than its limit, a batch is refused as busy with nothing stored, and
/// once the lane has drained the same batch is stored.
async fn a_full_lane_refuses_batches_as_busy_and_stores_nothing_of_them(backend: Backend) {
    init_tracing();
    let now = now_ms();
    let (db, _pg, _dir) = mikrobill_tests::db::open_core(backend).await;
    let codes = seed(&db, now).await;
    let sent = batches(&codes, now - 7 * 3600 * 1000);
    let north: Vec<_> = sent.iter().filter(|(s, _)| *s == "north").take(2).collect();
    let ingester = Ingester::with_queue_limit(&db, 10);
    // Hold what the first group needs, so it stays queued: SQLite's write lock, or the
    // site's group numbering row on PostgreSQL.
    let mut holder = db.begin().await.unwrap();
    if backend == Backend::Postgres {
        sqlx::query("INSERT INTO accounting_stored (site_id, seq) VALUES ($1, 0)")
            .bind("north")
            .execute(&mut *holder)
            .await
            .unwrap();
    }
    let first = {
        let (ingester, records) = (ingester.clone(), north[0].1.clone());
        tokio::spawn(async move { ingester.ingest("north", records).await })
    };
    // The spawned task queues the batch at its first poll.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        ingester.ingest("north", north[1].1.clone()),
    )
    .await
    .expect("refused at once, not queued behind the held lock");
    assert!(
        matches!(refused, Err(IngestError::Busy { queued: 7 })),
        "{refused:?}"
    );
    holder.rollback().await.unwrap();
    let o = first.await.unwrap().unwrap();
    assert_eq!((o.inserted, o.duplicates), (7, 0));
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounting_records")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 7, "nothing of the refused batch is stored");
    let o = ingester.ingest("north", north[1].1.clone()).await.unwrap();
    assert_eq!((o.inserted, o.duplicates), (7, 0));
}
