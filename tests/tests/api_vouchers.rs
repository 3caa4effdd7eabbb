//! Vouchers as a business through a real controller: 100,000-code batches, site-group scope
//! reaching exactly the group's agents, selling to resellers and resellers buying from their
//! balance, revocation and state conflicts, the expiry sweep, validation and roles.

use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus, RecordId};
use mikrobill_protocol::items::VoucherStatus;
use mikrobill_protocol::messages::ChangeOp;
use mikrobill_tests::Scenario;
use mikrobill_tests::http::Api;
use mikrobill_tests::{Backend, Controller, agents, eventually};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

mikrobill_tests::on_both_backends!(
    a_hundred_thousand_vouchers,
    group_scope_reaches_exactly_the_members,
    selling_a_batch_to_a_reseller,
    resellers_buy_and_see_only_their_own,
    revocation_and_state_conflicts,
    the_expiry_sweep,
    validation_and_roles
);

const UNAMBIGUOUS: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Creates a plan with the CLI and returns its id.
fn plan(ctl: &Controller, name: &str, price: i64, extra: &[&str]) -> String {
    let price = price.to_string();
    let mut args = vec!["plan", "add", name, "--price", &price];
    args.extend_from_slice(extra);
    let out = ctl.cli(&args);
    out.split("(id ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("no plan id in {out:?}"))
        .to_string()
}

/// Creates an admin user with `role` through the API; returns its id and a logged-in client.
async fn user(admin: &Api, ctl: &Controller, name: &str, role: &str) -> (String, Api) {
    let password = format!("{name}-password-123");
    let created = admin
        .post(
            "/api/v1/admins",
            &json!({"username": name, "password": password, "role": role}),
        )
        .await
        .expect(201);
    let api = Api::login(ctl.api_addr, name, &password).await;
    (created["id"].as_str().unwrap().to_string(), api)
}

async fn site_id(ctl: &Controller, name: &str) -> String {
    mikrobill_core::sites::by_name(&ctl.db().await, name)
        .await
        .unwrap()
        .id
}

async fn balance(admin: &Api, id: &str) -> i64 {
    admin.get(&format!("/api/v1/admins/{id}")).await.expect(200)["balance"]
        .as_i64()
        .unwrap()
}

/// Every voucher of a batch, paging through `/voucher-batches/{id}/vouchers`.
async fn batch_codes(api: &Api, batch_id: &str, limit: u32) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/voucher-batches/{batch_id}/vouchers?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = api.get(&path).await.expect(200);
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

fn codes_of(vouchers: &[Value]) -> Vec<String> {
    vouchers
        .iter()
        .map(|v| v["code"].as_str().unwrap().to_string())
        .collect()
}

#[track_caller]
fn problem(res: &mikrobill_tests::http::Response, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(res.status, status, "{}", res.text);
    let body = res.json();
    assert_eq!(body["code"], code, "{}", res.text);
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{}", res.text);
    }
}

async fn a_hundred_thousand_vouchers(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let plan_id = plan(&ctl, "Harian", 5000, &["--validity", "1day"]);

    let started = Instant::now();
    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan_id, "count": 100_000, "scope": "all", "prefix": "HS-", "length": 8,
                    "note": "launch"}),
        )
        .await
        .expect(201);
    println!(
        "[{backend:?}] generated 100,000 vouchers in {:?}",
        started.elapsed()
    );
    assert_eq!(batch["count"], 100_000);
    assert_eq!(batch["price"], 5000, "the plan's price is the default");
    assert_eq!(batch["scope"], "all");
    assert_eq!(batch["password_mode"], "code");
    assert!(batch.get("codes").is_none() && batch.get("vouchers").is_none());
    let id = batch["id"].as_str().unwrap();

    let detail = admin
        .get(&format!("/api/v1/voucher-batches/{id}"))
        .await
        .expect(200);
    assert_eq!(detail["counts"]["new"], 100_000);

    let started = Instant::now();
    let vouchers = batch_codes(&admin, id, 500).await;
    println!(
        "[{backend:?}] paged through them in {:?}",
        started.elapsed()
    );
    assert_eq!(vouchers.len(), 100_000);
    let codes = codes_of(&vouchers);
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 100_000);
    for c in &codes {
        let random = c.strip_prefix("HS-").expect("prefixed");
        assert_eq!(random.len(), 8);
        assert!(random.chars().all(|ch| UNAMBIGUOUS.contains(ch)), "{c}");
    }
    assert!(
        codes.windows(2).all(|w| w[0] < w[1]),
        "pages come in code order"
    );
    assert!(vouchers.iter().all(|v| v["password"].is_null()
        && v["status"] == "new"
        && v["price"] == 5000
        && v["batch_id"] == id));

    // Separate passwords, digits only.
    let small = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan_id, "count": 50, "scope": "all", "length": 5,
                    "password_mode": "separate", "password_length": 6, "password_digits": true, "price": 0}),
        )
        .await
        .expect(201);
    assert_eq!(small["password_mode"], "separate");
    assert_eq!(small["price"], 0);
    let small = batch_codes(&admin, small["id"].as_str().unwrap(), 20).await;
    assert_eq!(small.len(), 50);
    for v in &small {
        let pw = v["password"].as_str().unwrap();
        assert!(pw.len() == 6 && pw.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(v["code"].as_str().unwrap().len(), 5);
    }

    // Two batches in a small keyspace (31^4 = 923,521 codes, just over 100 x 9,000): about
    // 90 codes of the second collide with the first and are regenerated, so both are whole.
    let mut crowded = Vec::new();
    for _ in 0..2 {
        let b = admin
            .post(
                "/api/v1/voucher-batches",
                &json!({"plan_id": plan_id, "count": 9_000, "scope": "all", "prefix": "C-", "length": 4}),
            )
            .await
            .expect(201);
        let bid = b["id"].as_str().unwrap().to_string();
        let detail = admin
            .get(&format!("/api/v1/voucher-batches/{bid}"))
            .await
            .expect(200);
        assert_eq!(detail["counts"]["new"], 9_000);
        crowded.push(bid);
    }

    // The batch list, newest first, paged.
    let page = admin
        .get("/api/v1/voucher-batches?limit=3")
        .await
        .expect(200);
    assert_eq!(page["items"][0]["id"], crowded[1].as_str());
    assert_eq!(page["items"][1]["id"], crowded[0].as_str());
    assert_eq!(page["items"][2]["count"], 50);
    let next = page["next_cursor"].as_str().unwrap();
    let page2 = admin
        .get(&format!("/api/v1/voucher-batches?limit=1&cursor={next}"))
        .await
        .expect(200);
    assert_eq!(page2["items"][0]["id"], id);
    assert!(page2["next_cursor"].is_null());
    let by_prefix = admin
        .get(&format!("/api/v1/vouchers?q={}&limit=10", &codes[500][..6]))
        .await
        .expect(200);
    let found = codes_of(by_prefix["items"].as_array().unwrap());
    assert!(found.contains(&codes[500]));
    assert!(found.iter().all(|c| c.starts_with(&codes[500][..6])));
    db.cleanup().await;
}

async fn group_scope_reaches_exactly_the_members(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let plan_id = plan(&ctl, "Jam", 2000, &["--time-limit", "1h"]);

    // Four sites with agents: a member from the start, an outsider, one that joins while
    // connected (live changes), one that joins before its first connection (snapshot).
    let mut dirs = Vec::new();
    let mut ids = Vec::new();
    for name in ["member", "outsider", "joins-live", "joins-offline"] {
        let d = tempfile::tempdir().unwrap();
        agents::enroll(&ctl.add_site(name), d.path()).await;
        ids.push(agents::site_id(d.path()));
        dirs.push(d);
    }
    let group = admin
        .post("/api/v1/site-groups", &json!({"name": "Pasar Raya"}))
        .await
        .expect(201);
    let gid = group["id"].as_str().unwrap().to_string();
    problem(
        &admin
            .post("/api/v1/site-groups", &json!({"name": "Pasar Raya"}))
            .await,
        409,
        "exists",
        None,
    );
    let put = |site: &str| {
        let admin = admin.clone();
        let path = format!("/api/v1/site-groups/{gid}/sites/{site}");
        async move { admin.request("PUT", &path, None, "application/json").await }
    };
    let g = put(&ids[0]).await.expect(200);
    assert_eq!(g["sites"][0]["name"], "member");
    // Putting a member again changes nothing.
    assert_eq!(
        put(&ids[0]).await.expect(200)["sites"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    problem(&put("no-such-site").await, 404, "not_found", None);

    let member = agents::start(dirs[0].path(), None).await;
    let outsider = agents::start(dirs[1].path(), None).await;
    let live = agents::start(dirs[2].path(), None).await;
    for a in [&member, &outsider, &live] {
        agents::wait_connected(a).await;
    }

    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan_id, "count": 20, "scope": "group", "group_id": gid, "prefix": "GRP"}),
        )
        .await
        .expect(201);
    assert_eq!(batch["scope"], "group");
    assert_eq!(batch["group_id"], gid.as_str());
    let codes = codes_of(&batch_codes(&admin, batch["id"].as_str().unwrap(), 500).await);
    assert_eq!(codes.len(), 20);
    // A marker for every site, created after the group batch: once it is in the outsider's
    // cache, the group vouchers would have arrived too if they leaked.
    let marker = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan_id, "count": 1, "scope": "all", "prefix": "MARK"}),
        )
        .await
        .expect(201);
    let marker =
        codes_of(&batch_codes(&admin, marker["id"].as_str().unwrap(), 10).await)[0].clone();

    let member_cache = member.cache().clone();
    eventually(
        Duration::from_secs(10),
        "group vouchers at the member",
        || async {
            codes
                .iter()
                .all(|c| member_cache.voucher(c).unwrap().is_some())
                .then_some(())
        },
    )
    .await;
    for agent in [&outsider, &live] {
        let cache = agent.cache().clone();
        eventually(Duration::from_secs(10), "marker everywhere", || async {
            cache.voucher(&marker).unwrap().map(|_| ())
        })
        .await;
        assert!(
            codes.iter().all(|c| cache.voucher(c).unwrap().is_none()),
            "a group voucher leaked outside the group"
        );
    }

    // Joining while connected: the group's vouchers arrive as changes.
    put(&ids[2]).await.expect(200);
    let live_cache = live.cache().clone();
    eventually(
        Duration::from_secs(10),
        "group vouchers after joining",
        || async {
            codes
                .iter()
                .all(|c| live_cache.voucher(c).unwrap().is_some())
                .then_some(())
        },
    )
    .await;
    // A revoked group voucher leaves every member.
    admin
        .post(&format!("/api/v1/vouchers/{}/revoke", codes[0]), &json!({}))
        .await
        .expect(200);
    for cache in [&member_cache, &live_cache] {
        eventually(
            Duration::from_secs(10),
            "revoked group voucher gone",
            || async { cache.voucher(&codes[0]).unwrap().is_none().then_some(()) },
        )
        .await;
    }

    // Joining before the first connection: the snapshot carries the group's vouchers, not
    // the revoked one.
    put(&ids[3]).await.expect(200);
    let offline = agents::start(dirs[3].path(), None).await;
    agents::wait_connected(&offline).await;
    let offline_cache = offline.cache().clone();
    eventually(
        Duration::from_secs(10),
        "group vouchers in the snapshot",
        || async {
            codes[1..]
                .iter()
                .all(|c| offline_cache.voucher(c).unwrap().is_some())
                .then_some(())
        },
    )
    .await;
    assert!(offline_cache.voucher(&codes[0]).unwrap().is_none());
    let usable = admin
        .get(&format!("/api/v1/vouchers?site_id={}&limit=100", ids[3]))
        .await
        .expect(200);
    assert_eq!(
        usable["items"].as_array().unwrap().len(),
        21,
        "20 group vouchers (one revoked, still listed) and the marker"
    );
    let outside = admin
        .get(&format!("/api/v1/vouchers?site_id={}&limit=100", ids[1]))
        .await
        .expect(200);
    assert_eq!(
        codes_of(outside["items"].as_array().unwrap()),
        vec![marker.clone()]
    );

    // Leaving the group deletes them from that site only.
    let after = admin
        .delete(&format!("/api/v1/site-groups/{gid}/sites/{}", ids[2]))
        .await
        .expect(200);
    assert_eq!(after["sites"].as_array().unwrap().len(), 2);
    eventually(
        Duration::from_secs(10),
        "group vouchers gone after leaving",
        || async {
            codes
                .iter()
                .all(|c| live_cache.voucher(c).unwrap().is_none())
                .then_some(())
        },
    )
    .await;
    assert!(member_cache.voucher(&codes[1]).unwrap().is_some());
    problem(
        &admin
            .delete(&format!("/api/v1/site-groups/{gid}/sites/{}", ids[2]))
            .await,
        404,
        "not_found",
        None,
    );
    let listed = admin.get("/api/v1/site-groups").await.expect(200);
    assert_eq!(listed["items"][0]["sites"].as_array().unwrap().len(), 2);
    for a in [member, outsider, live, offline] {
        a.shutdown().await;
    }
    db.cleanup().await;
}

async fn selling_a_batch_to_a_reseller(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let plan_id = plan(&ctl, "Harian", 1500, &[]);
    let (reseller_id, _) = user(&admin, &ctl, "toko-budi", "reseller").await;
    let (_, cashier) = user(&admin, &ctl, "kasir", "cashier").await;
    admin
        .post(
            &format!("/api/v1/resellers/{reseller_id}/credit"),
            &json!({"amount": 10_000}),
        )
        .await
        .expect(200);
    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan_id, "count": 10, "scope": "all"}),
        )
        .await
        .expect(201);
    let id = batch["id"].as_str().unwrap();
    let codes = codes_of(&batch_codes(&admin, id, 500).await);

    // 10 x 1500 = 15000 > 10000: refused, and nothing changed.
    let refused = cashier
        .post(
            &format!("/api/v1/voucher-batches/{id}/sell"),
            &json!({"reseller_id": reseller_id}),
        )
        .await;
    problem(&refused, 409, "insufficient_balance", None);
    assert_eq!(balance(&admin, &reseller_id).await, 10_000);
    let detail = admin
        .get(&format!("/api/v1/voucher-batches/{id}"))
        .await
        .expect(200);
    assert_eq!(detail["counts"]["new"], 10);
    assert!(detail["owner_id"].is_null());

    // One voucher sold over the counter first; the other 9 go to the reseller for 13500.
    let sold = cashier
        .post(
            &format!("/api/v1/vouchers/{}/sell", codes[0]),
            &json!({"price": 2000}),
        )
        .await
        .expect(200);
    assert_eq!(sold["status"], "sold");
    assert_eq!(sold["price"], 2000);
    assert!(sold["sold_at"].as_i64().is_some() && sold["sold_to"].is_null());
    admin
        .post(
            &format!("/api/v1/resellers/{reseller_id}/credit"),
            &json!({"amount": 5_000}),
        )
        .await
        .expect(200);
    let sale = cashier
        .post(
            &format!("/api/v1/voucher-batches/{id}/sell"),
            &json!({"reseller_id": reseller_id}),
        )
        .await
        .expect(200);
    assert_eq!(sale["sold"], 9);
    assert_eq!(sale["amount"], 9 * 1500);
    assert_eq!(sale["balance"], 15_000 - 9 * 1500);
    assert_eq!(sale["batch"]["owner_id"], reseller_id.as_str());
    assert_eq!(balance(&admin, &reseller_id).await, 1_500);
    // Money taken: the two top-ups and the cash sale. The batch was paid from the reseller's
    // balance, which was revenue when it was topped up, so it adds nothing.
    let summary = admin.get("/api/v1/reports/summary").await.expect(200);
    assert_eq!(
        summary["revenue_today"],
        10_000 + 2_000 + 5_000,
        "{summary}"
    );
    assert_eq!(summary["revenue_month"], 10_000 + 2_000 + 5_000);
    assert_eq!(
        cashier.get("/api/v1/reports/summary").await.status,
        200,
        "a cashier reads payments"
    );
    let detail = admin
        .get(&format!("/api/v1/voucher-batches/{id}"))
        .await
        .expect(200);
    assert_eq!(detail["counts"]["sold"], 10);
    assert_eq!(detail["owner_id"], reseller_id.as_str());
    let theirs = admin
        .get(&format!("/api/v1/vouchers?batch_id={id}&status=sold"))
        .await
        .expect(200);
    let theirs = theirs["items"].as_array().unwrap();
    assert_eq!(theirs.len(), 10);
    assert_eq!(
        theirs
            .iter()
            .filter(|v| v["sold_to"] == reseller_id.as_str())
            .count(),
        9
    );

    // A batch is sold once.
    problem(
        &cashier
            .post(
                &format!("/api/v1/voucher-batches/{id}/sell"),
                &json!({"reseller_id": reseller_id}),
            )
            .await,
        409,
        "invalid_state",
        None,
    );
    assert_eq!(balance(&admin, &reseller_id).await, 1_500);
    // Only to a reseller.
    let other = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan_id, "count": 2, "scope": "all"}),
        )
        .await
        .expect(201);
    let me = cashier.get("/api/v1/auth/me").await.expect(200);
    problem(
        &cashier
            .post(
                &format!(
                    "/api/v1/voucher-batches/{}/sell",
                    other["id"].as_str().unwrap()
                ),
                &json!({"reseller_id": me["id"]}),
            )
            .await,
        422,
        "invalid",
        Some("reseller_id"),
    );
    // The sale is in the audit log with its money, not its codes.
    let audit = admin
        .get(&format!(
            "/api/v1/audit?entity=voucher_batch&entity_id={id}"
        ))
        .await
        .expect(200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["voucher_batch.sell", "voucher_batch.create"]);
    assert_eq!(audit["items"][0]["after"]["amount"], 13_500);
    db.cleanup().await;
}

async fn resellers_buy_and_see_only_their_own(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let plan_id = plan(&ctl, "Harian", 1000, &[]);
    let (r1_id, r1) = user(&admin, &ctl, "reseller-one", "reseller").await;
    let (r2_id, r2) = user(&admin, &ctl, "reseller-two", "reseller").await;
    for (id, amount) in [(&r1_id, 10_000), (&r2_id, 3_000)] {
        admin
            .post(
                &format!("/api/v1/resellers/{id}/credit"),
                &json!({"amount": amount}),
            )
            .await
            .expect(200);
    }

    let bought = r1
        .post(
            "/api/v1/reseller/voucher-batches",
            &json!({"plan_id": plan_id, "count": 5, "scope": "all", "prefix": "R1-"}),
        )
        .await
        .expect(201);
    assert_eq!(bought["sold"], 5);
    assert_eq!(bought["amount"], 5_000);
    assert_eq!(bought["balance"], 5_000);
    assert_eq!(bought["batch"]["owner_id"], r1_id.as_str());
    assert_eq!(bought["batch"]["price"], 1000);
    let b1 = bought["batch"]["id"].as_str().unwrap().to_string();
    // The price is the plan's, never the buyer's.
    let priced = r1
        .post(
            "/api/v1/reseller/voucher-batches",
            &json!({"plan_id": plan_id, "count": 1, "scope": "all", "price": 1}),
        )
        .await;
    assert_eq!(priced.status, 400, "{}", priced.text);
    // Not enough balance: nothing happens.
    problem(
        &r1.post(
            "/api/v1/reseller/voucher-batches",
            &json!({"plan_id": plan_id, "count": 6, "scope": "all"}),
        )
        .await,
        409,
        "insufficient_balance",
        None,
    );
    assert_eq!(balance(&admin, &r1_id).await, 5_000);
    let all = admin.get("/api/v1/voucher-batches").await.expect(200);
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let b2 = r2
        .post(
            "/api/v1/reseller/voucher-batches",
            &json!({"plan_id": plan_id, "count": 2, "scope": "all", "prefix": "R2-"}),
        )
        .await
        .expect(201)["batch"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Each reseller sees its own batch and vouchers only; another's answer 404.
    let mine = r1.get("/api/v1/voucher-batches").await.expect(200);
    let mine = mine["items"].as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], b1.as_str());
    let filtered = r1
        .get(&format!("/api/v1/voucher-batches?owner_id={r2_id}"))
        .await
        .expect(200);
    assert!(filtered["items"].as_array().unwrap().is_empty());
    problem(
        &r1.get(&format!("/api/v1/voucher-batches/{b2}")).await,
        404,
        "not_found",
        None,
    );
    problem(
        &r1.get(&format!("/api/v1/voucher-batches/{b2}/vouchers"))
            .await,
        404,
        "not_found",
        None,
    );
    let detail = r1
        .get(&format!("/api/v1/voucher-batches/{b1}"))
        .await
        .expect(200);
    assert_eq!(detail["counts"]["sold"], 5);
    let vouchers = r1.get("/api/v1/vouchers").await.expect(200);
    let vouchers = vouchers["items"].as_array().unwrap();
    assert_eq!(vouchers.len(), 5);
    assert!(vouchers.iter().all(|v| v["status"] == "sold"
        && v["sold_to"] == r1_id.as_str()
        && v["code"].as_str().unwrap().starts_with("R1-")));
    let r2_codes = codes_of(&batch_codes(&r2, &b2, 10).await);
    assert_eq!(r2_codes.len(), 2);
    problem(
        &r1.get(&format!("/api/v1/vouchers/{}", r2_codes[0])).await,
        404,
        "not_found",
        None,
    );
    r2.get(&format!("/api/v1/vouchers/{}", r2_codes[0]))
        .await
        .expect(200);
    assert_eq!(
        r1.get(&format!("/api/v1/vouchers?batch_id={b2}"))
            .await
            .expect(200)["items"],
        json!([])
    );
    // Staff see both.
    let everything = admin.get("/api/v1/vouchers").await.expect(200);
    assert_eq!(everything["items"].as_array().unwrap().len(), 7);
    let by_owner = admin
        .get(&format!("/api/v1/voucher-batches?owner_id={r2_id}"))
        .await
        .expect(200);
    assert_eq!(by_owner["items"][0]["id"], b2.as_str());
    // A reseller neither generates for the house, sells, revokes nor manages sites.
    assert_eq!(
        r1.post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan_id, "count": 1, "scope": "all"})
        )
        .await
        .status,
        403
    );
    assert_eq!(
        r1.post(
            &format!("/api/v1/vouchers/{}/sell", r2_codes[0]),
            &json!({})
        )
        .await
        .status,
        403
    );
    assert_eq!(
        r1.post(&format!("/api/v1/voucher-batches/{b1}/revoke"), &json!({}))
            .await
            .status,
        403
    );
    assert_eq!(r1.get("/api/v1/site-groups").await.status, 403);
    // Buying is for resellers.
    problem(
        &admin
            .post(
                "/api/v1/reseller/voucher-batches",
                &json!({"plan_id": plan_id, "count": 1, "scope": "all"}),
            )
            .await,
        409,
        "not_reseller",
        None,
    );
    db.cleanup().await;
}

async fn revocation_and_state_conflicts(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let plan_id = plan(&ctl, "Harian", 1000, &[]);
    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan_id, "count": 3, "scope": "all"}),
        )
        .await
        .expect(201);
    let id = batch["id"].as_str().unwrap();
    let codes = codes_of(&batch_codes(&admin, id, 500).await);

    admin
        .post(&format!("/api/v1/vouchers/{}/sell", codes[0]), &json!({}))
        .await
        .expect(200);
    problem(
        &admin
            .post(&format!("/api/v1/vouchers/{}/sell", codes[0]), &json!({}))
            .await,
        409,
        "invalid_state",
        None,
    );
    let revoked = admin
        .post(&format!("/api/v1/vouchers/{}/revoke", codes[0]), &json!({}))
        .await
        .expect(200);
    assert_eq!(revoked["status"], "revoked");
    problem(
        &admin
            .post(&format!("/api/v1/vouchers/{}/revoke", codes[0]), &json!({}))
            .await,
        409,
        "invalid_state",
        None,
    );
    problem(
        &admin
            .post(&format!("/api/v1/vouchers/{}/sell", codes[0]), &json!({}))
            .await,
        409,
        "invalid_state",
        None,
    );
    problem(
        &admin.post("/api/v1/vouchers/NOPE/revoke", &json!({})).await,
        404,
        "not_found",
        None,
    );
    // The CLI's revoke follows the same rules.
    let out = ctl.cli_output(&["voucher", "revoke", &codes[0]]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only new, sold or active"));

    let done = admin
        .post(&format!("/api/v1/voucher-batches/{id}/revoke"), &json!({}))
        .await
        .expect(200);
    assert_eq!(done["revoked"], 2);
    let detail = admin
        .get(&format!("/api/v1/voucher-batches/{id}"))
        .await
        .expect(200);
    assert_eq!(detail["counts"]["revoked"], 3);
    problem(
        &admin
            .post(&format!("/api/v1/voucher-batches/{id}/revoke"), &json!({}))
            .await,
        409,
        "invalid_state",
        None,
    );
    problem(
        &admin
            .post("/api/v1/voucher-batches/nope/revoke", &json!({}))
            .await,
        404,
        "not_found",
        None,
    );
    let audit = admin.get("/api/v1/audit?entity=voucher").await.expect(200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["voucher.revoke", "voucher.sell"]);
    db.cleanup().await;
}

fn start_record(code: &str, at_ms: i64) -> AccountingRecord {
    let session_id = format!("s-{code}");
    AccountingRecord {
        id: RecordId::derive("router-1", &session_id, AcctStatus::Start, 0),
        nas_identifier: "router-1".into(),
        nas_ip: None,
        session_id,
        username: code.to_string(),
        status: AcctStatus::Start,
        event_time_ms: at_ms,
        session_time_secs: 0,
        input_octets: 0,
        output_octets: 0,
        input_packets: 0,
        output_packets: 0,
        terminate_cause: None,
        framed_ip: None,
        calling_station_id: None,
    }
}

async fn the_expiry_sweep(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let plan_id = plan(&ctl, "Sejam", 1000, &["--validity", "1h"]);
    ctl.add_site("kios");
    let site = site_id(&ctl, "kios").await;
    let group = admin
        .post("/api/v1/site-groups", &json!({"name": "kios-group"}))
        .await
        .expect(201);
    let gid = group["id"].as_str().unwrap();
    admin
        .request(
            "PUT",
            &format!("/api/v1/site-groups/{gid}/sites/{site}"),
            None,
            "application/json",
        )
        .await
        .expect(200);
    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan_id, "count": 4, "scope": "group", "group_id": gid}),
        )
        .await
        .expect(201);
    let codes = codes_of(&batch_codes(&admin, batch["id"].as_str().unwrap(), 10).await);

    // First use through the real ingest path: 59 minutes ago, and just now. (Ingest itself
    // ends a voucher whose validity has already passed, so the sweep's case is one that
    // runs out after its records arrived.)
    let cdb = ctl.db().await;
    let now = mikrobill_core::db::now_ms();
    mikrobill_core::accounting::ingest(
        &cdb,
        &site,
        &[
            start_record(&codes[0], now - 3_600_000 + 60_000),
            start_record(&codes[1], now - 60_000),
            start_record(&codes[2], now - 60_000),
        ],
    )
    .await
    .unwrap();
    let status = |code: String| {
        let admin = admin.clone();
        async move {
            admin
                .get(&format!("/api/v1/vouchers/{code}"))
                .await
                .expect(200)["status"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(status(codes[0].clone()).await, "active");
    let head = mikrobill_core::sync_log::head(&cdb).await.unwrap();

    let expired = mikrobill_core::vouchers::sweep::expire_due(&cdb, now + 60_000)
        .await
        .unwrap();
    assert_eq!(expired, 1, "only the one used an hour ago on a 1h plan");
    assert_eq!(status(codes[0].clone()).await, "expired");
    assert_eq!(status(codes[1].clone()).await, "active");
    assert_eq!(
        status(codes[3].clone()).await,
        "new",
        "never used: no validity yet"
    );
    // The expiry went to the group's member site as an upsert the agent rejects.
    let changes = mikrobill_core::sync_log::changes_after(&cdb, &site, head, 100)
        .await
        .unwrap();
    assert_eq!(changes.len(), 1);
    match &changes[0].op {
        ChangeOp::Upsert(mikrobill_protocol::items::Item::Voucher(v)) => {
            assert_eq!(v.code, codes[0]);
            assert_eq!(v.status, VoucherStatus::Expired);
        }
        other => panic!("unexpected change {other:?}"),
    }

    // A voucher's own end of validity counts too.
    sqlx::query("UPDATE vouchers SET expires_at = $1 WHERE code = $2")
        .bind(now - 1)
        .bind(&codes[1])
        .execute(&cdb.pool)
        .await
        .unwrap();
    assert_eq!(
        mikrobill_core::vouchers::sweep::expire_due(&cdb, now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(status(codes[1].clone()).await, "expired");
    assert_eq!(
        mikrobill_core::vouchers::sweep::expire_due(&cdb, now)
            .await
            .unwrap(),
        0
    );
    // Later, the second one used a minute ago is due too.
    assert_eq!(
        mikrobill_core::vouchers::sweep::expire_due(&cdb, now + 3_600_000)
            .await
            .unwrap(),
        1
    );
    // Expired is final.
    problem(
        &admin
            .post(&format!("/api/v1/vouchers/{}/revoke", codes[0]), &json!({}))
            .await,
        409,
        "invalid_state",
        None,
    );
    let expired_list = admin
        .get("/api/v1/vouchers?status=expired")
        .await
        .expect(200);
    assert_eq!(expired_list["items"].as_array().unwrap().len(), 3);
    let audit = admin.get("/api/v1/audit?entity=voucher").await.expect(200);
    assert_eq!(audit["items"][0]["action"], "voucher.expire");
    assert_eq!(audit["items"][0]["actor_name"], "expiry-sweep");
    cdb.close().await;
    db.cleanup().await;
}

async fn validation_and_roles(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let plan_id = plan(&ctl, "Harian", 1000, &[]);
    ctl.add_site("gone");
    ctl.cli(&["site", "revoke", "gone"]);
    let gone = site_id(&ctl, "gone").await;

    let base = json!({"plan_id": plan_id, "count": 10, "scope": "all"});
    let with = |patch: Value| {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (patch, field) in [
        (json!({"plan_id": "nope"}), "plan_id"),
        (json!({"count": 0}), "count"),
        (json!({"count": 100_001}), "count"),
        (json!({"length": 3}), "length"),
        (json!({"length": 17}), "length"),
        (json!({"count": 10_000, "length": 4}), "length"),
        (json!({"prefix": "ab"}), "prefix"),
        (json!({"prefix": "ABCDEFGHJKMNPQRST"}), "prefix"),
        (json!({"price": -1}), "price"),
        (json!({"scope": "site"}), "site_id"),
        (json!({"scope": "site", "site_id": "nope"}), "site_id"),
        (json!({"scope": "site", "site_id": gone}), "site_id"),
        (json!({"scope": "group", "group_id": "nope"}), "group_id"),
        (json!({"scope": "all", "site_id": gone}), "site_id"),
        (json!({"password_length": 6}), "password_length"),
        (
            json!({"password_mode": "separate", "password_length": 3}),
            "password_length",
        ),
        (json!({"password_digits": true}), "password_digits"),
        (json!({"note": "x".repeat(501)}), "note"),
    ] {
        let res = admin
            .post("/api/v1/voucher-batches", &with(patch.clone()))
            .await;
        problem(&res, 422, "invalid", Some(field));
    }
    let keyspace = admin
        .post(
            "/api/v1/voucher-batches",
            &with(json!({"count": 10_000, "length": 4})),
        )
        .await;
    assert!(
        keyspace.json()["detail"]
            .as_str()
            .unwrap()
            .contains("at least 5")
    );
    // Bad types are 400 naming the field, never a 5xx.
    let res = admin
        .post("/api/v1/voucher-batches", &with(json!({"scope": "planet"})))
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(res.json()["field"], "scope");
    problem(
        &admin.get("/api/v1/vouchers?q=%27%3B").await,
        422,
        "invalid",
        Some("q"),
    );
    problem(
        &admin.get("/api/v1/voucher-batches?cursor=Zm9v").await,
        422,
        "invalid",
        Some("cursor"),
    );
    problem(
        &admin
            .post("/api/v1/site-groups", &json!({"name": " "}))
            .await,
        422,
        "invalid",
        Some("name"),
    );
    let batch = admin
        .post("/api/v1/voucher-batches", &base)
        .await
        .expect(201);
    let id = batch["id"].as_str().unwrap().to_string();
    let codes = codes_of(&batch_codes(&admin, &id, 100).await);
    problem(
        &admin
            .post(
                &format!("/api/v1/vouchers/{}/sell", codes[0]),
                &json!({"price": -5}),
            )
            .await,
        422,
        "invalid",
        Some("price"),
    );
    problem(
        &admin
            .post(
                &format!("/api/v1/voucher-batches/{id}/sell"),
                &json!({"reseller_id": "nobody"}),
            )
            .await,
        422,
        "invalid",
        Some("reseller_id"),
    );
    let group = admin
        .post("/api/v1/site-groups", &json!({"name": "g"}))
        .await
        .expect(201);
    let gid = group["id"].as_str().unwrap().to_string();
    problem(
        &admin
            .request(
                "PUT",
                &format!("/api/v1/site-groups/{gid}/sites/{gone}"),
                None,
                "application/json",
            )
            .await,
        409,
        "invalid_state",
        None,
    );
    problem(
        &admin.get("/api/v1/site-groups/nope").await,
        404,
        "not_found",
        None,
    );

    // Roles, endpoint by endpoint.
    let (_, viewer) = user(&admin, &ctl, "vera", "viewer").await;
    let (_, cashier) = user(&admin, &ctl, "kasir", "cashier").await;
    let (_, operator) = user(&admin, &ctl, "opi", "operator").await;
    let (_, reseller) = user(&admin, &ctl, "rudi", "reseller").await;
    let put_member = format!("/api/v1/site-groups/{gid}/sites/{gone}");
    let reads = [
        "/api/v1/vouchers".to_string(),
        format!("/api/v1/vouchers/{}", codes[1]),
        "/api/v1/voucher-batches".to_string(),
        format!("/api/v1/voucher-batches/{id}"),
        format!("/api/v1/voucher-batches/{id}/vouchers"),
    ];
    for path in &reads {
        for api in [&viewer, &cashier, &operator] {
            api.get(path).await.expect(200);
        }
    }
    for path in [
        "/api/v1/site-groups".to_string(),
        format!("/api/v1/site-groups/{gid}"),
    ] {
        viewer.get(&path).await.expect(200);
        operator.get(&path).await.expect(200);
        assert_eq!(cashier.get(&path).await.status, 403, "{path}");
        assert_eq!(reseller.get(&path).await.status, 403, "{path}");
    }
    // Another's voucher and batch do not exist for a reseller; its own lists are empty.
    assert_eq!(reseller.get(&reads[1]).await.status, 404);
    assert_eq!(reseller.get(&reads[3]).await.status, 404);
    assert_eq!(reseller.get(&reads[4]).await.status, 404);
    assert_eq!(
        reseller.get(&reads[0]).await.expect(200)["items"],
        json!([])
    );
    assert_eq!(
        reseller.get(&reads[2]).await.expect(200)["items"],
        json!([])
    );

    let writes: Vec<(&str, String, Value)> = vec![
        ("POST", "/api/v1/voucher-batches".into(), base.clone()),
        (
            "POST",
            format!("/api/v1/voucher-batches/{id}/revoke"),
            json!({}),
        ),
        (
            "POST",
            format!("/api/v1/vouchers/{}/revoke", codes[2]),
            json!({}),
        ),
        (
            "POST",
            format!("/api/v1/vouchers/{}/sell", codes[3]),
            json!({}),
        ),
        (
            "POST",
            format!("/api/v1/voucher-batches/{id}/sell"),
            json!({"reseller_id": "x"}),
        ),
        ("POST", "/api/v1/site-groups".into(), json!({"name": "h"})),
        ("PUT", put_member.clone(), json!({})),
        ("DELETE", put_member.clone(), json!({})),
        (
            "POST",
            "/api/v1/reseller/voucher-batches".into(),
            base.clone(),
        ),
    ];
    let send = |api: &Api, method: &str, path: &str, body: &Value| {
        let api = api.clone();
        let (method, path, body) = (method.to_string(), path.to_string(), body.clone());
        async move {
            api.request(
                &method,
                &path,
                Some(body.to_string().into_bytes()),
                "application/json",
            )
            .await
        }
    };
    for (method, path, body) in &writes {
        let res = send(&viewer, method, path, body).await;
        assert_eq!(res.status, 403, "viewer {method} {path}: {}", res.text);
    }
    // A cashier sells but does not generate, revoke or manage sites.
    for (method, path, body) in &writes {
        let res = send(&cashier, method, path, body).await;
        let may = path.ends_with("/sell");
        assert_eq!(
            res.status == 403,
            !may,
            "cashier {method} {path}: {}",
            res.text
        );
    }
    // An operator generates, sells and manages sites, but buying is for resellers.
    let made = operator
        .post("/api/v1/voucher-batches", &base)
        .await
        .expect(201);
    assert_eq!(
        made["created_by"],
        operator.get("/api/v1/auth/me").await.expect(200)["id"]
    );
    operator
        .post("/api/v1/site-groups", &json!({"name": "op-group"}))
        .await
        .expect(201);
    assert_eq!(
        operator
            .post("/api/v1/reseller/voucher-batches", &base)
            .await
            .status,
        403
    );
    // A reseller only buys.
    for (method, path, body) in &writes[..8] {
        let res = send(&reseller, method, path, body).await;
        assert!(
            res.status == 403,
            "reseller {method} {path}: {} {}",
            res.status,
            res.text
        );
    }

    // Every endpoint is documented.
    let doc = admin.get("/api/v1/openapi.json").await.expect(200);
    for path in [
        "/site-groups",
        "/site-groups/{id}",
        "/site-groups/{id}/sites/{site_id}",
        "/voucher-batches",
        "/voucher-batches/{id}",
        "/voucher-batches/{id}/vouchers",
        "/voucher-batches/{id}/sell",
        "/voucher-batches/{id}/revoke",
        "/reseller/voucher-batches",
        "/vouchers",
        "/vouchers/{code}",
        "/vouchers/{code}/sell",
        "/vouchers/{code}/revoke",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} is not in the OpenAPI document"
        );
    }
    db.cleanup().await;
}
