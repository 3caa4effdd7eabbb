//! Hardening of the running controller: private data files, API response headers, money
//! totals that stay bounded (an overflow answers 422 with the field, never a 500), slow and
//! idle clients cut off, a connection cap, client addresses behind trusted proxies, login
//! limits that cannot lock an admin out from elsewhere, API rate limits and /metrics kept
//! off the public listener.

use mikrobill_tests::Scenario;
use mikrobill_tests::http::Api;
use mikrobill_tests::{Backend, Controller, TestDb, init_tracing, on_both_backends};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

on_both_backends!(
    money_totals_are_bounded,
    nul_characters_are_refused_at_the_door,
    parallel_guesses_get_no_more_than_the_limit
);

/// The largest amount the ledger holds (10^15 minor units).
const MAX: i64 = 1_000_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_private_and_api_answers_are_not_cached() {
    init_tracing();
    let db = TestDb::new(Backend::Sqlite).await;
    let parent = tempfile::tempdir().unwrap();
    // A data directory the controller creates itself, under the test's usual umask (022).
    let dir = parent.path().join("fresh").join("data");
    let out = std::process::Command::new(mikrobill_tests::bin("mikrobill-controller"))
        .arg("--data-dir")
        .arg(&dir)
        .arg("migrate")
        .env_remove("MIKROBILL_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "data directory");
    assert_eq!(mode(&dir.join("mikrobill.db")), 0o600, "database file");
    for journal in ["mikrobill.db-wal", "mikrobill.db-shm"] {
        let p = dir.join(journal);
        if p.exists() {
            assert_eq!(mode(&p) & 0o077, 0, "{journal}");
        }
    }

    let ctl = Controller::start(&dir, &db).await;
    assert_eq!(
        mode(&dir.join("mikrobill.db")),
        0o600,
        "database file after serve"
    );
    let anon = Api::new(ctl.api_addr);
    let login = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": mikrobill_tests::http::ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.header("cache-control"), Some("no-store"));
    assert_eq!(login.header("x-content-type-options"), Some("nosniff"));
    let problem = anon.get("/api/v1/customers").await;
    assert_eq!(problem.status, 401);
    assert_eq!(problem.header("x-content-type-options"), Some("nosniff"));
}

async fn money_totals_are_bounded(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl: _ctl,
        admin,
    } = Scenario::start(backend).await;
    let reseller = admin
        .post(
            "/api/v1/admins",
            &json!({"username": "toko-besar", "password": "toko-besar-password", "role": "reseller"}),
        )
        .await
        .expect(201);
    let credit = format!(
        "/api/v1/resellers/{}/credit",
        reseller["id"].as_str().unwrap()
    );
    // Filled to the bound in legal steps, then one more rupiah: refused by field.
    admin
        .post(&credit, &json!({"amount": MAX - 1}))
        .await
        .expect(200);
    let full = admin.post(&credit, &json!({"amount": 1})).await.expect(200);
    assert_eq!(full["balance"], MAX);
    for amount in [1, MAX] {
        let over = admin.post(&credit, &json!({"amount": amount})).await;
        assert_eq!(over.status, 422, "{}", over.text);
        assert_eq!(over.json()["field"], "amount");
    }
    let after = admin
        .get(&format!(
            "/api/v1/admins/{}",
            reseller["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(after["balance"], MAX);
    let too_big = admin.post(&credit, &json!({"amount": i64::MAX})).await;
    assert_eq!(too_big.status, 422, "{}", too_big.text);
}

/// Thirty wrong passwords sent at once from one address: the attempt is counted before the
/// password is checked, so no more than the limit reach the check (401) and the rest are
/// refused as locked (429); the owner, from elsewhere, still gets in.
async fn parallel_guesses_get_no_more_than_the_limit(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    let mut guesses = Vec::new();
    for i in 0..30 {
        let addr = ctl.api_addr;
        guesses.push(tokio::spawn(async move {
            Api::new(addr)
                .post(
                    "/api/v1/auth/login",
                    &json!({"username": "admin", "password": format!("guess-{i}")}),
                )
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for g in guesses {
        statuses.push(g.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let locked = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + locked, 30, "{statuses:?}");
    assert!(
        checked <= 5,
        "{checked} guesses reached the password check: {statuses:?}"
    );
    drop(ctl);
    db.cleanup().await;
}

/// PostgreSQL cannot store NUL in text: a NUL in a URL, a JSON body or a form once reached a
/// query and answered 500 there (schemathesis found it). Every way in answers 400 on both
/// backends and stores nothing.
async fn nul_characters_are_refused_at_the_door(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    for url in [
        "/api/v1/subscriptions?q=%00abc",
        "/api/v1/customers/%00",
        "/api/v1/customers?q=x%00",
    ] {
        let res = admin.get(url).await;
        assert_eq!(res.status, 400, "{url}: {}", res.text);
        assert_eq!(res.json()["code"], "nul_character");
    }
    let res = admin
        .post("/api/v1/customers", &json!({"name": "Siti\u{0}Aminah"}))
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(res.json()["code"], "nul_character");
    let portal = Api::new(ctl.api_addr)
        .request(
            "POST",
            "/portal/login",
            Some(b"login=C000001&password=a%00b".to_vec()),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(portal.status, 400, "{}", portal.text);
    assert_eq!(
        portal.json()["code"],
        "nul_character",
        "refused for the NUL"
    );
    // A form sent under another content type is read as a form too, and refused the same.
    let admin_login = Api::new(ctl.api_addr)
        .request(
            "POST",
            "/login",
            Some(b"username=a%00b&password=x".to_vec()),
            "text/plain",
        )
        .await;
    assert_eq!(admin_login.status, 400, "{}", admin_login.text);
    assert_eq!(admin_login.json()["code"], "nul_character");
    // Text without NUL, the escape written out literally included, is untouched.
    let ok = admin
        .post("/api/v1/customers", &json!({"name": "Siti \\u0000 Aminah"}))
        .await
        .expect(201);
    assert_eq!(ok["name"], "Siti \\u0000 Aminah");
    let list = admin.get("/api/v1/customers").await.expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    drop(ctl);
    db.cleanup().await;
}

/// A raw connection to the HTTP listener, for clients that misbehave on purpose.
async fn raw(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(addr).await.unwrap()
}

/// Reads until the server closes the connection; what it sent and how long that took.
async fn read_to_close(stream: &mut tokio::net::TcpStream, limit: Duration) -> (String, Duration) {
    use tokio::io::AsyncReadExt;
    let start = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), stream.read(&mut buf))
            .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the connection was still open after {limit:?}; got {:?}",
                String::from_utf8_lossy(&all)
            ),
        }
    }
    (String::from_utf8_lossy(&all).into_owned(), start.elapsed())
}

/// Reads one whole response with a `content-length` from a kept-alive connection.
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&all).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("content-length");
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("response in time")
            .unwrap();
        assert!(n > 0, "closed mid-response: {text:?}");
        all.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    init_tracing();
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start_env(
        dir.path(),
        &db,
        &[
            ("MIKROBILL_HTTP_HEADER_TIMEOUT", "1s"),
            ("MIKROBILL_HTTP_BODY_TIMEOUT", "1s"),
            ("MIKROBILL_HTTP_IDLE_TIMEOUT", "3s"),
        ],
    )
    .await;
    let within = Duration::from_millis(2500);

    // Connects and says nothing.
    let mut silent = raw(ctl.api_addr).await;
    let (_, took) = read_to_close(&mut silent, within).await;
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");

    // Half a request head, then nothing.
    let mut half = raw(ctl.api_addr).await;
    half.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (got, took) = read_to_close(&mut half, within).await;
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
    assert!(!got.contains("200 OK"), "{got}");

    // A head trickled a byte at a time: bytes keep coming, the deadline holds anyway.
    let trickle = raw(ctl.api_addr).await;
    let (mut rd, mut wr) = trickle.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(b"GET /health HTTP/1.1\r\nX-Pad: ").await;
        for _ in 0..100 {
            if wr.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(within, tokio::io::AsyncReadExt::read(&mut rd, &mut buf))
        .await
        .expect("a trickled head must be cut off at the header timeout");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    assert!(start.elapsed() >= Duration::from_millis(800));
    writer.abort();

    // A body that stops halfway: 408 in problem details, then the connection closes.
    let mut body = raw(ctl.api_addr).await;
    body.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"username\":",
    )
    .await
    .unwrap();
    let (got, took) = read_to_close(&mut body, within).await;
    assert!(
        took >= Duration::from_millis(800),
        "answered after {took:?}"
    );
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        got.contains("application/problem+json") && got.contains("body_timeout"),
        "{got}"
    );

    // A kept-alive connection is served, then closed after the idle timeout, not before.
    let mut idle = raw(ctl.api_addr).await;
    for _ in 0..2 {
        idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let got = read_response(&mut idle).await;
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    }
    let start = Instant::now();
    let (_, took) = read_to_close(&mut idle, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(2700),
        "an idle connection was closed after {took:?}, before the idle timeout"
    );
    assert!(start.elapsed() < Duration::from_secs(5));

    // An API body over the limit is refused by its declared length, as problem details.
    let admin = Api::admin(ctl.api_addr).await;
    let mut big = raw(ctl.api_addr).await;
    big.write_all(
        format!(
            "POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n{{\"name\":\"",
            admin.token.as_deref().unwrap()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (got, _) = read_to_close(&mut big, within).await;
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(
        got.contains("application/problem+json") && got.contains("payload_too_large"),
        "{got}"
    );
    // The same body sent in full (chunked, so the length is found only by reading).
    let chunk = vec![b'a'; 64 * 1024];
    let mut chunked = raw(ctl.api_addr).await;
    chunked
        .write_all(
            format!(
                "POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                admin.token.as_deref().unwrap()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let (mut rd, mut wr) = chunked.into_split();
    let writer = tokio::spawn(async move {
        for _ in 0..48 {
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(&chunk);
            frame.extend_from_slice(b"\r\n");
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    let _ = tokio::time::timeout(
        within,
        tokio::io::AsyncReadExt::read_to_end(&mut rd, &mut got),
    )
    .await;
    writer.abort();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");

    // Spoofed X-Forwarded-For from a client that is no proxy changes nothing: five failures
    // "from" five addresses lock the one real address.
    for i in 0..5 {
        let r = Api::new(ctl.api_addr)
            .request_with_headers(
                "POST",
                "/api/v1/auth/login",
                Some(br#"{"username":"admin","password":"not the password"}"#.to_vec()),
                "application/json",
                &[("X-Forwarded-For", &format!("198.51.100.{i}"))],
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let locked = Api::new(ctl.api_addr)
        .request_with_headers(
            "POST",
            "/api/v1/auth/login",
            Some(
                json!({"username": "admin", "password": mikrobill_tests::http::ADMIN_PASSWORD})
                    .to_string()
                    .into_bytes(),
            ),
            "application/json",
            &[("X-Forwarded-For", "198.51.100.77")],
        )
        .await;
    assert_eq!(locked.status, 429, "{}", locked.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_metrics_need_the_token() {
    use tokio::io::AsyncWriteExt;
    init_tracing();
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let token = "metrics-token-0123456789";
    let ctl = Controller::start_env(
        dir.path(),
        &db,
        &[
            ("MIKROBILL_HTTP_MAX_CONNECTIONS", "3"),
            ("MIKROBILL_HTTP_HEADER_TIMEOUT", "30s"),
            ("MIKROBILL_METRICS_TOKEN", token),
        ],
    )
    .await;
    // The harness's readiness probe may still hold a slot for a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(raw(ctl.api_addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = raw(ctl.api_addr).await;
    let _ = over
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (got, _) = read_to_close(&mut over, Duration::from_secs(3)).await;
    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    assert!(
        got.contains("too_many_connections") && got.contains("retry-after: 1"),
        "{got}"
    );
    // A slot freed is a slot served.
    held.pop();
    mikrobill_tests::eventually(
        Duration::from_secs(5),
        "a freed slot serves again",
        || async { (Api::new(ctl.api_addr).get("/health").await.status == 200).then_some(()) },
    )
    .await;
    drop(held);

    // /metrics on the public listener: only with the token.
    let public = Api::new(ctl.api_addr);
    assert_eq!(public.get("/metrics").await.status, 401);
    assert_eq!(
        public
            .with_token("wrong-token-0123456789")
            .get("/metrics")
            .await
            .status,
        401
    );
    let m = public.with_token(token).get("/metrics").await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert!(
        m.text.contains("mikrobill_http_connections_refused_total"),
        "{}",
        m.text
    );
    // The loopback metrics listener needs none.
    assert!(ctl.metrics().await.contains("mikrobill_http_connections"));
}

on_both_backends!(proxies_logins_and_rate_limits);

/// A request as the trusted proxy forwards it for `client`.
async fn via_proxy(
    api: &Api,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
    client: &str,
) -> mikrobill_tests::http::Response {
    api.request_with_headers(
        method,
        path,
        body.map(|b| b.to_string().into_bytes()),
        "application/json",
        &[("X-Forwarded-For", &format!("6.6.6.6, {client}"))],
    )
    .await
}

async fn proxies_logins_and_rate_limits(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start_env(
        dir.path(),
        &db,
        &[
            ("MIKROBILL_TRUSTED_PROXIES", "127.0.0.0/8"),
            ("MIKROBILL_API_RATE_LIMITS", "viewer=1/4"),
        ],
    )
    .await;
    let anon = Api::new(ctl.api_addr);
    let login = |user: &str, pw: &str| json!({"username": user, "password": pw});
    let password = mikrobill_tests::http::ADMIN_PASSWORD;

    // Twenty bad logins through the proxy lock that client's address, not the proxy's.
    for i in 0..20 {
        let r = via_proxy(
            &anon,
            "POST",
            "/api/v1/auth/login",
            Some(login(&format!("guess{i}"), "wrong-password")),
            "198.51.100.1",
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let r = via_proxy(
        &anon,
        "POST",
        "/api/v1/auth/login",
        Some(login("admin", password)),
        "198.51.100.1",
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.text);
    let r = via_proxy(
        &anon,
        "POST",
        "/api/v1/auth/login",
        Some(login("admin", password)),
        "198.51.100.2",
    )
    .await;
    assert_eq!(
        r.status, 200,
        "every admin was locked out by one client: {}",
        r.text
    );

    // Five wrong passwords for admin from one address lock that address out of admin...
    for _ in 0..5 {
        let r = via_proxy(
            &anon,
            "POST",
            "/api/v1/auth/login",
            Some(login("admin", "wrong-password")),
            "203.0.113.5",
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let r = via_proxy(
        &anon,
        "POST",
        "/api/v1/auth/login",
        Some(login("admin", password)),
        "203.0.113.5",
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.json()["code"], "too_many_attempts");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((800..=900).contains(&retry), "{retry}");
    // ...and guesses from elsewhere only slow the account down: the owner still gets in.
    for i in 0..3 {
        let r = via_proxy(
            &anon,
            "POST",
            "/api/v1/auth/login",
            Some(login("admin", "wrong-password")),
            &format!("192.0.2.{i}"),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let start = Instant::now();
    let r = via_proxy(
        &anon,
        "POST",
        "/api/v1/auth/login",
        Some(login("admin", password)),
        "203.0.113.6",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "not slowed: {:?}",
        start.elapsed()
    );
    let admin = anon.with_token(r.json()["access_token"].as_str().unwrap());

    // Every login, good or bad, is in the audit log with the client's address; no password.
    let audit = admin
        .get("/api/v1/audit?entity=admin_user&limit=200")
        .await
        .expect(200);
    let entries = audit["items"].as_array().unwrap();
    let count = |action: &str, addr: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["remote_addr"] == addr)
            .count()
    };
    assert_eq!(count("admin.login_failed", "203.0.113.5"), 5, "{audit}");
    assert_eq!(count("admin.login_failed", "198.51.100.1"), 20, "{audit}");
    assert_eq!(count("admin.login", "203.0.113.6"), 1, "{audit}");
    assert_eq!(count("admin.login", "6.6.6.6"), 0, "{audit}");
    let failed = entries
        .iter()
        .find(|e| e["action"] == "admin.login_failed" && e["remote_addr"] == "203.0.113.5")
        .unwrap();
    assert_eq!(failed["after"]["reason"], "wrong_password");
    assert_eq!(failed["after"]["via"], "api");
    assert!(!audit.to_string().contains("wrong-password") && !audit.to_string().contains(password));

    // A viewer's token gets its bucket (1/s, burst 4): the fifth quick call is refused with
    // Retry-After, another token is not affected, and the refusal is counted.
    admin
        .post(
            "/api/v1/admins",
            &json!({"username": "pantau", "password": "pantau-password-1", "role": "viewer"}),
        )
        .await
        .expect(201);
    let viewer = Api::login(ctl.api_addr, "pantau", "pantau-password-1").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(viewer.get("/api/v1/auth/me").await);
    }
    assert!(
        statuses[..4].iter().all(|r| r.status == 200),
        "{:?}",
        statuses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let limited = &statuses[4];
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert_eq!(limited.json()["code"], "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("1"));
    admin.get("/api/v1/auth/me").await.expect(200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    viewer.get("/api/v1/auth/me").await.expect(200);
    assert!(
        ctl.metrics()
            .await
            .contains("mikrobill_api_rate_limited_total{role=\"viewer\"} 1")
    );
    db.cleanup().await;
}
