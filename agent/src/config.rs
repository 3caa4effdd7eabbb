//! The agent's configuration file (TOML). Enrollment state lives in the data directory;
//! this file holds what the operator sets: RADIUS listeners and the routers' secrets.
//!
//! ```toml
//! [radius]
//! auth_listen = "0.0.0.0:1812"
//! acct_listen = "0.0.0.0:1813"
//!
//! [[radius.clients]]
//! name = "hq-router"
//! address = "172.17.0.1"          # an address or a CIDR network
//! secret = "long-random-secret"
//! require_message_authenticator = true
//! coa_port = 3799
//!
//! [router]                        # optional: the agent manages the router over its API
//! address = "172.17.0.1"          # host or host:port (default port 8728)
//! username = "mikrobill"          # group policy api,read,write (+ sensitive to check secrets)
//! password = "..."
//! mode = "radius"                 # or "api": push hotspot users / PPP secrets, no RADIUS
//! bootstrap_on_start = true       # point the router's RADIUS at the agent when starting
//! radius_address = "172.17.0.2"   # the agent as the router reaches it [default: the local
//!                                 # address of the route towards the router]
//! # radius_secret: default is the secret of the [[radius.clients]] entry for the router
//! ```
//!
//! Other `[router]` keys, with their defaults: `connect_timeout = "5s"`, `call_timeout =
//! "10s"`, `refresh_interval = "30s"`, `reconcile_interval = "5m"`, `reconnect_max = "60s"`,
//! `breaker_threshold = 3`, `breaker_cooldown = "30s"`, `src_address` (unset), `radius_timeout
//! = "3s"`, `interim_update = "5m"` (Acct-Interim-Interval for plans that set none), `coa_port` (the router's RADIUS client entry, else 3799),
//! `isolation_rate_limit` (unset).

use crate::radius::{Clients, NasClient};
use crate::router::{Mode, RouterConfig, Secret};
use anyhow::Context;
use serde::{Deserialize, Deserializer};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// Default RADIUS authentication listener.
pub const DEFAULT_AUTH_LISTEN: &str = "0.0.0.0:1812";
/// Default RADIUS accounting listener.
pub const DEFAULT_ACCT_LISTEN: &str = "0.0.0.0:1813";

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// RADIUS settings.
    #[serde(default)]
    pub radius: RadiusSection,
    /// The router the agent manages over its API, if any.
    #[serde(default)]
    pub router: RouterSection,
}

/// `[router]`: every key optional here; [`RouterSection::resolve`] applies the defaults.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterSection {
    /// API address, `host` or `host:port`; without it no router is managed.
    pub address: Option<String>,
    /// API user.
    pub username: Option<String>,
    /// API password.
    pub password: Option<Secret>,
    /// `radius` or `api`.
    pub mode: Option<Mode>,
    /// Run the RADIUS bootstrap at start.
    pub bootstrap_on_start: Option<bool>,
    /// TCP connect plus login limit.
    #[serde(default, deserialize_with = "duration")]
    pub connect_timeout: Option<Duration>,
    /// Limit for one call.
    #[serde(default, deserialize_with = "duration")]
    pub call_timeout: Option<Duration>,
    /// Router state read interval.
    #[serde(default, deserialize_with = "duration")]
    pub refresh_interval: Option<Duration>,
    /// Periodic profile/account reconciliation interval.
    #[serde(default, deserialize_with = "duration")]
    pub reconcile_interval: Option<Duration>,
    /// Longest pause between reconnect attempts.
    #[serde(default, deserialize_with = "duration")]
    pub reconnect_max: Option<Duration>,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_threshold: Option<u32>,
    /// How long the open breaker fails calls.
    #[serde(default, deserialize_with = "duration")]
    pub breaker_cooldown: Option<Duration>,
    /// The agent's address as the router reaches it.
    pub radius_address: Option<IpAddr>,
    /// NAS secret the router should use.
    pub radius_secret: Option<Secret>,
    /// `src-address` of the router's RADIUS entry.
    pub src_address: Option<IpAddr>,
    /// The router's RADIUS timeout.
    #[serde(default, deserialize_with = "duration")]
    pub radius_timeout: Option<Duration>,
    /// How often sessions report usage when their plan sets no interval (sent to the router
    /// in every Access-Accept; the router is bootstrapped to use what RADIUS sends).
    #[serde(default, deserialize_with = "duration")]
    pub interim_update: Option<Duration>,
    /// The router's CoA port.
    pub coa_port: Option<u16>,
    /// `rate-limit` of the isolation profile.
    pub isolation_rate_limit: Option<String>,
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration such as 500ms, 30s or 5m: {e}"
        ))
    })
}

impl RouterSection {
    /// The router settings with defaults applied; `None` when no address is set. The NAS
    /// secret and CoA port default to those of the RADIUS client entry for the router's
    /// address (or of the only entry), then to `fallback_secret`.
    pub fn resolve(
        &self,
        clients: &[NasClient],
        fallback_secret: Option<&str>,
    ) -> anyhow::Result<Option<RouterConfig>> {
        let Some(address) = self.address.as_deref().filter(|a| !a.trim().is_empty()) else {
            return Ok(None);
        };
        let username = self
            .username
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .context("[router] username (or MIKROBILL_ROUTER_USERNAME) is required with a router address")?;
        let password = self.password.clone().unwrap_or_else(|| Secret::new(""));
        let mut config = RouterConfig::new(address, username, password);
        let nas = router_client(&config.address, clients)?;
        let d = &mut config;
        d.mode = self.mode.unwrap_or_default();
        d.bootstrap_on_start = self.bootstrap_on_start.unwrap_or(false);
        set(&mut d.connect_timeout, self.connect_timeout);
        set(&mut d.call_timeout, self.call_timeout);
        set(&mut d.refresh_interval, self.refresh_interval);
        set(&mut d.reconcile_interval, self.reconcile_interval);
        set(&mut d.reconnect_max, self.reconnect_max);
        set(&mut d.breaker_threshold, self.breaker_threshold);
        set(&mut d.breaker_cooldown, self.breaker_cooldown);
        set(&mut d.radius.timeout, self.radius_timeout);
        d.radius.agent_address = self.radius_address;
        d.radius.src_address = self.src_address;
        d.radius.secret = self
            .radius_secret
            .clone()
            .or_else(|| nas.map(|c| Secret::new(c.secret.clone())))
            .or_else(|| fallback_secret.map(Secret::new));
        d.radius.coa_port = self
            .coa_port
            .or(nas.map(|c| c.coa_port))
            .unwrap_or(d.radius.coa_port);
        d.isolation_rate_limit = self.isolation_rate_limit.clone();
        for (name, value) in [
            ("connect_timeout", d.connect_timeout),
            ("call_timeout", d.call_timeout),
            ("refresh_interval", d.refresh_interval),
            ("reconcile_interval", d.reconcile_interval),
        ] {
            anyhow::ensure!(!value.is_zero(), "[router] {name} must be more than zero");
        }
        Ok(Some(config))
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// The RADIUS client entry for the router: by its address, else the only entry.
fn router_client<'a>(
    address: &str,
    clients: &'a [NasClient],
) -> anyhow::Result<Option<&'a NasClient>> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        let indexed = Clients::new(clients.to_vec())?;
        if let Some(found) = indexed.find(SocketAddr::new(addr.ip(), 0)) {
            return Ok(clients.iter().find(|c| c.name == found.name));
        }
    }
    Ok(match clients {
        [only] => Some(only),
        _ => None,
    })
}

/// `[radius]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusSection {
    /// Authentication listener.
    pub auth_listen: Option<SocketAddr>,
    /// Accounting listener.
    pub acct_listen: Option<SocketAddr>,
    /// The routers.
    #[serde(default)]
    pub clients: Vec<NasClient>,
}

impl AgentConfig {
    /// Reads the file.
    pub fn load(path: &Path) -> anyhow::Result<AgentConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_clients_and_rejects_typos() {
        let cfg: AgentConfig = toml::from_str(
            "[radius]\nauth_listen = \"127.0.0.1:1812\"\n[[radius.clients]]\nname = \"r\"\naddress = \"10.0.0.1\"\nsecret = \"s\"\n",
        )
        .unwrap();
        assert_eq!(cfg.radius.clients.len(), 1);
        assert!(
            cfg.radius.clients[0].require_message_authenticator,
            "hardened by default"
        );
        assert_eq!(cfg.radius.clients[0].coa_port, 3799);
        let err = toml::from_str::<AgentConfig>(
            "[radius]\nclients = [{ name = \"r\", address = \"x\", secret = \"s\", secrte = 1 }]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("secrte"), "{err}");
    }

    fn client(address: &str, secret: &str) -> NasClient {
        NasClient {
            name: address.into(),
            address: address.into(),
            secret: secret.into(),
            require_message_authenticator: true,
            coa_port: 3799,
        }
    }

    #[test]
    fn router_section_defaults_and_secret_from_the_matching_client() {
        let cfg: AgentConfig = toml::from_str(
            "[router]\naddress = \"172.17.0.1\"\nusername = \"api\"\npassword = \"pw\"\nmode = \"api\"\ncall_timeout = \"1500ms\"\nradius_timeout = \"2s\"\n",
        )
        .unwrap();
        let clients = [client("10.0.0.0/8", "other"), client("172.17.0.1", "right")];
        let router = cfg.router.resolve(&clients, None).unwrap().unwrap();
        assert_eq!(router.address, "172.17.0.1:8728");
        assert_eq!(router.mode, Mode::Api);
        assert_eq!(router.call_timeout, Duration::from_millis(1500));
        assert_eq!(router.connect_timeout, Duration::from_secs(5));
        assert_eq!(router.radius.timeout, Duration::from_secs(2));
        assert_eq!(router.radius.secret, Some(Secret::new("right")));
        assert!(
            !format!("{router:?}").contains("\"pw\""),
            "password redacted"
        );
        // A host name cannot be matched: the only client, then the fallback.
        let by_name = RouterSection {
            address: Some("router.lan".into()),
            username: Some("api".into()),
            ..RouterSection::default()
        };
        let only = by_name.resolve(&clients[1..], None).unwrap().unwrap();
        assert_eq!(only.radius.secret, Some(Secret::new("right")));
        let fallback = by_name.resolve(&clients, Some("env")).unwrap().unwrap();
        assert_eq!(fallback.radius.secret, Some(Secret::new("env")));
    }

    #[test]
    fn router_section_errors_are_explained() {
        assert!(
            RouterSection::default()
                .resolve(&[], None)
                .unwrap()
                .is_none()
        );
        let no_user = RouterSection {
            address: Some("r".into()),
            ..RouterSection::default()
        };
        let err = no_user.resolve(&[], None).unwrap_err().to_string();
        assert!(err.contains("username"), "{err}");
        let err = toml::from_str::<AgentConfig>("[router]\ncall_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a duration"), "{err}");
        let err = toml::from_str::<AgentConfig>("[router]\nmode = \"ldap\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ldap"), "{err}");
    }
}
