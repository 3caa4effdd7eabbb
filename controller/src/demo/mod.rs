//! `mikrobill-controller demo`: a working installation in one command for a newcomer.
//! Controller on SQLite, two sites each with a local agent enrolled with a real token and
//! serving RADIUS on loopback, sample vouchers and a `radclient` line that logs one in, the
//! admin UI's address and login, and (on first start) three months of a small ISP's history
//! from [`history`], so every chart and report shows data at once.

mod history;

use crate::config::{ServeConfig, StoreConfig};
use anyhow::Context;
use mikrobill_core::audit::Actor;
use mikrobill_core::db::Db;
use mikrobill_core::{plans, sites, vouchers};
use mikrobill_protocol::enroll::EnrollmentToken;
use mikrobill_protocol::items::Plan;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Data directory; a fresh temporary one when absent.
    pub dir: Option<PathBuf>,
    /// HTTP listener.
    pub api_listen: SocketAddr,
    /// QUIC edge listener.
    pub edge_listen: SocketAddr,
    /// RADIUS authentication port of the first demo agent on 127.0.0.1 (accounting is the
    /// next port; the second site's agent takes the two after).
    pub radius_port: u16,
}

/// The demo's sites; the sample vouchers are for the first.
const SITES: [&str; 2] = ["Sukamaju", "Mekarsari"];

fn sample_plan(name: &str, rate: &str, time: Option<u64>, validity: Option<u64>) -> Plan {
    Plan {
        id: String::new(),
        name: name.into(),
        rate_limit: Some(rate.into()),
        time_limit_secs: time,
        data_limit_bytes: None,
        validity_secs: validity,
        shared_users: 1,
        interim_interval_secs: Some(300),
        router_group: None,
        address_list: None,
        mac_lock: false,
        fup_rate_limit: None,
    }
}

async fn seed(
    db: &Db,
    store: &StoreConfig,
    edge: SocketAddr,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let hour = match plans::create(
        db,
        sample_plan("Demo 1 jam", "2M/5M", Some(3600), Some(86_400)),
        3_000,
    )
    .await
    {
        Ok(p) => p,
        Err(plans::PlanError::Exists(_)) => plans::by_name(db, "Demo 1 jam").await?,
        Err(e) => return Err(e.into()),
    };
    if let Err(e) = plans::create(
        db,
        sample_plan("Demo harian", "5M/10M", None, Some(86_400)),
        10_000,
    )
    .await
        && !matches!(e, plans::PlanError::Exists(_))
    {
        return Err(e.into());
    }
    let fingerprint =
        mikrobill_core::ca_rotation::enrollment_fingerprint(db, &store.data_dir).await?;
    let mut tokens = Vec::new();
    let mut all = Vec::new();
    for name in SITES {
        let site = match sites::create(db, &Actor::system("demo"), name).await {
            Ok(s) => s,
            Err(sites::SiteError::Exists(_)) => sites::by_name(db, name).await?,
            Err(e) => return Err(e.into()),
        };
        let secret: [u8; 32] = rand::random();
        sites::add_token(db, &site.id, &secret, 3_600_000).await?;
        tokens.push(
            EnrollmentToken {
                controller_addr: edge.to_string(),
                ca_fingerprint: fingerprint,
                secret,
            }
            .encode(),
        );
        all.push(site);
    }
    let codes: Vec<(String, Option<String>)> = vouchers::generate_codes(5, "DEMO", 6)
        .into_iter()
        .map(|c| (c, None))
        .collect();
    let created = vouchers::create(db, &hour.id, Some(&all[0].id), &codes).await?;
    // The history goes in once, into a database that has no customers yet.
    let fresh = mikrobill_core::customers::list_json(
        db,
        &mikrobill_core::customers::CustomerFilter::default(),
        "",
        1,
    )
    .await?
    .is_empty();
    if fresh {
        let seeded = history::seed(db, &all, mikrobill_core::db::now_ms()).await?;
        tracing::info!(?seeded, "demo history seeded");
    }
    Ok((tokens, created.into_iter().map(|v| v.code).collect()))
}

/// Runs the demo until SIGINT or SIGTERM.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let data_dir = match &options.dir {
        Some(d) => d.clone(),
        None => tempfile_dir()?,
    };
    let store = StoreConfig {
        data_dir: data_dir.clone(),
        database_url: None,
    };
    let config = ServeConfig {
        store: store.clone(),
        api_listen: options.api_listen,
        edge_listen: options.edge_listen,
        edge_advertise: None,
        job_interval: crate::config::DEFAULT_JOB_INTERVAL,
        payments: crate::config::PaymentConfig::default(),
        http: crate::config::HttpConfig::default(),
        behind_tls: false,
        webhook_retry_base: mikrobill_core::events::webhooks::DEFAULT_RETRY_BASE,
        notify_send_timeout: mikrobill_core::notify::worker::Timing::default().send_timeout,
        backup: None,
        agent_cert_validity: mikrobill_core::pki::AGENT_CERT_VALIDITY,
        sync_log_retention: None,
    };
    // The first admin is made here, before the server would make one, so its password can
    // be printed next to the admin UI's address.
    std::fs::create_dir_all(&data_dir)?;
    let db = Db::open(&store.database_url()).await?;
    let password = mikrobill_core::auth::password::generate();
    let login = match mikrobill_core::admins::create_first(&db, "admin", &password).await? {
        Some(_) => format!("admin / {password}"),
        None => "admin, with the password set on the demo's first start".to_string(),
    };
    let running = crate::serve::start(&config).await?;
    let (tokens, codes) = seed(&db, &store, running.edge_addr).await?;

    let agent_bin = std::env::current_exe()?.with_file_name("mikrobill-agent");
    let radius_secret = hex::encode(rand::random::<[u8; 8]>());
    let mut agents = Vec::new();
    let mut listeners = Vec::new();
    if agent_bin.exists() {
        for (i, token) in tokens.iter().enumerate() {
            let port = options.radius_port + 2 * i as u16;
            let (auth, acct) = (
                format!("127.0.0.1:{port}"),
                format!("127.0.0.1:{}", port + 1),
            );
            // The first agent on the default status port, so `mikrobill-agent status` finds it.
            let status = format!("127.0.0.1:{}", 9465 + i);
            let log = std::fs::File::create(data_dir.join(format!("demo-agent-{}.log", i + 1)))?;
            let agent_dir = if i == 0 {
                data_dir.join("agent")
            } else {
                data_dir.join(format!("agent-{}", i + 1))
            };
            agents.push(
                tokio::process::Command::new(&agent_bin)
                    .args([
                        "run",
                        "--radius-auth-listen",
                        &auth,
                        "--radius-acct-listen",
                        &acct,
                        "--status-listen",
                        &status,
                    ])
                    .env("MIKROBILL_AGENT_DATA_DIR", agent_dir)
                    .env("MIKROBILL_ENROLL_TOKEN", token)
                    .env("MIKROBILL_RADIUS_CLIENT_ADDRESS", "127.0.0.1")
                    .env("MIKROBILL_RADIUS_SECRET", &radius_secret)
                    .stdout(std::process::Stdio::null())
                    .stderr(log)
                    .kill_on_drop(true)
                    .spawn()
                    .with_context(|| format!("cannot start {}", agent_bin.display()))?,
            );
            listeners.push((SITES[i], auth, acct));
        }
        // Wait until the agents are online so the printed line works at once.
        for _ in 0..100 {
            let mut online = 0;
            for name in SITES {
                online += usize::from(sites::by_name(&db, name).await?.online);
            }
            if online == SITES.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    println!("MikroBill demo is running (data in {})", data_dir.display());
    println!(
        "  admin UI:        http://{}/  log in as {login}",
        running.api_addr
    );
    println!("  controller edge: {} (QUIC)", running.edge_addr);
    println!("  sample vouchers for {:?}: {}", SITES[0], codes.join(" "));
    if listeners.is_empty() {
        println!(
            "  no mikrobill-agent binary next to this one ({}): enroll an agent yourself with",
            agent_bin.display()
        );
        println!(
            "    mikrobill-agent --data-dir ./agent run --enroll-token {}",
            tokens[0]
        );
    } else {
        for (site, auth, acct) in &listeners {
            println!(
                "  agent of {site:?}: RADIUS on {auth} (accounting {acct}), shared secret {radius_secret}"
            );
        }
        println!("  log a voucher in:");
        println!(
            "    echo \"User-Name = {c}, User-Password = {c}, Message-Authenticator = 0x00\" | radclient -x {auth} auth {radius_secret}",
            c = codes[0],
            auth = listeners[0].1
        );
    }
    println!(
        "  admin API:       http://{}/api/v1/docs (the same login)",
        running.api_addr
    );
    println!("  the CLI works on the same data while the demo runs:");
    println!(
        "    mikrobill-controller --data-dir {} site list",
        data_dir.display()
    );
    println!("Press Ctrl-C to stop.");

    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    for a in agents.iter_mut() {
        let _ = a.kill().await;
    }
    running.stop().await;
    Ok(())
}

/// A fresh directory under the system temp dir that outlives this process (the newcomer may
/// want to look at it afterwards).
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("mikrobill-demo-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
