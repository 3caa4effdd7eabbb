//! A small HTTP/1.1 JSON client for the admin API tests: one connection per request, so
//! every test sees exactly what the server sends (status, headers, body).

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The password the test controller gives its first admin (`admin`).
pub const ADMIN_PASSWORD: &str = "first-admin-test-password";

/// The Midtrans server key test controllers are configured with.
pub const MIDTRANS_SERVER_KEY: &str = "SB-Mid-server-test-key";

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub text: String,
    /// The body as sent (downloads that are not text).
    pub body: Vec<u8>,
}

impl Response {
    /// The body parsed as JSON (Null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// Every value of a header (e.g. `set-cookie`).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Panics with the body unless the status is `want`; returns the JSON body.
    #[track_caller]
    pub fn expect(&self, want: u16) -> Value {
        assert_eq!(self.status, want, "unexpected status; body: {}", self.text);
        self.json()
    }
}

/// A client of one controller, optionally with a bearer token.
#[derive(Debug, Clone)]
pub struct Api {
    /// Where the HTTP API listens.
    pub addr: SocketAddr,
    /// Bearer token sent with every request.
    pub token: Option<String>,
}

impl Api {
    /// An anonymous client.
    pub fn new(addr: SocketAddr) -> Api {
        Api { addr, token: None }
    }

    /// The same client with a bearer token.
    pub fn with_token(&self, token: &str) -> Api {
        Api {
            addr: self.addr,
            token: Some(token.to_string()),
        }
    }

    /// Logs in and returns a client carrying the access token.
    pub async fn login(addr: SocketAddr, username: &str, password: &str) -> Api {
        let res = Api::new(addr)
            .post(
                "/api/v1/auth/login",
                &serde_json::json!({ "username": username, "password": password }),
            )
            .await;
        let body = res.expect(200);
        Api::new(addr).with_token(body["access_token"].as_str().unwrap())
    }

    /// Logs in as the first admin.
    pub async fn admin(addr: SocketAddr) -> Api {
        Api::login(addr, "admin", ADMIN_PASSWORD).await
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Response {
        self.request("GET", path, None, "application/json").await
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.request(
            "POST",
            path,
            Some(body.to_string().into_bytes()),
            "application/json",
        )
        .await
    }

    /// PATCH with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.request(
            "PATCH",
            path,
            Some(body.to_string().into_bytes()),
            "application/json",
        )
        .await
    }

    /// PUT with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.request(
            "PUT",
            path,
            Some(body.to_string().into_bytes()),
            "application/json",
        )
        .await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, None, "application/json").await
    }

    /// Any request with a raw body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Response {
        self.send(
            method,
            path,
            &[("Accept", "application/json")],
            body,
            content_type,
        )
        .await
    }

    /// An API request (JSON accepted) with extra headers (cookies, origin).
    pub async fn request_with_headers(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
        extra: &[(&str, &str)],
    ) -> Response {
        let mut headers = vec![("Accept", "application/json")];
        headers.extend_from_slice(extra);
        self.send(method, path, &headers, body, content_type).await
    }

    /// Any request with the given headers (cookies, languages) and a raw body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Response {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let body = body.unwrap_or_default();
        if !body.is_empty() || method == "POST" || method == "PATCH" || method == "PUT" {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect to the controller API");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw))
            .await
            .expect("API answered within 60 s")
            .expect("read API response");
        parse(&raw)
    }
}

fn parse(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        text: String::from_utf8_lossy(&body).to_string(),
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}
