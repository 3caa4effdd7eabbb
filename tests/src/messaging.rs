//! A fake messaging gateway on loopback for notification and portal tests: it records every
//! request and answers 200, 503, 500 or not at all, as the test sets per path prefix.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One request a fake gateway got.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The request path.
    pub path: String,
    /// Its `Idempotency-Key` header.
    pub idempotency_key: String,
    /// Its `Authorization` header.
    pub authorization: String,
    /// The body, as text.
    pub body: String,
    /// The status answered; 0 while the request hangs.
    pub answered: u16,
}

/// How a fake gateway answers requests under one path prefix.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Answer this many requests with 503 first.
    pub fail_next: u32,
    /// Hold this many requests whose body contains `hang_match` open without answering.
    pub hang_next: u32,
    /// What a request to hold contains.
    pub hang_match: &'static str,
    /// Answer every request with 500.
    pub dead: bool,
}

/// A fake messaging gateway: WhatsApp Cloud API, Telegram Bot API (under `/tg/`) and a
/// generic SMS gateway in one server, answering as told per path prefix; clones share state.
#[derive(Clone, Default)]
pub struct Gateway {
    hits: Arc<Mutex<Vec<Hit>>>,
    behaviour: Arc<Mutex<HashMap<&'static str, Behaviour>>>,
}

impl Gateway {
    /// How requests under `prefix` are answered from now on.
    pub fn set(&self, prefix: &'static str, b: Behaviour) {
        self.behaviour.lock().unwrap().insert(prefix, b);
    }

    /// Every request under `prefix`.
    pub fn hits(&self, prefix: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Requests under `prefix` whose body contains `needle` and that were answered 200.
    pub fn delivered(&self, prefix: &str, needle: &str) -> Vec<Hit> {
        self.hits(prefix)
            .into_iter()
            .filter(|h| h.answered == 200 && h.body.contains(needle))
            .collect()
    }
}

async fn gateway_handler(
    State(g): State<Gateway>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path = uri.path().to_string();
    let text = String::from_utf8_lossy(&body).into_owned();
    let (hang, status) = {
        let mut all = g.behaviour.lock().unwrap();
        let b = all
            .iter_mut()
            .find(|(p, _)| path.starts_with(**p))
            .map(|(_, b)| b);
        match b {
            Some(b) if b.hang_next > 0 && text.contains(b.hang_match) => {
                b.hang_next -= 1;
                (true, 0)
            }
            Some(b) if b.dead => (false, 500),
            Some(b) if b.fail_next > 0 => {
                b.fail_next -= 1;
                (false, 503)
            }
            _ => (false, 200),
        }
    };
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    {
        let mut hits = g.hits.lock().unwrap();
        hits.push(Hit {
            path: path.clone(),
            idempotency_key: h("idempotency-key"),
            authorization: h("authorization"),
            body: text,
            answered: status,
        });
    }
    if hang {
        // Held until the client goes away (the controller is killed).
        std::future::pending::<()>().await;
    }
    let answer = if path.starts_with("/tg/") {
        json!({"ok": status == 200, "result": {"message_id": 1}}).to_string()
    } else {
        json!({"messages": [{"id": "wamid.1"}]}).to_string()
    };
    (StatusCode::from_u16(status).unwrap(), answer)
}

/// Serves `g` on a loopback port; returns its base URL.
pub async fn serve_gateway(g: Gateway) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(gateway_handler).with_state(g);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
