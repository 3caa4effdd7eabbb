//! In-process agents (the library entry point the binary also uses) and record factories.

use mikrobill_agent::uplink::LinkState;
use mikrobill_agent::{Agent, AgentOptions};
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus, RecordId};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Enrolls an agent data directory with a token (same code as `mikrobill-agent enroll`).
pub async fn enroll(token: &str, dir: &Path) {
    mikrobill_agent::enroll::enroll(token, dir, false)
        .await
        .expect("enrollment");
}

/// Starts an agent that retries fast, optionally dialing `via` instead of the enrolled address.
pub async fn start(dir: &Path, via: Option<SocketAddr>) -> Agent {
    let options = AgentOptions {
        data_dir: dir.to_path_buf(),
        controller_addr: via.map(|a| a.to_string()),
        reconnect_max: Duration::from_millis(500),
        radius: None,
        router: None,
        status_listen: None,
        clock: mikrobill_agent::clock::Clock::system(),
    };
    Agent::start(options).await.expect("agent start")
}

/// Starts an agent again on a directory another agent in this process just shut down; its
/// store's file lock is released a moment after the last handle goes.
pub async fn restart(dir: &Path) -> Agent {
    start_when_store_free(AgentOptions {
        data_dir: dir.to_path_buf(),
        controller_addr: None,
        reconnect_max: Duration::from_millis(500),
        radius: None,
        router: None,
        status_listen: None,
        clock: mikrobill_agent::clock::Clock::system(),
    })
    .await
}

/// Starts an agent on a store that an agent just shut down: sled lets go of the store's file
/// lock a moment after the last handle, so this tries again until it is free (20 s at most).
pub async fn start_when_store_free(options: AgentOptions) -> Agent {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match Agent::start(options.clone()).await {
            Ok(agent) => return agent,
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::debug!("agent not startable yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("agent start: {e}"),
        }
    }
}

/// Waits until the agent's link satisfies `pred`; returns that state.
pub async fn wait_link(
    agent: &Agent,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&LinkState) -> bool,
) -> LinkState {
    let mut rx = agent.link();
    let result = tokio::time::timeout(timeout, rx.wait_for(|s| pred(s))).await;
    match result {
        Ok(Ok(state)) => state.clone(),
        _ => panic!(
            "agent link never became {what}; last state: {:?}",
            *agent.link().borrow()
        ),
    }
}

/// Waits for an established session.
pub async fn wait_connected(agent: &Agent) {
    wait_link(agent, Duration::from_secs(20), "connected", |s| {
        matches!(s, LinkState::Connected { .. })
    })
    .await;
}

/// The site id an agent directory is enrolled for.
pub fn site_id(dir: &Path) -> String {
    mikrobill_agent::identity::load(dir)
        .expect("identity")
        .state
        .site_id
}

/// `n` distinct Stop records of a test run; session time encodes the index.
pub fn stop_records(tag: &str, n: u64) -> Vec<AccountingRecord> {
    (0..n)
        .map(|i| {
            let session_id = format!("{tag}-{i:06}");
            AccountingRecord {
                id: RecordId::derive("router-1", &session_id, AcctStatus::Stop, 0),
                nas_identifier: "router-1".into(),
                nas_ip: Some([10, 0, 0, 1].into()),
                session_id,
                username: format!("user{}", i % 50),
                status: AcctStatus::Stop,
                event_time_ms: 1_700_000_000_000 + i as i64,
                session_time_secs: i,
                input_octets: 1_000 + i,
                output_octets: (5u64 << 32) + i,
                input_packets: 10,
                output_packets: 20,
                terminate_cause: Some(1),
                framed_ip: Some([10, 5, 0, 2].into()),
                calling_station_id: Some("AA:BB:CC:DD:EE:FF".into()),
            }
        })
        .collect()
}

/// Creates a site through the admin API, enrolls a fresh agent directory with its token and
/// starts that agent connected; returns the site id, the agent and its directory.
pub async fn api_site(admin: &crate::http::Api, name: &str) -> (String, Agent, tempfile::TempDir) {
    let enr = admin
        .post("/api/v1/sites", &serde_json::json!({ "name": name }))
        .await
        .expect(201);
    let dir = tempfile::tempdir().expect("agent directory");
    enroll(enr["token"].as_str().expect("token"), dir.path()).await;
    let agent = start(dir.path(), None).await;
    wait_connected(&agent).await;
    (
        enr["site"]["id"].as_str().expect("site id").to_string(),
        agent,
        dir,
    )
}

/// One accounting reading of `session` at `nas` for `user`: `secs` online, `bytes` in and
/// twice that out (its id, like a NAS's retransmission, depends on the session time).
pub fn reading(
    nas: &str,
    session: &str,
    user: &str,
    status: AcctStatus,
    at: i64,
    secs: u64,
    bytes: u64,
) -> AccountingRecord {
    AccountingRecord {
        id: RecordId::derive(nas, session, status, secs),
        nas_identifier: nas.into(),
        nas_ip: Some([10, 0, 0, 1].into()),
        session_id: session.into(),
        username: user.into(),
        status,
        event_time_ms: at,
        session_time_secs: secs,
        input_octets: bytes,
        output_octets: 2 * bytes,
        input_packets: 1,
        output_packets: 1,
        terminate_cause: (status == AcctStatus::Stop).then_some(1),
        framed_ip: Some([10, 5, 0, 2].into()),
        calling_station_id: Some("AA:BB:CC:DD:EE:01".into()),
    }
}

/// Appends `records` to `agent`'s outbox and waits until the controller acknowledged them.
pub async fn deliver(agent: &Agent, records: Vec<AccountingRecord>) {
    agent.outbox().append(records).await.unwrap();
    let outbox = agent.outbox().clone();
    crate::eventually(Duration::from_secs(30), "outbox drained", || async {
        outbox.is_empty().then_some(())
    })
    .await;
}

/// Waits until the controller's background fold has folded everything it stored: an agent's
/// batch is answered once stored, so what [`deliver`] sent reaches the usage ledger, the
/// vouchers' use and the reports a moment later.
pub async fn ledger_current(ctl: &crate::controller::Controller) {
    let db = ctl.db().await;
    folded(&db, Duration::from_secs(30)).await;
    db.close().await;
}

/// Waits up to `within` until nothing stored in `db` is left unfolded.
pub async fn folded(db: &mikrobill_core::db::Db, within: Duration) {
    crate::eventually(within, "the ledger folded", || async {
        (mikrobill_core::accounting::fold::unfolded_sites(db)
            .await
            .expect("read the fold marks")
            == 0)
            .then_some(())
    })
    .await;
}
