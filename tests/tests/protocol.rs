//! The edge answers broken or foreign clients with clear errors: malformed frames,
//! oversized frames and incompatible versions close the stream or connection with a reason,
//! and the controller keeps serving everyone else.

use mikrobill_protocol::enroll::EnrollmentToken;
use mikrobill_protocol::messages::{ControllerReply, Hello, HelloReply, Refusal, SyncCursor};
use mikrobill_protocol::{CONTROLLER_SERVER_NAME, MAX_FRAME_LEN, read_frame, write_frame};
use mikrobill_tests::{Backend, Controller, TestDb, agents, init_tracing};
use std::time::Duration;

async fn connect(
    ctl: &Controller,
    config: quinn::ClientConfig,
) -> (quinn::Endpoint, quinn::Connection) {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let conn = endpoint
        .connect_with(config, ctl.edge_addr, CONTROLLER_SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    (endpoint, conn)
}

async fn closed_reason(conn: &quinn::Connection) -> String {
    tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .expect("connection closed")
        .to_string()
}

/// A session connection with a valid agent certificate.
async fn session(ctl: &Controller) -> (tempfile::TempDir, quinn::Endpoint, quinn::Connection) {
    let dir = tempfile::tempdir().unwrap();
    agents::enroll(
        &ctl.add_site(&format!("s{}", rand::random::<u16>())),
        dir.path(),
    )
    .await;
    let identity = mikrobill_agent::identity::load(dir.path()).unwrap();
    let (endpoint, conn) = connect(
        ctl,
        mikrobill_agent::tls::session_config(&identity).unwrap(),
    )
    .await;
    (dir, endpoint, conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_incompatible_clients_get_clear_errors() {
    init_tracing();
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;

    // Enrollment connection with garbage instead of an enrollment request.
    let token = EnrollmentToken::decode(&ctl.add_site("victim")).unwrap();
    let (_ep, conn) = connect(
        &ctl,
        mikrobill_agent::tls::enroll_config(token.ca_fingerprint).unwrap(),
    )
    .await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    send.finish().unwrap();
    assert!(
        closed_reason(&conn)
            .await
            .contains("malformed enrollment request")
    );

    // A hello that is not a hello.
    let (_d, _ep, conn) = session(&ctl).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&[0, 0, 0, 1, 0xff]).await.unwrap();
    assert!(closed_reason(&conn).await.contains("bad hello"));

    // A hello announcing a frame far beyond the limit.
    let (_d, _ep, conn) = session(&ctl).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&((MAX_FRAME_LEN as u32) + 1).to_be_bytes())
        .await
        .unwrap();
    assert!(closed_reason(&conn).await.contains("exceeds the limit"));

    // A hello from a protocol version older than any this controller speaks: refused with the
    // supported range.
    let (_d, _ep, conn) = session(&ctl).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let hello = Hello {
        protocol_version: 0,
        agent_version: "0.0".into(),
        cursor: SyncCursor::default(),
    };
    write_frame(&mut send, &hello).await.unwrap();
    let reply: HelloReply = read_frame(&mut recv).await.unwrap().unwrap();
    assert_eq!(
        reply,
        HelloReply::Refused(Refusal::IncompatibleVersion {
            min: 1,
            max: mikrobill_protocol::PROTOCOL_VERSION
        })
    );
    assert!(
        closed_reason(&conn)
            .await
            .contains("incompatible protocol version")
    );

    // A hello from a future version is welcomed at this controller's version, which the
    // newer agent then speaks: agents may be upgraded before their controller.
    let (_d, _ep, conn) = session(&ctl).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let hello = Hello {
        protocol_version: 99,
        agent_version: "99.0".into(),
        cursor: SyncCursor::default(),
    };
    write_frame(&mut send, &hello).await.unwrap();
    let reply: HelloReply = read_frame(&mut recv).await.unwrap().unwrap();
    match reply {
        HelloReply::Welcome {
            protocol_version, ..
        } => assert_eq!(protocol_version, mikrobill_protocol::PROTOCOL_VERSION),
        other => panic!("a newer agent is welcomed, got {other:?}"),
    }

    // A valid session whose request stream carries an oversized frame: that request is
    // rejected, the session itself stays up.
    let (_d, _ep, conn) = session(&ctl).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let hello = Hello {
        protocol_version: 1,
        agent_version: "test".into(),
        cursor: SyncCursor::default(),
    };
    write_frame(&mut send, &hello).await.unwrap();
    // A version-1 agent is still served, at version 1.
    assert!(matches!(
        read_frame::<_, HelloReply>(&mut recv).await.unwrap(),
        Some(HelloReply::Welcome {
            protocol_version: 1,
            ..
        })
    ));
    let (mut req, mut resp) = conn.open_bi().await.unwrap();
    req.write_all(&((MAX_FRAME_LEN as u32) * 2).to_be_bytes())
        .await
        .unwrap();
    req.finish().unwrap();
    match read_frame::<_, ControllerReply>(&mut resp).await.unwrap() {
        Some(ControllerReply::Rejected { message }) => {
            assert!(message.contains("exceeds the limit"), "{message}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(
        conn.close_reason().is_none(),
        "one bad request must not end the session"
    );

    // The controller still serves a normal agent afterwards.
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(&ctl.add_site("healthy"), agent_dir.path()).await;
    let agent = agents::start(agent_dir.path(), None).await;
    agents::wait_connected(&agent).await;
    agent.shutdown().await;
    db.cleanup().await;
}

/// Reads sync frames of a fresh session's snapshot until its end, in the layout of `version`.
async fn snapshot_items(
    recv: &mut quinn::RecvStream,
    version: u16,
) -> Vec<mikrobill_protocol::items::Item> {
    use mikrobill_protocol::messages::{ControllerMessage, SyncMessage};
    let mut items = Vec::new();
    loop {
        let msg = ControllerMessage::read_for_version(recv, version).await;
        match msg.expect("a frame in the session's layout") {
            Some(ControllerMessage::Sync(SyncMessage::SnapshotItems(chunk))) => items.extend(chunk),
            Some(ControllerMessage::Sync(SyncMessage::SnapshotEnd)) => return items,
            Some(_) => {}
            None => panic!("the control stream ended before the snapshot did"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_gets_items_in_the_layout_of_its_version() {
    use mikrobill_protocol::items::Item;
    init_tracing();
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    ctl.cli(&[
        "plan",
        "add",
        "Terkunci",
        "--price",
        "5000",
        "--mac-lock",
        "--data-limit",
        "1M",
        "--fup-rate-limit",
        "256k/512k",
    ]);
    ctl.cli(&["voucher", "add", "--plan", "Terkunci", "--count", "2"]);
    for version in [3, 5, mikrobill_protocol::PROTOCOL_VERSION] {
        let (_d, _ep, conn) = session(&ctl).await;
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let hello = Hello {
            protocol_version: version,
            agent_version: "test".into(),
            cursor: SyncCursor::default(),
        };
        write_frame(&mut send, &hello).await.unwrap();
        let welcome = read_frame::<_, HelloReply>(&mut recv).await.unwrap();
        assert!(
            matches!(welcome, Some(HelloReply::Welcome { protocol_version, .. }) if protocol_version == version),
            "{welcome:?}"
        );
        let items = snapshot_items(&mut recv, version).await;
        let plan = items
            .iter()
            .find_map(|i| match i {
                Item::Plan(p) if p.name == "Terkunci" => Some(p),
                _ => None,
            })
            .expect("the plan in the snapshot");
        // A protocol 3 agent cannot know of the MAC lock; it still reads every item.
        assert_eq!(plan.mac_lock, version >= mikrobill_protocol::FLEET_VERSION);
        // Nor a protocol 4 or 5 agent of fair usage: its plans keep their own layout.
        assert_eq!(
            plan.fup_rate_limit.as_deref(),
            (version >= mikrobill_protocol::FUP_VERSION).then_some("256k/512k")
        );
        assert_eq!(plan.data_limit_bytes, Some(1_000_000));
        assert_eq!(
            items
                .iter()
                .filter(|i| matches!(i, Item::Voucher(_)))
                .count(),
            2,
            "{items:?}"
        );
        conn.close(0u32.into(), b"done");
    }
    db.cleanup().await;
}

/// A protocol 7 session's drift reports are stored per site: a re-send (same report time,
/// as after a reconnect) or an older report changes nothing, a newer clean one clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_reports_of_a_protocol_7_session_are_stored_once() {
    use mikrobill_protocol::drift::{DriftEntry, DriftKind, DriftReport, PropertyDrift};
    use mikrobill_protocol::messages::AgentMessage;
    use serde_json::json;
    let s = mikrobill_tests::Scenario::start(Backend::Sqlite).await;
    let enr = s
        .admin
        .post("/api/v1/sites", &json!({"name": "Protokol Tujuh"}))
        .await
        .expect(201);
    let site_id = enr["site"]["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    agents::enroll(enr["token"].as_str().unwrap(), dir.path()).await;
    let identity = mikrobill_agent::identity::load(dir.path()).unwrap();
    let (_ep, conn) = connect(
        &s.ctl,
        mikrobill_agent::tls::session_config(&identity).unwrap(),
    )
    .await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let hello = Hello {
        protocol_version: mikrobill_protocol::DRIFT_VERSION,
        agent_version: "test".into(),
        cursor: SyncCursor::default(),
    };
    write_frame(&mut send, &hello).await.unwrap();
    let welcome = read_frame::<_, HelloReply>(&mut recv).await.unwrap();
    assert!(
        matches!(welcome, Some(HelloReply::Welcome { protocol_version, .. }) if protocol_version == mikrobill_protocol::DRIFT_VERSION),
        "{welcome:?}"
    );
    let drifted = |at: i64| {
        AgentMessage::Drift(DriftReport {
            checked_at_ms: at,
            entries: vec![DriftEntry {
                menu: "/ppp/aaa".into(),
                name: "settings".into(),
                kind: DriftKind::AaaChanged,
                properties: vec![PropertyDrift::new("use-radius", Some("yes"), Some("no"))],
                repaired: false,
            }],
        })
    };
    let path = format!("/api/v1/sites/{site_id}/drift");
    write_frame(&mut send, &drifted(1_000)).await.unwrap();
    let drift = mikrobill_tests::eventually(Duration::from_secs(10), "the report", || async {
        let d = s.admin.get(&path).await.expect(200);
        (d["status"] == "drifted").then_some(d)
    })
    .await;
    assert_eq!(drift["findings"][0]["kind"], "aaa_changed", "{drift}");
    assert_eq!(drift["drifted_since"], 1_000);
    // The same report again and an older one, then a newer clean one: only that is stored.
    write_frame(&mut send, &drifted(1_000)).await.unwrap();
    write_frame(&mut send, &drifted(500)).await.unwrap();
    let clean = AgentMessage::Drift(DriftReport {
        checked_at_ms: 2_000,
        entries: Vec::new(),
    });
    write_frame(&mut send, &clean).await.unwrap();
    let drift =
        mikrobill_tests::eventually(Duration::from_secs(10), "the clean report", || async {
            let d = s.admin.get(&path).await.expect(200);
            (d["status"] == "clean").then_some(d)
        })
        .await;
    let history = drift["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{drift}");
    assert_eq!(history[0]["checked_at"], 2_000);
    assert_eq!(history[1]["checked_at"], 1_000);
    assert!(drift["drifted_since"].is_null());
    let events = s
        .admin
        .get("/api/v1/events?kind=site.drift")
        .await
        .expect(200);
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
    conn.close(0u32.into(), b"done");
    s.finish().await;
}

/// A protocol 8 session gets the trust bundle (the controller's CAs) before anything else;
/// a protocol 7 one never does, and its first frame is sync as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_protocol_8_sessions_get_the_trust_bundle() {
    use mikrobill_protocol::messages::{ControllerMessage, SyncMessage};
    init_tracing();
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    for version in [
        mikrobill_protocol::DRIFT_VERSION,
        mikrobill_protocol::CA_ROTATION_VERSION,
    ] {
        let (agent_dir, _ep, conn) = session(&ctl).await;
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let hello = Hello {
            protocol_version: version,
            agent_version: "test".into(),
            cursor: SyncCursor::default(),
        };
        write_frame(&mut send, &hello).await.unwrap();
        let welcome = read_frame::<_, HelloReply>(&mut recv).await.unwrap();
        assert!(matches!(welcome, Some(HelloReply::Welcome { .. })));
        let first = ControllerMessage::read_for_version(&mut recv, version)
            .await
            .unwrap()
            .unwrap();
        match first {
            ControllerMessage::TrustBundle(bundle) => {
                assert_eq!(version, mikrobill_protocol::CA_ROTATION_VERSION);
                let stored = std::fs::read_to_string(agent_dir.path().join("ca.crt")).unwrap();
                assert_eq!(
                    bundle.ca_pems.concat(),
                    stored,
                    "the CA the agent enrolled with"
                );
            }
            ControllerMessage::Sync(SyncMessage::SnapshotBegin { .. }) => {
                assert_eq!(version, mikrobill_protocol::DRIFT_VERSION);
            }
            other => panic!("unexpected first frame {other:?}"),
        }
        conn.close(0u32.into(), b"done");
    }
    db.cleanup().await;
}
