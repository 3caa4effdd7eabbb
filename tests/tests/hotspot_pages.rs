//! Hotspot login pages (issue 20): the site's branded hotspot directory is downloaded as a
//! zip (through the API and the admin UI, by the roles that may change sites), filled in as
//! a router fills its pages, served from a small local server and used in headless
//! Chromium: the login form posts the fields RouterOS expects, plain and with CHAP; the
//! status page shows the time left and the portal's links. A real agent uploads the pages to
//! a fake RouterOS, and a router too old for file uploads is answered with the way by hand.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use mikrobill_agent::router::{Mode, RouterConfig, Secret};
use mikrobill_agent::{Agent, AgentOptions};
use mikrobill_fake_routeros::{FakeRouter, FakeRouterConfig};
use mikrobill_tests::browser::{Browser, save_screenshot};
use mikrobill_tests::http::Api;
use mikrobill_tests::routeros_pages::{fill, octal};
use mikrobill_tests::web::WebClient;
use mikrobill_tests::{Backend, Scenario, agents, eventually};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mikrobill_tests::on_both_backends!(
    the_pages_log_in_as_routeros_expects,
    without_a_gateway_the_pages_sell_nothing,
    the_agent_uploads_the_pages_to_the_router,
);

const PUBLIC_URL: &str = "https://billing.isp.example";
const WANTED: &str = "http://example.com/wanted";
const CHAP_ID: [u8; 1] = [0o371];
const CHAP_CHALLENGE: [u8; 16] = [
    0x12, 0x9a, 0x00, 0xff, 0x27, 0x5c, 0x80, 0x41, 0x0d, 0x0a, 0x7f, 0xe3, 0x22, 0x5b, 0x99, 0x01,
];

/// The files of a downloaded zip by name, each inside the one folder.
fn unzip(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        let name = name
            .strip_prefix("hotspot-mikrobill/")
            .unwrap_or_else(|| panic!("{name} is outside the folder"))
            .to_string();
        files.insert(name, text);
    }
    files
}

async fn set_public_url(admin: &Api) {
    admin
        .put(
            "/api/v1/settings/notifications",
            &json!({"reminder_days": [7, 3, 1], "public_url": PUBLIC_URL}),
        )
        .await
        .expect(200);
}

async fn download(api: &Api, site_id: &str) -> mikrobill_tests::http::Response {
    api.get(&format!("/api/v1/sites/{site_id}/hotspot-pages"))
        .await
}

/// A user of `role`, signed in to the API.
async fn user(s: &Scenario, name: &str, role: &str) -> Api {
    s.admin
        .post(
            "/api/v1/admins",
            &json!({"username": name, "password": "hotspot-test-password", "role": role}),
        )
        .await
        .expect(201);
    Api::login(s.ctl.api_addr, name, "hotspot-test-password").await
}

/// What the local "router" serves: the pages as filled for each variant (`/pap/...`,
/// `/chap/...`) and every login form posted to it.
#[derive(Default)]
struct Hotspot {
    pages: HashMap<(String, String), String>,
    posts: Mutex<Vec<Vec<(String, String)>>>,
}

async fn page(
    State(h): State<Arc<Hotspot>>,
    Path((variant, name)): Path<(String, String)>,
) -> Response {
    let Some(body) = h.pages.get(&(variant, name.clone())) else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let kind = match name.rsplit_once('.').map(|(_, e)| e) {
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        _ => "text/html; charset=utf-8",
    };
    ([(header::CONTENT_TYPE, kind)], body.clone()).into_response()
}

async fn login(State(h): State<Arc<Hotspot>>, body: String) -> &'static str {
    let fields = form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    h.posts.lock().unwrap().push(fields);
    "recorded"
}

/// Fills the downloaded pages for a plain (PAP) and a CHAP login and serves them; returns
/// the server's base URL and its state.
async fn serve(files: &BTreeMap<String, String>) -> (String, Arc<Hotspot>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut pages = HashMap::new();
    for (variant, chap, time_left) in [("pap", false, ""), ("chap", true, "1h59m")] {
        let mut vars: HashMap<&str, String> = [
            ("link-login-only", format!("{base}/login")),
            ("link-orig", WANTED.to_string()),
            ("link-logout", format!("{base}/logout")),
            ("link-status", format!("{base}/status")),
            ("username", "VCODE42".to_string()),
            ("session-time-left", time_left.to_string()),
            ("uptime", "12m3s".to_string()),
            ("bytes-in-nice", "1.2 MiB".to_string()),
            ("bytes-out-nice", "34.5 MiB".to_string()),
            ("ip", "10.5.50.7".to_string()),
            ("mac", "AA:BB:CC:00:11:22".to_string()),
        ]
        .into();
        if chap {
            vars.insert("chap-id", octal(&CHAP_ID));
            vars.insert("chap-challenge", octal(&CHAP_CHALLENGE));
        }
        // A fresh login page has no user name filled in yet.
        let mut login_vars = vars.clone();
        login_vars.insert("username", String::new());
        for (name, text) in files {
            let filled = if name == "login.html" {
                fill(text, &login_vars)
            } else if name.ends_with(".html") {
                fill(text, &vars)
            } else {
                text.clone()
            };
            pages.insert((variant.to_string(), name.clone()), filled);
        }
    }
    let state = Arc::new(Hotspot {
        pages,
        posts: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/login", axum::routing::post(login))
        .route("/{variant}/{name}", axum::routing::get(page))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, state)
}

/// Types a voucher into the login page of `variant`, submits, and returns the fields the
/// "router" received.
async fn log_in(
    browser: &Browser,
    hotspot: &Hotspot,
    variant: &str,
    code: &str,
    password: &str,
) -> BTreeMap<String, String> {
    let before = hotspot.posts.lock().unwrap().len();
    browser.goto(&format!("/{variant}/login.html")).await;
    let user = browser.find("#username").await;
    browser.fill(&user, code).await;
    if !password.is_empty() {
        let pass = browser.find("#password").await;
        browser.fill(&pass, password).await;
    }
    let submit = browser.find("button[type=submit]").await;
    browser.click(&submit).await;
    eventually(Duration::from_secs(10), "the login form posted", || async {
        hotspot
            .posts
            .lock()
            .unwrap()
            .get(before)
            .map(|f| f.iter().cloned().collect::<BTreeMap<_, _>>())
    })
    .await
}

fn chap_md5(password: &str) -> String {
    let mut h = Md5::new();
    h.update(CHAP_ID);
    h.update(password.as_bytes());
    h.update(CHAP_CHALLENGE);
    hex::encode(h.finalize())
}

async fn the_pages_log_in_as_routeros_expects(backend: Backend) {
    let s = Scenario::start(backend).await;
    let site_id = s.site("Warung Kopi").await;
    set_public_url(&s.admin).await;
    let billing = s.admin.get("/api/v1/settings/billing").await.expect(200);
    let mut billing = billing.clone();
    billing["company_name"] = json!("Net Desa Jaya");
    billing["language"] = json!("en");
    s.admin
        .put("/api/v1/settings/billing", &billing)
        .await
        .expect(200);

    // Only the roles that may change sites get the pages.
    for role in ["viewer", "reseller", "cashier"] {
        let api = user(&s, &format!("hs-{role}"), role).await;
        assert_eq!(download(&api, &site_id).await.status, 403, "{role}");
    }
    let operator = user(&s, "hs-operator", "operator").await;
    let res = download(&operator, &site_id).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("content-type"), Some("application/zip"));
    assert_eq!(
        res.header("content-disposition"),
        Some("attachment; filename=\"hotspot-Warung-Kopi.zip\"")
    );
    let files = unzip(&res.body);
    for name in [
        "login.html",
        "alogin.html",
        "status.html",
        "logout.html",
        "error.html",
        "redirect.html",
        "mikrobill.js",
        "mikrobill.css",
    ] {
        assert!(files.contains_key(name), "{name} is in the zip");
    }
    assert!(files["login.html"].contains("Net Desa Jaya"));
    assert_eq!(
        download(&Api::new(s.ctl.api_addr), &site_id).await.status,
        401
    );
    assert_eq!(download(&s.admin, "no-such-site").await.status, 404);

    // The admin UI offers the same zip on the site's page.
    let mut web = WebClient::login(
        s.ctl.api_addr,
        "admin",
        mikrobill_tests::http::ADMIN_PASSWORD,
    )
    .await;
    let page = web.get(&format!("/sites/{site_id}")).await;
    assert!(page.text.contains(&format!("/sites/{site_id}/hotspot.zip")));
    assert!(page.text.contains("install_hotspot_pages"));
    let ui = web.get(&format!("/sites/{site_id}/hotspot.zip")).await;
    assert_eq!(ui.status, 200);
    assert_eq!(unzip(&ui.body), files);
    let mut viewer_web = {
        user(&s, "hs-viewer-web", "viewer").await;
        WebClient::login(s.ctl.api_addr, "hs-viewer-web", "hotspot-test-password").await
    };
    assert_eq!(
        viewer_web
            .get(&format!("/sites/{site_id}/hotspot.zip"))
            .await
            .status,
        403
    );
    let viewer_page = viewer_web.get(&format!("/sites/{site_id}")).await;
    assert!(!viewer_page.text.contains("hotspot.zip"));

    // In a browser, as a router serves them.
    let (base, hotspot) = serve(&files).await;
    let browser = Browser::start(&base, 420, 860).await;

    let plain = log_in(&browser, &hotspot, "pap", "VCODE1", "secret9").await;
    assert_eq!(plain.get("username").map(String::as_str), Some("VCODE1"));
    assert_eq!(plain.get("password").map(String::as_str), Some("secret9"));
    assert_eq!(plain.get("dst").map(String::as_str), Some(WANTED));
    assert_eq!(plain.get("popup").map(String::as_str), Some("true"));

    // A voucher without a password logs in with its code; CHAP sends the hash instead.
    let chap = log_in(&browser, &hotspot, "chap", "VCODE2", "").await;
    assert_eq!(chap.get("username").map(String::as_str), Some("VCODE2"));
    assert_eq!(
        chap.get("password").map(String::as_str),
        Some(chap_md5("VCODE2").as_str()),
        "hex MD5 of chap-id, password and chap-challenge"
    );
    assert_eq!(chap.get("dst").map(String::as_str), Some(WANTED));
    assert_eq!(chap.get("popup").map(String::as_str), Some("true"));

    // Going back to the form as the browser left it and signing in again posts the hash of
    // the typed password again, not a hash of the hash.
    let typed = log_in(&browser, &hotspot, "chap", "VCODE3", "kata-sandi").await;
    assert_eq!(
        typed.get("password").map(String::as_str),
        Some(chap_md5("kata-sandi").as_str())
    );
    for _ in 0..2 {
        let before = hotspot.posts.lock().unwrap().len();
        browser.execute("history.back()", json!([])).await;
        browser
            .wait_url("the login page again", |u| u.ends_with("/chap/login.html"))
            .await;
        let submit = browser.find("button[type=submit]").await;
        browser.click(&submit).await;
        let again = eventually(Duration::from_secs(10), "the form posted again", || async {
            hotspot.posts.lock().unwrap().get(before).cloned()
        })
        .await;
        let again: BTreeMap<_, _> = again.into_iter().collect();
        assert_eq!(again.get("username").map(String::as_str), Some("VCODE3"));
        assert_eq!(
            again.get("password").map(String::as_str),
            Some(chap_md5("kata-sandi").as_str()),
            "the same hash as the first time"
        );
    }

    // The QR scan button shows only where the browser can read QR codes; a scanned
    // voucher link fills the code and password, plain text the code.
    browser.goto("/chap/login.html").await;
    save_screenshot("hotspot-login", backend, &browser.screenshot().await);
    let consistent = browser
        .execute(
            "return ('BarcodeDetector' in window) === !document.getElementById('scan').hidden;",
            json!([]),
        )
        .await;
    assert_eq!(consistent, json!(true));
    let scanned = browser
        .execute(
            "return [MikroBill.codeFromScan(arguments[0]), MikroBill.codeFromScan(' ZX81 ')];",
            json!(["http://hotspot.lan/login?username=AB12&password=x9"]),
        )
        .await;
    assert_eq!(
        scanned,
        json!([{"code": "AB12", "password": "x9"}, {"code": "ZX81", "password": ""}])
    );
    let buy = browser.find("#buy").await;
    assert_eq!(
        browser.attr(&buy, "href").await.as_deref(),
        Some(format!("{PUBLIC_URL}/portal/buy?site={site_id}").as_str())
    );

    // The status page: time left (or unlimited), the portal's lookup and the shop.
    browser.goto("/chap/status.html").await;
    let left = browser.find("#time-left").await;
    assert_eq!(browser.text(&left).await, "1h59m");
    let check = browser.find("#check").await;
    assert_eq!(
        browser.attr(&check, "href").await.as_deref(),
        Some(format!("{PUBLIC_URL}/portal/voucher").as_str())
    );
    assert!(browser.try_find("#buy").await.is_some());
    save_screenshot("hotspot-status", backend, &browser.screenshot().await);
    browser.goto("/pap/status.html").await;
    let left = browser.find("#time-left").await;
    assert_eq!(browser.text(&left).await, "Unlimited");

    drop(browser);
    s.finish().await;
}

async fn without_a_gateway_the_pages_sell_nothing(backend: Backend) {
    let s = Scenario::start_env(backend, &[("MIKROBILL_MIDTRANS_SERVER_KEY", "")]).await;
    let site_id = s.site("Pos Ronda").await;
    // Without a public URL the router's visitors could not reach the portal: no links.
    let files = unzip(&download(&s.admin, &site_id).await.body);
    assert!(files.values().all(|f| !f.contains("/portal/")));
    set_public_url(&s.admin).await;
    let files = unzip(&download(&s.admin, &site_id).await.body);
    assert!(files["status.html"].contains(&format!("{PUBLIC_URL}/portal/voucher")));
    assert!(files.values().all(|f| !f.contains("/portal/buy")));
    s.finish().await;
}

async fn command_done(admin: &Api, id: &Value) -> Value {
    eventually(Duration::from_secs(30), "command answered", || async {
        let c = admin.get(&format!("/api/v1/commands/{id}")).await.json();
        (c["status"] != "pending").then_some(c)
    })
    .await
}

async fn upload(admin: &Api, site_id: &str) -> Value {
    let queued = admin
        .post(
            &format!("/api/v1/sites/{site_id}/hotspot-pages"),
            &json!({}),
        )
        .await
        .expect(201);
    assert_eq!(queued["kind"], "install_hotspot_pages");
    command_done(admin, &queued["id"]).await
}

async fn the_agent_uploads_the_pages_to_the_router(backend: Backend) {
    let s = Scenario::start(backend).await;
    let router = FakeRouter::start(FakeRouterConfig {
        username: "api".into(),
        password: "router-pw".into(),
    })
    .await
    .unwrap();
    let enr = s
        .admin
        .post("/api/v1/sites", &json!({"name": "Balai Desa"}))
        .await
        .expect(201);
    let site_id = enr["site"]["id"].as_str().unwrap().to_string();
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(enr["token"].as_str().unwrap(), agent_dir.path()).await;
    let mut rc = RouterConfig::new(&router.addr().to_string(), "api", Secret::new("router-pw"));
    rc.mode = Mode::Radius;
    rc.bootstrap_on_start = false;
    rc.connect_timeout = Duration::from_secs(2);
    rc.call_timeout = Duration::from_secs(2);
    rc.reconnect_max = Duration::from_millis(300);
    rc.refresh_interval = Duration::from_secs(1);
    let agent = Agent::start(AgentOptions {
        data_dir: agent_dir.path().to_path_buf(),
        controller_addr: None,
        reconnect_max: Duration::from_millis(500),
        radius: None,
        router: Some(rc),
        status_listen: None,
        clock: mikrobill_agent::clock::Clock::system(),
    })
    .await
    .unwrap();
    agents::wait_connected(&agent).await;

    // Only roles that may change sites queue the upload.
    let viewer = user(&s, "hs-up-viewer", "viewer").await;
    assert_eq!(
        viewer
            .post(
                &format!("/api/v1/sites/{site_id}/hotspot-pages"),
                &json!({})
            )
            .await
            .status,
        403
    );

    let expected = unzip(&download(&s.admin, &site_id).await.body);
    let done = upload(&s.admin, &site_id).await;
    assert_eq!(done["status"], "applied", "{done}");
    let note = done["result"].as_str().unwrap();
    assert!(
        note.contains("written to hotspot-mikrobill") && note.contains("html-directory"),
        "{note}"
    );
    let on_router = |router: &FakeRouter| -> BTreeMap<String, BTreeMap<String, String>> {
        router
            .rows("/file")
            .into_iter()
            .map(|r| (r["name"].clone(), r))
            .collect()
    };
    let files = on_router(&router);
    assert_eq!(files["hotspot-mikrobill"]["type"], "directory");
    for (name, text) in &expected {
        let row = &files[&format!("hotspot-mikrobill/{name}")];
        assert_eq!(&row["contents"], text, "{name} on the router");
        assert_eq!(row["size"], text.len().to_string());
    }
    assert_eq!(files.len(), expected.len() + 1);

    // A second upload overwrites the files in place.
    let mut settings = s.admin.get("/api/v1/settings/billing").await.expect(200);
    settings["company_name"] = json!("Balai Net");
    s.admin
        .put("/api/v1/settings/billing", &settings)
        .await
        .expect(200);
    assert_eq!(upload(&s.admin, &site_id).await["status"], "applied");
    let files = on_router(&router);
    assert_eq!(files.len(), expected.len() + 1);
    assert!(files["hotspot-mikrobill/login.html"]["contents"].contains("Balai Net"));

    // A router older than RouterOS 7.9 cannot take files over the API: the command says
    // how to install the pages instead, and nothing is written.
    router.set_settings("/system/resource", &[("version", "7.8 (stable)")]);
    eventually(
        Duration::from_secs(20),
        "the old version reported",
        || async {
            let site = s
                .admin
                .get(&format!("/api/v1/sites/{site_id}"))
                .await
                .json();
            (site["router"]["version"] == "7.8 (stable)").then_some(())
        },
    )
    .await;
    let writes_before = router.commands().len();
    let refused = upload(&s.admin, &site_id).await;
    assert_eq!(refused["status"], "unsupported", "{refused}");
    let message = refused["result"].as_str().unwrap();
    assert!(
        message.contains("RouterOS 7.8 (stable) cannot receive files over the API")
            && message.contains("Winbox or FTP"),
        "{message}"
    );
    assert!(
        router.commands()[writes_before..]
            .iter()
            .all(|c| !c[0].starts_with("/file/")),
        "nothing was written to the old router"
    );

    agent.shutdown().await;
    router.stop().await;
    s.finish().await;
}

/// A PNG's signature and header, enough for the controller to take it as a logo.
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// The company logo: uploaded by an admin (API and settings page), refused when it is not a
/// raster image, carried in the pages' own `logo.css`, audited by its digest only, and gone
/// from the pages once removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_company_logo_rides_in_the_pages() {
    let s = Scenario::start(Backend::Sqlite).await;
    let site_id = s.site("Warung Kopi").await;
    let put = |api: &Api, body: &[u8]| {
        let (api, body) = (api.clone(), body.to_vec());
        async move {
            api.request_with_headers("PUT", "/api/v1/settings/logo", Some(body), "image/png", &[])
                .await
        }
    };
    assert_eq!(s.admin.get("/api/v1/settings/logo").await.status, 404);
    let operator = user(&s, "teknisi", "operator").await;
    assert_eq!(put(&operator, PNG).await.status, 403);
    let svg = put(
        &s.admin,
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
    )
    .await;
    assert_eq!(svg.status, 422, "{}", svg.text);
    assert!(
        svg.text.contains("not a PNG, JPEG, GIF or WebP"),
        "{}",
        svg.text
    );
    assert_eq!(put(&s.admin, &vec![0x89; 40 * 1024]).await.status, 413);

    let saved = put(&s.admin, PNG).await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert_eq!(saved.json()["content_type"], "image/png");
    let got = s.admin.get("/api/v1/settings/logo").await;
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert_eq!(got.body, PNG);

    let files = unzip(&download(&s.admin, &site_id).await.body);
    assert!(
        files["logo.css"].contains("url(\"data:image/png;base64,iVBORw0KGgo"),
        "{}",
        files["logo.css"]
    );
    assert!(files["login.html"].contains(r#"<link rel="stylesheet" href="logo.css">"#));
    let audit = s.admin.get("/api/v1/audit?limit=100").await.text;
    assert!(
        audit.contains("settings.logo") && audit.contains("sha256"),
        "{audit}"
    );
    assert!(
        !audit.contains("iVBORw0KGgo"),
        "the image is not in the audit log"
    );

    // The settings page shows it and takes a new one through its upload form.
    let mut web = WebClient::login(
        s.ctl.api_addr,
        "admin",
        mikrobill_tests::http::ADMIN_PASSWORD,
    )
    .await;
    let page = web.get("/settings").await;
    assert!(
        page.text.contains(r#"<img src="/settings/logo""#),
        "{}",
        page.text
    );
    assert_eq!(web.get("/settings/logo").await.body, PNG);
    let token = mikrobill_tests::web::csrf_of(&page.text).unwrap();
    let gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
    let res = web
        .post_multipart(
            "/settings/logo",
            &[("_csrf", &token)],
            Some(("logo", "logo.gif", gif)),
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(
        s.admin
            .get("/api/v1/settings/logo")
            .await
            .header("content-type"),
        Some("image/gif")
    );
    let forged = web
        .post_multipart("/settings/logo", &[], Some(("logo", "logo.png", PNG)))
        .await;
    assert_eq!(forged.status, 403);

    let res = web
        .post_form("/settings", "/settings/logo/remove", &[])
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    let files = unzip(&download(&s.admin, &site_id).await.body);
    assert!(!files.contains_key("logo.css"));
    assert!(files["login.html"].contains("<svg class=\"logo\""));
    assert_eq!(s.admin.delete("/api/v1/settings/logo").await.status, 404);
    s.finish().await;
}
