//! Selling vouchers: one at the cash desk, a whole batch to a reseller, or a reseller buying
//! a new batch from its own balance. Money moves in the same transaction as the vouchers.

use super::batch::{self, Batch, BatchSpec};
use super::lifecycle::{self, Event};
use super::{Viewer, VoucherRecord, get, sales_daily, transition};
use crate::admins;
use crate::audit::{self, Actor};
use crate::auth::Role;
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use serde::Serialize;

/// Marks a new voucher sold at `price` (its own price when absent). The agents accept new
/// and sold vouchers alike, so nothing is synced.
pub async fn sell_voucher(
    db: &Db,
    actor: &Actor,
    code: &str,
    price: Option<i64>,
) -> DomainResult<VoucherRecord> {
    if price.is_some_and(|p| p < 0) {
        return Err(DomainError::invalid("price", "must not be negative"));
    }
    let before = get(db, &Viewer::All, code).await?;
    let Some(to) = lifecycle::next(before.status, Event::Sell) else {
        return Err(DomainError::conflict(
            "invalid_state",
            lifecycle::refusal(code, before.status, Event::Sell),
        ));
    };
    let mut tx = db.begin().await?;
    let after = transition(
        &mut tx,
        &before,
        to,
        price.unwrap_or(before.price),
        Some(now_ms()),
    )
    .await?;
    sales_daily::add_code(&mut tx, code).await?;
    // Cash taken at the desk is revenue now (a voucher sold to a reseller was paid from its
    // balance, which was revenue when topped up).
    if after.price > 0 {
        crate::revenue::record(
            &mut tx,
            &crate::revenue::Entry {
                source: crate::revenue::Source::VoucherSale,
                reference: code,
                amount: after.price,
                received_at: after.sold_at.unwrap_or_else(now_ms),
                method: Some("cash"),
                plan_id: Some(&after.plan_id),
                site_id: after.site_id.as_deref(),
                reseller_id: None,
            },
        )
        .await?;
    }
    audit::record(
        &mut tx,
        actor,
        "voucher.sell",
        "voucher",
        Some(code),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// A batch that changed hands, and the money that moved.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchSale {
    /// The batch, now owned by the reseller.
    pub batch: Batch,
    /// Vouchers sold to the reseller.
    pub sold: i64,
    /// Amount debited from the reseller's balance, minor units.
    pub amount: i64,
    /// The reseller's balance afterwards.
    pub balance: i64,
}

async fn reseller(db: &Db, field: &'static str, id: &str) -> DomainResult<admins::Admin> {
    let admin = match admins::get(db, id).await {
        Err(DomainError::NotFound { .. }) => {
            return Err(DomainError::invalid(field, "no such admin user"));
        }
        other => other?,
    };
    if admin.role != Role::Reseller {
        return Err(DomainError::invalid(field, "is not a reseller"));
    }
    Ok(admin)
}

/// Sells a batch's unsold vouchers to a reseller: they become sold to it, the batch becomes
/// its own, and `unsold x price` leaves its balance, all or nothing.
pub async fn sell_batch(
    db: &Db,
    actor: &Actor,
    batch_id: &str,
    reseller_id: &str,
) -> DomainResult<BatchSale> {
    let reseller = reseller(db, "reseller_id", reseller_id).await?;
    let before = batch::get(db, &Viewer::All, batch_id).await?;
    if before.owner_id.is_some() {
        return Err(DomainError::conflict(
            "invalid_state",
            format!("batch {batch_id} already belongs to a reseller"),
        ));
    }
    let now = now_ms();
    let mut tx = db.begin().await?;
    let claimed =
        sqlx::query("UPDATE voucher_batches SET owner_id = $1 WHERE id = $2 AND owner_id IS NULL")
            .bind(&reseller.id)
            .bind(batch_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if claimed == 0 {
        return Err(DomainError::conflict(
            "invalid_state",
            format!("batch {batch_id} was sold meanwhile"),
        ));
    }
    let sold = sqlx::query(
        sqlx::AssertSqlSafe(format!(
            "UPDATE vouchers SET status = 'sold', sold_at = $1, sold_to = $2 WHERE batch_id = $3 AND {}",
            lifecycle::applies_sql("status", Event::Sell)
        )),
    )
    .bind(now)
    .bind(&reseller.id)
    .bind(batch_id)
    .execute(&mut *tx)
    .await?
    .rows_affected() as i64;
    if sold == 0 {
        return Err(DomainError::conflict(
            "invalid_state",
            format!("batch {batch_id} has no unsold vouchers"),
        ));
    }
    sales_daily::add_batch(&mut tx, batch_id, &reseller.id, now).await?;
    let amount = sold
        .checked_mul(before.price)
        .ok_or_else(|| DomainError::invalid("batch", "count x price is too large"))?;
    let balance = admins::debit_reseller(&mut tx, &reseller.id, amount).await?;
    let batch = Batch {
        owner_id: Some(reseller.id.clone()),
        ..before.clone()
    };
    let sale = BatchSale {
        batch,
        sold,
        amount,
        balance,
    };
    audit::record(
        &mut tx,
        actor,
        "voucher_batch.sell",
        "voucher_batch",
        Some(batch_id),
        Some(&before),
        Some(&sale),
    )
    .await?;
    crate::events::emit(
        &mut tx,
        crate::events::EventKind::VoucherBatchSold,
        Default::default(),
        &sale,
    )
    .await?;
    tx.commit().await?;
    Ok(sale)
}

/// A reseller generates a batch for itself at the plan's price, paid from its balance in
/// the same transaction; its vouchers are born sold to it.
pub async fn buy(
    db: &Db,
    actor: &Actor,
    reseller_id: &str,
    spec: BatchSpec,
) -> DomainResult<BatchSale> {
    if spec.price.is_some() {
        return Err(DomainError::invalid(
            "price",
            "a reseller pays the plan's price",
        ));
    }
    let me = admins::get(db, reseller_id).await?;
    if me.role != Role::Reseller {
        return Err(DomainError::conflict(
            "not_reseller",
            format!("{} is not a reseller", me.username),
        ));
    }
    let c = batch::check(db, spec).await?;
    let amount = c.total()?;
    let mut tx = db.begin().await?;
    // The debit goes first: an empty balance fails before 100,000 rows are written.
    let balance = admins::debit_reseller(&mut tx, reseller_id, amount).await?;
    let batch = batch::insert(&mut tx, actor, &c, Some(reseller_id)).await?;
    let sale = BatchSale {
        sold: batch.count,
        batch,
        amount,
        balance,
    };
    audit::record(
        &mut tx,
        actor,
        "voucher_batch.buy",
        "voucher_batch",
        Some(&sale.batch.id),
        None::<&()>,
        Some(&sale),
    )
    .await?;
    crate::events::emit(
        &mut tx,
        crate::events::EventKind::VoucherBatchSold,
        Default::default(),
        &sale,
    )
    .await?;
    tx.commit().await?;
    batch::refresh_statistics(db, c.count).await;
    Ok(sale)
}

/// Issues one voucher of `plan_id` (for `site_id`, or every site) already sold at `price` and
/// paid through `method`, in the caller's transaction: a buyer who paid online gets the
/// voucher, the revenue is counted and the sites learn the code in one commit, or none of it.
/// Returns the new code.
pub async fn issue_paid(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    plan_id: &str,
    site_id: Option<&str>,
    price: i64,
    method: &str,
) -> DomainResult<String> {
    let now = now_ms();
    // Eight characters of the unambiguous alphabet: a clash is rare, and retried.
    let mut issued = None;
    for _ in 0..5 {
        let candidate = super::generate_codes(1, "", 8).remove(0);
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO vouchers (code, password, plan_id, site_id, status, created_at, price, sold_at) \
             VALUES ($1, NULL, $2, $3, 'sold', $4, $5, $4) ON CONFLICT (code) DO NOTHING \
             RETURNING {}",
            super::RECORD_COLUMNS
        )))
        .bind(&candidate)
        .bind(plan_id)
        .bind(site_id)
        .bind(now)
        .bind(price)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .next();
        if let Some(row) = row {
            issued = Some(super::record_from_row(&row)?);
            break;
        }
    }
    let voucher = issued.ok_or_else(|| {
        DomainError::conflict("exists", "could not find a free voucher code; try again")
    })?;
    let code = voucher.code.clone();
    sales_daily::add_code(conn, &code).await?;
    // The scoped sync every voucher change goes through (it takes the change log's lock).
    super::sync(
        conn,
        vec![(
            voucher.scope(),
            mikrobill_protocol::messages::ChangeOp::Upsert(
                mikrobill_protocol::items::Item::Voucher(voucher.item()),
            ),
        )],
    )
    .await?;
    if price > 0 {
        crate::revenue::record(
            conn,
            &crate::revenue::Entry {
                source: crate::revenue::Source::VoucherSale,
                reference: &code,
                amount: price,
                received_at: now,
                method: Some(method),
                plan_id: Some(plan_id),
                site_id,
                reseller_id: None,
            },
        )
        .await?;
    }
    audit::record(
        conn,
        actor,
        "voucher.sell",
        "voucher",
        Some(&code),
        None::<&()>,
        Some(&serde_json::json!({"plan_id": plan_id, "site_id": site_id, "price": price, "method": method})),
    )
    .await?;
    Ok(code)
}
