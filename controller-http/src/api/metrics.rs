//! Prometheus metrics: HTTP latency histograms recorded by a middleware, and business gauges
//! (subscriptions, vouchers, revenue) read from the database when `/metrics` is scraped, so
//! every replica reports the same business figures.

use crate::server::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use mikrobill_core::db::now_ms;
use mikrobill_protocol::radius_counters::RadiusCounters;
use sqlx::Row;
use std::sync::OnceLock;
use std::time::Instant;

const HTTP_DURATION: &str = "mikrobill_http_request_duration_seconds";

/// The process-wide recorder; installed once even when tests start several controllers.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(HTTP_DURATION.to_string()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be incomplete");
        }
        handle
    })
}

/// Middleware (installed by the router in `routes`, which installs the recorder first): one
/// histogram sample per request, labelled by route pattern (never the raw
/// path, which would explode the label set), method and status.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let res = next.run(req).await;
    metrics::histogram!(
        HTTP_DURATION,
        "method" => method,
        "route" => route,
        "status" => res.status().as_u16().to_string()
    )
    .record(start.elapsed().as_secs_f64());
    res
}

/// `/metrics` on the public listener: served only to the bearer of the metrics token, and
/// not at all (404, as if absent) when no token is configured.
pub async fn render_with_token(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    use crate::server::problem::Problem;
    let Some(expected) = state.metrics_token.clone() else {
        return Problem::not_found("no such endpoint").into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let ok = presented.is_some_and(|p| {
        use sha2::Digest;
        // Digests are compared, so the time a comparison takes says nothing about the token.
        let a = sha2::Sha256::digest(p.as_bytes());
        let b = sha2::Sha256::digest(expected.as_bytes());
        a == b
    });
    if !ok {
        return Problem::unauthenticated(
            "send the metrics token as `Authorization: Bearer <token>`",
        )
        .into_response();
    }
    render(State(state)).await
}

/// `/metrics` in the Prometheus text format.
pub async fn render(State(state): State<AppState>) -> Response {
    if let Err(e) = business_gauges(&state).await {
        tracing::warn!("business metrics unavailable: {e}");
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
        .into_response()
}

/// Per site: online, last heard from, accounting waiting in its outbox (from heartbeats),
/// so one scrape of the controller shows the whole fleet, agents behind NAT included.
async fn site_gauges(state: &AppState) {
    let sites = match mikrobill_core::sites::list(&state.db).await {
        Ok(sites) => sites,
        Err(e) => {
            tracing::warn!("site metrics unavailable: {e}");
            return;
        }
    };
    for site in sites {
        let labels = [("site_id", site.id.clone()), ("site", site.name.clone())];
        let revoked = site.revoked_at.is_some();
        metrics::gauge!("mikrobill_site_up", &labels)
            .set(f64::from(u8::from(site.online && !revoked)));
        metrics::gauge!("mikrobill_site_last_seen_timestamp_seconds", &labels)
            .set(site.last_seen_at.unwrap_or(0) as f64 / 1000.0);
        metrics::gauge!("mikrobill_site_outbox_records", &labels).set(site.outbox_pending as f64);
        if let Some(counters) = site
            .radius
            .and_then(|v| serde_json::from_value::<RadiusCounters>(v).ok())
        {
            radius_counters(&labels, &counters);
        }
    }
}

/// A site's RADIUS counters as its agent reported them. They are the agent's own counters,
/// so they fall back to zero when it restarts, which Prometheus's `rate()` reads as a reset.
fn radius_counters(site: &[(&'static str, String); 2], c: &RadiusCounters) {
    let requests = |kind: &'static str, outcome: &'static str| {
        let mut labels = site.to_vec();
        labels.extend([("kind", kind.to_string()), ("outcome", outcome.to_string())]);
        metrics::counter!("mikrobill_site_radius_requests_total", &labels)
    };
    let rejected: u64 = c.rejected.iter().map(|(_, n)| n).sum();
    requests("auth", "accept").absolute(c.accepted);
    requests("auth", "reject").absolute(rejected);
    requests("acct", "stored").absolute(c.accounted);
    for (reason, n) in &c.rejected {
        let mut labels = site.to_vec();
        labels.push(("reason", reason.clone()));
        metrics::counter!("mikrobill_site_radius_rejects_total", &labels).absolute(*n);
    }
    for (reason, n) in &c.dropped {
        let mut labels = site.to_vec();
        labels.push(("reason", reason.clone()));
        metrics::counter!("mikrobill_site_radius_dropped_total", &labels).absolute(*n);
    }
}

async fn business_gauges(state: &AppState) -> Result<(), mikrobill_core::db::DbError> {
    let pool = &state.db.pool;
    for row in sqlx::query("SELECT status, COUNT(*) AS n FROM subscriptions GROUP BY status")
        .fetch_all(pool)
        .await?
    {
        let status: String = row.try_get("status")?;
        metrics::gauge!("mikrobill_subscriptions", "status" => status)
            .set(row.try_get::<i64, _>("n")? as f64);
    }
    for row in sqlx::query("SELECT status, COUNT(*) AS n FROM vouchers GROUP BY status")
        .fetch_all(pool)
        .await?
    {
        let status: String = row.try_get("status")?;
        metrics::gauge!("mikrobill_vouchers", "status" => status)
            .set(row.try_get::<i64, _>("n")? as f64);
    }
    let day_start = now_ms() - now_ms().rem_euclid(86_400_000);
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total, CAST(COALESCE(SUM(CASE WHEN received_at >= $1 THEN amount ELSE 0 END), 0) AS BIGINT) AS today FROM payments WHERE method <> 'credit'",
    )
    .bind(day_start)
    .fetch_one(pool)
    .await?;
    metrics::gauge!("mikrobill_revenue_minor_units", "period" => "all")
        .set(row.try_get::<i64, _>("total")? as f64);
    metrics::gauge!("mikrobill_revenue_minor_units", "period" => "today_utc")
        .set(row.try_get::<i64, _>("today")? as f64);
    let row = sqlx::query("SELECT COUNT(*) AS n, CAST(COALESCE(SUM(total - amount_paid), 0) AS BIGINT) AS due FROM invoices WHERE status = 'unpaid'")
        .fetch_one(pool)
        .await?;
    metrics::gauge!("mikrobill_invoices_unpaid").set(row.try_get::<i64, _>("n")? as f64);
    metrics::gauge!("mikrobill_receivables_minor_units").set(row.try_get::<i64, _>("due")? as f64);
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM sites WHERE revoked_at IS NULL AND session_id IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    metrics::gauge!("mikrobill_sites_online").set(row.try_get::<i64, _>("n")? as f64);
    site_gauges(state).await;
    let parked = mikrobill_core::events::parking::counts(&state.db).await?;
    for consumer in [
        mikrobill_core::events::webhooks::CONSUMER,
        mikrobill_core::notify::produce::CONSUMER,
    ] {
        let n = parked
            .iter()
            .find(|(c, _)| c == consumer)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("mikrobill_events_parked", "consumer" => consumer).set(n as f64);
    }
    Ok(())
}
