//! RADIUS end-to-end helpers: a site whose agent serves RADIUS on loopback, the real
//! `radclient` and pyrad peers, and a fake NAS that listens for CoA/Disconnect.

use crate::{Backend, Controller, TestDb, agents, eventually};
use mikrobill_agent::radius::{Clients, NasClient, RadiusConfig};
use mikrobill_agent::{Agent, AgentOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The shared secret between the test "router" and the agent.
pub const SECRET: &str = "testing123";

/// A controller, one site, and its agent serving RADIUS on loopback.
pub struct RadiusSite {
    /// The site's test database.
    pub db: Option<TestDb>,
    /// The controller process.
    pub ctl: Controller,
    /// The in-process agent.
    pub agent: Option<Agent>,
    /// Where the fake router receives CoA and Disconnect requests.
    pub coa: tokio::net::UdpSocket,
    /// Agent data directory.
    pub agent_dir: tempfile::TempDir,
    _ctl_dir: tempfile::TempDir,
}

impl RadiusSite {
    /// Starts a controller and an enrolled agent whose only NAS client is 127.0.0.1.
    pub async fn start(backend: Backend, site: &str) -> RadiusSite {
        let db = TestDb::new(backend).await;
        let ctl_dir = tempfile::tempdir().unwrap();
        let ctl = Controller::start(ctl_dir.path(), &db).await;
        let agent_dir = tempfile::tempdir().unwrap();
        agents::enroll(&ctl.add_site(site), agent_dir.path()).await;
        let coa = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut site = RadiusSite {
            db: Some(db),
            ctl,
            agent: None,
            coa,
            agent_dir,
            _ctl_dir: ctl_dir,
        };
        site.start_agent().await;
        site
    }

    /// (Re)starts the agent on the same data directory.
    pub async fn start_agent(&mut self) {
        let clients = Clients::new(vec![NasClient {
            name: "test-router".into(),
            address: "127.0.0.1".into(),
            secret: SECRET.into(),
            require_message_authenticator: true,
            coa_port: self.coa.local_addr().unwrap().port(),
        }])
        .unwrap();
        let options = AgentOptions {
            data_dir: self.agent_dir.path().to_path_buf(),
            controller_addr: None,
            reconnect_max: Duration::from_millis(500),
            radius: Some(RadiusConfig {
                auth_listen: "127.0.0.1:0".parse().unwrap(),
                acct_listen: "127.0.0.1:0".parse().unwrap(),
                clients,
                interim: mikrobill_agent::radius::DEFAULT_INTERIM,
                isolation_rate_limit: None,
            }),
            router: None,
            // Every RADIUS test agent also serves its status, on a port of its own.
            status_listen: Some("127.0.0.1:0".parse().unwrap()),
            clock: mikrobill_agent::clock::Clock::system(),
        };
        // After `shutdown` the store's file lock goes a moment after the last handle.
        let agent = crate::agents::start_when_store_free(options).await;
        self.agent = Some(agent);
    }

    /// The agent.
    pub fn agent(&self) -> &Agent {
        self.agent.as_ref().expect("agent running")
    }

    /// RADIUS authentication address.
    pub fn auth_addr(&self) -> SocketAddr {
        self.agent().radius().unwrap().auth_addr
    }

    /// RADIUS accounting address.
    pub fn acct_addr(&self) -> SocketAddr {
        self.agent().radius().unwrap().acct_addr
    }

    /// Waits until a voucher code is in the agent's cache.
    pub async fn wait_voucher(&self, code: &str) {
        let cache = self.agent().cache().clone();
        eventually(
            Duration::from_secs(15),
            "voucher in the agent cache",
            || async { cache.voucher(code).unwrap() },
        )
        .await;
    }

    /// Stops the agent and drops the test database.
    pub async fn finish(mut self) {
        if let Some(agent) = self.agent.take() {
            agent.shutdown().await;
        }
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }
}

/// A reply as `radclient -x` printed it.
#[derive(Debug, Clone)]
pub struct RadclientReply {
    /// e.g. `Access-Accept`.
    pub code: String,
    /// Attributes in order, values without quotes.
    pub attributes: Vec<(String, String)>,
}

impl RadclientReply {
    /// First value of an attribute.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request with FreeRADIUS's `radclient`; `None` when no reply came.
pub fn radclient(
    addr: SocketAddr,
    kind: &str,
    secret: &str,
    attributes: &str,
) -> Option<RadclientReply> {
    let mut child = Command::new("radclient")
        .args(["-x", "-r", "1", "-t", "2", &addr.to_string(), kind, secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient is installed (Debian freeradius-utils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(attributes.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut reply: Option<RadclientReply> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Received ") {
            let code = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            reply = Some(RadclientReply {
                code,
                attributes: Vec::new(),
            });
        } else if let Some(r) = reply.as_mut()
            && line.starts_with(['\t', ' '])
            && let Some((name, value)) = line.trim().split_once(" = ")
        {
            r.attributes.push((
                name.trim().to_string(),
                value.trim().trim_matches('"').to_string(),
            ));
        }
    }
    reply
}

/// Logs in with pyrad like a RouterOS 7.15+ router (Message-Authenticator enforced both ways).
pub fn pyrad_login(
    addr: SocketAddr,
    user: &str,
    password: &str,
    method: &str,
) -> serde_json::Value {
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "python", "login.py"]
        .iter()
        .collect();
    let out = Command::new("python3")
        .arg(script)
        .args([
            &addr.ip().to_string(),
            &addr.port().to_string(),
            SECRET,
            user,
            password,
            method,
        ])
        .output()
        .expect("python3 with pyrad (pip install pyrad)");
    assert!(
        out.status.success(),
        "pyrad login failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("pyrad output is JSON")
}

/// An agent serving RADIUS on loopback for a site created through the admin API, one of
/// several under one controller.
pub struct RadiusAgent {
    /// The site's id.
    pub site_id: String,
    /// The in-process agent.
    pub agent: Agent,
    /// Where the fake router receives CoA and Disconnect requests.
    pub coa: tokio::net::UdpSocket,
    /// Agent data directory.
    pub dir: tempfile::TempDir,
}

impl RadiusAgent {
    /// Creates the site `name`, enrolls a fresh agent for it and starts it connected, serving
    /// RADIUS to 127.0.0.1.
    pub async fn start(admin: &crate::http::Api, name: &str) -> RadiusAgent {
        RadiusAgent::start_with_clock(admin, name, mikrobill_agent::clock::Clock::system()).await
    }

    /// [`RadiusAgent::start`] with the agent deciding and timing by `clock` (a test's
    /// `ManualClock`).
    pub async fn start_with_clock(
        admin: &crate::http::Api,
        name: &str,
        clock: mikrobill_agent::clock::Clock,
    ) -> RadiusAgent {
        let enr = admin
            .post("/api/v1/sites", &serde_json::json!({ "name": name }))
            .await
            .expect(201);
        let dir = tempfile::tempdir().expect("agent directory");
        agents::enroll(enr["token"].as_str().expect("token"), dir.path()).await;
        let coa = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let clients = Clients::new(vec![NasClient {
            name: format!("{name}-router"),
            address: "127.0.0.1".into(),
            secret: SECRET.into(),
            require_message_authenticator: true,
            coa_port: coa.local_addr().unwrap().port(),
        }])
        .unwrap();
        let options = AgentOptions {
            data_dir: dir.path().to_path_buf(),
            controller_addr: None,
            reconnect_max: Duration::from_millis(500),
            radius: Some(RadiusConfig {
                auth_listen: "127.0.0.1:0".parse().unwrap(),
                acct_listen: "127.0.0.1:0".parse().unwrap(),
                clients,
                interim: mikrobill_agent::radius::DEFAULT_INTERIM,
                isolation_rate_limit: None,
            }),
            router: None,
            status_listen: None,
            clock,
        };
        let agent = Agent::start(options).await.expect("agent with RADIUS");
        agents::wait_connected(&agent).await;
        RadiusAgent {
            site_id: enr["site"]["id"].as_str().expect("site id").to_string(),
            agent,
            coa,
            dir,
        }
    }

    /// RADIUS authentication address.
    pub fn auth_addr(&self) -> SocketAddr {
        self.agent.radius().unwrap().auth_addr
    }

    /// RADIUS accounting address.
    pub fn acct_addr(&self) -> SocketAddr {
        self.agent.radius().unwrap().acct_addr
    }

    /// A hotspot login of `code` (its own password) from the device `mac`, through `radclient`.
    pub fn login(&self, code: &str, mac: &str) -> RadclientReply {
        radclient(
            self.auth_addr(),
            "auth",
            SECRET,
            &format!(
                "User-Name = {code}, User-Password = {code}, Calling-Station-Id = \"{mac}\", Message-Authenticator = 0x00\n"
            ),
        )
        .expect("an answer to the login")
    }

    /// An accounting record (`kind` Start, Interim-Update or Stop) of `code`'s `session`
    /// with `secs` online from `mac`, as this site's router sends it; asserts it is answered.
    pub fn account(&self, kind: &str, code: &str, session: &str, secs: u64, mac: &str) {
        let nas = format!("{}-router", &self.site_id[..8]);
        let reply = radclient(
            self.acct_addr(),
            "acct",
            SECRET,
            &format!(
                "Acct-Status-Type = {kind}, User-Name = {code}, Acct-Session-Id = {session}, NAS-Identifier = {nas}, \
                 Acct-Session-Time = {secs}, Acct-Input-Octets = {secs}, Acct-Output-Octets = 0, \
                 Calling-Station-Id = \"{mac}\"\n"
            ),
        )
        .expect("an answer to accounting");
        assert_eq!(reply.code, "Accounting-Response", "{reply:?}");
    }

    /// Waits until the cached voucher `code` satisfies `pred`.
    pub async fn wait_voucher(
        &self,
        code: &str,
        what: &str,
        pred: impl Fn(&mikrobill_protocol::items::Voucher) -> bool,
    ) {
        let cache = self.agent.cache().clone();
        eventually(Duration::from_secs(20), what, || async {
            cache.voucher(code).ok().flatten().filter(&pred).map(|_| ())
        })
        .await;
    }
}
