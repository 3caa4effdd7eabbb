//! Turns domain events into messages: the `notifications` consumer of the event outbox. The
//! messages of a batch of events are inserted in the same transaction that moves the
//! consumer's cursor, so a crash never loses or doubles them, and each message's dedupe key
//! (`event:<id>:<channel>`) makes a replay harmless.

use super::channels::{self, Channel};
use super::messages::{self, NewMessage};
use super::templates::{self, Catalog, Vars};
use super::{Topic, prefs};
use crate::db::Db;
use crate::error::DomainResult;
use crate::events::{Event, EventKind, consumer};
use crate::locale::{Lang, format_money};
use crate::settings::BillingSettings;
use sqlx::Row;

/// The consumer's name in `event_consumers`.
pub const CONSUMER: &str = "notifications";

/// What rendering a batch needs: settings, templates and the active channels.
pub(crate) struct Context {
    /// Company, currency, timezone.
    pub billing: BillingSettings,
    /// Delays, reminder days, links.
    pub settings: super::settings::NotificationSettings,
    /// Texts.
    pub catalog: Catalog,
    /// Channels that send.
    pub channels: Vec<Channel>,
}

impl Context {
    /// Loads everything for one batch.
    pub(crate) async fn load(conn: &mut sqlx::AnyConnection) -> DomainResult<Context> {
        Ok(Context {
            billing: crate::settings::billing_in(conn).await?,
            settings: super::settings::get_in(conn).await?,
            catalog: Catalog::load(conn).await?,
            channels: channels::all_in(conn)
                .await?
                .into_iter()
                .filter(|c| c.active)
                .collect(),
        })
    }

    /// Money as the recipient reads it.
    pub(crate) fn money(&self, minor: i64, lang: Lang) -> String {
        format_money(
            minor,
            &self.billing.currency,
            self.billing.currency_exponent,
            lang,
        )
    }

    /// A local date, e.g. `27 November 2026` / `27 Nopember` style names per language.
    pub(crate) fn date(&self, ms: i64, lang: Lang) -> String {
        let d = crate::billing::cycle::local_date(ms, self.billing.utc_offset_minutes);
        format!(
            "{} {} {}",
            d.day(),
            month_name(d.month() as u8, lang),
            d.year()
        )
    }

    /// A local date and time, e.g. `27 November 2026 14:05`.
    pub(crate) fn datetime(&self, ms: i64, lang: Lang) -> String {
        let local = ms + i64::from(self.billing.utc_offset_minutes) * 60_000;
        let minutes = local.div_euclid(60_000).rem_euclid(24 * 60);
        format!(
            "{} {:02}:{:02}",
            self.date(ms, lang),
            minutes / 60,
            minutes % 60
        )
    }

    /// The payment link of an invoice, or a fallback that names it.
    pub(crate) fn payment_link(&self, invoice_id: &str, number: &str, lang: Lang) -> String {
        self.settings
            .payment_link(invoice_id)
            .unwrap_or_else(|| match lang {
                Lang::Id => format!("kasir kami (sebutkan {number})"),
                Lang::En => format!("our office (quote {number})"),
            })
    }
}

fn month_name(m: u8, lang: Lang) -> &'static str {
    const ID: [&str; 12] = [
        "Januari",
        "Februari",
        "Maret",
        "April",
        "Mei",
        "Juni",
        "Juli",
        "Agustus",
        "September",
        "Oktober",
        "November",
        "Desember",
    ];
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let i = usize::from(m.clamp(1, 12) - 1);
    match lang {
        Lang::Id => ID[i],
        Lang::En => EN[i],
    }
}

/// Where a message comes from and when it may go.
pub(crate) struct Origin<'a> {
    /// Dedupe prefix; the channel id is appended.
    pub key: String,
    /// Source event.
    pub event_id: Option<i64>,
    /// Site it concerns.
    pub site_id: Option<&'a str>,
    /// Invoice it concerns: the message is dropped once the invoice is settled.
    pub invoice_id: Option<&'a str>,
    /// Subscription it concerns.
    pub subscription_id: Option<&'a str>,
    /// Not before (unix ms).
    pub not_before: i64,
}

impl<'a> Origin<'a> {
    /// A message with this dedupe prefix, to be sent from `not_before` on.
    pub(crate) fn new(key: String, not_before: i64) -> Origin<'a> {
        Origin {
            key,
            event_id: None,
            site_id: None,
            invoice_id: None,
            subscription_id: None,
            not_before,
        }
    }
}

/// Renders and queues a topic's message for a customer on every channel that may reach
/// them (none when they opted out); `vars` gives the topic's values in a language. Returns
/// how many messages were new.
pub(crate) async fn to_customer(
    conn: &mut sqlx::AnyConnection,
    ctx: &Context,
    topic: Topic,
    customer_id: &str,
    origin: &Origin<'_>,
    vars: impl Fn(Lang) -> Vars,
) -> DomainResult<u64> {
    let r = prefs::recipient(conn, customer_id).await?;
    let lang = r.prefs.lang.unwrap_or(ctx.settings.default_lang);
    let mut v = vars(lang);
    v.insert("customer_name", r.name.clone());
    v.insert("customer_number", r.number.clone());
    let to = |ch: &Channel| r.address_for(ch);
    queue(conn, ctx, topic, origin, Some(customer_id), lang, v, to).await
}

/// Renders and queues a topic's message to a phone number that belongs to no customer (a
/// visitor who bought a voucher) on every channel that sends to phone numbers, in the
/// default language.
pub(crate) async fn to_phone(
    conn: &mut sqlx::AnyConnection,
    ctx: &Context,
    topic: Topic,
    phone: &str,
    origin: &Origin<'_>,
    vars: impl Fn(Lang) -> Vars,
) -> DomainResult<u64> {
    let lang = ctx.settings.default_lang;
    // Gateways want the international number without the plus.
    let number = phone.trim_start_matches('+').to_string();
    let to = |ch: &Channel| {
        (ch.config.address_kind() == super::channels::AddressKind::Phone).then(|| number.clone())
    };
    queue(conn, ctx, topic, origin, None, lang, vars(lang), to).await
}

/// Renders and queues an operator alert on every channel with an operators' recipient.
pub(crate) async fn to_operators(
    conn: &mut sqlx::AnyConnection,
    ctx: &Context,
    topic: Topic,
    origin: &Origin<'_>,
    vars: impl Fn(Lang) -> Vars,
) -> DomainResult<u64> {
    let lang = ctx.settings.default_lang;
    let to = |ch: &Channel| ch.config.operator_recipient().map(str::to_string);
    queue(conn, ctx, topic, origin, None, lang, vars(lang), to).await
}

/// Renders `topic` in `lang` with `v` and queues it on every active channel `to` gives an
/// address on; returns how many messages were new.
#[allow(clippy::too_many_arguments)]
async fn queue(
    conn: &mut sqlx::AnyConnection,
    ctx: &Context,
    topic: Topic,
    origin: &Origin<'_>,
    customer_id: Option<&str>,
    lang: Lang,
    mut v: Vars,
    to: impl Fn(&Channel) -> Option<String>,
) -> DomainResult<u64> {
    v.insert("company_name", ctx.billing.company_name.clone());
    let t = ctx.catalog.get(topic, lang);
    let (subject, body) = (
        templates::render(&t.subject, &v),
        templates::render(&t.body, &v),
    );
    let mut created = 0;
    for ch in &ctx.channels {
        let Some(recipient) = to(ch) else {
            continue;
        };
        let m = NewMessage {
            channel_id: &ch.id,
            topic,
            dedupe_key: format!("{}:{}", origin.key, ch.id),
            event_id: origin.event_id,
            customer_id,
            site_id: origin.site_id,
            invoice_id: origin.invoice_id,
            subscription_id: origin.subscription_id,
            recipient: &recipient,
            lang: lang.code(),
            subject: &subject,
            body: &body,
            not_before: origin.not_before,
        };
        created += u64::from(messages::enqueue(conn, m).await?);
    }
    Ok(created)
}

/// The value at a path of an event's payload (`Null` when absent).
fn at<'v>(v: &'v serde_json::Value, path: &[&str]) -> &'v serde_json::Value {
    path.iter().fold(v, |cur, p| &cur[*p])
}

fn text(v: &serde_json::Value, path: &[&str]) -> String {
    match at(v, path) {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn int(v: &serde_json::Value, path: &[&str]) -> i64 {
    at(v, path).as_i64().unwrap_or(0)
}

/// What a customer owes now and the invoice to pay first.
async fn outstanding(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> DomainResult<(i64, Option<(String, String)>)> {
    let rows = sqlx::query(
        "SELECT id, number, total - amount_paid AS owed FROM invoices WHERE customer_id = $1 AND status = 'unpaid' ORDER BY due_at, number",
    )
    .bind(customer_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut total = 0i64;
    let mut first = None;
    for r in &rows {
        total += r.try_get::<i64, _>("owed")?;
        if first.is_none() {
            first = Some((r.try_get("id")?, r.try_get("number")?));
        }
    }
    Ok((total, first))
}

/// A site's name for a message (its id when it is gone).
async fn site_name(conn: &mut sqlx::AnyConnection, site: Option<&str>) -> DomainResult<String> {
    let site = site.unwrap_or_default();
    Ok(sqlx::query("SELECT name FROM sites WHERE id = $1")
        .bind(site)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get::<String, _>("name"))
        .transpose()?
        .unwrap_or_else(|| site.to_string()))
}

/// Queues the messages one event calls for.
async fn handle(conn: &mut sqlx::AnyConnection, ctx: &Context, e: &Event) -> DomainResult<u64> {
    let Some(kind) = EventKind::parse(&e.kind) else {
        return Ok(0);
    };
    let d = &e.data;
    let invoice_id = (kind == EventKind::InvoiceCreated).then(|| text(d, &["id"]));
    let origin = Origin {
        event_id: Some(e.id),
        site_id: e.site_id.as_deref(),
        invoice_id: invoice_id.as_deref(),
        subscription_id: e.subscription_id.as_deref(),
        ..Origin::new(format!("event:{}", e.id), e.created_at)
    };
    let customer = e.customer_id.as_deref();
    match (kind, customer) {
        (EventKind::InvoiceCreated, Some(c)) => {
            let owed = int(d, &["total"]) - int(d, &["amount_paid"]);
            if owed <= 0 || text(d, &["status"]) != "unpaid" {
                // Paid from credit on issue: nothing to ask for.
                return Ok(0);
            }
            let (id, number, due) = (text(d, &["id"]), text(d, &["number"]), int(d, &["due_at"]));
            to_customer(conn, ctx, Topic::InvoiceCreated, c, &origin, |l| {
                Vars::from([
                    ("invoice_number", number.clone()),
                    ("amount", ctx.money(owed, l)),
                    ("due_date", ctx.date(due, l)),
                    ("payment_link", ctx.payment_link(&id, &number, l)),
                ])
            })
            .await
        }
        (EventKind::PaymentReceived, Some(c)) => {
            let numbers: Vec<String> = d["allocations"]
                .as_array()
                .map(|a| a.iter().map(|x| text(x, &["number"])).collect())
                .unwrap_or_default();
            let (amount, at) = (
                int(d, &["payment", "amount"]),
                int(d, &["payment", "received_at"]),
            );
            // The customer's whole credit, not just what this payment added to it.
            let credit: i64 = sqlx::query("SELECT balance FROM customers WHERE id = $1")
                .bind(c)
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| r.try_get("balance"))
                .transpose()?
                .unwrap_or(0);
            to_customer(conn, ctx, Topic::PaymentReceived, c, &origin, |l| {
                let invoices = if numbers.is_empty() {
                    match l {
                        Lang::Id => "saldo".to_string(),
                        Lang::En => "your balance".to_string(),
                    }
                } else {
                    numbers.join(", ")
                };
                Vars::from([
                    ("amount", ctx.money(amount, l)),
                    ("invoice_number", invoices),
                    ("paid_at", ctx.datetime(at, l)),
                    ("credit", ctx.money(credit, l)),
                ])
            })
            .await
        }
        (EventKind::SubscriptionIsolated | EventKind::SubscriptionReactivated, Some(c)) => {
            let topic = if kind == EventKind::SubscriptionIsolated {
                Topic::SubscriptionIsolated
            } else {
                Topic::SubscriptionReactivated
            };
            let username = text(d, &["username"]);
            let (owed, first) = outstanding(conn, c).await?;
            to_customer(conn, ctx, topic, c, &origin, |l| {
                let link = match &first {
                    Some((id, number)) => ctx.payment_link(id, number, l),
                    None => ctx.settings.public_url.clone(),
                };
                Vars::from([
                    ("username", username.clone()),
                    ("amount", ctx.money(owed, l)),
                    ("payment_link", link),
                ])
            })
            .await
        }
        (EventKind::VoucherBatchSold, _) => {
            let owner = text(d, &["batch", "owner_id"]);
            let plan = text(d, &["batch", "plan_id"]);
            let reseller = sqlx::query("SELECT username FROM admin_users WHERE id = $1")
                .bind(&owner)
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| r.try_get::<String, _>("username"))
                .transpose()?
                .unwrap_or(owner);
            let plan_name = sqlx::query("SELECT name FROM plans WHERE id = $1")
                .bind(&plan)
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| r.try_get::<String, _>("name"))
                .transpose()?
                .unwrap_or(plan);
            let (count, amount) = (int(d, &["sold"]), int(d, &["amount"]));
            to_operators(conn, ctx, Topic::VoucherBatchSold, &origin, |l| {
                Vars::from([
                    ("reseller", reseller.clone()),
                    ("count", count.to_string()),
                    ("amount", ctx.money(amount, l)),
                    ("plan_name", plan_name.clone()),
                ])
            })
            .await
        }
        (EventKind::SiteOffline, _) => {
            let delay_ms = ctx.settings.site_offline_delay_seconds as i64 * 1000;
            let origin = Origin {
                not_before: e.created_at + delay_ms,
                ..origin
            };
            let (name, since) = (site_name(conn, e.site_id.as_deref()).await?, e.created_at);
            let minutes = (delay_ms / 60_000).max(1);
            to_operators(conn, ctx, Topic::SiteOffline, &origin, |l| {
                Vars::from([
                    ("site_name", name.clone()),
                    ("offline_since", ctx.datetime(since, l)),
                    ("minutes", minutes.to_string()),
                ])
            })
            .await
        }
        (EventKind::CommandFailed, _) => {
            let site_name = site_name(conn, e.site_id.as_deref()).await?;
            let (command, error) = (text(d, &["kind"]), text(d, &["result"]));
            let error = if error.is_empty() {
                text(d, &["status"])
            } else {
                error
            };
            to_operators(conn, ctx, Topic::CommandFailed, &origin, |_| {
                Vars::from([
                    ("site_name", site_name.clone()),
                    ("command", command.clone()),
                    ("error", error.clone()),
                ])
            })
            .await
        }
        (EventKind::SiteDrift, _) => {
            let site_name = site_name(conn, e.site_id.as_deref()).await?;
            let found = d["findings"].as_array().cloned().unwrap_or_default();
            let findings = found
                .iter()
                .map(|f| {
                    format!(
                        "{} {} {}",
                        text(f, &["kind"]),
                        text(f, &["menu"]),
                        text(f, &["name"])
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let count = found.len().to_string();
            to_operators(conn, ctx, Topic::SiteDrift, &origin, |_| {
                Vars::from([
                    ("site_name", site_name.clone()),
                    ("count", count.clone()),
                    ("findings", findings.clone()),
                ])
            })
            .await
        }
        (EventKind::VoucherConflict, _) => {
            let code = text(d, &["voucher_code"]);
            let sites: Vec<String> = d["sites"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let mut names = Vec::new();
            for site in &sites {
                names.push(site_name(conn, Some(site)).await?);
            }
            let (kind, closed) = (text(d, &["kind"]), text(d, &["resolution"]) == "closed");
            let (secs, bytes, devices) = (
                int(d, &["over_secs"]),
                int(d, &["over_bytes"]),
                int(d, &["over_devices"]),
            );
            to_operators(conn, ctx, Topic::VoucherConflict, &origin, |l| {
                let (secs_word, bytes_word, and) = match l {
                    Lang::Id => ("detik", "byte", " dan "),
                    Lang::En => ("s", "bytes", " and "),
                };
                let amounts: Vec<String> = [(secs, secs_word), (bytes, bytes_word)]
                    .into_iter()
                    .filter(|(n, _)| *n > 0)
                    .map(|(n, word)| format!("{n} {word}"))
                    .collect();
                let problem = match (kind.as_str(), l) {
                    ("over_budget", Lang::Id) => format!("lebih {} dari batas", amounts.join(and)),
                    ("over_budget", Lang::En) => format!("{} over the limit", amounts.join(and)),
                    ("mac_lock", Lang::Id) => format!("{devices} perangkat lain (kunci MAC)"),
                    ("mac_lock", Lang::En) => format!("{devices} other device(s) (MAC lock)"),
                    (_, Lang::Id) => format!("{devices} perangkat lebih dari batas bersamaan"),
                    (_, Lang::En) => format!("{devices} device(s) more than allowed at once"),
                };
                let resolution = match (closed, l) {
                    (true, Lang::Id) => "sisa kuota voucher ditutup di semua site",
                    (true, Lang::En) => "the voucher's remaining budget was closed at every site",
                    (false, Lang::Id) => "kelebihan diterima",
                    (false, Lang::En) => "the overuse was accepted",
                };
                Vars::from([
                    ("code", code.clone()),
                    ("problem", problem),
                    ("sites", names.join(", ")),
                    ("resolution", resolution.to_string()),
                ])
            })
            .await
        }
        (EventKind::EventParked, _) => {
            let (consumer, kind) = (text(d, &["consumer"]), text(d, &["event_kind"]));
            let (event_id, error) = (int(d, &["event_id"]), text(d, &["error"]));
            to_operators(conn, ctx, Topic::EventParked, &origin, |_| {
                Vars::from([
                    ("consumer", consumer.clone()),
                    ("event_kind", kind.clone()),
                    ("event_id", event_id.to_string()),
                    ("error", error.clone()),
                ])
            })
            .await
        }
        _ => Ok(0),
    }
}

/// The notification consumer: queues the messages each event calls for.
struct Producer;

impl consumer::Handler for Producer {
    type Batch = Context;

    fn name(&self) -> &'static str {
        CONSUMER
    }

    async fn prepare(&self, conn: &mut sqlx::AnyConnection) -> Result<Context, String> {
        Context::load(conn).await.map_err(|e| e.to_string())
    }

    async fn handle(
        &self,
        ctx: &Context,
        conn: &mut sqlx::AnyConnection,
        e: &Event,
    ) -> Result<u64, String> {
        handle(conn, ctx, e).await.map_err(|e| e.to_string())
    }
}

/// Reads new events and queues their messages, moving the cursor in the same transaction;
/// returns how many messages were created. Does nothing when another replica holds it.
pub async fn fan_out(db: &Db, holder: &str) -> DomainResult<u64> {
    Ok(consumer::drive(db, &Producer, holder).await?)
}

/// How long a message may wait for its gateway before it is too old to be worth sending.
const MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// Why a queued message no longer applies when it is due, if it does not:
/// - it waited longer than a week (a channel paused for months does not wake up with stale
///   reminders), or a login code outlived the code;
/// - its invoice was paid or voided meanwhile;
/// - the customer opted out or no longer allows the channel;
/// - a newer status change of its subscription superseded it;
/// - its site came back after the outage it reports (so a flapping link that recovers within
///   the delay pages nobody, and each outage pages once).
pub(crate) async fn cancel_reason(
    db: &Db,
    channel: &Channel,
    m: &messages::Message,
) -> DomainResult<Option<String>> {
    let now = crate::db::now_ms();
    let topic = Topic::parse(&m.topic);
    if now - m.created_at > MAX_AGE_MS {
        return Ok(Some("waited more than a week; no longer relevant".into()));
    }
    if topic == Some(Topic::PortalCode) && now - m.created_at > super::PORTAL_CODE_LIFETIME_MS {
        return Ok(Some(
            "the login code expired before it could be sent".into(),
        ));
    }
    if let Some(invoice) = &m.invoice_id {
        let status: Option<String> = sqlx::query("SELECT status FROM invoices WHERE id = $1")
            .bind(invoice)
            .fetch_optional(&db.pool)
            .await?
            .map(|r| r.try_get("status"))
            .transpose()?;
        if status.as_deref() != Some("unpaid") {
            return Ok(Some("the invoice was settled meanwhile".into()));
        }
    }
    if let Some(customer) = &m.customer_id {
        let mut conn = db.pool.acquire().await?;
        let r = prefs::recipient(&mut conn, customer).await?;
        if r.address_for(channel).is_none() {
            return Ok(Some(
                "the customer opted out or no longer allows this channel".into(),
            ));
        }
    }
    let newer_kinds: &[EventKind] = match topic {
        Some(Topic::SubscriptionIsolated | Topic::SubscriptionReactivated) => &[
            EventKind::SubscriptionIsolated,
            EventKind::SubscriptionReactivated,
            EventKind::SubscriptionTerminated,
        ],
        Some(Topic::SiteOffline) => &[EventKind::SiteOnline],
        _ => &[],
    };
    let subject = match topic {
        Some(Topic::SiteOffline) => m.site_id.as_deref().map(|s| ("site_id", s)),
        _ => m.subscription_id.as_deref().map(|s| ("subscription_id", s)),
    };
    if let (Some((column, subject)), Some(event)) = (subject, m.event_id) {
        for kind in newer_kinds {
            let newer = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM events WHERE kind = $1 AND {column} = $2 AND id > $3 LIMIT 1"
            )))
            .bind(kind.as_str())
            .bind(subject)
            .bind(event)
            .fetch_optional(&db.pool)
            .await?;
            if newer.is_some() {
                return Ok(Some(match topic {
                    Some(Topic::SiteOffline) => {
                        "the site came back online before the alert was due".into()
                    }
                    _ => "a newer status change of the subscription superseded it".into(),
                }));
            }
        }
    }
    Ok(None)
}
