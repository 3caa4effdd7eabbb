//! The agent's memory as shipped (issue 17): the real agent binary, enrolled at a real
//! controller, with 10,000 and then 100,000 vouchers synced into its cache, and then with its
//! outbox filled by a NAS's accounting while the controller is down.
//!
//! The agent is a process of its own, so its resident set (VmRSS, and the peak VmHWM) is
//! the agent's alone, not a load generator's. The accounting comes over real RADIUS from
//! this process: many subscribers online, a Start each and then Interim-Updates with growing
//! counters, a window of requests in flight on a few sockets.
//!
//! ```sh
//! cargo build --release -p mikrobill-controller -p mikrobill-agent
//! cargo bench -p mikrobill-tests --bench agent_memory
//! # the static musl agent (what the router container runs):
//! BENCH_AGENT_BIN=$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release-agent/mikrobill-agent \
//!   cargo bench -p mikrobill-tests --bench agent_memory
//! ```
//!
//! Knobs: `BENCH_ACCOUNTS` (comma separated, default `10000,100000`), `BENCH_RECORDS`
//! (outbox sizes to read memory at, default `250000,500000,1000000`), `BENCH_SUBSCRIBERS`
//! (sessions online, default 20,000), `BENCH_AGENT_BIN` (the agent binary).

use mikrobill_radius::{Code, Packet, auth, dict};
use mikrobill_tests::bench::{self, env_or};
use mikrobill_tests::{Backend, Scenario, agents, eventually};
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "memory-bench-secret";
const SOCKETS: usize = 4;
const WINDOW: usize = 32;

/// The agent binary under test, killed when dropped.
struct AgentProcess {
    child: Child,
    status: SocketAddr,
    acct: SocketAddr,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AgentProcess {
    fn start(bin: &PathBuf, dir: &std::path::Path) -> AgentProcess {
        let auth = mikrobill_tests::free_udp_addr();
        let acct = mikrobill_tests::free_udp_addr();
        let status: SocketAddr = format!("127.0.0.1:{}", mikrobill_tests::free_tcp_port())
            .parse()
            .unwrap();
        let log = std::fs::File::create(dir.join("agent.log")).unwrap();
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(dir)
            .args([
                "run",
                "--radius-auth-listen",
                &auth.to_string(),
                "--radius-acct-listen",
                &acct.to_string(),
                "--radius-client-address",
                "127.0.0.1",
                "--status-listen",
                &status.to_string(),
            ])
            .env("MIKROBILL_RADIUS_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the agent binary");
        AgentProcess {
            child,
            status,
            acct,
        }
    }

    /// `(VmRSS, VmHWM)` in MiB.
    fn memory(&self) -> (f64, f64) {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("agent still running");
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kib| kib.parse::<f64>().ok())
                .map(|kib| kib / 1024.0)
                .unwrap_or(f64::NAN)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The running agent's `/status`, or `None` while it does not answer.
    async fn report(&self) -> Option<Value> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.status).await.ok()?;
        s.write_all(b"GET /status HTTP/1.0\r\nHost: agent\r\n\r\n")
            .await
            .ok()?;
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
            .await
            .ok()?
            .ok()?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        serde_json::from_slice(&raw[split + 4..]).ok()
    }
}

/// One Interim-Update (or the session's Start in round 0) for subscriber `n`.
fn accounting(id: u8, n: u64, round: u64) -> Vec<u8> {
    let mut p = Packet::new(Code::AccountingRequest, id, [0; 16]);
    let status = if round == 0 {
        dict::acct_status::START
    } else {
        dict::acct_status::INTERIM_UPDATE
    };
    let secs = (round * 300) as u32;
    p.push_u32(dict::ACCT_STATUS_TYPE, status);
    p.push(dict::ACCT_SESSION_ID, format!("{n:08x}").into_bytes());
    p.push(dict::USER_NAME, format!("sub{n}").into_bytes());
    p.push_u32(dict::ACCT_AUTHENTIC, 1);
    p.push_u32(dict::ACCT_SESSION_TIME, secs);
    p.push_u32(dict::ACCT_INPUT_OCTETS, secs.wrapping_mul(1_000));
    p.push_u32(dict::ACCT_OUTPUT_OCTETS, secs.wrapping_mul(9_000));
    p.push(dict::NAS_IDENTIFIER, b"bench-nas".to_vec());
    p.push_ipv4(dict::NAS_IP_ADDRESS, Ipv4Addr::LOCALHOST);
    p.push_u32(dict::NAS_PORT_TYPE, 15); // Ethernet (PPPoE)
    p.push_ipv4(
        dict::FRAMED_IP_ADDRESS,
        Ipv4Addr::new(10, 8, (n >> 8) as u8, n as u8),
    );
    let mac = n.to_be_bytes();
    p.push(
        dict::CALLING_STATION_ID,
        format!(
            "02:00:{:02X}:{:02X}:{:02X}:{:02X}",
            mac[4], mac[5], mac[6], mac[7]
        )
        .into_bytes(),
    );
    auth::encode_request(&p, SECRET.as_bytes(), true).expect("request encodes")
}

/// Sends the requests `from..to` of the load (request `k` is subscriber `k % subscribers`
/// in round `k / subscribers`) on one socket, `WINDOW` in flight, resending what is not
/// answered within a second (the agent answers a resent request from its cache).
fn send_range(acct: SocketAddr, subscribers: u64, from: u64, to: u64) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(acct).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut next = from;
    let mut buf = [0u8; 4096];
    while next < to {
        let window: Vec<(u8, Vec<u8>)> = (next..to.min(next + WINDOW as u64))
            .enumerate()
            .map(|(i, k)| {
                let id = i as u8;
                (id, accounting(id, k % subscribers, k / subscribers))
            })
            .collect();
        let mut open: Vec<bool> = vec![true; window.len()];
        for attempt in 0..10 {
            for (i, (_, bytes)) in window.iter().enumerate() {
                if open[i] {
                    socket.send(bytes).unwrap();
                }
            }
            while open.iter().any(|o| *o) {
                match socket.recv(&mut buf) {
                    Ok(n) if n >= 20 && buf[0] == Code::AccountingResponse as u8 => {
                        let id = buf[1] as usize;
                        if id < open.len() {
                            open[id] = false;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            if !open.iter().any(|o| *o) {
                break;
            }
            assert!(attempt < 9, "the agent stopped answering accounting");
        }
        next += window.len() as u64;
    }
}

struct Reading {
    what: String,
    rss: f64,
    hwm: f64,
}

async fn run(bin: PathBuf, accounts: Vec<u64>, records: Vec<u64>, subscribers: u64) {
    let mut s = Scenario::start(Backend::Sqlite).await;
    let plan = mikrobill_tests::scenario::plan(
        &s.admin,
        &json!({"name": "Memory", "kind": "hotspot", "price": 5000, "time_limit_secs": 86_400, "rate_limit": "2M/10M"}),
    )
    .await;
    let enr = s
        .admin
        .post("/api/v1/sites", &json!({"name": "Memory"}))
        .await
        .expect(201);
    let dir = tempfile::tempdir().unwrap();
    agents::enroll(enr["token"].as_str().unwrap(), dir.path()).await;
    let agent = AgentProcess::start(&bin, dir.path());
    let mut readings = Vec::new();
    eventually(Duration::from_secs(60), "agent status", || agent.report()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, hwm) = agent.memory();
    readings.push(Reading {
        what: "enrolled, empty cache".into(),
        rss,
        hwm,
    });

    let mut made = 0u64;
    for want in accounts {
        let started = Instant::now();
        while made < want {
            let count = (want - made).min(10_000);
            s.admin
                .post(
                    "/api/v1/voucher-batches",
                    &json!({"plan_id": plan, "count": count, "scope": "all"}),
                )
                .await
                .expect(201);
            made += count;
        }
        eventually(
            Duration::from_secs(600),
            "the vouchers in the agent's cache",
            || async {
                let r = agent.report().await?;
                (r["cache"]["vouchers"].as_u64() == Some(want)).then_some(())
            },
        )
        .await;
        eprintln!("{want} vouchers synced in {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (rss, hwm) = agent.memory();
        readings.push(Reading {
            what: format!("{want} vouchers cached"),
            rss,
            hwm,
        });
    }

    // The uplink dies: everything the NAS sends stays in the outbox.
    s.ctl.kill();
    let mut sent = 0u64;
    for want in records {
        let started = Instant::now();
        let per = (want - sent).div_ceil(SOCKETS as u64);
        std::thread::scope(|scope| {
            for i in 0..SOCKETS as u64 {
                let from = sent + i * per;
                let to = (from + per).min(want);
                let acct = agent.acct;
                scope.spawn(move || send_range(acct, subscribers, from, to));
            }
        });
        eprintln!(
            "{} requests in {:.1} s",
            want - sent,
            started.elapsed().as_secs_f64()
        );
        sent = want;
        let pending = eventually(Duration::from_secs(60), "outbox count", || async {
            let r = agent.report().await?;
            r["outbox"]["pending"].as_u64().filter(|p| *p >= want)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (rss, hwm) = agent.memory();
        readings.push(Reading {
            what: format!("{pending} records in the outbox, controller down"),
            rss,
            hwm,
        });
    }
    drop(agent);
    s.finish().await;

    println!("\n**Agent binary `{}`**\n", bin.display());
    println!("| state | VmRSS MiB | VmHWM (peak) MiB |");
    println!("|---|---:|---:|");
    for r in readings {
        println!("| {} | {:.1} | {:.1} |", r.what, r.rss, r.hwm);
    }
}

fn main() {
    let bin = std::env::var_os("BENCH_AGENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| mikrobill_tests::bin("mikrobill-agent"));
    let list = |key: &str, default: &str| -> Vec<u64> {
        env_or(key, default.to_string())
            .split(',')
            .map(|v| v.trim().parse().expect("a comma-separated list of counts"))
            .collect()
    };
    let accounts = list("BENCH_ACCOUNTS", "10000,100000");
    let records = list("BENCH_RECORDS", "250000,500000,1000000");
    let subscribers: u64 = env_or("BENCH_SUBSCRIBERS", 20_000);
    bench::runtime().block_on(run(bin, accounts, records, subscribers));
}
