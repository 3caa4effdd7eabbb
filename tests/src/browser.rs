//! Headless Chromium driven over the W3C WebDriver protocol: a `chromedriver` process on a
//! free loopback port per test and a small client over the harness's HTTP client, so the
//! browser tests need no WebDriver crate.

use crate::http::Response;
use base64::Engine;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian installs the browser and its driver (`scripts/ensure-test-tools`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A browser session; the browser and driver end when it drops.
pub struct Browser {
    driver: Child,
    api: Wd,
    session: String,
    /// The base URL pages are opened relative to.
    pub base: String,
}

/// A WebDriver HTTP client. chromedriver answers `Connection: close` but keeps the socket
/// open, so the body is read by its `Content-Length` rather than to the end of the stream.
#[derive(Debug, Clone)]
struct Wd {
    addr: SocketAddr,
}

impl Wd {
    async fn get(&self, path: &str) -> Response {
        self.call("GET", path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Response {
        self.call("POST", path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Response {
        self.call("DELETE", path, None).await
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect to chromedriver");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        let read = async {
            let mut raw = Vec::new();
            let mut buf = vec![0u8; 16384];
            loop {
                let n = stream.read(&mut buf).await.expect("read from chromedriver");
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    if let Some(len) = len
                        && raw.len() >= split + 4 + len
                    {
                        break;
                    }
                }
            }
            raw
        };
        let raw = tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .expect("chromedriver answered within 60 s");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head");
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        Response {
            status,
            headers: Vec::new(),
            text: String::from_utf8_lossy(&raw[split + 4..]).to_string(),
            body: raw[split + 4..].to_vec(),
        }
    }
}

/// A found element.
#[derive(Debug, Clone)]
pub struct Element(String);

fn ok(res: Response, what: &str) -> Value {
    assert_eq!(res.status, 200, "WebDriver {what} failed: {}", res.text);
    res.json()["value"].clone()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a `width` x `height` window, opening
    /// pages relative to `base` (e.g. the controller's `http://127.0.0.1:port`).
    pub async fn start(base: &str, width: u32, height: u32) -> Browser {
        let port = crate::free_tcp_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (scripts/ensure-test-tools installs it)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let api = Wd { addr };
        let start = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok()
                && api.get("/status").await.json()["value"]["ready"] == json!(true)
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={width},{height}"), "--lang=en-US"]
            }
        }}});
        let res = api.post("/session", &caps).await;
        let session = ok(res, "new session")["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        Browser {
            driver,
            api,
            session,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `path` (relative to the base URL) and waits for the page to load.
    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        ok(
            self.api
                .post(&self.path("/url"), &json!({ "url": url }))
                .await,
            "navigate",
        );
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        ok(self.api.get(&self.path("/url")).await, "url")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits (up to 10 s) until the current URL satisfies `pred`, e.g. after a form
    /// submission whose redirect is still loading; returns the URL.
    pub async fn wait_url(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let url = self.url().await;
            if pred(&url) {
                return url;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{what}: still at {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 10 s) until the page's HTML contains `text`, e.g. the message a form
    /// that redirects back to the same URL leaves; returns the HTML.
    pub async fn wait_text(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let html = self.source().await;
            if html.contains(text) {
                return html;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{text:?} never appeared on {}:\n{html}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        ok(self.api.get(&self.path("/source")).await, "source")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching `css`, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let res = self
            .api
            .post(
                &self.path("/element"),
                &json!({"using": "css selector", "value": css}),
            )
            .await;
        if res.status != 200 {
            return None;
        }
        res.json()["value"][ELEMENT]
            .as_str()
            .map(|id| Element(id.into()))
    }

    /// The first element matching `css`, waiting up to 10 s for it (a page that is still
    /// loading on a busy machine); panics with the page when there is none.
    pub async fn find(&self, css: &str) -> Element {
        let start = std::time::Instant::now();
        let found = loop {
            match self.try_find(css).await {
                Some(e) => break Some(e),
                None if start.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                None => break None,
            }
        };
        match found {
            Some(e) => e,
            None => panic!(
                "no element {css:?} on {}:\n{}",
                self.url().await,
                self.source().await
            ),
        }
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = ok(
            self.api
                .post(
                    &self.path("/elements"),
                    &json!({"using": "css selector", "value": css}),
                )
                .await,
            "find elements",
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.into())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Clicks an element (a link or submit button navigates; the call returns after load).
    pub async fn click(&self, e: &Element) {
        ok(
            self.api
                .post(&self.path(&format!("/element/{}/click", e.0)), &json!({}))
                .await,
            "click",
        );
    }

    /// Accepts the open `confirm()` dialog (the page's "are you sure?").
    pub async fn accept_dialog(&self) {
        ok(
            self.api.post(&self.path("/alert/accept"), &json!({})).await,
            "accept dialog",
        );
    }

    /// Clears an input and types `text` into it.
    pub async fn fill(&self, e: &Element, text: &str) {
        ok(
            self.api
                .post(&self.path(&format!("/element/{}/clear", e.0)), &json!({}))
                .await,
            "clear",
        );
        ok(
            self.api
                .post(
                    &self.path(&format!("/element/{}/value", e.0)),
                    &json!({ "text": text }),
                )
                .await,
            "type",
        );
    }

    /// An element's visible text.
    pub async fn text(&self, e: &Element) -> String {
        ok(
            self.api
                .get(&self.path(&format!("/element/{}/text", e.0)))
                .await,
            "text",
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// An element's attribute.
    pub async fn attr(&self, e: &Element, name: &str) -> Option<String> {
        ok(
            self.api
                .get(&self.path(&format!("/element/{}/attribute/{name}", e.0)))
                .await,
            "attribute",
        )
        .as_str()
        .map(str::to_string)
    }

    /// Runs `script` (a function body) with `args` in the page and returns its value;
    /// a returned promise is awaited.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        ok(
            self.api
                .post(
                    &self.path("/execute/async"),
                    &json!({
                        "script": format!("const done = arguments[arguments.length - 1]; \
                            Promise.resolve((async () => {{ {script} }})()).then(done, e => done('error: ' + e));"),
                        "args": args
                    }),
                )
                .await,
            "execute",
        )
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = ok(self.api.get(&self.path("/screenshot")).await, "screenshot");
        decode(&v)
    }

    /// A PNG screenshot of one element.
    pub async fn element_screenshot(&self, e: &Element) -> Vec<u8> {
        let v = ok(
            self.api
                .get(&self.path(&format!("/element/{}/screenshot", e.0)))
                .await,
            "element screenshot",
        );
        decode(&v)
    }

    /// Resizes the window (e.g. to take a full-page screenshot).
    pub async fn resize(&self, width: u32, height: u32) {
        ok(
            self.api
                .post(
                    &self.path("/window/rect"),
                    &json!({"width": width, "height": height}),
                )
                .await,
            "resize",
        );
    }
}

fn decode(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 PNG"))
        .expect("valid base64")
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; the driver is ours to kill.
        let api = self.api.clone();
        let path = format!("/session/{}", self.session);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async { api.delete(&path).await });
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `<target>/screenshots`, next to the test binaries' `debug/` directory.
fn screenshot_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .parent()
        .and_then(|deps| deps.parent())
        .and_then(|profile| profile.parent())
        .expect("test binary inside target/<profile>/deps");
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a screenshot for review as `<target>/screenshots/<name>-<backend>.png`.
pub fn save_screenshot(name: &str, backend: crate::Backend, png: &[u8]) {
    let path = screenshot_dir().join(format!("{name}-{backend:?}.png").to_lowercase());
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}
