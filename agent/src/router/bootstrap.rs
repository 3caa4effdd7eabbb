//! Points the router's RADIUS at the agent, idempotently: a `/radius` entry for hotspot and
//! PPP, incoming CoA, PPP AAA with accounting and interim updates, and RADIUS on every hotspot
//! server profile. Only what differs is written, so a second run reports no change.

use super::drift::AaaSeen;
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
    let secret = wanted_secret(setup)?;
    let agent = agent_address(router, setup).await?;
    let _exclusive = router.exclusive().await;
    let mut changes = Vec::new();
    for write in plan(router, agent, secret, setup).await? {
        changes.push(write.apply(router).await?);
    }
    Ok(changes)
}

/// Reads the router's RADIUS/AAA settings and returns each one that differs from what
/// [`bootstrap`] would set, with the value read; writes nothing.
pub(crate) async fn inspect(
    router: &Router,
    setup: &RadiusSetup,
) -> Result<Vec<AaaSeen>, RouterError> {
    let secret = wanted_secret(setup)?;
    let agent = agent_address(router, setup).await?;
    Ok(plan(router, agent, secret, setup)
        .await?
        .into_iter()
        .flat_map(|w| {
            let (menu, item) = (w.menu, w.item);
            w.differs
                .into_iter()
                .map(move |(property, read, wanted)| AaaSeen {
                    menu: menu.to_owned(),
                    name: item.clone(),
                    property,
                    read,
                    wanted,
                })
        })
        .collect())
}

fn wanted_secret(setup: &RadiusSetup) -> Result<&str, RouterError> {
    setup.secret.as_ref().map(|s| s.expose()).ok_or_else(|| {
        RouterError::Config(
            "no RADIUS secret for the router: set [router] radius_secret, or a [[radius.clients]] \
             entry for the router's address"
                .into(),
        )
    })
}

async fn agent_address(router: &Router, setup: &RadiusSetup) -> Result<IpAddr, RouterError> {
    match setup.agent_address {
        Some(ip) => Ok(ip),
        None => local_address_towards(router.address()).await,
    }
}

/// Where a write goes.
enum Target {
    /// A new `/radius` entry.
    Add,
    /// The list item with this `.id`.
    Item(String),
    /// A menu of settings (no items).
    Settings,
}

/// One write bootstrap makes: the properties that differ, each with the value read.
struct Write {
    menu: &'static str,
    item: String,
    target: Target,
    /// Property, the router's value, the wanted value.
    differs: Vec<(String, Option<String>, String)>,
}

impl Write {
    async fn apply(self, router: &Router) -> Result<Change, RouterError> {
        let fields: Vec<(String, String)> =
            self.differs.into_iter().map(|(k, _, v)| (k, v)).collect();
        let action = match &self.target {
            Target::Add => {
                router.add(self.menu, &fields, "comment").await?;
                Action::Added
            }
            Target::Item(id) => {
                router.set(self.menu, Some(id), &fields).await?;
                Action::Updated
            }
            Target::Settings => {
                router.set(self.menu, None, &fields).await?;
                Action::Updated
            }
        };
        Ok(Change::new(self.menu, self.item, action, &fields))
    }
}

/// Every write that would make the router's RADIUS settings what the agent wants.
async fn plan(
    router: &Router,
    agent: IpAddr,
    secret: &str,
    setup: &RadiusSetup,
) -> Result<Vec<Write>, RouterError> {
    let mut writes = Vec::new();
    writes.extend(radius_entry(router, agent, secret, setup).await?);
    writes.extend(
        settings(
            router,
            "/radius/incoming",
            &[("accept", "yes"), ("port", &setup.coa_port.to_string())],
        )
        .await?,
    );
    writes.extend(
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
    writes.extend(hotspot_profiles(router).await?);
    Ok(writes)
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
) -> Result<Option<Write>, RouterError> {
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
        return Ok(Some(Write {
            menu: MENU,
            item,
            target: Target::Add,
            differs: wanted.into_iter().map(|(k, v)| (k, None, v)).collect(),
        }));
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
                    let value = all.into_iter().collect::<Vec<_>>().join(",");
                    differs.push((key, current.cloned(), value));
                    continue;
                }
            }
            // Readable only with the `sensitive` policy; unreadable means unchecked.
            "secret" if current.is_none() => {
                tracing::debug!(
                    "the router hides the RADIUS secret from this API user (no 'sensitive' policy): not checked"
                );
                true
            }
            _ => equivalent(&key, current.map(String::as_str), &value),
        };
        if !same {
            differs.push((key, current.cloned(), value));
        }
    }
    if differs.is_empty() {
        return Ok(None);
    }
    Ok(Some(Write {
        menu: MENU,
        item,
        target: Target::Item(row_id(MENU, row)?.to_owned()),
        differs,
    }))
}

async fn settings(
    router: &Router,
    menu: &'static str,
    wanted: &[(&str, &str)],
) -> Result<Option<Write>, RouterError> {
    let row = router
        .print(menu, &[])
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    let differs = differing(&row, wanted);
    Ok((!differs.is_empty()).then(|| Write {
        menu,
        item: "settings".into(),
        target: Target::Settings,
        differs,
    }))
}

async fn hotspot_profiles(router: &Router) -> Result<Vec<Write>, RouterError> {
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
    let mut writes = Vec::new();
    for row in &rows {
        let differs = differing(row, &wanted);
        if differs.is_empty() {
            continue;
        }
        let id = row_id(MENU, row)?;
        writes.push(Write {
            menu: MENU,
            item: row.get("name").cloned().unwrap_or_else(|| id.to_owned()),
            target: Target::Item(id.to_owned()),
            differs,
        });
    }
    Ok(writes)
}

fn differing(row: &Row, wanted: &[(&str, &str)]) -> Vec<(String, Option<String>, String)> {
    wanted
        .iter()
        .filter(|(k, v)| !equivalent(k, row.get(*k).map(String::as_str), v))
        .map(|(k, v)| ((*k).to_owned(), row.get(*k).cloned(), (*v).to_owned()))
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
