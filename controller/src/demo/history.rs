//! Three months of a small ISP's life, seeded once into a fresh demo so that every dashboard
//! chart and report has something to show at first start: PPPoE plans and 30 customers who
//! joined over the quarter, their invoices from the real invoice run, payments (a few left
//! unpaid, so some are overdue and one is isolated by the real sweep), voucher batches partly
//! sold and used, and accounting for every subscriber's evenings online.
//!
//! Everything goes through the domain functions the API uses. Those stamp the current time,
//! so afterwards only the instants that happened in the past (when a customer joined, when
//! money was taken, when a voucher was sold) are moved back to when they happened.

use anyhow::Context;
use mikrobill_core::audit::Actor;
use mikrobill_core::billing::invoices::{self, InvoiceFilter, InvoiceStatus};
use mikrobill_core::db::Db;
use mikrobill_core::locale::dates::local;
use mikrobill_core::payments::{self, PaymentInput, PaymentMethod};
use mikrobill_core::plans::{self, PlanInput};
use mikrobill_core::sites::Site;
use mikrobill_core::subscriptions::{self, SubscriptionInput};
use mikrobill_core::vouchers::batch::{self, BatchSpec};
use mikrobill_core::vouchers::{self, ScopeKind, Viewer, VoucherFilter};
use mikrobill_core::{accounting, customers, settings};
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus, RecordId};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// What the history seed created.
#[derive(Debug, Default)]
pub(super) struct Seeded {
    /// Customers with a PPPoE subscription.
    pub customers: usize,
    /// Payments taken.
    pub payments: usize,
    /// Vouchers sold.
    pub vouchers_sold: usize,
    /// Accounting records ingested.
    pub records: usize,
}

const FIRST: [&str; 10] = [
    "Budi", "Siti", "Agus", "Dewi", "Rudi", "Sri", "Andi", "Wati", "Eko", "Lestari",
];
const LAST: [&str; 3] = ["Santoso", "Rahayu", "Pratama"];

/// Days before today each customer's service started: most joined a quarter ago, a few in
/// each month since, so the subscriber report shows growth.
fn joined_days_ago(i: usize) -> i64 {
    match i {
        0..18 => 92,
        18..24 => 61 - i as i64,
        24..28 => 31 - i as i64,
        _ => 12 - i as i64 % 3,
    }
}

/// Customers who leave their latest invoice unpaid (overdue), and the one who stopped
/// paying two months ago (isolated by the sweep).
const LATE: [usize; 4] = [5, 11, 17, 20];
const STOPPED: usize = 8;

async fn plan(db: &Db, actor: &Actor, body: serde_json::Value) -> anyhow::Result<String> {
    let input: PlanInput = serde_json::from_value(body)?;
    let name = input.name.clone();
    match plans::create_from(db, actor, input).await {
        Ok(p) => Ok(p.id),
        Err(_) => Ok(plans::by_name(db, &name).await?.id),
    }
}

/// Moves one stored instant back to when it happened.
async fn backdate(db: &Db, sql: &'static str, at: i64, key: &str) -> anyhow::Result<()> {
    sqlx::query(sql)
        .bind(at)
        .bind(key)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Seeds the history at `sites` (at least one) as of `now`.
pub(super) async fn seed(db: &Db, sites: &[Site], now: i64) -> anyhow::Result<Seeded> {
    let actor = Actor::system("demo");
    let offset = settings::billing(db).await?.utc_offset_minutes;
    let mut out = Seeded::default();
    let home10 = plan(
        db,
        &actor,
        serde_json::json!({"name": "Rumah 10M", "kind": "pppoe", "price": 150_000, "rate_limit": "10M/10M"}),
    )
    .await?;
    let home20 = plan(
        db,
        &actor,
        serde_json::json!({"name": "Rumah 20M", "kind": "pppoe", "price": 250_000, "rate_limit": "20M/20M"}),
    )
    .await?;

    // Customers and their subscriptions, joined over the quarter.
    let mut subs = Vec::new();
    for i in 0..30 {
        let name = format!("{} {}", FIRST[i % FIRST.len()], LAST[i % LAST.len()]);
        let customer = customers::create(
            db,
            &actor,
            serde_json::from_value(serde_json::json!({
                "name": name,
                "phone": format!("0812-3456-{:04}", 7000 + i),
                "address": format!("Jl. Melati No. {}", i + 1),
            }))?,
        )
        .await
        .with_context(|| format!("customer {name}"))?;
        let joined = now - joined_days_ago(i) * DAY_MS;
        let site = &sites[i % sites.len()];
        let sub = subscriptions::create(
            db,
            &actor,
            SubscriptionInput {
                customer_id: customer.id.clone(),
                plan_id: if i % 3 == 2 { &home20 } else { &home10 }.clone(),
                site_id: site.id.clone(),
                username: format!("{}{}", FIRST[i % FIRST.len()].to_lowercase(), i + 1),
                password: None,
                static_ip: None,
                billing_day: None,
                start_date: Some(local(joined, offset, false)),
                bill_from: None,
                due_days: None,
                grace_days: None,
            },
        )
        .await
        .with_context(|| format!("subscription of {name}"))?;
        backdate(
            db,
            "UPDATE customers SET created_at = $1 WHERE id = $2",
            joined,
            &customer.id,
        )
        .await?;
        backdate(
            db,
            "UPDATE subscriptions SET created_at = $1 WHERE id = $2",
            joined,
            &sub.id,
        )
        .await?;
        subs.push((i, customer.id, sub, site.id.clone(), joined));
    }
    out.customers = subs.len();

    // Every cycle since they joined is invoiced by the real invoice run.
    subscriptions::invoice_run(db, now).await?;

    for (i, customer_id, _, _, _) in &subs {
        let filter = InvoiceFilter {
            customer_id: Some(customer_id.clone()),
            status: Some(InvoiceStatus::Unpaid),
            ..InvoiceFilter::default()
        };
        let mut open = invoices::list(db, &filter, "", 100).await?;
        open.sort_by_key(|inv| inv.issued_at);
        let keep_unpaid = if *i == STOPPED {
            open.len().saturating_sub(1)
        } else if LATE.contains(i) {
            1
        } else {
            0
        };
        let paying = open.len().saturating_sub(keep_unpaid);
        // The invoice run issues every past cycle's invoice today; in the story each came at
        // the start of its cycle.
        let issued_at =
            |inv: &invoices::Invoice| inv.period_start.unwrap_or(inv.issued_at).min(inv.issued_at);
        for inv in &open {
            backdate(
                db,
                "UPDATE invoices SET issued_at = $1 WHERE id = $2",
                issued_at(inv),
                &inv.id,
            )
            .await?;
        }
        for (k, inv) in open.iter().take(paying).enumerate() {
            let method = if (i + k) % 3 == 0 {
                PaymentMethod::Transfer
            } else {
                PaymentMethod::Cash
            };
            let receipt = payments::record_manual(
                db,
                &actor,
                PaymentInput {
                    invoice_id: Some(inv.id.clone()),
                    customer_id: None,
                    amount: inv.total - inv.amount_paid,
                    method,
                    reference: Some(format!("KW-{}", inv.number)),
                    note: None,
                },
            )
            .await
            .with_context(|| format!("payment of {}", inv.number))?;
            // Paid a few days after it came, never in the future.
            let issued = issued_at(inv);
            let paid = (issued + ((i + k) % 6) as i64 * DAY_MS + 10 * HOUR_MS).min(now - HOUR_MS);
            let id = &receipt.payment.id;
            backdate(
                db,
                "UPDATE payments SET received_at = $1 WHERE id = $2",
                paid,
                id,
            )
            .await?;
            backdate(
                db,
                "UPDATE revenue SET received_at = $1 WHERE source = 'payment' AND reference = $2",
                paid,
                id,
            )
            .await?;
            backdate(
                db,
                "UPDATE invoices SET paid_at = $1 WHERE id = $2",
                paid,
                &inv.id,
            )
            .await?;
            out.payments += 1;
        }
    }
    // Whoever is past due and grace now is isolated by the real sweep.
    subscriptions::isolation_sweep(db, now).await?;

    // Voucher batches, partly sold over the quarter and partly used.
    let mut sold = Vec::new();
    for (name, count, selling) in [("Demo harian", 60, 40usize), ("Demo 1 jam", 40, 25)] {
        let plan_id = plans::by_name(db, name).await?.id;
        let b = batch::generate(
            db,
            &actor,
            BatchSpec {
                plan_id,
                count,
                scope: ScopeKind::All,
                site_id: None,
                group_id: None,
                prefix: Some(if name == "Demo harian" { "HR" } else { "JM" }.into()),
                length: Some(6),
                password_mode: None,
                password_length: None,
                password_digits: false,
                price: None,
                note: Some(format!("{name} (demo)")),
            },
        )
        .await?;
        let filter = VoucherFilter {
            batch_id: Some(b.id.clone()),
            ..VoucherFilter::default()
        };
        let codes = vouchers::list(db, &Viewer::All, &filter, "", selling as u32).await?;
        for (k, code) in codes.iter().map(|v| &v.code).enumerate() {
            vouchers::sale::sell_voucher(db, &actor, code, None).await?;
            let at = now - (88 - (k as i64 * 88 / selling as i64)) * DAY_MS + 9 * HOUR_MS;
            backdate(
                db,
                "UPDATE vouchers SET sold_at = $1 WHERE code = $2",
                at,
                code,
            )
            .await?;
            backdate(
                db,
                "UPDATE revenue SET received_at = $1 WHERE source = 'voucher_sale' AND reference = $2",
                at,
                code,
            )
            .await?;
            sold.push((code.clone(), at));
        }
    }
    out.vouchers_sold = sold.len();
    // The money and the sales moved back in time above: file them under the days they now
    // belong to.
    mikrobill_core::revenue::rebuild_daily(db).await?;
    mikrobill_core::vouchers::sales_daily::rebuild(db).await?;

    // Accounting: each subscriber online most evenings since joining, and most sold vouchers
    // used an hour after their sale, at the site they were bought for.
    let mut per_site: std::collections::HashMap<String, Vec<AccountingRecord>> = Default::default();
    for (i, _, sub, site_id, joined) in &subs {
        let days = (now - joined) / DAY_MS;
        for d in 0..days {
            if (d + *i as i64) % 7 == 3 {
                continue;
            }
            let start = joined + d * DAY_MS + 11 * HOUR_MS;
            let secs = 3_600 + ((d as u64 * 37 + *i as u64 * 11) % 5) * 1_800;
            let bytes = secs * (40_000 + (*i as u64 % 5) * 25_000);
            let session = format!("{}-{d}", sub.username);
            per_site
                .entry(site_id.clone())
                .or_default()
                .extend(session_records(&session, &sub.username, start, secs, bytes));
        }
    }
    for (k, (code, at)) in sold.iter().enumerate() {
        if k % 5 == 4 {
            continue;
        }
        let site_id = &sites[k % sites.len()].id;
        per_site
            .entry(site_id.clone())
            .or_default()
            .extend(session_records(
                &format!("v-{code}"),
                code,
                at + HOUR_MS,
                1_800,
                150_000_000,
            ));
    }
    for (site_id, records) in per_site {
        for chunk in records.chunks(500) {
            accounting::ingest(db, site_id.as_str(), chunk).await?;
            out.records += chunk.len();
        }
    }
    Ok(out)
}

/// A session's Start and Stop as the router reports them.
fn session_records(
    session: &str,
    username: &str,
    start: i64,
    secs: u64,
    bytes: u64,
) -> [AccountingRecord; 2] {
    let record = |status: AcctStatus, at: i64, secs: u64, bytes: u64| AccountingRecord {
        id: RecordId::derive("demo-router", session, status, secs),
        nas_identifier: "demo-router".into(),
        nas_ip: Some([10, 0, 0, 1].into()),
        session_id: session.into(),
        username: username.into(),
        status,
        event_time_ms: at,
        session_time_secs: secs,
        input_octets: bytes / 8,
        output_octets: bytes,
        input_packets: 0,
        output_packets: 0,
        terminate_cause: (status == AcctStatus::Stop).then_some(1),
        framed_ip: None,
        calling_station_id: None,
    };
    [
        record(AcctStatus::Start, start, 0, 0),
        record(AcctStatus::Stop, start + secs as i64 * 1000, secs, bytes),
    ]
}
