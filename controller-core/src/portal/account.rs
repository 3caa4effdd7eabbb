//! What a logged-in subscriber may read: only their own records. Anything of another
//! customer is reported as not existing, exactly like an id that was never issued.

use crate::billing::invoices::{self, Invoice, InvoiceFilter};
use crate::customers::{self, Customer};
use crate::db::Db;
use crate::error::{DomainError, DomainResult};
use crate::payments::{self, Payment, PaymentFilter};
use crate::plans;
use crate::subscriptions::{self, Subscription, SubscriptionFilter};

/// How many invoices and payments the overview lists.
pub const RECENT: u32 = 24;

/// A subscription with its plan's name.
#[derive(Debug, Clone)]
pub struct OwnSubscription {
    /// The subscription.
    pub subscription: Subscription,
    /// Its plan's name.
    pub plan_name: String,
}

/// Everything the portal's home page shows.
#[derive(Debug, Clone)]
pub struct Overview {
    /// The customer.
    pub customer: Customer,
    /// Their subscriptions, terminated ones included.
    pub subscriptions: Vec<OwnSubscription>,
    /// Their newest invoices.
    pub invoices: Vec<Invoice>,
    /// Their newest payments.
    pub payments: Vec<Payment>,
}

/// The customer's subscriptions with plan names.
pub async fn subscriptions_of(db: &Db, customer_id: &str) -> DomainResult<Vec<OwnSubscription>> {
    let filter = SubscriptionFilter {
        customer_id: Some(customer_id.to_string()),
        ..Default::default()
    };
    let mut out = Vec::new();
    for subscription in subscriptions::list(db, &filter, "", 100).await? {
        let plan_name = plans::get(db, &subscription.plan_id).await?.name;
        out.push(OwnSubscription {
            subscription,
            plan_name,
        });
    }
    Ok(out)
}

/// The customer's overview.
pub async fn overview(db: &Db, customer_id: &str) -> DomainResult<Overview> {
    let customer = customers::get(db, customer_id).await?;
    let invoices = invoices::list(
        db,
        &InvoiceFilter {
            customer_id: Some(customer_id.to_string()),
            ..Default::default()
        },
        "",
        RECENT,
    )
    .await?;
    let payments = payments::list(
        db,
        &PaymentFilter {
            customer_id: Some(customer_id.to_string()),
            ..Default::default()
        },
        None,
        RECENT,
    )
    .await?;
    Ok(Overview {
        subscriptions: subscriptions_of(db, customer_id).await?,
        customer,
        invoices,
        payments,
    })
}

/// One of the customer's invoices, with its lines; another customer's is not found.
pub async fn own_invoice(db: &Db, customer_id: &str, invoice_id: &str) -> DomainResult<Invoice> {
    match invoices::get(db, invoice_id).await {
        Ok(inv) if inv.customer_id == customer_id => Ok(inv),
        Ok(_) => Err(DomainError::not_found("invoice", invoice_id)),
        Err(e) => Err(e),
    }
}
