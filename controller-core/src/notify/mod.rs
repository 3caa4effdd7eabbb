//! Notifications to customers and operators: WhatsApp (Cloud API or a local HTTP gateway),
//! Telegram, e-mail and SMS.
//!
//! Producers turn domain events (`produce.rs`, a consumer of the event outbox) and due dates
//! (`reminders.rs`, a scheduled job) into `notifications` rows, rendered from the
//! operator's templates (`templates.rs`) in the customer's language, one per channel the
//! customer may be reached on (`prefs.rs`). Each row carries a dedupe key, so a replayed
//! event or a re-run job never makes a second message. Per-channel workers (`worker.rs`)
//! send them through the channel's transport (`transport/`) with retries, a circuit
//! breaker, a rate limit and a dead letter, recording every attempt (`messages.rs`).

pub mod channels;
pub mod messages;
pub mod prefs;
pub mod produce;
pub mod reminders;
pub mod settings;
pub mod telegram_link;
pub mod templates;
pub mod transport;
pub mod worker;

use serde::{Deserialize, Serialize};

/// How long a portal login code is valid; a code message still unsent by then is dropped.
/// Here rather than in `portal::codes` so notifications need nothing from the portal.
pub const PORTAL_CODE_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// What a message is about; each topic has its own template per language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Topic {
    /// A new invoice, with the amount, due date and payment link.
    #[serde(rename = "invoice.created")]
    InvoiceCreated,
    /// An unpaid invoice is due in a few days.
    #[serde(rename = "invoice.reminder")]
    InvoiceReminder,
    /// A payment receipt.
    #[serde(rename = "payment.received")]
    PaymentReceived,
    /// The service was isolated for non-payment or by an operator.
    #[serde(rename = "subscription.isolated")]
    SubscriptionIsolated,
    /// The service is back.
    #[serde(rename = "subscription.reactivated")]
    SubscriptionReactivated,
    /// A reseller bought or was sold a voucher batch (purchase receipt to the operators).
    #[serde(rename = "voucher_batch.sold")]
    VoucherBatchSold,
    /// Operators: a site has been offline longer than the configured delay.
    #[serde(rename = "site.offline")]
    SiteOffline,
    /// Operators: a command could not be applied at a site.
    #[serde(rename = "command.failed")]
    CommandFailed,
    /// A one-time code the customer asked for to log in to the portal.
    #[serde(rename = "portal.code")]
    PortalCode,
    /// Operators: an event consumer gave up on an event and parked it.
    #[serde(rename = "event.parked")]
    EventParked,
    /// Operators: a voucher was used beyond its plan across sites.
    #[serde(rename = "voucher.conflict")]
    VoucherConflict,
    /// A voucher bought in the portal, to the phone number the buyer gave.
    #[serde(rename = "voucher.purchased")]
    VoucherPurchased,
    /// Operators: a site's router was changed by hand (outside MikroBill).
    #[serde(rename = "site.drift")]
    SiteDrift,
}

/// Who a topic is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The customer the event concerns.
    Customer,
    /// The operators' recipient configured on each channel.
    Operators,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 13] = [
        Topic::InvoiceCreated,
        Topic::InvoiceReminder,
        Topic::PaymentReceived,
        Topic::SubscriptionIsolated,
        Topic::SubscriptionReactivated,
        Topic::VoucherBatchSold,
        Topic::SiteOffline,
        Topic::CommandFailed,
        Topic::PortalCode,
        Topic::EventParked,
        Topic::VoucherPurchased,
        Topic::VoucherConflict,
        Topic::SiteDrift,
    ];

    /// Storage name, e.g. `invoice.reminder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::InvoiceCreated => "invoice.created",
            Topic::InvoiceReminder => "invoice.reminder",
            Topic::PaymentReceived => "payment.received",
            Topic::SubscriptionIsolated => "subscription.isolated",
            Topic::SubscriptionReactivated => "subscription.reactivated",
            Topic::VoucherBatchSold => "voucher_batch.sold",
            Topic::SiteOffline => "site.offline",
            Topic::CommandFailed => "command.failed",
            Topic::PortalCode => "portal.code",
            Topic::EventParked => "event.parked",
            Topic::VoucherPurchased => "voucher.purchased",
            Topic::VoucherConflict => "voucher.conflict",
            Topic::SiteDrift => "site.drift",
        }
    }

    /// Parses a storage name.
    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Who receives it.
    pub fn audience(self) -> Audience {
        match self {
            Topic::VoucherBatchSold
            | Topic::SiteOffline
            | Topic::CommandFailed
            | Topic::EventParked
            | Topic::VoucherConflict
            | Topic::SiteDrift => Audience::Operators,
            _ => Audience::Customer,
        }
    }
}
