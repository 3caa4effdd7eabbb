//! Payment gateways: each turns a webhook notification into a verified [`Notification`].
//! The webhook endpoint and the payment ledger do the rest, the same way for every gateway.

pub mod midtrans;

use std::collections::HashMap;
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

/// The configured gateways by name.
#[derive(Default, Clone)]
pub struct Gateways {
    by_name: HashMap<&'static str, Arc<dyn Gateway>>,
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

    /// Names of the configured gateways.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.by_name.keys().copied().collect();
        v.sort_unstable();
        v
    }
}
