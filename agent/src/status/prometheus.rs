//! `/metrics` of the agent in the Prometheus text format, rendered from a status report and
//! the RADIUS counters. Pure: each agent renders its own values (tests run several agents in
//! one process, so nothing here is process-global).

use super::report::StatusReport;
use crate::radius::RadiusStats;
use crate::radius::stats::{LATENCY_BUCKETS, Latency, REJECT_CODES};
use std::fmt::Write;

/// Every metric name `/metrics` may carry (dashboards and alert rules are checked against it).
pub const METRIC_NAMES: &[&str] = &[
    "mikrobill_agent_info",
    "mikrobill_agent_start_time_seconds",
    "mikrobill_agent_radius_requests_total",
    "mikrobill_agent_radius_rejects_total",
    "mikrobill_agent_radius_dropped_total",
    "mikrobill_agent_radius_retransmits_total",
    "mikrobill_agent_radius_disconnects_total",
    "mikrobill_agent_radius_fup_throttles_total",
    "mikrobill_agent_radius_request_duration_seconds",
    "mikrobill_agent_radius_up",
    "mikrobill_agent_accounting_stored_total",
    "mikrobill_agent_accounting_delivered_total",
    "mikrobill_agent_outbox_records",
    "mikrobill_agent_outbox_oldest_age_seconds",
    "mikrobill_agent_outbox_set_aside_records",
    "mikrobill_agent_link_up",
    "mikrobill_agent_link_connects_total",
    "mikrobill_agent_link_last_contact_timestamp_seconds",
    "mikrobill_agent_sync_seq",
    "mikrobill_agent_sync_last_timestamp_seconds",
    "mikrobill_agent_cache_items",
    "mikrobill_agent_router_up",
    "mikrobill_agent_router_breaker_open",
    "mikrobill_agent_certificate_expiry_timestamp_seconds",
];

/// Escapes a label value (backslash, quote and newline, as the format requires).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        debug_assert!(
            METRIC_NAMES.contains(&name),
            "{name} is not in METRIC_NAMES"
        );
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.head(name, kind, help);
        self.sample(name, "", value);
    }

    fn histogram(&mut self, name: &str, kind_label: &str, latency: &Latency) {
        let (buckets, sum) = latency.snapshot();
        let mut cumulative = 0;
        for (i, n) in buckets.iter().enumerate() {
            cumulative += n;
            let le = LATENCY_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            self.sample(
                &format!("{name}_bucket"),
                &format!("kind=\"{kind_label}\",le=\"{le}\""),
                cumulative,
            );
        }
        self.sample(
            &format!("{name}_sum"),
            &format!("kind=\"{kind_label}\""),
            sum,
        );
        self.sample(
            &format!("{name}_count"),
            &format!("kind=\"{kind_label}\""),
            cumulative,
        );
    }
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// The Prometheus text of `report` and, when RADIUS runs, its counters.
pub fn render(report: &StatusReport, radius: Option<&RadiusStats>) -> String {
    let mut o = Out(String::with_capacity(4096));
    o.head(
        "mikrobill_agent_info",
        "gauge",
        "The agent's version and enrolled site.",
    );
    o.sample(
        "mikrobill_agent_info",
        &format!(
            "version=\"{}\",site_id=\"{}\",site=\"{}\"",
            label(&report.version),
            label(&report.site_id),
            label(&report.site_name)
        ),
        1,
    );
    o.one(
        "mikrobill_agent_start_time_seconds",
        "gauge",
        "When the agent started (unix seconds).",
        secs(report.started_at_ms),
    );
    if let Some(stats) = radius {
        let get = RadiusStats::get;
        o.head(
            "mikrobill_agent_radius_requests_total",
            "counter",
            "RADIUS requests answered, by kind and outcome.",
        );
        for (kind, outcome, n) in [
            ("auth", "accept", get(&stats.accepted)),
            ("auth", "reject", get(&stats.rejected)),
            ("acct", "stored", get(&stats.accounted)),
        ] {
            o.sample(
                "mikrobill_agent_radius_requests_total",
                &format!("kind=\"{kind}\",outcome=\"{outcome}\""),
                n,
            );
        }
        o.head(
            "mikrobill_agent_radius_rejects_total",
            "counter",
            "Access-Rejects by reason.",
        );
        for (code, n) in REJECT_CODES.iter().zip(&stats.rejected_by) {
            o.sample(
                "mikrobill_agent_radius_rejects_total",
                &format!("reason=\"{code}\""),
                get(n),
            );
        }
        o.head(
            "mikrobill_agent_radius_dropped_total",
            "counter",
            "RADIUS packets dropped without an answer, by reason.",
        );
        for (reason, n) in stats.dropped() {
            o.sample(
                "mikrobill_agent_radius_dropped_total",
                &format!("reason=\"{reason}\""),
                n,
            );
        }
        o.one(
            "mikrobill_agent_radius_retransmits_total",
            "counter",
            "Retransmitted requests answered from the reply cache.",
            get(&stats.retransmits),
        );
        o.one(
            "mikrobill_agent_radius_disconnects_total",
            "counter",
            "Disconnect-Requests sent for exhausted quotas.",
            get(&stats.disconnects),
        );
        o.one(
            "mikrobill_agent_radius_fup_throttles_total",
            "counter",
            "Sessions slowed to their plan's fair-usage rate (CoA acknowledged).",
            get(&stats.fup_throttles),
        );
        o.head(
            "mikrobill_agent_radius_request_duration_seconds",
            "histogram",
            "Time from receiving a RADIUS request to its answer (accounting includes the disk flush).",
        );
        o.histogram(
            "mikrobill_agent_radius_request_duration_seconds",
            "auth",
            &stats.auth_latency,
        );
        o.histogram(
            "mikrobill_agent_radius_request_duration_seconds",
            "acct",
            &stats.acct_latency,
        );
        o.one(
            "mikrobill_agent_accounting_stored_total",
            "counter",
            "Accounting records stored durably (and answered).",
            get(&stats.accounted),
        );
    }
    if let Some(r) = &report.radius {
        o.one(
            "mikrobill_agent_radius_up",
            "gauge",
            "1 while every RADIUS listener task runs.",
            u8::from(r.running),
        );
    }
    o.one(
        "mikrobill_agent_accounting_delivered_total",
        "counter",
        "Accounting records the controller acknowledged as committed.",
        report.outbox.delivered,
    );
    o.one(
        "mikrobill_agent_outbox_records",
        "gauge",
        "Accounting records waiting for the controller.",
        report.outbox.pending,
    );
    o.one(
        "mikrobill_agent_outbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest waiting record's event (0 when none waits).",
        report
            .outbox
            .oldest_event_ms
            .map_or(0.0, |t| secs((report.now_ms - t).max(0))),
    );
    o.one(
        "mikrobill_agent_outbox_set_aside_records",
        "gauge",
        "Records the controller refused as malformed, kept aside.",
        report.outbox.set_aside,
    );
    o.one(
        "mikrobill_agent_link_up",
        "gauge",
        "1 while the session with the controller is up.",
        u8::from(report.link.state == "up"),
    );
    o.one(
        "mikrobill_agent_link_connects_total",
        "counter",
        "Sessions with the controller established since start.",
        report.link.connects,
    );
    o.one(
        "mikrobill_agent_link_last_contact_timestamp_seconds",
        "gauge",
        "Last frame or acknowledgement from the controller (unix seconds, 0 for never).",
        secs(report.link.last_contact_ms.unwrap_or(0)),
    );
    o.one(
        "mikrobill_agent_sync_seq",
        "gauge",
        "The last change of the controller's log applied to the cache.",
        report.cache.sync_seq,
    );
    o.one(
        "mikrobill_agent_sync_last_timestamp_seconds",
        "gauge",
        "When a sync message last moved the cursor (unix seconds, 0 for not in this run).",
        secs(report.cache.last_sync_ms.unwrap_or(0)),
    );
    o.head(
        "mikrobill_agent_cache_items",
        "gauge",
        "Items in the local cache, by kind.",
    );
    for (kind, n) in [
        ("plan", report.cache.plans),
        ("voucher", report.cache.vouchers),
        ("user", report.cache.users),
    ] {
        o.sample(
            "mikrobill_agent_cache_items",
            &format!("kind=\"{kind}\""),
            n,
        );
    }
    if let Some(r) = &report.router {
        o.one(
            "mikrobill_agent_router_up",
            "gauge",
            "1 while the RouterOS API connection is up.",
            u8::from(r.reachable),
        );
        o.one(
            "mikrobill_agent_router_breaker_open",
            "gauge",
            "1 while the router circuit breaker fails calls fast.",
            u8::from(r.breaker_open),
        );
    }
    if let Some(t) = report.certificate_expires_ms {
        o.one(
            "mikrobill_agent_certificate_expiry_timestamp_seconds",
            "gauge",
            "End of the agent certificate's validity (unix seconds).",
            secs(t),
        );
    }
    o.0
}
