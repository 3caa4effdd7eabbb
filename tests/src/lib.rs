//! Test harness: real controller processes, in-process agents, per-test databases on SQLite
//! or PostgreSQL, and a UDP proxy that can drop or cut the QUIC traffic between them.

#![warn(missing_docs)]

pub mod agents;
pub mod bench;
pub mod browser;
pub mod controller;
pub mod db;
pub mod gateways;
pub mod http;
pub mod messaging;
pub mod proxy;
pub mod radius;
pub mod routeros_pages;
pub mod scenario;
pub mod web;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use controller::Controller;
pub use db::{Backend, TestDb};
pub use proxy::{ProxyMode, UdpProxy};
pub use scenario::Scenario;

/// Defines, for each named `async fn NAME(backend: Backend)`, a module `NAME` with one test
/// per storage backend, so every controller scenario runs on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name($crate::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name($crate::Backend::Postgres).await }
        }
    )*};
}

/// Path of a workspace binary built next to the test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the whole suite with `cargo test --workspace` (it builds the binaries first)",
        path.display()
    );
    path
}

/// Every `.rs` file under `dir`, for the tests that read the code itself.
pub fn rust_sources(dir: &std::path::Path) -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read a source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

/// The repository's root directory.
pub fn repo() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// Runs a command that must succeed; returns its standard output (both streams in the
/// panic message when it fails).
pub fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loopback TCP port that was free a moment ago and that no earlier call in this process
/// returned.
pub fn free_tcp_port() -> u16 {
    fresh(&TCP_HANDED_OUT, || {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    })
    .port()
}

/// A loopback UDP address that was free a moment ago and that no earlier call in this process
/// returned.
pub fn free_udp_addr() -> SocketAddr {
    fresh(&UDP_HANDED_OUT, || {
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    })
}

static TCP_HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
static UDP_HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Asks the kernel for ports until one comes back that this process has not handed out.
/// The kernel may give the port of a socket just closed again at once (two calls in a row
/// once gave a controller the same port for its API and its /metrics), and a port handed
/// out is usually not bound yet, so only remembering them keeps them apart.
fn fresh(handed_out: &Mutex<BTreeSet<u16>>, probe: impl Fn() -> SocketAddr) -> SocketAddr {
    let mut handed_out = handed_out.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let addr = probe();
        if handed_out.insert(addr.port()) {
            return addr;
        }
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends test logs to the test's output (shown on failure).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
}
