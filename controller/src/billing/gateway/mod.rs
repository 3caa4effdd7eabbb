//! Payment gateways: each turns a webhook notification into a verified [`Notification`].
//! The webhook endpoint and the payment ledger do the rest, the same way for every gateway.
//! A gateway that can also take a payment on its own page implements [`LinkGateway`].

pub mod midtrans;
pub mod midtrans_snap;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a verified gateway notification says about one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The gateway's own transaction id; payments are idempotent on it.
    pub external_id: String,
    /// Our order id as we sent it to the gateway (an invoice number, optionally `~suffix`).
    pub order_id: String,
    /// Amount in minor units of `currency`.
    pub amount: i64,
    /// ISO 4217 code as the gateway reports it.
    pub currency: String,
    /// What happened to the transaction.
    pub status: PaymentStatus,
    /// The gateway's own status words, for the log and the audit trail.
    pub raw_status: String,
}

/// The outcome a notification reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Money received: record the payment.
    Paid,
    /// Waiting for the payer.
    Pending,
    /// Denied, cancelled, expired or failed: nothing to record.
    Failed,
    /// Refunded after payment: needs an operator.
    Refunded,
}

/// Why a notification was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The body is not the gateway's format; says what is wrong.
    #[error("malformed notification: {0}")]
    Malformed(String),
    /// The signature does not match: not from the gateway, or a different server key.
    #[error("notification signature does not verify")]
    BadSignature,
}

/// A payment gateway's webhook format.
pub trait Gateway: Send + Sync {
    /// The name in the webhook URL, `/api/v1/payments/webhooks/{name}`.
    fn name(&self) -> &'static str;

    /// Verifies the notification's signature and parses it. `currency_exponent` is how many
    /// decimal places the ledger's minor unit has (0 for IDR as billed in Indonesia).
    fn verify(&self, body: &[u8], currency_exponent: u32) -> Result<Notification, GatewayError>;
}

/// What a payment link is created for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRequest {
    /// Our order id; the gateway's notifications repeat it (`INV-...~suffix`).
    pub order_id: String,
    /// Amount in minor units.
    pub amount: i64,
    /// Decimal places of the ledger's minor unit.
    pub currency_exponent: u32,
}

/// A page where the payer completes a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentLink {
    /// Where to send the payer.
    pub redirect_url: String,
}

/// Why no payment link was created.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The gateway could not be reached or failed; trying again later may work.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
    /// The gateway refused the request (configuration or data problem); says why.
    #[error("payment gateway refused the request: {0}")]
    Refused(String),
}

/// A boxed future, so the trait stays usable as `dyn LinkGateway`.
pub type LinkFuture<'a> = Pin<Box<dyn Future<Output = Result<PaymentLink, LinkError>> + Send + 'a>>;

/// A gateway that hosts its own payment page, reached through a link we create.
pub trait LinkGateway: Send + Sync {
    /// The gateway's name, the same as its webhook's [`Gateway::name`].
    fn name(&self) -> &'static str;

    /// Creates a payment page for one order.
    fn create_link<'a>(&'a self, request: &'a LinkRequest) -> LinkFuture<'a>;
}

/// The configured gateways by name.
#[derive(Default, Clone)]
pub struct Gateways {
    by_name: HashMap<&'static str, Arc<dyn Gateway>>,
    links: Option<Arc<dyn LinkGateway>>,
}

impl Gateways {
    /// Adds a gateway.
    pub fn with(mut self, gateway: impl Gateway + 'static) -> Gateways {
        self.by_name.insert(gateway.name(), Arc::new(gateway));
        self
    }

    /// The gateway called `name`, if configured.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Gateway>> {
        self.by_name.get(name).cloned()
    }

    /// Sets the gateway payment links are created with.
    pub fn with_links(mut self, gateway: impl LinkGateway + 'static) -> Gateways {
        self.links = Some(Arc::new(gateway));
        self
    }

    /// The gateway payment links are created with, if any.
    pub fn links(&self) -> Option<Arc<dyn LinkGateway>> {
        self.links.clone()
    }

    /// Names of the configured gateways.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.by_name.keys().copied().collect();
        v.sort_unstable();
        v
    }
}
