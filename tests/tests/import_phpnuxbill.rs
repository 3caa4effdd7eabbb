//! Moving in from PHPNuxBill with the real CLI: a dry run writes nothing, the import creates
//! sites, plans, customers with balances, a subscription billed from its expiration and
//! vouchers (checked through the API), a bad row is reported with its line and field while
//! the good rows go in, a disabled plan is archived, a banned customer's subscription is
//! isolated and a disabled one's hotspot login left out (noted on the customer, and in the
//! report as validity in months taken as 30 days is), a second run imports nothing again,
//! and a malformed dump imports nothing at all.

use mikrobill_core::billing::cycle;
use mikrobill_core::settings::BillingSettings;
use mikrobill_tests::{Backend, Scenario};
use serde_json::Value;
use std::path::PathBuf;

mikrobill_tests::on_both_backends!(phpnuxbill_dump_moves_in_once);

/// The fixture with its `{D+n}`/`{D-n}` placeholders as local dates around today.
fn fixture(dir: &std::path::Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/phpnuxbill.sql"),
    )
    .unwrap();
    let off = BillingSettings::default().utc_offset_minutes;
    let today = cycle::local_date(mikrobill_core::db::now_ms(), off);
    let mut out = text;
    for n in 0..=30i64 {
        out = out
            .replace(
                &format!("{{D+{n}}}"),
                &(today + time::Duration::days(n)).to_string(),
            )
            .replace(
                &format!("{{D-{n}}}"),
                &(today - time::Duration::days(n)).to_string(),
            );
    }
    let path = dir.join(name);
    std::fs::write(&path, edit(out)).unwrap();
    path
}

fn items(v: Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn find<'a>(list: &'a [Value], key: &str, value: &str) -> &'a Value {
    list.iter()
        .find(|x| x[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value:?} in {list:?}"))
}

async fn phpnuxbill_dump_moves_in_once(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let dump = fixture(s.dir.path(), "phpnuxbill.sql", |t| t);
    let dump = dump.to_str().unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "phpnuxbill",
            dump,
            "--site-for-unassigned",
            "Radius",
        ];
        args.extend_from_slice(extra);
        s.ctl.cli(&args)
    };

    // The dry run reports the plan and writes nothing.
    let dry = import(&["--dry-run"]);
    assert!(dry.contains("Dry run: nothing was written."), "{dry}");
    assert!(
        dry.contains("customer        would create 6, 0 already imported, 1 skipped"),
        "{dry}"
    );
    assert!(dry.contains("subscription    would create 2,"), "{dry}");
    // What is imported differently is said before anything is written.
    for note in [
        "note plan tbl_plans id 4 (line 69): validity 1 Months becomes 30 days",
        "note plan tbl_plans id 5 (line 69): archived: the plan is disabled in PHPNuxBill",
        "note customer tbl_customers id 5 (line 99): Banned in PHPNuxBill: noted on the customer; its PPPoE subscriptions are isolated",
        "note customer tbl_customers id 6 (line 99): Disabled in PHPNuxBill",
        "note customer tbl_customers id 7 (line 99): Inactive in PHPNuxBill: noted on the customer\n",
    ] {
        assert!(dry.contains(note), "{note:?} missing from {dry}");
    }
    assert!(items(admin.get("/api/v1/customers").await.expect(200)).is_empty());
    assert!(items(admin.get("/api/v1/plans").await.expect(200)).is_empty());
    assert!(items(admin.get("/api/v1/sites").await.expect(200)).is_empty());

    // The import.
    let out = import(&[]);
    assert!(
        out.contains("site            created 3, 0 already imported, 0 skipped"),
        "{out}"
    );
    assert!(
        out.contains("plan            created 5, 0 already imported, 0 skipped"),
        "{out}"
    );
    assert!(
        out.contains("active_voucher  created 1, 0 already imported, 1 skipped"),
        "{out}"
    );
    assert!(
        out.contains(
            "skipped active_voucher tbl_user_recharges id 5 (line 119, field customer_id): \
             customer 6 is Disabled in PHPNuxBill"
        ),
        "{out}"
    );
    assert!(
        out.contains("voucher         created 3, 0 already imported, 1 skipped"),
        "{out}"
    );
    // The bad row names its table, line and field; the good rows went in.
    assert!(
        out.contains("skipped customer tbl_customers id 3 (line 99, field balance)"),
        "{out}"
    );
    assert!(
        out.contains("tbl_user_recharges id 3 (line 119, field status)"),
        "{out}"
    );
    assert!(!out.contains("router-secret"), "{out}");

    let sites = items(admin.get("/api/v1/sites?limit=100").await.expect(200));
    let pusat = find(&sites, "name", "Pusat")["id"].clone();
    find(&sites, "name", "Cabang-Timur");
    let radius = find(&sites, "name", "Radius")["id"].clone();

    let customers = items(admin.get("/api/v1/customers?limit=100").await.expect(200));
    assert_eq!(customers.len(), 6, "{customers:?}");
    let budi = find(&customers, "name", "Budi O'Neil \\ \"Warnet\"");
    assert_eq!(budi["balance"], 25000);
    assert_eq!(budi["phone"], "+6281234567890");
    assert_eq!(budi["address"], "Jl. Mawar 1\nRT 02");
    let sari = find(&customers, "name", "Sari Dewi").clone();
    assert_eq!(sari["email"], "sari@example.com");
    // MikroBill customers have no status: PHPNuxBill's is kept in the notes.
    let joko = find(&customers, "name", "Joko").clone();
    assert_eq!(joko["notes"], "PHPNuxBill user joko, status Banned");
    assert_eq!(
        find(&customers, "name", "Eko")["notes"],
        "PHPNuxBill user eko, status Inactive"
    );
    assert_eq!(sari["notes"], "PHPNuxBill user sari");

    let plans = items(admin.get("/api/v1/plans").await.expect(200));
    let hotspot = find(&plans, "name", "Hotspot 3 Jam");
    assert_eq!(hotspot["kind"], "hotspot");
    assert_eq!(hotspot["price"], 5000);
    assert_eq!(hotspot["rate_limit"], "512k/2M");
    assert_eq!(hotspot["time_limit_secs"], 3 * 3600);
    assert_eq!(hotspot["data_limit_bytes"], 1i64 << 30);
    assert_eq!(hotspot["validity_secs"], 86_400);
    let home = find(&plans, "name", "Rumah 10M");
    assert_eq!(home["kind"], "pppoe");
    assert_eq!(home["price"], 150_000);
    assert_eq!(home["rate_limit"], "2M/10M");
    assert_eq!(find(&plans, "name", "Harian")["shared_users"], 2);
    // A month of validity is 30 days here (the report said so).
    assert_eq!(
        find(&plans, "name", "Bulanan")["validity_secs"],
        30 * 86_400
    );
    // The disabled plan is archived: listed only with the archived ones.
    assert!(plans.iter().all(|p| p["name"] != "Paket Lama"), "{plans:?}");
    let all_plans = items(admin.get("/api/v1/plans?archived=true").await.expect(200));
    let old_plan = find(&all_plans, "name", "Paket Lama");
    assert_eq!(old_plan["archived"], true);

    // Sari's PPPoE account, paid in PHPNuxBill until its expiration: no invoice before it.
    let all_subs = items(admin.get("/api/v1/subscriptions").await.expect(200));
    assert_eq!(all_subs.len(), 2, "{all_subs:?}");
    // Banned Joko's account is there, on the archived plan, isolated until an operator
    // lifts it.
    let joko_sub = find(&all_subs, "username", "joko.ppp");
    assert_eq!(joko_sub["customer_id"], joko["id"]);
    assert_eq!(joko_sub["plan_id"], old_plan["id"]);
    assert_eq!(joko_sub["status"], "isolated");
    assert_eq!(joko_sub["isolation_reason"], "manual");
    let subs: Vec<Value> = all_subs
        .iter()
        .filter(|x| x["username"] == "sari.ppp")
        .cloned()
        .collect();
    assert_eq!(subs[0]["username"], "sari.ppp");
    assert_eq!(subs[0]["customer_id"], sari["id"]);
    assert_eq!(subs[0]["site_id"], pusat);
    assert_eq!(subs[0]["status"], "active");
    let off = BillingSettings::default().utc_offset_minutes;
    let bill_from = cycle::local_date(mikrobill_core::db::now_ms(), off) + time::Duration::days(20);
    assert_eq!(
        subs[0]["next_cycle_at"],
        cycle::local_midnight_ms(bill_from, off)
    );
    assert!(items(admin.get("/api/v1/invoices").await.expect(200)).is_empty());

    let vouchers = items(admin.get("/api/v1/vouchers?limit=100").await.expect(200));
    assert_eq!(vouchers.len(), 4, "{vouchers:?}");
    let in_use = find(&vouchers, "code", "budi");
    assert_eq!(in_use["status"], "active");
    assert!(in_use["activated_at"].is_i64() && in_use["expires_at"].is_i64());
    assert_eq!(find(&vouchers, "code", "PNB1001")["status"], "new");
    assert_eq!(find(&vouchers, "code", "PNB3001")["site_id"], radius);

    // The audit log has the import's writes and no password of any kind.
    let audit = admin.get("/api/v1/audit?limit=200").await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    assert!(audit.text.contains("subscription.create"));
    for secret in ["ppp-secret-9", "budi-pass", "router-secret", "ppp-joko"] {
        assert!(!audit.text.contains(secret), "{secret} in the audit log");
    }

    // A second run imports nothing again.
    let again = import(&[]);
    assert!(
        again.contains("customer        created 0, 6 already imported, 1 skipped"),
        "{again}"
    );
    assert!(
        again.contains("subscription    created 0, 2 already imported"),
        "{again}"
    );
    assert!(
        again.contains("voucher         created 0, 3 already imported"),
        "{again}"
    );
    assert_eq!(
        items(admin.get("/api/v1/customers?limit=100").await.expect(200)).len(),
        6
    );

    // A malformed dump (cut short after a new router) imports nothing and fails.
    let cut = fixture(s.dir.path(), "cut.sql", |t| {
        let t = t.replace(
            "INSERT INTO `tbl_routers` VALUES (1,",
            "INSERT INTO `tbl_routers` VALUES (9,'Baru','10.9.0.1','a','b',NULL,'','Online',NULL,'0',1),(1,",
        );
        let end = t.find("INSERT INTO `tbl_voucher`").unwrap();
        format!(
            "{}INSERT INTO `tbl_voucher` VALUES (5,'Hotspot','Pusat',3,'X",
            &t[..end]
        )
    });
    let failed = s
        .ctl
        .cli_output(&["import", "phpnuxbill", cut.to_str().unwrap()]);
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("line 135") && err.contains("nothing was imported"),
        "{err}"
    );
    let sites = items(admin.get("/api/v1/sites?limit=100").await.expect(200));
    assert!(sites.iter().all(|x| x["name"] != "Baru"), "{sites:?}");

    s.finish().await;
}

mikrobill_tests::on_both_backends!(the_api_takes_the_dump_as_the_body);

/// The same import over HTTP: only a role that may create every kind of record may send a
/// dump, a dry run writes nothing, a malformed dump is refused with its line, and a re-run
/// imports nothing twice.
async fn the_api_takes_the_dump_as_the_body(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let dump = std::fs::read(fixture(s.dir.path(), "phpnuxbill.sql", |t| t)).unwrap();
    let send = |api: &mikrobill_tests::http::Api, query: &'static str, body: Vec<u8>| {
        let api = api.clone();
        async move {
            api.request_with_headers(
                "POST",
                &format!("/api/v1/imports/phpnuxbill?site_for_unassigned=Pusat{query}"),
                Some(body),
                "application/sql",
                &[],
            )
            .await
        }
    };
    let pw = s.ctl.cli(&["admin", "create", "ops", "--role", "operator"]);
    let pw = pw
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap();
    let operator = mikrobill_tests::http::Api::login(s.ctl.api_addr, "ops", pw).await;
    assert_eq!(send(&operator, "", dump.clone()).await.status, 403);

    let plans_before = items(admin.get("/api/v1/plans?limit=100").await.expect(200)).len();
    let dry = send(admin, "&dry_run=true", dump.clone()).await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    let report = dry.json();
    assert_eq!(report["dry_run"], true);
    let created = |r: &Value| {
        r["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["outcome"]["outcome"] == "created")
            .count()
    };
    assert!(created(&report) > 0, "{report}");
    assert_eq!(
        items(admin.get("/api/v1/plans?limit=100").await.expect(200)).len(),
        plans_before,
        "a dry run writes nothing"
    );

    // A real dump is larger than any form: bodies past the 2 MiB other routes take get in.
    let mut large = dump.clone();
    for _ in 0..(3 * 1024) {
        large.extend_from_slice(format!("-- {}\n", "x".repeat(1020)).as_bytes());
    }
    let large = send(admin, "&dry_run=true", large).await;
    assert_eq!(large.status, 200, "{}", large.text);
    assert_eq!(created(&large.json()), created(&report));
    let mut nul = dump.clone();
    nul.extend_from_slice(b"\nINSERT INTO `tbl_plans` VALUES (9,'a\0b');\n");
    let nul = send(admin, "", nul).await;
    assert_eq!(nul.status, 422, "{}", nul.text);
    assert!(nul.text.contains("NUL character"), "{}", nul.text);

    let mut broken = dump.clone();
    broken.extend_from_slice(b"\nINSERT INTO `tbl_plans` VALUES (1,'unterminated\n");
    let refused = send(admin, "", broken).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("line"), "{}", refused.text);

    let done = send(admin, "", dump.clone()).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(
        created(&done.json()),
        created(&report),
        "as the dry run said"
    );
    let again = send(admin, "", dump).await.json();
    assert_eq!(created(&again), 0, "{again}");
    s.finish().await;
}

/// A customer export in PHPNuxBill's own format (every value quoted, quotes inside a value
/// left unescaped, CR LF after a spreadsheet saved it again).
const CUSTOMERS_CSV: &str = concat!(
    "\"id\",\"username\",\"fullname\",\"address\",\"phonenumber\",\"email\",\"balance\",\"service_type\"\r\n",
    "\"1\",\"budi\",\"Budi \"Warnet\"\",\"Jl. Mawar 1, RT 02\",\"0812-3456-7890\",\"1\",\"25000.00\",\"Hotspot\"\r\n",
    "\"2\",\"sari\",\"Sari Dewi\",\"Jl. Melati 7\",\"0\",\"sari@example.com\",\"0.00\",\"PPPoE\"\r\n",
    "\"3\",\"andi\",\"Andi\",\"\",\"0\",\"1\",\"lima ribu\",\"Others\"\r\n",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_csv_export_moves_in_before_the_dump() {
    let s = Scenario::start(Backend::Sqlite).await;
    let admin = &s.admin;
    let csv = s.dir.path().join("phpnuxbill_customers.csv");
    std::fs::write(&csv, CUSTOMERS_CSV).unwrap();
    let csv = csv.to_str().unwrap();

    let dry = s.ctl.cli(&["import", "phpnuxbill", csv, "--dry-run"]);
    assert!(
        dry.contains("customer        would create 2, 0 already imported, 1 skipped"),
        "{dry}"
    );
    assert!(items(admin.get("/api/v1/customers").await.expect(200)).is_empty());

    let out = s.ctl.cli(&["import", "phpnuxbill", csv]);
    assert!(
        out.contains("customer        created 2, 0 already imported, 1 skipped"),
        "{out}"
    );
    assert!(
        out.contains("skipped customer tbl_customers id 3 (line 4, field balance)"),
        "{out}"
    );
    let customers = items(admin.get("/api/v1/customers?limit=100").await.expect(200));
    assert_eq!(customers.len(), 2, "{customers:?}");
    let budi = find(&customers, "name", "Budi \"Warnet\"");
    assert_eq!(budi["balance"], 25000);
    assert_eq!(budi["phone"], "+6281234567890");
    assert_eq!(budi["address"], "Jl. Mawar 1, RT 02");

    // The database dump later finds the customers the CSV brought in.
    let dump = fixture(s.dir.path(), "phpnuxbill.sql", |t| t);
    let out = s.ctl.cli(&[
        "import",
        "phpnuxbill",
        dump.to_str().unwrap(),
        "--site-for-unassigned",
        "Radius",
    ]);
    assert!(
        out.contains("customer        created 4, 2 already imported, 1 skipped"),
        "{out}"
    );
    let customers = items(admin.get("/api/v1/customers?limit=100").await.expect(200));
    assert_eq!(customers.len(), 6, "{customers:?}");

    // The same file over HTTP is recognised as CSV too; a cut-off file imports nothing.
    let cut = admin
        .request_with_headers(
            "POST",
            "/api/v1/imports/phpnuxbill",
            Some(b"\"id\",\"username\"\n\"9\",\"cut".to_vec()),
            "text/csv",
            &[],
        )
        .await;
    assert_eq!(cut.status, 422, "{}", cut.text);
    assert!(
        cut.text.contains("line 2: a quoted value never ends"),
        "{}",
        cut.text
    );
    s.finish().await;
}

/// The admin UI's upload page runs the same import: the form's token is checked before the
/// file is read, a dry run shows the report and writes nothing, the import creates, and a
/// role that may not import gets neither the page nor the upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_ui_uploads_a_dump() {
    use mikrobill_tests::web::{WebClient, csrf_of};
    let s = Scenario::start(Backend::Sqlite).await;
    let dump = std::fs::read(fixture(s.dir.path(), "phpnuxbill.sql", |t| t)).unwrap();
    let mut web = WebClient::login(
        s.ctl.api_addr,
        "admin",
        mikrobill_tests::http::ADMIN_PASSWORD,
    )
    .await;
    web.get("/lang/en").await;
    let page = web.get("/imports").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("enctype=\"multipart/form-data\""));
    let token = csrf_of(&page.text).unwrap();
    let file = Some(("file", "phpnuxbill.sql", dump.as_slice()));

    // Without the token first, nothing is read.
    let forged = web
        .post_multipart("/imports", &[("dry_run", "1")], file)
        .await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    let forged = web
        .post_multipart("/imports", &[("_csrf", "0123"), ("dry_run", "1")], file)
        .await;
    assert_eq!(forged.status, 403, "{}", forged.text);

    let dry = web
        .post_multipart(
            "/imports",
            &[
                ("_csrf", &token),
                ("site_for_unassigned", "Radius"),
                ("dry_run", "1"),
            ],
            file,
        )
        .await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    assert!(dry.text.contains("id=\"report\""), "{}", dry.text);
    assert!(
        dry.text
            .contains("<tr data-kind=\"customer\"><td>Customers</td><td class=\"num\">6</td><td class=\"num\">0</td><td class=\"num\">1</td></tr>"),
        "{}",
        dry.text
    );
    assert!(dry.text.contains("tbl_customers #3"), "{}", dry.text);
    // Rows imported differently are listed too.
    assert!(
        dry.text
            .contains("<td>archived: the plan is disabled in PHPNuxBill</td>"),
        "{}",
        dry.text
    );
    assert!(items(s.admin.get("/api/v1/customers").await.expect(200)).is_empty());

    let done = web
        .post_multipart(
            "/imports",
            &[("_csrf", &token), ("site_for_unassigned", "Radius")],
            file,
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Import done."), "{}", done.text);
    assert_eq!(
        items(s.admin.get("/api/v1/customers?limit=100").await.expect(200)).len(),
        6
    );

    // A file that is not a dump is reported on the page; no file at all is asked for.
    let bad = web
        .post_multipart(
            "/imports",
            &[("_csrf", &token)],
            Some(("file", "x.sql", b"INSERT INTO `tbl_plans` VALUES (1,'cut")),
        )
        .await;
    assert_eq!(bad.status, 200, "{}", bad.text);
    assert!(bad.text.contains("nothing was imported"), "{}", bad.text);
    let none = web
        .post_multipart("/imports", &[("_csrf", &token)], None)
        .await;
    assert!(
        none.text.contains("Choose a dump or CSV file first."),
        "{}",
        none.text
    );

    // An operator may not import: no page, no upload, no menu entry.
    let pw = s.ctl.cli(&["admin", "create", "ops", "--role", "operator"]);
    let pw = pw
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap();
    let mut ops = WebClient::login(s.ctl.api_addr, "ops", pw).await;
    let home = ops.get("/").await;
    assert!(!home.text.contains("href=\"/imports\""), "{}", home.text);
    assert_eq!(ops.get("/imports").await.status, 403);
    let ops_token = csrf_of(&home.text).unwrap();
    let refused = ops
        .post_multipart("/imports", &[("_csrf", &ops_token)], file)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    s.finish().await;
}
