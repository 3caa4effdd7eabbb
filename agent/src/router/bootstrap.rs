//! Points the router's RADIUS at the agent, idempotently: a `/radius` entry for hotspot and
//! PPP, incoming CoA, PPP AAA with accounting and interim updates, and RADIUS on every hotspot
//! server profile. Only what differs is written, so a second run reports no change.

use super::values::{equivalent, format_duration};
use super::{Action, Change, MARKER, RadiusSetup, Router, RouterError, Row};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Comment of the `/radius` entry the agent manages.
pub const RADIUS_COMMENT: &str = "mikrobill:radius";

/// Services the agent answers for.
const SERVICES: [&str; 2] = ["hotspot", "ppp"];

/// Makes the router use the agent for RADIUS; returns what it changed (empty when the router
/// was already set up).
pub async fn bootstrap(router: &Router, setup: &RadiusSetup) -> Result<Vec<Change>, RouterError> {
    let secret = setup.secret.as_ref().ok_or_else(|| {
        RouterError::Config(
            "no RADIUS secret for the router: set [router] radius_secret, or a [[radius.clients]] \
             entry for the router's address"
                .into(),
        )
    })?;
    let agent = match setup.agent_address {
        Some(ip) => ip,
        None => local_address_towards(router.address()).await?,
    };
    let _exclusive = router.exclusive().await;
    let mut changes = Vec::new();
    changes.extend(radius_entry(router, agent, secret.expose(), setup).await?);
    changes.extend(
        settings(
            router,
            "/radius/incoming",
            &[("accept", "yes"), ("port", &setup.coa_port.to_string())],
        )
        .await?,
    );
    changes.extend(
        settings(
            router,
            "/ppp/aaa",
            &[
                ("use-radius", "yes"),
                ("accounting", "yes"),
                // 0s: each session reports at the Acct-Interim-Interval the agent sends.
                ("interim-update", "0s"),
            ],
        )
        .await?,
    );
    changes.extend(hotspot_profiles(router).await?);
    Ok(changes)
}

/// The local address of the route towards the router: what the router sees the agent as.
/// A UDP `connect` picks the route without sending anything.
async fn local_address_towards(api_address: &str) -> Result<IpAddr, RouterError> {
    let failed = |message: String| {
        RouterError::Config(format!(
            "cannot find the agent's address towards the router {api_address} ({message}): set [router] radius_address"
        ))
    };
    let remote = crate::net::resolve(api_address)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let local: SocketAddr = if remote.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| failed(e.to_string()))?;
    socket
        .connect(remote)
        .await
        .map_err(|e| failed(e.to_string()))?;
    socket
        .local_addr()
        .map(|a| a.ip())
        .map_err(|e| failed(e.to_string()))
}

fn same_ip(value: Option<&String>, ip: IpAddr) -> bool {
    value
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .is_some_and(|v| v == ip)
}

async fn radius_entry(
    router: &Router,
    agent: IpAddr,
    secret: &str,
    setup: &RadiusSetup,
) -> Result<Vec<Change>, RouterError> {
    const MENU: &str = "/radius";
    let rows = router.print(MENU, &[]).await?;
    // Ours by marker first; else an entry the operator made for this address is adopted.
    let existing = rows
        .iter()
        .find(|r| r.get("comment").is_some_and(|c| c.starts_with(MARKER)))
        .or_else(|| rows.iter().find(|r| same_ip(r.get("address"), agent)));
    let item = agent.to_string();
    let mut wanted: Vec<(String, String)> = vec![
        ("address".into(), item.clone()),
        ("secret".into(), secret.to_owned()),
        ("service".into(), SERVICES.join(",")),
        ("timeout".into(), format_duration(setup.timeout)),
        ("disabled".into(), "no".into()),
        ("comment".into(), RADIUS_COMMENT.into()),
    ];
    if let Some(src) = setup.src_address {
        wanted.push(("src-address".into(), src.to_string()));
    }
    let Some(row) = existing else {
        router.add(MENU, &wanted, "comment").await?;
        return Ok(vec![Change::new(MENU, item, Action::Added, &wanted)]);
    };
    let mut differs = Vec::new();
    for (key, value) in wanted {
        let current = row.get(&key);
        let same = match key.as_str() {
            "address" => same_ip(current, agent),
            // Extra services the operator added (login, wireless...) stay.
            "service" => {
                let have: BTreeSet<&str> = current
                    .map(|c| c.split(',').map(str::trim).collect())
                    .unwrap_or_default();
                if SERVICES.iter().all(|s| have.contains(s)) {
                    true
                } else {
                    let mut all: BTreeSet<&str> = have;
                    all.extend(SERVICES);
                    all.remove("");
                    differs.push((key, all.into_iter().collect::<Vec<_>>().join(",")));
                    continue;
                }
            }
            // Readable only with the `sensitive` policy; unreadable means unchecked.
            "secret" if current.is_none() => {
                tracing::info!(
                    "the router hides the RADIUS secret from this API user (no 'sensitive' policy): not checked"
                );
                true
            }
            _ => equivalent(&key, current.map(String::as_str), &value),
        };
        if !same {
            differs.push((key, value));
        }
    }
    if differs.is_empty() {
        return Ok(Vec::new());
    }
    let id = row_id(MENU, row)?;
    router.set(MENU, Some(id), &differs).await?;
    Ok(vec![Change::new(MENU, item, Action::Updated, &differs)])
}

async fn settings(
    router: &Router,
    menu: &str,
    wanted: &[(&str, &str)],
) -> Result<Vec<Change>, RouterError> {
    let row = router
        .print(menu, &[])
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    let differs = differing(&row, wanted);
    if differs.is_empty() {
        return Ok(Vec::new());
    }
    router.set(menu, None, &differs).await?;
    Ok(vec![Change::new(
        menu,
        "settings",
        Action::Updated,
        &differs,
    )])
}

async fn hotspot_profiles(router: &Router) -> Result<Vec<Change>, RouterError> {
    const MENU: &str = "/ip/hotspot/profile";
    let rows = match router.print(MENU, &[]).await {
        Ok(rows) => rows,
        Err(RouterError::Trap { message, .. }) => {
            tracing::info!("no hotspot on this router ({message}): hotspot RADIUS not set up");
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let wanted = [
        ("use-radius", "yes"),
        ("radius-accounting", "yes"),
        // Hotspot takes Acct-Interim-Interval from RADIUS only when told to.
        ("radius-interim-update", "received"),
    ];
    let mut changes = Vec::new();
    for row in &rows {
        let differs = differing(row, &wanted);
        if differs.is_empty() {
            continue;
        }
        let id = row_id(MENU, row)?;
        router.set(MENU, Some(id), &differs).await?;
        let name = row.get("name").cloned().unwrap_or_else(|| id.to_owned());
        changes.push(Change::new(MENU, name, Action::Updated, &differs));
    }
    Ok(changes)
}

fn differing(row: &Row, wanted: &[(&str, &str)]) -> Vec<(String, String)> {
    wanted
        .iter()
        .filter(|(k, v)| !equivalent(k, row.get(*k).map(String::as_str), v))
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn row_id<'a>(menu: &str, row: &'a Row) -> Result<&'a str, RouterError> {
    row.get(".id")
        .map(String::as_str)
        .ok_or_else(|| RouterError::Unexpected {
            path: format!("{menu}/print"),
            message: "a row without .id".into(),
        })
}
