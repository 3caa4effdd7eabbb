//! Logs and traces for both binaries. Logs go to stderr as text or JSON, as before; when an
//! OTLP endpoint is configured (a flag, or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) the same `tracing` spans are also exported as
//! OpenTelemetry traces over OTLP/HTTP (protobuf). Without one nothing is exported and no
//! exporter thread runs.
//!
//! A trace crosses process boundaries as a W3C `traceparent` string: from an HTTP request's
//! header, through the command queue's row, over the QUIC link in the command's envelope, to
//! the agent's span that applies it ([`current_traceparent`], [`set_parent`]).

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The environment variable naming the collector's base URL (`/v1/traces` is appended).
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The environment variable naming the full traces URL; it wins over [`ENDPOINT_ENV`].
pub const TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The endpoint is not an http(s) URL.
    #[error("the OTLP endpoint {0:?} is not an http:// or https:// URL")]
    Endpoint(String),
    /// The exporter could not be built.
    #[error("the OTLP exporter could not start: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// How to log and where to send traces.
#[derive(Debug, Clone)]
pub struct Options {
    /// `service.name` of the traces (`OTEL_SERVICE_NAME` wins when set).
    pub service: &'static str,
    /// `json` for JSON lines, anything else for text.
    pub log_format: String,
    /// The collector's base URL (or full `/v1/traces` URL); `None` reads the environment.
    pub otlp_endpoint: Option<String>,
}

/// Keeps the trace exporter running; dropping it exports the spans still queued.
#[must_use = "dropping the guard stops the trace exporter"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Guard {
    /// Whether traces are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// The URL spans are posted to, from a flag or the environment; `None` when tracing is off.
pub fn traces_url(flag: Option<&str>) -> Option<String> {
    let given = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(base) = given(flag.map(str::to_string)) {
        return Some(with_traces_path(&base));
    }
    if let Some(full) = given(std::env::var(TRACES_ENDPOINT_ENV).ok()) {
        return Some(full);
    }
    given(std::env::var(ENDPOINT_ENV).ok()).map(|base| with_traces_path(&base))
}

/// A collector's base URL with the OTLP/HTTP traces path (kept when already there).
fn with_traces_path(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Installs the global subscriber: stderr logs filtered by `RUST_LOG` (default `info`) and,
/// when an endpoint is configured, the OTLP trace exporter. Call it before starting an async
/// runtime: the exporter's HTTP client runs on its own thread.
pub fn init(options: Options) -> Result<Guard, TelemetryError> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if options.log_format == "json" {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let provider = match traces_url(options.otlp_endpoint.as_deref()) {
        None => None,
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(TelemetryError::Endpoint(url));
            }
            // The exporter's client (reqwest with rustls, no provider compiled in) needs the
            // process's provider before it is built: ring, the one the QUIC link uses.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(url)
                .build()?;
            let name = std::env::var("OTEL_SERVICE_NAME")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| options.service.to_string());
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(Resource::builder().with_service_name(name).build())
                    .build(),
            )
        }
    };
    let otel = provider.as_ref().map(|p| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing_opentelemetry::layer().with_tracer(p.tracer(options.service))
    });
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .with(filter)
        .init();
    Ok(Guard { provider })
}

/// The W3C `traceparent` of the current span, when traces are exported and a span is open:
/// what a queue row or a message carries so that later work joins the same trace.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// Makes `span` a child of the span a `traceparent` names; a malformed one is ignored (the
/// span then starts its own trace).
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_url_comes_from_the_flag_or_the_environment() {
        // One test: the environment is the process's.
        unsafe {
            std::env::remove_var(ENDPOINT_ENV);
            std::env::remove_var(TRACES_ENDPOINT_ENV);
        }
        assert_eq!(traces_url(None), None);
        assert_eq!(
            traces_url(Some("http://collector:4318/")).as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(
            traces_url(Some("http://collector:4318/v1/traces")).as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        unsafe { std::env::set_var(ENDPOINT_ENV, "http://otel:4318") };
        assert_eq!(
            traces_url(None).as_deref(),
            Some("http://otel:4318/v1/traces")
        );
        unsafe { std::env::set_var(TRACES_ENDPOINT_ENV, "http://otel:4318/custom") };
        assert_eq!(traces_url(None).as_deref(), Some("http://otel:4318/custom"));
        assert_eq!(
            traces_url(Some("https://flag:1")).as_deref(),
            Some("https://flag:1/v1/traces"),
            "the flag wins"
        );
        unsafe {
            std::env::remove_var(ENDPOINT_ENV);
            std::env::remove_var(TRACES_ENDPOINT_ENV);
        }
    }

    #[test]
    fn without_an_exporter_there_is_no_traceparent() {
        let span = tracing::info_span!("x");
        let _in = span.enter();
        assert_eq!(current_traceparent(), None);
        // A malformed parent is ignored rather than failing.
        set_parent(&span, "not-a-traceparent");
    }
}
