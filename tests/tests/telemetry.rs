//! OpenTelemetry traces end to end: a controller and a real agent binary export to a small
//! OTLP/HTTP receiver here that decodes the protobuf. An API call carrying a `traceparent`
//! queues a command; the controller's request span, its delivery span and the agent's
//! apply span all land in the caller's trace, parent to child, from both services.

use axum::body::Bytes;
use axum::extract::State;
use mikrobill_tests::{Backend, Controller, TestDb, agents, bin, eventually};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One received span.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

type Received = Arc<Mutex<Vec<Span>>>;

async fn receive(State(received): State<Received>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
    let mut out = received.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(Span {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex::encode(span.trace_id),
                    span_id: hex::encode(span.span_id),
                    parent_span_id: hex::encode(span.parent_span_id),
                });
            }
        }
    }
    ""
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_api_call_through_the_agent() {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(receive))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let otel_env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
        // Export within a moment rather than the default five seconds.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let db = TestDb::new(Backend::Sqlite).await;
    let ctl_dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start_env(ctl_dir.path(), &db, &otel_env).await;
    let admin = mikrobill_tests::http::Api::login(
        ctl.api_addr,
        "admin",
        mikrobill_tests::http::ADMIN_PASSWORD,
    )
    .await;
    let token = ctl.add_site("Menara");
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(&token, agent_dir.path()).await;
    let site_id = agents::site_id(agent_dir.path());
    let radius = mikrobill_tests::free_udp_addr();
    let _agent = Killed(
        Command::new(bin("mikrobill-agent"))
            .arg("--data-dir")
            .arg(agent_dir.path())
            .args([
                "run",
                "--radius-auth-listen",
                &radius.to_string(),
                "--radius-acct-listen",
                "127.0.0.1:0",
                "--status-listen",
                "off",
            ])
            .envs(otel_env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the agent"),
    );
    eventually(Duration::from_secs(30), "the agent online", || async {
        let site = admin.get(&format!("/api/v1/sites/{site_id}")).await.json();
        (site["online"] == true).then_some(())
    })
    .await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let res = admin
        .request_with_headers(
            "POST",
            &format!("/api/v1/sites/{site_id}/commands"),
            Some(serde_json::to_vec(&json!({"command": {"kind": "resync_router"}})).unwrap()),
            "application/json",
            &[("traceparent", &format!("00-{trace_id}-{caller_span}-01"))],
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);

    let spans = eventually(Duration::from_secs(30), "the trace's spans", || async {
        let spans: Vec<Span> = received
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        // The delivery span ends (and is exported) only after the agent's answer.
        let applied = spans.iter().any(|s| s.service == "mikrobill-agent");
        let delivered = spans.iter().any(|s| s.name == "command.deliver");
        (applied && delivered).then_some(spans)
    })
    .await;
    let find = |service: &str, name: &str| {
        spans
            .iter()
            .find(|s| s.service == service && s.name == name)
            .unwrap_or_else(|| panic!("no {service} span {name:?} in {spans:#?}"))
            .clone()
    };
    let request = find("mikrobill-controller", "POST /api/v1/sites/{id}/commands");
    assert_eq!(
        request.parent_span_id, caller_span,
        "the caller's span is the parent"
    );
    let deliver = find("mikrobill-controller", "command.deliver");
    assert_eq!(
        deliver.parent_span_id, request.span_id,
        "the delivery continues the request that queued the command"
    );
    let apply = find("mikrobill-agent", "command");
    assert_eq!(
        apply.parent_span_id, deliver.span_id,
        "the agent's apply is a child of the delivery, across the QUIC link"
    );
    drop(ctl);
}
