//! Message texts per topic and language: built-in defaults an operator can override through
//! the API. Rendering only substitutes `{{name}}` placeholders with plain values in a single
//! pass, so text coming from customer data (a name containing `{{amount}}`, say) is printed
//! as it is and can never pull in other values or run anything.

use super::Topic;
use crate::audit::{self, Actor};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use crate::locale::Lang;
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

/// Values a message is rendered with.
pub type Vars = BTreeMap<&'static str, String>;

/// A template as shown and edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Template {
    /// The topic.
    pub topic: Topic,
    /// The language.
    pub lang: Lang,
    /// Subject line (e-mail); other channels send only the body.
    pub subject: String,
    /// The message.
    pub body: String,
    /// Whether this is the operator's text rather than the built-in one.
    pub custom: bool,
    /// Placeholders this topic offers, written `{{name}}` in the text.
    pub placeholders: Vec<&'static str>,
}

/// Placeholders a topic's templates may use.
pub fn placeholders(topic: Topic) -> &'static [&'static str] {
    match topic {
        Topic::InvoiceCreated => &[
            "company_name",
            "customer_name",
            "customer_number",
            "invoice_number",
            "amount",
            "due_date",
            "payment_link",
        ],
        Topic::InvoiceReminder => &[
            "company_name",
            "customer_name",
            "customer_number",
            "invoice_number",
            "amount",
            "due_date",
            "days_left",
            "payment_link",
        ],
        Topic::PaymentReceived => &[
            "company_name",
            "customer_name",
            "customer_number",
            "amount",
            "invoice_number",
            "paid_at",
            "credit",
        ],
        Topic::SubscriptionIsolated | Topic::SubscriptionReactivated => &[
            "company_name",
            "customer_name",
            "customer_number",
            "username",
            "amount",
            "payment_link",
        ],
        Topic::VoucherBatchSold => &["company_name", "reseller", "count", "amount", "plan_name"],
        Topic::SiteOffline => &["company_name", "site_name", "offline_since", "minutes"],
        Topic::CommandFailed => &["company_name", "site_name", "command", "error"],
        Topic::EventParked => &[
            "company_name",
            "consumer",
            "event_kind",
            "event_id",
            "error",
        ],
        Topic::VoucherPurchased => &["company_name", "code", "plan_name", "price"],
        Topic::VoucherConflict => &["company_name", "code", "problem", "sites", "resolution"],
        Topic::SiteDrift => &["company_name", "site_name", "count", "findings"],
        Topic::PortalCode => &[
            "company_name",
            "customer_name",
            "customer_number",
            "code",
            "minutes",
        ],
    }
}

/// The built-in text of a topic in a language: (subject, body).
pub fn default_text(topic: Topic, lang: Lang) -> (&'static str, &'static str) {
    match (topic, lang) {
        (Topic::InvoiceCreated, Lang::Id) => (
            "Tagihan {{invoice_number}} dari {{company_name}}",
            "Halo {{customer_name}}, tagihan internet {{invoice_number}} sebesar {{amount}} telah terbit dan jatuh tempo {{due_date}}. Bayar di {{payment_link}} . Terima kasih - {{company_name}}",
        ),
        (Topic::InvoiceCreated, Lang::En) => (
            "Invoice {{invoice_number}} from {{company_name}}",
            "Hello {{customer_name}}, your internet invoice {{invoice_number}} of {{amount}} is due on {{due_date}}. Pay at {{payment_link}} . Thank you - {{company_name}}",
        ),
        (Topic::InvoiceReminder, Lang::Id) => (
            "Pengingat: tagihan {{invoice_number}} jatuh tempo {{due_date}}",
            "Halo {{customer_name}}, tagihan {{invoice_number}} sebesar {{amount}} jatuh tempo dalam {{days_left}} hari ({{due_date}}). Bayar di {{payment_link}} agar layanan tidak terisolir. - {{company_name}}",
        ),
        (Topic::InvoiceReminder, Lang::En) => (
            "Reminder: invoice {{invoice_number}} is due on {{due_date}}",
            "Hello {{customer_name}}, invoice {{invoice_number}} of {{amount}} is due in {{days_left}} day(s) ({{due_date}}). Pay at {{payment_link}} to keep your service running. - {{company_name}}",
        ),
        (Topic::PaymentReceived, Lang::Id) => (
            "Pembayaran diterima - {{company_name}}",
            "Terima kasih {{customer_name}}, pembayaran {{amount}} untuk {{invoice_number}} telah kami terima pada {{paid_at}}. Saldo kredit: {{credit}}. - {{company_name}}",
        ),
        (Topic::PaymentReceived, Lang::En) => (
            "Payment received - {{company_name}}",
            "Thank you {{customer_name}}, we received your payment of {{amount}} for {{invoice_number}} on {{paid_at}}. Credit balance: {{credit}}. - {{company_name}}",
        ),
        (Topic::SubscriptionIsolated, Lang::Id) => (
            "Layanan {{username}} diisolir",
            "Halo {{customer_name}}, layanan internet {{username}} diisolir. Tagihan terbuka: {{amount}}. Bayar di {{payment_link}} dan layanan aktif kembali otomatis. - {{company_name}}",
        ),
        (Topic::SubscriptionIsolated, Lang::En) => (
            "Service {{username}} suspended",
            "Hello {{customer_name}}, internet service {{username}} has been suspended. Outstanding: {{amount}}. Pay at {{payment_link}} and it comes back automatically. - {{company_name}}",
        ),
        (Topic::SubscriptionReactivated, Lang::Id) => (
            "Layanan {{username}} aktif kembali",
            "Halo {{customer_name}}, layanan internet {{username}} sudah aktif kembali. Terima kasih. - {{company_name}}",
        ),
        (Topic::SubscriptionReactivated, Lang::En) => (
            "Service {{username}} restored",
            "Hello {{customer_name}}, internet service {{username}} is active again. Thank you. - {{company_name}}",
        ),
        (Topic::VoucherBatchSold, Lang::Id) => (
            "Penjualan voucher ke {{reseller}}",
            "Reseller {{reseller}} membeli {{count}} voucher {{plan_name}} seharga {{amount}}.",
        ),
        (Topic::VoucherBatchSold, Lang::En) => (
            "Vouchers sold to {{reseller}}",
            "Reseller {{reseller}} bought {{count}} {{plan_name}} vouchers for {{amount}}.",
        ),
        (Topic::SiteOffline, Lang::Id) => (
            "Site {{site_name}} offline",
            "PERINGATAN: site {{site_name}} offline sejak {{offline_since}} ({{minutes}} menit).",
        ),
        (Topic::SiteOffline, Lang::En) => (
            "Site {{site_name}} offline",
            "ALERT: site {{site_name}} has been offline since {{offline_since}} ({{minutes}} min).",
        ),
        (Topic::CommandFailed, Lang::Id) => (
            "Perintah gagal di {{site_name}}",
            "Perintah {{command}} gagal di site {{site_name}}: {{error}}",
        ),
        (Topic::VoucherPurchased, Lang::Id) => (
            "Voucher {{company_name}}: {{code}}",
            "Terima kasih, pembayaran {{price}} diterima. Kode voucher {{plan_name}} Anda: {{code}} (masukkan sebagai nama pengguna dan kata sandi di halaman login hotspot). - {{company_name}}",
        ),
        (Topic::VoucherPurchased, Lang::En) => (
            "Your {{company_name}} voucher: {{code}}",
            "Thank you, {{price}} received. Your {{plan_name}} voucher code: {{code}} (type it as user name and password on the hotspot login page). - {{company_name}}",
        ),
        (Topic::PortalCode, Lang::Id) => (
            "Kode masuk portal {{company_name}}",
            "Kode masuk portal pelanggan {{company_name}}: {{code}} (berlaku {{minutes}} menit). Jangan berikan kode ini kepada siapa pun.",
        ),
        (Topic::PortalCode, Lang::En) => (
            "Your {{company_name}} portal login code",
            "Your {{company_name}} customer portal login code: {{code}} (valid {{minutes}} minutes). Never share this code with anyone.",
        ),
        (Topic::CommandFailed, Lang::En) => (
            "Command failed at {{site_name}}",
            "Command {{command}} failed at site {{site_name}}: {{error}}",
        ),
        (Topic::EventParked, Lang::Id) => (
            "Event {{event_kind}} diparkir ({{consumer}})",
            "PERINGATAN: {{consumer}} gagal memproses event #{{event_id}} ({{event_kind}}) berulang kali dan melewatinya: {{error}}. Coba lagi dari halaman Event setelah penyebabnya diperbaiki.",
        ),
        (Topic::VoucherConflict, Lang::Id) => (
            "Voucher {{code}} dipakai ganda",
            "PERINGATAN: voucher {{code}} dipakai melebihi paketnya di beberapa site ({{sites}}): {{problem}}. Tindakan: {{resolution}}.",
        ),
        (Topic::VoucherConflict, Lang::En) => (
            "Voucher {{code}} used twice",
            "ALERT: voucher {{code}} was used beyond its plan across sites ({{sites}}): {{problem}}. Action: {{resolution}}.",
        ),
        (Topic::SiteDrift, Lang::Id) => (
            "Router {{site_name}} diubah manual",
            "PERINGATAN: router di site {{site_name}} diubah di luar MikroBill ({{count}} temuan): {{findings}}. Lihat halaman site untuk memulihkannya.",
        ),
        (Topic::SiteDrift, Lang::En) => (
            "Router at {{site_name}} changed by hand",
            "ALERT: the router at site {{site_name}} was changed outside MikroBill ({{count}} findings): {{findings}}. See the site's page to repair it.",
        ),
        (Topic::EventParked, Lang::En) => (
            "Event {{event_kind}} parked ({{consumer}})",
            "ALERT: {{consumer}} failed on event #{{event_id}} ({{event_kind}}) repeatedly and moved past it: {{error}}. Retry it from the Events page once the cause is fixed.",
        ),
    }
}

/// Placeholders named in `text`, in order; an unclosed `{{` is an error.
pub(crate) fn names(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "has a {{ without a closing }}".to_string())?;
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Checks that a text uses only the topic's placeholders; says which one is unknown.
pub fn check(topic: Topic, field: &'static str, text: &str) -> DomainResult<()> {
    let allowed = placeholders(topic);
    for name in names(text).map_err(|m| DomainError::invalid(field, m))? {
        if !allowed.contains(&name) {
            return Err(DomainError::invalid(
                field,
                format!(
                    "unknown placeholder {{{{{name}}}}}; {} offers {}",
                    topic.as_str(),
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Renders `text`: every `{{name}}` becomes its value, each value passed through `escape`
/// (identity for messages, JSON or URL escaping for gateway bodies). Values are never
/// scanned for placeholders. A name without a value renders empty.
pub fn render_with(
    text: &str,
    vars: &BTreeMap<&str, String>,
    escape: impl Fn(&str) -> String,
) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        if let Some(value) = vars.get(after[..end].trim()) {
            out.push_str(&escape(value));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Renders a message text with plain values.
pub fn render(text: &str, vars: &Vars) -> String {
    let vars: BTreeMap<&str, String> = vars.iter().map(|(k, v)| (*k, v.clone())).collect();
    render_with(text, &vars, str::to_string)
}

/// Every template in effect, loaded once for a batch of messages.
#[derive(Debug, Clone)]
pub struct Catalog {
    custom: std::collections::HashMap<(Topic, Lang), (String, String)>,
}

impl Catalog {
    /// Loads the operator's overrides.
    pub async fn load(conn: &mut sqlx::AnyConnection) -> DomainResult<Catalog> {
        let rows = sqlx::query("SELECT topic, lang, subject, body FROM notification_templates")
            .fetch_all(&mut *conn)
            .await?;
        let mut custom = std::collections::HashMap::new();
        for r in rows {
            let topic = Topic::parse(&r.try_get::<String, _>("topic")?);
            let lang = Lang::parse(&r.try_get::<String, _>("lang")?);
            if let (Some(topic), Some(lang)) = (topic, lang) {
                custom.insert((topic, lang), (r.try_get("subject")?, r.try_get("body")?));
            }
        }
        Ok(Catalog { custom })
    }

    /// The template in effect for a topic and language: the operator's, else the built-in.
    pub fn get(&self, topic: Topic, lang: Lang) -> Template {
        let (subject, body, custom) = match self.custom.get(&(topic, lang)) {
            Some((s, b)) => (s.clone(), b.clone(), true),
            None => {
                let (s, b) = default_text(topic, lang);
                (s.to_string(), b.to_string(), false)
            }
        };
        Template {
            topic,
            lang,
            subject,
            body,
            custom,
            placeholders: placeholders(topic).to_vec(),
        }
    }
}

/// The template in effect for a topic and language.
pub async fn effective(db: &Db, topic: Topic, lang: Lang) -> DomainResult<Template> {
    let mut conn = db.pool.acquire().await?;
    Ok(Catalog::load(&mut conn).await?.get(topic, lang))
}

/// Every topic's template in every language.
pub async fn list(db: &Db) -> DomainResult<Vec<Template>> {
    let mut conn = db.pool.acquire().await?;
    let catalog = Catalog::load(&mut conn).await?;
    Ok(Topic::ALL
        .into_iter()
        .flat_map(|t| Lang::ALL.map(|l| catalog.get(t, l)))
        .collect())
}

/// Saves the operator's text for a topic and language.
pub async fn save(
    db: &Db,
    actor: &Actor,
    topic: Topic,
    lang: Lang,
    subject: &str,
    body: &str,
) -> DomainResult<Template> {
    if body.trim().is_empty() {
        return Err(DomainError::invalid("body", "must not be empty"));
    }
    if subject.len() > 200 {
        return Err(DomainError::invalid("subject", "must be at most 200 bytes"));
    }
    if body.len() > 4096 {
        return Err(DomainError::invalid("body", "must be at most 4096 bytes"));
    }
    check(topic, "subject", subject)?;
    check(topic, "body", body)?;
    let before = effective(db, topic, lang).await?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO notification_templates (topic, lang, subject, body, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (topic, lang) DO UPDATE SET subject = excluded.subject, body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(topic.as_str())
    .bind(lang.code())
    .bind(subject)
    .bind(body)
    .bind(&actor.name)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    ?;
    let after = Template {
        subject: subject.to_string(),
        body: body.to_string(),
        custom: true,
        ..before.clone()
    };
    let key = format!("{}/{}", topic.as_str(), lang.code());
    audit::record(
        &mut tx,
        actor,
        "notification_template.save",
        "notification_template",
        Some(&key),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Drops the operator's text so the built-in one applies again.
pub async fn reset(db: &Db, actor: &Actor, topic: Topic, lang: Lang) -> DomainResult<Template> {
    let before = effective(db, topic, lang).await?;
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM notification_templates WHERE topic = $1 AND lang = $2")
        .bind(topic.as_str())
        .bind(lang.code())
        .execute(&mut *tx)
        .await?;
    let key = format!("{}/{}", topic.as_str(), lang.code());
    audit::record(
        &mut tx,
        actor,
        "notification_template.reset",
        "notification_template",
        Some(&key),
        Some(&before),
        None::<&()>,
    )
    .await?;
    tx.commit().await?;
    effective(db, topic, lang).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_uses_only_its_placeholders() {
        for topic in Topic::ALL {
            for lang in Lang::ALL {
                let (s, b) = default_text(topic, lang);
                check(topic, "subject", s).unwrap();
                check(topic, "body", b).unwrap();
            }
        }
    }

    #[test]
    fn customer_data_cannot_inject_placeholders() {
        let mut vars = Vars::new();
        vars.insert("customer_name", "{{amount}} }} {{".into());
        vars.insert("amount", "Rp 1".into());
        assert_eq!(
            render("Hi {{ customer_name }}, pay {{amount}}.", &vars),
            "Hi {{amount}} }} {{, pay Rp 1."
        );
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_refused() {
        assert!(check(Topic::InvoiceCreated, "body", "{{password}}").is_err());
        assert!(check(Topic::InvoiceCreated, "body", "pay {{amount").is_err());
        assert!(check(Topic::SiteOffline, "body", "{{site_name}} down").is_ok());
    }

    #[test]
    fn escaping_applies_to_values_only() {
        let mut vars = BTreeMap::new();
        vars.insert("text", "say \"hi\"".to_string());
        let out = render_with(r#"{"m":"{{text}}"}"#, &vars, |v| {
            let q = serde_json::to_string(v).unwrap();
            q[1..q.len() - 1].to_string()
        });
        assert_eq!(out, r#"{"m":"say \"hi\""}"#);
    }
}
