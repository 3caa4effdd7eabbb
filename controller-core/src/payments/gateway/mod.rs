//! Payment gateways. A webhook notification is only a hint: each gateway first authenticates
//! it ([`Gateway::authenticate`], no I/O), then asks the gateway's own API what became of the
//! transaction ([`Gateway::confirm`]), and [`reconcile`] decides from both. Only what the
//! gateway's API confirmed is recorded, keyed on the transaction id the API returned, so an
//! edited or replayed notification can never create money. Each gateway also creates
//! payment pages for the portal's Pay button ([`Gateway::create_link`]).

pub mod amount;
mod client;
mod fields;
pub mod midtrans;
pub mod midtrans_snap;
pub mod tripay;
pub mod xendit;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use http::HeaderMap;

/// What an authenticated notification claims; not yet believed beyond its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The key the gateway's API looks the transaction up by (Midtrans: the order id;
    /// Xendit: the invoice id; Tripay: the reference).
    pub lookup: String,
    /// Our order id as the notification names it (an invoice number, optionally `~suffix`).
    pub order_id: String,
    /// The status as covered by the signature (Midtrans `status_code`, Tripay `status`);
    /// `None` when the gateway signs no status.
    pub signed_status: Option<String>,
    /// The amount as covered by the signature, in minor units; `None` when not signed.
    pub signed_amount: Option<i64>,
}

/// What the gateway's API says about a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// The gateway's own transaction id, as its API returned it.
    pub transaction_id: String,
    /// Our order id as the gateway recorded it.
    pub order_id: String,
    /// Amount in minor units.
    pub amount: i64,
    /// ISO 4217 code as the gateway reports it.
    pub currency: String,
    /// What happened to the transaction.
    pub status: PaymentStatus,
    /// The status in the same words [`Claim::signed_status`] uses, to compare them.
    pub status_code: String,
    /// The gateway's own status words, for the log and the audit trail.
    pub raw_status: String,
}

/// A confirmed transaction to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The gateway's own transaction id (confirmed by its API); payments are idempotent on it.
    pub external_id: String,
    /// Our order id (an invoice number, optionally `~suffix`).
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

/// The outcome a transaction has.
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

/// What to do with an authenticated, confirmed notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The notification and the gateway's API agree: act on the confirmed transaction.
    Act(Notification),
    /// The signed status is not the confirmed one (an old notification arriving late, or an
    /// edited one): nothing is done; the notification for the current status comes on its own.
    Stale {
        /// The status the notification was signed with.
        claimed: String,
        /// The status the gateway's API reports.
        confirmed: String,
    },
}

/// Why a notification was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The body is not the gateway's format; says what is wrong.
    #[error("malformed notification: {0}")]
    Malformed(String),
    /// The signature or token does not match: not from the gateway, or a different key.
    #[error("notification signature does not verify")]
    BadSignature,
    /// The gateway's API could not be asked (down, timeout, 5xx); the gateway retries later.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
    /// The gateway's API does not confirm the notification: no such transaction, or a
    /// different order or amount than the notification claims.
    #[error("not confirmed by the gateway: {0}")]
    Unconfirmed(String),
}

/// Decides from an authenticated claim and the gateway's answer. The gateway's answer is the
/// truth; the claim must name the same order and, where signed, the same amount and status.
pub fn reconcile(claim: &Claim, confirmed: Confirmed) -> Result<Verdict, GatewayError> {
    if confirmed.order_id != claim.order_id {
        return Err(GatewayError::Unconfirmed(format!(
            "the gateway records order {:?} for this transaction, the notification names {:?}",
            confirmed.order_id, claim.order_id
        )));
    }
    if let Some(signed) = claim.signed_amount
        && signed != confirmed.amount
    {
        return Err(GatewayError::Unconfirmed(format!(
            "the gateway records amount {}, the notification claims {signed}",
            confirmed.amount
        )));
    }
    if let Some(signed) = &claim.signed_status
        && *signed != confirmed.status_code
    {
        return Ok(Verdict::Stale {
            claimed: signed.clone(),
            confirmed: confirmed.status_code,
        });
    }
    Ok(Verdict::Act(Notification {
        external_id: confirmed.transaction_id,
        order_id: confirmed.order_id,
        amount: confirmed.amount,
        currency: confirmed.currency,
        status: confirmed.status,
        raw_status: confirmed.raw_status,
    }))
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
    /// ISO 4217 code of the ledger.
    pub currency: String,
    /// What is paid for, shown on the gateway's page.
    pub description: String,
    /// The payer's name.
    pub customer_name: String,
    /// The payer's e-mail, when known.
    pub customer_email: Option<String>,
    /// The payer's phone, when known.
    pub customer_phone: Option<String>,
    /// Where the gateway sends the payer back to, when known.
    pub return_url: Option<String>,
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

/// A boxed future, so the trait stays usable as `dyn Gateway`.
pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A payment gateway: its notification format, its status API and its payment pages.
pub trait Gateway: Send + Sync {
    /// The name in the webhook URL, `/api/v1/payments/webhooks/{name}`.
    fn name(&self) -> &'static str;

    /// Checks that a notification comes from the gateway (signature or token) and reads
    /// what it claims. `currency_exponent` is how many decimal places the ledger's minor
    /// unit has (0 for IDR as billed in Indonesia).
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        currency_exponent: u32,
    ) -> Result<Claim, GatewayError>;

    /// Asks the gateway's API for the claimed transaction.
    fn confirm<'a>(
        &'a self,
        claim: &'a Claim,
        currency_exponent: u32,
    ) -> GatewayFuture<'a, Result<Confirmed, GatewayError>>;

    /// Creates a payment page for one order.
    fn create_link<'a>(
        &'a self,
        request: &'a LinkRequest,
    ) -> GatewayFuture<'a, Result<PaymentLink, LinkError>>;
}

/// Authenticates, confirms and reconciles one notification.
pub async fn verify(
    gateway: &dyn Gateway,
    headers: &HeaderMap,
    body: &[u8],
    currency_exponent: u32,
) -> Result<Verdict, GatewayError> {
    let claim = gateway.authenticate(headers, body, currency_exponent)?;
    let confirmed = gateway.confirm(&claim, currency_exponent).await?;
    reconcile(&claim, confirmed)
}

/// The configured gateways by name.
#[derive(Default, Clone)]
pub struct Gateways {
    by_name: HashMap<&'static str, Arc<dyn Gateway>>,
    links: Option<&'static str>,
}

impl Gateways {
    /// Adds a gateway; the first one added creates payment links unless
    /// [`Gateways::links_with`] chooses another.
    pub fn with(mut self, gateway: impl Gateway + 'static) -> Gateways {
        let name = gateway.name();
        self.by_name.insert(name, Arc::new(gateway));
        self.links.get_or_insert(name);
        self
    }

    /// Chooses the gateway payment links are created with; false when it is not configured.
    pub fn links_with(&mut self, name: &str) -> bool {
        match self.by_name.get_key_value(name) {
            Some((n, _)) => {
                self.links = Some(n);
                true
            }
            None => false,
        }
    }

    /// The gateway called `name`, if configured.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Gateway>> {
        self.by_name.get(name).cloned()
    }

    /// The gateway payment links are created with, if any.
    pub fn links(&self) -> Option<Arc<dyn Gateway>> {
        self.links.and_then(|n| self.get(n))
    }

    /// Names of the configured gateways.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.by_name.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

/// Compares without an early exit, so the time taken does not reveal how many leading bytes
/// of a forged signature or token were right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claim() -> Claim {
        Claim {
            lookup: "INV-2026-000001~a".into(),
            order_id: "INV-2026-000001~a".into(),
            signed_status: Some("200".into()),
            signed_amount: Some(150_000),
        }
    }

    fn confirmed() -> Confirmed {
        Confirmed {
            transaction_id: "txn-1".into(),
            order_id: "INV-2026-000001~a".into(),
            amount: 150_000,
            currency: "IDR".into(),
            status: PaymentStatus::Paid,
            status_code: "200".into(),
            raw_status: "settlement".into(),
        }
    }

    #[test]
    fn agreement_acts_on_what_the_gateway_confirmed() {
        let Verdict::Act(n) = reconcile(&claim(), confirmed()).unwrap() else {
            panic!("expected Act");
        };
        assert_eq!(n.external_id, "txn-1");
        assert_eq!(n.status, PaymentStatus::Paid);
        assert_eq!(n.amount, 150_000);
    }

    #[test]
    fn a_signed_pending_edited_to_paid_is_stale() {
        // The attack: a genuinely signed 201 (pending) notification whose unsigned status
        // word was edited. The API says the transaction is still pending, or settled later;
        // either way the claim's signed code decides nothing is done on it.
        let c = Claim {
            signed_status: Some("201".into()),
            ..claim()
        };
        assert_eq!(
            reconcile(&c, confirmed()).unwrap(),
            Verdict::Stale {
                claimed: "201".into(),
                confirmed: "200".into()
            }
        );
    }

    #[test]
    fn another_order_or_amount_is_unconfirmed() {
        let other = Confirmed {
            order_id: "INV-2026-000002".into(),
            ..confirmed()
        };
        assert!(matches!(
            reconcile(&claim(), other),
            Err(GatewayError::Unconfirmed(_))
        ));
        let more = Confirmed {
            amount: 1,
            ..confirmed()
        };
        assert!(matches!(
            reconcile(&claim(), more),
            Err(GatewayError::Unconfirmed(_))
        ));
    }

    proptest! {
        /// Whatever the notification claims, an acted-on payment carries exactly the
        /// confirmed transaction id, amount and status: nothing unconfirmed leaks through.
        #[test]
        fn only_confirmed_facts_are_acted_on(
            signed_status in proptest::option::of("20[0-2]"),
            signed_amount in proptest::option::of(0i64..1_000_000),
            order in "[A-C]",
            confirmed_code in "20[0-2]",
            confirmed_amount in 0i64..1_000_000,
            confirmed_order in "[A-C]",
        ) {
            let c = Claim { lookup: order.clone(), order_id: order, signed_status, signed_amount };
            let k = Confirmed {
                transaction_id: "t".into(),
                order_id: confirmed_order,
                amount: confirmed_amount,
                currency: "IDR".into(),
                status: if confirmed_code == "200" { PaymentStatus::Paid } else { PaymentStatus::Pending },
                status_code: confirmed_code,
                raw_status: "x".into(),
            };
            if let Ok(Verdict::Act(n)) = reconcile(&c, k.clone()) {
                prop_assert_eq!(&n.external_id, &k.transaction_id);
                prop_assert_eq!(n.amount, k.amount);
                prop_assert_eq!(n.status, k.status);
                prop_assert_eq!(&n.order_id, &c.order_id);
                if let Some(s) = &c.signed_status { prop_assert_eq!(s, &k.status_code); }
                if let Some(a) = c.signed_amount { prop_assert_eq!(a, k.amount); }
            }
        }
    }

    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
