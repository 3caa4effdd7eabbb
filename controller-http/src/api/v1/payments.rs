//! Payments: the cash desk, the list, and payment-gateway webhooks.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use mikrobill_core::auth::Perm;
use mikrobill_core::payments::gateway::{self, GatewayError, Verdict};
use mikrobill_core::payments::{
    self, GatewayOutcome, Payment, PaymentFilter, PaymentInput, Receipt,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_payments, record_payment))
        .routes(routes!(get_payment))
        .routes(routes!(gateway_webhook))
}

/// Filters of the payment list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentQuery {
    /// One customer's.
    pub customer_id: Option<String>,
    /// One invoice's.
    pub invoice_id: Option<String>,
    /// Received at or after (unix ms).
    pub from: Option<i64>,
    /// Received before (unix ms).
    pub to: Option<i64>,
}

/// Lists payments, newest first.
#[utoipa::path(get, path = "/payments", tag = "payments", security(("bearer" = [])), params(PaymentQuery, PageQuery),
    responses((status = 200, body = Page<Payment>), (status = 403, body = Problem)))]
async fn list_payments(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PaymentQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Payment>>> {
    caller.require(Perm::ReadPayments)?;
    let limit = page.limit()?;
    let after = page.after()?;
    let cursor = if after.is_empty() {
        None
    } else {
        let (at, id) = after
            .split_once(':')
            .ok_or_else(|| Problem::invalid("cursor", "is not a cursor this API handed out"))?;
        Some((
            at.parse()
                .map_err(|_| Problem::invalid("cursor", "is not a cursor this API handed out"))?,
            id.to_string(),
        ))
    };
    let f = PaymentFilter {
        customer_id: q.customer_id,
        invoice_id: q.invoice_id,
        from: q.from,
        to: q.to,
    };
    let items = payments::list(&state.db, &f, cursor, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |p| {
        format!("{}:{}", p.received_at, p.id)
    })))
}

/// Records a cash or transfer payment: pays the named invoice (or the customer's oldest
/// unpaid ones), keeps any rest as credit, and re-activates a subscription isolated for
/// being overdue once nothing overdue is left.
#[utoipa::path(post, path = "/payments", tag = "payments", security(("bearer" = [])), request_body = PaymentInput,
    responses((status = 201, body = Receipt), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn record_payment(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<PaymentInput>,
) -> ApiResult<(StatusCode, Json<Receipt>)> {
    caller.require(Perm::WritePayments)?;
    let input = body.into_inner()?;
    Ok((
        StatusCode::CREATED,
        Json(payments::record_manual(&state.db, &caller.actor(), input).await?),
    ))
}

/// One payment.
#[utoipa::path(get, path = "/payments/{id}", tag = "payments", security(("bearer" = [])), params(("id" = String, Path, description = "payment id")),
    responses((status = 200, body = Payment), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Payment>> {
    caller.require(Perm::ReadPayments)?;
    Ok(Json(payments::get(&state.db, &id).await?))
}

/// A payment gateway's notification (no bearer token: the gateway's signature or callback
/// token authenticates it). The notification is only a hint: the transaction is confirmed
/// with the gateway's own API and only what it returns is recorded, idempotent on the
/// confirmed transaction id. Answers 200 for anything handled, so the gateway stops retrying;
/// 4xx for what must not be retried unchanged; 503 when the gateway's API could not be asked.
#[utoipa::path(post, path = "/payments/webhooks/{gateway}", tag = "payments", params(("gateway" = String, Path, description = "gateway name: midtrans, xendit or tripay")),
    request_body(content = String, description = "the gateway's own notification format", content_type = "application/json"),
    responses((status = 200, body = GatewayOutcome), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn gateway_webhook(
    State(state): State<AppState>,
    Path(gateway): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<GatewayOutcome>> {
    let gw = state.gateways.get(&gateway).ok_or_else(|| {
        Problem::not_found(format!("no payment gateway {gateway:?} is configured"))
    })?;
    let st = mikrobill_core::settings::billing(&state.db).await?;
    let verdict = gateway::verify(gw.as_ref(), &headers, &body, st.currency_exponent)
        .await
        .map_err(|e| match e {
            GatewayError::BadSignature => {
                tracing::warn!(gateway, "gateway notification with a bad signature refused");
                Problem::unauthenticated(e.to_string())
            }
            GatewayError::Malformed(m) => Problem::bad_request("malformed_notification", m),
            GatewayError::Unconfirmed(m) => {
                tracing::warn!(gateway, "gateway notification not confirmed: {m}");
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "unconfirmed", m)
            }
            GatewayError::Unavailable(m) => {
                tracing::warn!(gateway, "cannot confirm a gateway notification: {m}");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "gateway_unavailable",
                    "the payment gateway could not confirm the transaction now; retry later",
                )
            }
        })?;
    let notification = match verdict {
        Verdict::Act(n) => n,
        Verdict::Stale { claimed, confirmed } => {
            tracing::info!(gateway, %claimed, %confirmed, "stale gateway notification: nothing to do");
            return Ok(Json(GatewayOutcome {
                success: true,
                result: "stale",
                payment_id: None,
            }));
        }
    };
    // Portal orders (top-ups, vouchers bought online) have their own order ids; the rest
    // are invoices.
    let outcome = if mikrobill_core::portal::orders::is_portal_order(&notification.order_id) {
        mikrobill_core::portal::orders::settle(&state.db, gw.name(), &notification, &st.currency)
            .await?
    } else {
        payments::record_gateway(&state.db, gw.name(), &notification, &st.currency).await?
    };
    tracing::info!(gateway, order_id = %notification.order_id, result = outcome.result, "gateway notification");
    Ok(Json(outcome))
}
