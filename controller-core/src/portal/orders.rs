//! What customers buy in the portal through the configured gateway: a wallet top-up (a
//! signed-in customer's payment that settles open invoices first and keeps the rest as
//! credit) and a voucher bought on a phone (anyone, no account needed: the code is shown on
//! the order page as soon as the gateway confirms the payment).
//!
//! An order is stored when its gateway page is opened. The gateway's webhook, authenticated
//! and confirmed with the gateway's API by `payments::gateway::verify`, settles it once: the
//! settlement is keyed on the gateway's transaction id, so a replayed notification finds the
//! order paid and changes nothing. The buyer's link to the order page carries a secret of
//! which only the SHA-256 is stored, so the order id alone (as webhooks, logs and the audit
//! trail carry it) shows no voucher code.

use crate::audit::{self, Actor};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use crate::notify::produce::{Context, Origin, to_phone};
use crate::notify::{Topic, templates::Vars};
use crate::payments::gateway::{Gateway, LinkRequest, Notification, constant_time_eq};
use crate::payments::{self, GatewayOutcome};
use crate::plans::{self, PlanKind};
use crate::portal::payment_links::PayError;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// Order ids of wallet top-ups start with this.
pub const TOPUP_PREFIX: &str = "TOPUP-";
/// Order ids of voucher purchases start with this.
pub const VOUCHER_PREFIX: &str = "VCR-";
/// The smallest top-up, in major units of the currency (a gateway's own fee makes less
/// pointless).
pub const MIN_TOPUP_MAJOR: i64 = 10_000;

/// What an order buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// Money onto the customer's account.
    TopUp,
    /// One voucher.
    Voucher,
}

impl OrderKind {
    fn as_str(self) -> &'static str {
        match self {
            OrderKind::TopUp => "topup",
            OrderKind::Voucher => "voucher",
        }
    }
}

/// A stored order.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    /// The id the gateway knows it by.
    pub order_id: String,
    /// What it buys.
    pub kind: OrderKind,
    /// The customer topping up (or the signed-in buyer of a voucher).
    pub customer_id: Option<String>,
    /// The voucher's plan.
    pub plan_id: Option<String>,
    /// The site the voucher is for (every site when absent).
    pub site_id: Option<String>,
    /// Minor units.
    pub amount: i64,
    /// Where the buyer pays.
    pub redirect_url: String,
    /// Whether the gateway confirmed the payment.
    pub paid: bool,
    /// The voucher issued, once paid.
    pub voucher_code: Option<String>,
    /// The payment recorded for a top-up, once paid.
    pub payment_id: Option<String>,
    /// When it was opened (unix ms).
    pub created_at: i64,
}

/// An order just opened, with the secret of its page (given to the buyer only).
#[derive(Debug, Clone)]
pub struct Opened {
    /// The order.
    pub order: Order,
    /// The secret in the buyer's link to the order page.
    pub view_secret: String,
}

/// Whether a gateway order id is a portal order's (the rest are invoices').
pub fn is_portal_order(order_id: &str) -> bool {
    order_id.starts_with(TOPUP_PREFIX) || order_id.starts_with(VOUCHER_PREFIX)
}

/// The path of an order's page, secret included.
pub fn page_path(order_id: &str, secret: &str) -> String {
    format!("/portal/orders/{order_id}?k={secret}")
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Hotspot plans a visitor may buy in the portal: not archived, with a price.
pub async fn purchasable_plans(db: &Db) -> DomainResult<Vec<plans::PlanInfo>> {
    let all = plans::list(db, Some(PlanKind::Hotspot), false, "", 100).await?;
    Ok(all.into_iter().filter(|p| p.price > 0).collect())
}

/// A top-up of `amount` (minor units) for `customer_id`, through `gateway`.
pub async fn open_topup(
    db: &Db,
    gateway: &dyn Gateway,
    customer_id: &str,
    amount: i64,
) -> Result<Opened, PayError> {
    let settings = crate::settings::billing(db).await?;
    let min = MIN_TOPUP_MAJOR * 10i64.pow(settings.currency_exponent);
    if amount < min || !crate::tax::check_amount(amount) {
        return Err(DomainError::invalid(
            "amount",
            format!(
                "must be at least {}",
                crate::locale::format_money(
                    min,
                    &settings.currency,
                    settings.currency_exponent,
                    settings.language
                )
            ),
        )
        .into());
    }
    let customer = crate::customers::get(db, customer_id).await?;
    let description = format!("{} top-up {}", settings.company_name, customer.number);
    open(
        db,
        gateway,
        &settings,
        Draft {
            kind: OrderKind::TopUp,
            customer_id: Some(customer.id.clone()),
            plan_id: None,
            site_id: None,
            amount,
            phone: customer.phone.clone(),
            description,
            name: customer.name,
            email: customer.email,
        },
    )
    .await
}

/// A voucher of `plan_id` (valid at `site_id`, or every site) for a visitor, through
/// `gateway`. `phone` is where the code may also be sent.
pub async fn open_voucher(
    db: &Db,
    gateway: &dyn Gateway,
    plan_id: &str,
    site_id: Option<&str>,
    phone: Option<String>,
    customer_id: Option<&str>,
) -> Result<Opened, PayError> {
    let plan = match plans::get(db, plan_id).await {
        Err(DomainError::NotFound { .. }) => {
            return Err(DomainError::invalid("plan_id", "no such plan").into());
        }
        other => other?,
    };
    if plan.kind != PlanKind::Hotspot || plan.archived || plan.price <= 0 {
        return Err(DomainError::invalid("plan_id", "this plan is not for sale").into());
    }
    if let Some(site) = site_id {
        let known = crate::sites::list(db)
            .await
            .map_err(DomainError::from)?
            .into_iter()
            .any(|s| s.id == site && s.revoked_at.is_none());
        if !known {
            return Err(DomainError::invalid("site", "no such site").into());
        }
    }
    let phone = match phone
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
    {
        Some(p) => Some(crate::customers::normalize_phone(&p)?),
        None => None,
    };
    let settings = crate::settings::billing(db).await?;
    open(
        db,
        gateway,
        &settings,
        Draft {
            kind: OrderKind::Voucher,
            customer_id: customer_id.map(str::to_string),
            plan_id: Some(plan.id.clone()),
            site_id: site_id.map(str::to_string),
            amount: plan.price,
            phone: phone.clone(),
            description: format!("{} voucher {}", settings.company_name, plan.name)
                .trim()
                .to_string(),
            name: "Hotspot".to_string(),
            email: None,
        },
    )
    .await
}

struct Draft {
    kind: OrderKind,
    customer_id: Option<String>,
    plan_id: Option<String>,
    site_id: Option<String>,
    amount: i64,
    phone: Option<String>,
    description: String,
    name: String,
    email: Option<String>,
}

async fn open(
    db: &Db,
    gateway: &dyn Gateway,
    settings: &crate::settings::BillingSettings,
    d: Draft,
) -> Result<Opened, PayError> {
    let public_url = crate::notify::settings::get(db).await?.public_url;
    let prefix = match d.kind {
        OrderKind::TopUp => TOPUP_PREFIX,
        OrderKind::Voucher => VOUCHER_PREFIX,
    };
    let order_id = format!("{prefix}{}", random(12));
    let secret = random(24);
    // The gateway is called outside any transaction: a slow gateway must not hold the
    // database's write lock.
    let link = gateway
        .create_link(&LinkRequest {
            order_id: order_id.clone(),
            amount: d.amount,
            currency_exponent: settings.currency_exponent,
            currency: settings.currency.clone(),
            description: d.description,
            customer_name: d.name,
            customer_email: d.email,
            customer_phone: d.phone.clone(),
            return_url: (!public_url.is_empty())
                .then(|| format!("{public_url}{}", page_path(&order_id, &secret))),
        })
        .await?;
    let now = now_ms();
    let order = Order {
        order_id,
        kind: d.kind,
        customer_id: d.customer_id,
        plan_id: d.plan_id,
        site_id: d.site_id,
        amount: d.amount,
        redirect_url: link.redirect_url,
        paid: false,
        voucher_code: None,
        payment_id: None,
        created_at: now,
    };
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO portal_orders (id, order_id, kind, customer_id, plan_id, site_id, amount, phone, gateway, \
         redirect_url, view_hash, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&order.order_id)
    .bind(order.kind.as_str())
    .bind(&order.customer_id)
    .bind(&order.plan_id)
    .bind(&order.site_id)
    .bind(order.amount)
    .bind(&d.phone)
    .bind(gateway.name())
    .bind(&order.redirect_url)
    .bind(hash(&secret))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &Actor::system("portal"),
        "portal_order.open",
        "portal_order",
        Some(&order.order_id),
        None::<&()>,
        Some(&order),
    )
    .await?;
    tx.commit().await?;
    Ok(Opened {
        order,
        view_secret: secret,
    })
}

const COLUMNS: &str = "order_id, kind, customer_id, plan_id, site_id, amount, redirect_url, status, \
    voucher_code, payment_id, created_at, view_hash, external_id, phone";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Order, sqlx::Error> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    Ok(Order {
        order_id: r.try_get("order_id")?,
        kind: if kind == "topup" {
            OrderKind::TopUp
        } else {
            OrderKind::Voucher
        },
        customer_id: r.try_get("customer_id")?,
        plan_id: r.try_get("plan_id")?,
        site_id: r.try_get("site_id")?,
        amount: r.try_get("amount")?,
        redirect_url: r.try_get("redirect_url")?,
        paid: status == "paid",
        voucher_code: r.try_get("voucher_code")?,
        payment_id: r.try_get("payment_id")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The order `order_id` for whoever holds its page's secret; not found otherwise (the same
/// answer for a wrong secret as for no order, so neither can be probed).
pub async fn view(db: &Db, order_id: &str, secret: &str) -> DomainResult<Order> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM portal_orders WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_optional(&db.pool)
    .await?;
    let not_found = || DomainError::not_found("order", order_id);
    let row = row.ok_or_else(not_found)?;
    let stored: String = row.try_get("view_hash")?;
    // Constant time: the comparison must not tell how much of a guess was right.
    if !constant_time_eq(stored.as_bytes(), hash(secret).as_bytes()) {
        return Err(not_found());
    }
    Ok(from_row(&row)?)
}

/// Queues the code to the buyer's phone on every channel that sends to phone numbers
/// (WhatsApp, SMS), in the transaction that issues it: once per order.
async fn send_code(
    tx: &mut sqlx::AnyConnection,
    order_id: &str,
    phone: &str,
    plan_id: &str,
    code: &str,
    amount: i64,
) -> DomainResult<()> {
    let ctx = Context::load(tx).await?;
    let plan_name = plans::fetch_info(tx, plan_id).await?.name;
    let origin = Origin::new(format!("voucher-purchased:{order_id}"), now_ms());
    to_phone(tx, &ctx, Topic::VoucherPurchased, phone, &origin, |lang| {
        Vars::from([
            ("code", code.to_string()),
            ("plan_name", plan_name.clone()),
            ("price", ctx.money(amount, lang)),
        ])
    })
    .await?;
    Ok(())
}

/// Settles the portal order a confirmed gateway transaction pays: a top-up becomes the
/// customer's payment, a voucher purchase issues the voucher. Idempotent on the gateway's
/// transaction id; a transaction for another amount than the order's is refused (nothing
/// is issued for less than the price; an operator sorts out the difference).
pub async fn settle(
    db: &Db,
    gateway: &str,
    n: &Notification,
    currency: &str,
) -> DomainResult<GatewayOutcome> {
    if let Some(answer) = payments::gateway_precheck(gateway, n, currency)? {
        return Ok(answer);
    }
    let mut tx = db.begin().await?;
    // Claim the order first: on PostgreSQL the row lock makes a concurrent delivery of the
    // same notification wait here and then find the order paid.
    let claimed = sqlx::query(
        "UPDATE portal_orders SET status = 'paid', external_id = $1, paid_at = $2 \
         WHERE order_id = $3 AND gateway = $4 AND status = 'pending'",
    )
    .bind(&n.external_id)
    .bind(now_ms())
    .bind(&n.order_id)
    .bind(gateway)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM portal_orders WHERE order_id = $1"
    )))
    .bind(&n.order_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| DomainError::invalid("order_id", format!("no order {:?}", n.order_id)))?;
    let order = from_row(&row)?;
    if claimed == 0 {
        let external: Option<String> = row.try_get("external_id")?;
        if external.as_deref() == Some(n.external_id.as_str()) {
            return Ok(GatewayOutcome {
                success: true,
                result: "duplicate",
                payment_id: order.payment_id,
            });
        }
        return Err(DomainError::conflict(
            "invalid_state",
            format!(
                "order {} is already paid by another transaction or belongs to another gateway",
                n.order_id
            ),
        ));
    }
    if n.amount != order.amount {
        return Err(DomainError::invalid(
            "gross_amount",
            format!(
                "the gateway took {} but order {} is for {}",
                n.amount, n.order_id, order.amount
            ),
        ));
    }
    let actor = Actor::system(&format!("gateway:{gateway}"));
    let payment_id = match order.kind {
        OrderKind::TopUp => {
            let customer_id = order.customer_id.as_deref().ok_or_else(|| {
                DomainError::invalid("order_id", "a top-up order names no customer")
            })?;
            let receipt =
                payments::record_gateway_in(&mut tx, gateway, n, customer_id, None).await?;
            sqlx::query("UPDATE portal_orders SET payment_id = $1 WHERE order_id = $2")
                .bind(&receipt.payment.id)
                .bind(&n.order_id)
                .execute(&mut *tx)
                .await?;
            Some(receipt.payment.id)
        }
        OrderKind::Voucher => {
            let plan_id = order
                .plan_id
                .as_deref()
                .ok_or_else(|| DomainError::invalid("order_id", "a voucher order names no plan"))?;
            let code = crate::vouchers::sale::issue_paid(
                &mut tx,
                &actor,
                plan_id,
                order.site_id.as_deref(),
                order.amount,
                "gateway",
            )
            .await?;
            sqlx::query("UPDATE portal_orders SET voucher_code = $1 WHERE order_id = $2")
                .bind(&code)
                .bind(&n.order_id)
                .execute(&mut *tx)
                .await?;
            let phone: Option<String> = row.try_get("phone")?;
            if let Some(phone) = phone {
                send_code(&mut tx, &n.order_id, &phone, plan_id, &code, order.amount).await?;
            }
            // The money is in the revenue ledger under the voucher; no customer's payment.
            None
        }
    };
    tx.commit().await?;
    Ok(GatewayOutcome {
        success: true,
        result: "recorded",
        payment_id,
    })
}
