//! A real `mikrobill-controller serve` process and its admin CLI.

use crate::db::TestDb;
use crate::{bin, free_tcp_port};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A controller process with its data directory.
pub struct Controller {
    /// Data directory (CA, SQLite).
    pub data_dir: PathBuf,
    /// `--database-url` when not SQLite.
    pub database_url: Option<String>,
    /// HTTP address.
    pub api_addr: SocketAddr,
    /// QUIC edge address.
    pub edge_addr: SocketAddr,
    /// The loopback listener of `/metrics`.
    pub metrics_addr: SocketAddr,
    /// Address written into enrollment tokens.
    pub advertise: String,
    /// Extra environment of the process (e.g. a fake gateway's URL).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    starts: u32,
}

impl Controller {
    /// Starts a controller on fresh ports.
    pub async fn start(data_dir: &Path, db: &TestDb) -> Controller {
        let edge_addr = crate::free_udp_addr();
        Controller::start_with(data_dir, db, edge_addr, edge_addr.to_string()).await
    }

    /// Starts a controller with extra environment variables.
    pub async fn start_env(
        data_dir: &Path,
        db: &TestDb,
        env: &[(impl AsRef<str>, impl AsRef<str>)],
    ) -> Controller {
        let edge_addr = crate::free_udp_addr();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        Controller::start_full(data_dir, db, edge_addr, edge_addr.to_string(), &env).await
    }

    /// Starts a controller on a given edge address, advertising `advertise` in tokens.
    pub async fn start_with(
        data_dir: &Path,
        db: &TestDb,
        edge_addr: SocketAddr,
        advertise: String,
    ) -> Controller {
        Controller::start_full(data_dir, db, edge_addr, advertise, &[]).await
    }

    async fn start_full(
        data_dir: &Path,
        db: &TestDb,
        edge_addr: SocketAddr,
        advertise: String,
        env: &[(&str, &str)],
    ) -> Controller {
        let api_addr: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let mut c = Controller {
            data_dir: data_dir.to_path_buf(),
            database_url: db.url.clone(),
            api_addr,
            edge_addr,
            metrics_addr,
            advertise,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            starts: 0,
        };
        // A port chosen free can be taken (by an outgoing connection's ephemeral port) before
        // the controller binds it; a first start may then choose new HTTP ports and try again.
        for _ in 0..3 {
            match c.try_spawn().await {
                Ok(()) => return c,
                Err(log) if http_port_taken(&log, &c) => {
                    c.api_addr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
                    c.metrics_addr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
                }
                Err(log) => panic!("controller exited at start; log:\n{log}"),
            }
        }
        panic!("controller found no free HTTP ports; log:\n{}", c.log());
    }

    fn base_command(&self) -> Command {
        let mut cmd = Command::new(bin("mikrobill-controller"));
        cmd.arg("--data-dir").arg(&self.data_dir);
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.env_remove("MIKROBILL_CONFIG")
            .env("RUST_LOG", "info,mikrobill_controller=debug")
            .env("MIKROBILL_ADMIN_PASSWORD", crate::http::ADMIN_PASSWORD)
            .env(
                "MIKROBILL_MIDTRANS_SERVER_KEY",
                crate::http::MIDTRANS_SERVER_KEY,
            )
            // Webhook retries in milliseconds, so retry and dead-letter tests finish quickly.
            .env("MIKROBILL_WEBHOOK_RETRY_BASE", "50ms")
            // A held notification send gives up (and its claim lapses) within seconds.
            .env("MIKROBILL_NOTIFY_SEND_TIMEOUT", "3s")
            // Tests drive the API far faster than people do; the rate-limit test sets its own.
            .env(
                "MIKROBILL_API_RATE_LIMITS",
                "admin=100000/100000,operator=100000/100000,cashier=100000/100000,reseller=100000/100000,viewer=100000/100000",
            );
        // An empty value takes a variable away (e.g. the Midtrans key, for a controller
        // without a payment gateway).
        for (k, v) in &self.env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        cmd
    }

    async fn spawn(&mut self) {
        if let Err(log) = self.try_spawn().await {
            panic!("controller exited at start; log:\n{log}");
        }
    }

    /// Starts the process and waits until it answers; the log when it exits instead.
    async fn try_spawn(&mut self) -> Result<(), String> {
        self.starts += 1;
        let log = std::fs::File::create(
            self.data_dir
                .join(format!("controller-{}.log", self.starts)),
        )
        .unwrap();
        let child = self
            .base_command()
            .args([
                "serve",
                "--api-listen",
                &self.api_addr.to_string(),
                "--edge-listen",
                &self.edge_addr.to_string(),
                "--metrics-listen",
                &self.metrics_addr.to_string(),
            ])
            .args(["--edge-advertise", &self.advertise])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn controller");
        self.child = Some(child);
        let start = Instant::now();
        // The edge binds before the HTTP listener, so an answering /health means both are up.
        while !health_ok(self.api_addr).await {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Err(format!("exit {status}\n{}", self.log()));
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "controller did not come up; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }

    /// The Prometheus text of `/metrics` on the metrics listener.
    pub async fn metrics(&self) -> String {
        let r = crate::http::Api::new(self.metrics_addr)
            .get("/metrics")
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.text
    }

    /// The current process's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(
            self.data_dir
                .join(format!("controller-{}.log", self.starts)),
        )
        .unwrap_or_default()
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process at once (SIGKILL): no graceful shutdown.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same addresses and data.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Runs an admin subcommand against the same data; returns its output.
    pub fn cli_output(&self, args: &[&str]) -> Output {
        self.base_command()
            .args(args)
            .output()
            .expect("run controller CLI")
    }

    /// Runs an admin subcommand that must succeed; returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "`mikrobill-controller {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Creates a site and returns its enrollment token.
    pub fn add_site(&self, name: &str) -> String {
        self.cli(&["site", "add", name]).trim().to_string()
    }

    /// The URL the test reads the controller database with.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| mikrobill_core::db::sqlite_url_for_dir(&self.data_dir))
    }

    /// Opens the controller's database from the test.
    pub async fn db(&self) -> mikrobill_core::db::Db {
        mikrobill_core::db::Db::connect(&self.database_url())
            .await
            .expect("open controller database")
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the controller logged (its directory is about to go).
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- last controller log lines ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

async fn health_ok(addr: SocketAddr) -> bool {
    http_ok(addr, "/health").await
}

/// Whether `GET path` at `addr` answers 200; a refused, dropped or slow connection is "not
/// yet", not a failure (servers starting up, Docker's port proxy before its container
/// listens).
pub async fn http_ok(addr: SocketAddr, path: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
    buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.1 200")
}

/// Whether a controller that exited at start found its API or /metrics port taken.
fn http_port_taken(log: &str, c: &Controller) -> bool {
    [c.api_addr, c.metrics_addr].iter().any(|addr| {
        log.lines()
            .any(|l| l.contains(&format!("cannot listen on {addr}")) && l.contains("in use"))
    })
}
