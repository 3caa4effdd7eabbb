//! The agent as the router's RADIUS server, checked with real peers: FreeRADIUS's
//! `radclient`, pyrad with Message-Authenticator enforced like RouterOS 7.15+, and packets
//! built with the codec for MS-CHAPv2, retransmissions and fake routers.

use mikrobill_radius::dict::{self, microsoft};
use mikrobill_radius::{Code, Packet, auth, mschap};
use mikrobill_tests::radius::{RadiusSite, SECRET, pyrad_login, radclient};
use mikrobill_tests::{Backend, eventually, init_tracing};
use sqlx::Row;
use std::net::SocketAddr;
use std::time::Duration;

fn stat(
    site: &RadiusSite,
    pick: fn(&mikrobill_agent::radius::RadiusStats) -> &std::sync::atomic::AtomicU64,
) -> u64 {
    mikrobill_agent::radius::RadiusStats::get(pick(&site.agent().radius().unwrap().stats))
}

async fn exchange(to: SocketAddr, from: &str, raw: &[u8]) -> Option<Vec<u8>> {
    let sock = tokio::net::UdpSocket::bind(from).await.unwrap();
    exchange_on(&sock, to, raw).await
}

async fn exchange_on(sock: &tokio::net::UdpSocket, to: SocketAddr, raw: &[u8]) -> Option<Vec<u8>> {
    sock.send_to(raw, to).await.unwrap();
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_millis(700), sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotspot_and_pppoe_logins_with_real_peers() {
    init_tracing();
    let site = RadiusSite::start(Backend::Sqlite, "hotspot").await;
    let ctl = &site.ctl;
    ctl.cli(&[
        "plan",
        "add",
        "Harian",
        "--rate-limit",
        "2M/5M",
        "--time-limit",
        "3h",
        "--data-limit",
        "5G",
        "--validity",
        "1day",
    ]);
    ctl.cli(&[
        "voucher", "add", "--plan", "Harian", "--site", "hotspot", "--code", "HS1",
    ]);
    ctl.cli(&[
        "voucher",
        "add",
        "--plan",
        "Harian",
        "--site",
        "hotspot",
        "--code",
        "HS2",
        "--password",
        "rahasia",
    ]);
    site.wait_voucher("HS2").await;
    let auth_addr = site.auth_addr();

    // PAP with radclient: the plan's limits come back as RouterOS attributes.
    let ok = radclient(
        auth_addr,
        "auth",
        SECRET,
        "User-Name = HS1, User-Password = HS1, Message-Authenticator = 0x00\n",
    )
    .expect("reply to PAP");
    assert_eq!(ok.code, "Access-Accept", "{ok:?}");
    assert_eq!(ok.get("Mikrotik-Rate-Limit"), Some("2M/5M"));
    assert_eq!(ok.get("Session-Timeout"), Some("10800"));
    assert_eq!(
        ok.get("Mikrotik-Total-Limit"),
        Some("705032704"),
        "5 GB low 32 bits"
    );
    assert_eq!(ok.get("Mikrotik-Total-Limit-Gigawords"), Some("1"));
    assert_eq!(ok.get("Port-Limit"), Some("1"));
    assert!(
        ok.get("Message-Authenticator").is_some(),
        "every reply carries a Message-Authenticator"
    );
    let usage = site
        .agent()
        .sessions()
        .account("HS1", mikrobill_agent::now_ms())
        .unwrap();
    assert!(
        usage.usage.activated_at_ms.is_some(),
        "first use activates the voucher"
    );

    // Wrong password and unknown voucher: rejected with a message for the subscriber.
    let bad = radclient(
        auth_addr,
        "auth",
        SECRET,
        "User-Name = HS1, User-Password = nope, Message-Authenticator = 0x00\n",
    )
    .unwrap();
    assert_eq!(bad.code, "Access-Reject");
    assert!(
        bad.get("Reply-Message")
            .is_some_and(|m| m.contains("Invalid")),
        "{bad:?}"
    );
    let unknown = radclient(
        auth_addr,
        "auth",
        SECRET,
        "User-Name = NOPE, User-Password = NOPE, Message-Authenticator = 0x00\n",
    )
    .unwrap();
    assert_eq!(unknown.code, "Access-Reject");

    // CHAP (the hotspot default) with a separate password.
    let chap = radclient(
        auth_addr,
        "auth",
        SECRET,
        "User-Name = HS2, CHAP-Password = rahasia, Message-Authenticator = 0x00\n",
    )
    .unwrap();
    assert_eq!(chap.code, "Access-Accept", "{chap:?}");
    let chap_bad = radclient(
        auth_addr,
        "auth",
        SECRET,
        "User-Name = HS2, CHAP-Password = HS2, Message-Authenticator = 0x00\n",
    )
    .unwrap();
    assert_eq!(chap_bad.code, "Access-Reject");

    // pyrad enforcing Message-Authenticator on the reply, PAP and CHAP with CHAP-Challenge.
    for method in ["pap", "chap"] {
        let reply = pyrad_login(auth_addr, "HS2", "rahasia", method);
        assert_eq!(reply["code"], 2, "{method}: {reply}");
        assert_eq!(reply["attributes"]["Mikrotik-Rate-Limit"][0], "2M/5M");
    }

    // MS-CHAPv2 (PPPoE): the accept proves the server knows the password and carries MPPE keys.
    ctl.cli(&[
        "voucher",
        "add",
        "--plan",
        "Harian",
        "--site",
        "hotspot",
        "--code",
        "PPP1",
        "--password",
        "clientPass",
    ]);
    site.wait_voucher("PPP1").await;
    let auth_challenge: [u8; 16] = rand::random();
    let peer_challenge: [u8; 16] = rand::random();
    let nt = mschap::generate_nt_response(&auth_challenge, &peer_challenge, b"PPP1", "clientPass");
    let response = mschap::MsChap2Response {
        ident: 9,
        flags: 0,
        peer_challenge,
        nt_response: nt,
    };
    let mut req = Packet::new(Code::AccessRequest, 1, rand::random());
    req.push(dict::USER_NAME, b"PPP1".to_vec());
    req.push_u32(dict::SERVICE_TYPE, 2);
    req.push_vendor(
        dict::VENDOR_MICROSOFT,
        microsoft::MS_CHAP_CHALLENGE,
        &auth_challenge,
    );
    req.push_vendor(
        dict::VENDOR_MICROSOFT,
        microsoft::MS_CHAP2_RESPONSE,
        &response.encode(),
    );
    let raw = auth::encode_access_request(&req, SECRET.as_bytes(), true).unwrap();
    let nas = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let reply_raw = exchange_on(&nas, auth_addr, &raw)
        .await
        .expect("MS-CHAPv2 reply");
    assert!(auth::verify_response_authenticator(
        &reply_raw,
        &req.authenticator,
        SECRET.as_bytes()
    ));
    assert_eq!(
        auth::verify_response_message_authenticator(
            &reply_raw,
            &req.authenticator,
            SECRET.as_bytes()
        ),
        auth::MaStatus::Valid
    );
    let reply = Packet::decode(&reply_raw).unwrap();
    assert_eq!(reply.code, Code::AccessAccept);
    let success = reply
        .get_vendor(dict::VENDOR_MICROSOFT, microsoft::MS_CHAP2_SUCCESS)
        .unwrap();
    let expected = mschap::verify(&auth_challenge, &response, b"PPP1", "clientPass").unwrap();
    assert_eq!(success, mschap::success_attribute(9, &expected).as_slice());
    let send_key = reply
        .get_vendor(dict::VENDOR_MICROSOFT, microsoft::MS_MPPE_SEND_KEY)
        .unwrap();
    let send_key =
        mschap::decrypt_mppe_key_attribute(send_key, SECRET.as_bytes(), &req.authenticator)
            .unwrap();
    assert_eq!(&send_key[..16], &expected.master_send_key);
    // Every accept tells the router how often to report (the plan sets no interval here, so
    // the agent's default): bootstrap sets the router to take it from RADIUS.
    assert_eq!(reply.get_u32(dict::ACCT_INTERIM_INTERVAL), Some(300));
    // Encryption is left to the PPP profile: no policy or types that would force MPPE on.
    for attr in [
        microsoft::MS_MPPE_ENCRYPTION_POLICY,
        microsoft::MS_MPPE_ENCRYPTION_TYPES,
    ] {
        assert!(reply.get_vendor(dict::VENDOR_MICROSOFT, attr).is_none());
    }

    // A wrong MS-CHAPv2 response: rejected in PPPoE terms, with the MS-CHAP-Error (E=691)
    // the dialer reads, for the same ident.
    let wrong = mschap::MsChap2Response {
        ident: 11,
        flags: 0,
        peer_challenge,
        nt_response: mschap::generate_nt_response(
            &auth_challenge,
            &peer_challenge,
            b"PPP1",
            "not-the-password",
        ),
    };
    let mut bad_req = Packet::new(Code::AccessRequest, 2, rand::random());
    bad_req.push(dict::USER_NAME, b"PPP1".to_vec());
    bad_req.push_u32(dict::SERVICE_TYPE, 2);
    bad_req.push_u32(dict::FRAMED_PROTOCOL, 1);
    bad_req.push_vendor(
        dict::VENDOR_MICROSOFT,
        microsoft::MS_CHAP_CHALLENGE,
        &auth_challenge,
    );
    bad_req.push_vendor(
        dict::VENDOR_MICROSOFT,
        microsoft::MS_CHAP2_RESPONSE,
        &wrong.encode(),
    );
    let bad_raw = auth::encode_access_request(&bad_req, SECRET.as_bytes(), true).unwrap();
    let bad_reply = Packet::decode(&exchange_on(&nas, auth_addr, &bad_raw).await.unwrap()).unwrap();
    assert_eq!(bad_reply.code, Code::AccessReject);
    let error = bad_reply
        .get_vendor(dict::VENDOR_MICROSOFT, microsoft::MS_CHAP_ERROR)
        .expect("MS-CHAP-Error on an MS-CHAPv2 reject");
    assert_eq!(error[0], 11);
    let error = String::from_utf8_lossy(&error[1..]).to_string();
    assert!(error.starts_with("E=691 R=0 C="), "{error}");
    assert!(error.contains(" V=3"), "{error}");
    assert_eq!(
        bad_reply.get_string(dict::REPLY_MESSAGE).as_deref(),
        Some("Wrong PPPoE user name or password")
    );

    // A retransmission (same id and authenticator) gets the same reply without a second decision.
    let again = exchange_on(&nas, auth_addr, &raw).await.unwrap();
    assert_eq!(again, reply_raw);
    assert_eq!(stat(&site, |s| &s.retransmits), 1);

    // Hardening: no Message-Authenticator, wrong secret, strangers and garbage are all dropped and counted.
    assert!(
        radclient(
            auth_addr,
            "auth",
            SECRET,
            "User-Name = HS1, User-Password = HS1\n"
        )
        .is_none()
    );
    assert_eq!(stat(&site, |s| &s.missing_message_authenticator), 1);
    assert!(
        radclient(
            auth_addr,
            "auth",
            "wrong-secret",
            "User-Name = HS1, User-Password = HS1, Message-Authenticator = 0x00\n"
        )
        .is_none()
    );
    assert_eq!(stat(&site, |s| &s.bad_authenticator), 1);
    assert!(
        exchange(auth_addr, "127.0.0.2:0", &raw).await.is_none(),
        "127.0.0.2 is not a configured client"
    );
    assert_eq!(stat(&site, |s| &s.unknown_client), 1);
    assert!(
        exchange(auth_addr, "127.0.0.1:0", &[1, 2, 0, 5, 9])
            .await
            .is_none()
    );
    assert_eq!(stat(&site, |s| &s.malformed), 1);
    // The server still answers afterwards.
    assert_eq!(
        radclient(
            auth_addr,
            "auth",
            SECRET,
            "User-Name = HS1, User-Password = HS1, Message-Authenticator = 0x00\n"
        )
        .unwrap()
        .code,
        "Access-Accept"
    );
    site.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounting_sessions_quotas_and_disconnect() {
    init_tracing();
    let site = RadiusSite::start(Backend::Sqlite, "kuota").await;
    let ctl = &site.ctl;
    ctl.cli(&[
        "plan",
        "add",
        "Kecil",
        "--data-limit",
        "1M",
        "--shared-users",
        "1",
    ]);
    ctl.cli(&[
        "voucher", "add", "--plan", "Kecil", "--site", "kuota", "--code", "Q1",
    ]);
    site.wait_voucher("Q1").await;
    let (auth_addr, acct_addr) = (site.auth_addr(), site.acct_addr());
    let login = "User-Name = Q1, User-Password = Q1, Message-Authenticator = 0x00\n";
    assert_eq!(
        radclient(auth_addr, "auth", SECRET, login).unwrap().code,
        "Access-Accept"
    );

    let start = "Acct-Status-Type = Start, User-Name = Q1, Acct-Session-Id = 81a00001, NAS-Identifier = hq, Framed-IP-Address = 10.5.0.9, Calling-Station-Id = \"AA:BB:CC:00:00:01\"\n";
    assert_eq!(
        radclient(acct_addr, "acct", SECRET, start).unwrap().code,
        "Accounting-Response"
    );
    // One device at a time: a second login while the session is open is refused.
    let second = radclient(auth_addr, "auth", SECRET, login).unwrap();
    assert_eq!(second.code, "Access-Reject");
    assert!(
        second
            .get("Reply-Message")
            .unwrap()
            .contains("Already logged in"),
        "{second:?}"
    );
    let elsewhere = "User-Name = Q1, User-Password = Q1, Calling-Station-Id = \"AA:BB:CC:00:00:02\", Message-Authenticator = 0x00\n";
    assert_eq!(
        radclient(auth_addr, "auth", SECRET, elsewhere)
            .unwrap()
            .code,
        "Access-Reject"
    );
    // The same device dialing again (its CPE lost power and never sent a Stop) gets its seat
    // back at once instead of waiting for the session to go stale.
    let same_device = "User-Name = Q1, User-Password = Q1, Calling-Station-Id = \"aa:bb:cc:00:00:01\", Message-Authenticator = 0x00\n";
    assert_eq!(
        radclient(auth_addr, "auth", SECRET, same_device)
            .unwrap()
            .code,
        "Access-Accept"
    );

    // The quota runs out mid-session: the agent tells the router to disconnect.
    let interim = "Acct-Status-Type = Interim-Update, User-Name = Q1, Acct-Session-Id = 81a00001, NAS-Identifier = hq, Acct-Session-Time = 60, Acct-Input-Octets = 400000, Acct-Output-Octets = 700000\n";
    assert_eq!(
        radclient(acct_addr, "acct", SECRET, interim).unwrap().code,
        "Accounting-Response"
    );
    let mut buf = vec![0u8; 4096];
    let (n, agent_addr) =
        tokio::time::timeout(Duration::from_secs(10), site.coa.recv_from(&mut buf))
            .await
            .expect("a Disconnect-Request")
            .unwrap();
    let raw = buf[..n].to_vec();
    assert!(
        auth::verify_request_authenticator(&raw, SECRET.as_bytes()),
        "Disconnect-Request signed with the NAS secret"
    );
    let disc = Packet::decode(&raw).unwrap();
    assert_eq!(disc.code, Code::DisconnectRequest);
    assert_eq!(disc.get_string(dict::USER_NAME).as_deref(), Some("Q1"));
    assert_eq!(
        disc.get_string(dict::ACCT_SESSION_ID).as_deref(),
        Some("81a00001")
    );
    let mut ack = Packet::new(Code::DisconnectAck, disc.identifier, [0; 16]);
    ack.attributes.clear();
    let ack = auth::encode_response(&ack, &disc.authenticator, SECRET.as_bytes()).unwrap();
    site.coa.send_to(&ack, agent_addr).await.unwrap();

    let stop = "Acct-Status-Type = Stop, User-Name = Q1, Acct-Session-Id = 81a00001, NAS-Identifier = hq, Acct-Session-Time = 65, Acct-Input-Octets = 420000, Acct-Output-Octets = 700000, Acct-Terminate-Cause = Admin-Reset\n";
    assert_eq!(
        radclient(acct_addr, "acct", SECRET, stop).unwrap().code,
        "Accounting-Response"
    );
    let after = radclient(auth_addr, "auth", SECRET, login).unwrap();
    assert_eq!(after.code, "Access-Reject");
    assert!(
        after.get("Reply-Message").unwrap().contains("quota"),
        "{after:?}"
    );

    // Everything reached the controller ledger exactly once, octets intact.
    let outbox = site.agent().outbox().clone();
    eventually(Duration::from_secs(20), "outbox drained", || async {
        outbox.is_empty().then_some(())
    })
    .await;
    let db = ctl.db().await;
    let rows = sqlx::query("SELECT status, input_octets, output_octets, terminate_cause FROM accounting_records ORDER BY event_time")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let statuses: Vec<String> = rows.iter().map(|r| r.get("status")).collect();
    assert_eq!(statuses, ["start", "interim-update", "stop"]);
    assert_eq!(rows[2].get::<i64, _>("input_octets"), 420_000);
    assert_eq!(rows[2].get::<Option<i64>, _>("terminate_cause"), Some(6));

    // The first use was reported, and the fleet-wide total (1.12 MB of a 1 MB quota) used the
    // voucher up: the controller records both and syncs them back, so every site counts
    // validity from the same moment and refuses the spent voucher.
    let row =
        sqlx::query("SELECT status, activated_at, used_bytes FROM vouchers WHERE code = 'Q1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(row.get::<String, _>("status"), "exhausted");
    assert_eq!(row.get::<i64, _>("used_bytes"), 1_120_000);
    let activated: i64 = row
        .get::<Option<i64>, _>("activated_at")
        .expect("activation recorded");
    let cache = site.agent().cache().clone();
    let synced = eventually(
        Duration::from_secs(10),
        "activation and exhaustion synced back",
        || async {
            cache.voucher("Q1").unwrap().filter(|v| {
                v.activated_at_ms.is_some()
                    && v.status == mikrobill_protocol::items::VoucherStatus::Exhausted
            })
        },
    )
    .await;
    assert_eq!(synced.activated_at_ms, Some(activated));
    db.close().await;
    site.finish().await;
}

async fn offline_controller(backend: Backend) {
    init_tracing();
    let mut site = RadiusSite::start(backend, "desa").await;
    site.ctl.cli(&["plan", "add", "Jam", "--time-limit", "1h"]);
    site.ctl.cli(&[
        "voucher", "add", "--plan", "Jam", "--site", "desa", "--code", "OFF1",
    ]);
    site.wait_voucher("OFF1").await;
    site.ctl.kill();
    // The agent restarts too while the controller is gone: cache and outbox come from disk.
    site.agent.take().unwrap().shutdown().await;
    site.start_agent().await;

    let (auth_addr, acct_addr) = (site.auth_addr(), site.acct_addr());
    assert_eq!(
        radclient(
            auth_addr,
            "auth",
            SECRET,
            "User-Name = OFF1, User-Password = OFF1, Message-Authenticator = 0x00\n"
        )
        .unwrap()
        .code,
        "Access-Accept"
    );
    const SESSIONS: u32 = 20;
    for i in 0..SESSIONS {
        for kind in ["Start", "Stop"] {
            let req = format!(
                "Acct-Status-Type = {kind}, User-Name = OFF1, Acct-Session-Id = off{i}, Acct-Session-Time = 100, Acct-Input-Octets = 10\n"
            );
            assert_eq!(
                radclient(acct_addr, "acct", SECRET, &req).unwrap().code,
                "Accounting-Response"
            );
        }
    }
    assert_eq!(site.agent().outbox().len(), 2 * SESSIONS as u64);
    // The time limit holds offline: 20 sessions of 100 s used 2000 of 3600 s.
    let ok = radclient(
        auth_addr,
        "auth",
        SECRET,
        "User-Name = OFF1, User-Password = OFF1, Message-Authenticator = 0x00\n",
    )
    .unwrap();
    assert_eq!(ok.get("Session-Timeout"), Some("1600"), "{ok:?}");

    site.ctl.restart().await;
    let outbox = site.agent().outbox().clone();
    eventually(Duration::from_secs(30), "outbox drained", || async {
        outbox.is_empty().then_some(())
    })
    .await;
    let db = site.ctl.db().await;
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM accounting_records")
        .fetch_one(&db.pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(n, 2 * SESSIONS as i64);
    db.close().await;
    site.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_accounting_survive_a_dead_controller_sqlite() {
    offline_controller(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_accounting_survive_a_dead_controller_postgres() {
    offline_controller(Backend::Postgres).await;
}
