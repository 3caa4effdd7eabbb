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
//! ```

use crate::radius::NasClient;
use anyhow::Context;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;

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
}
