//! The NAS clients allowed to use this RADIUS server, each with its shared secret.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

/// The CoA/Disconnect port the agent sends to: RFC 5176's, which bootstrap sets on the
/// router's `/radius/incoming` (RouterOS itself defaults to 1700).
pub const DEFAULT_COA_PORT: u16 = 3799;

/// One NAS (router) as configured.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NasClient {
    /// Display name; also the NAS identity when the router sends no NAS-Identifier.
    pub name: String,
    /// Source address the router's requests come from: an address or a CIDR network.
    pub address: String,
    /// The shared secret.
    pub secret: String,
    /// Refuse Access-Requests without a Message-Authenticator (BlastRADIUS hardening).
    #[serde(default = "default_true")]
    pub require_message_authenticator: bool,
    /// UDP port the router listens on for CoA and Disconnect.
    #[serde(default = "default_coa_port")]
    pub coa_port: u16,
}

fn default_true() -> bool {
    true
}

fn default_coa_port() -> u16 {
    DEFAULT_COA_PORT
}

impl std::fmt::Debug for NasClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NasClient")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("secret", &"<redacted>")
            .field(
                "require_message_authenticator",
                &self.require_message_authenticator,
            )
            .field("coa_port", &self.coa_port)
            .finish()
    }
}

/// Why the client list is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An address is neither an IP nor a CIDR network.
    #[error("RADIUS client {name:?}: {address:?} is not an IP address or CIDR network")]
    BadAddress {
        /// The client's name.
        name: String,
        /// The address as written.
        address: String,
    },
    /// An empty secret.
    #[error("RADIUS client {0:?}: the secret must not be empty")]
    EmptySecret(String),
}

#[derive(Debug, Clone, Copy)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(s: &str) -> Option<Network> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a.trim().parse::<IpAddr>().ok()?,
                Some(p.trim().parse::<u8>().ok()?),
            ),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Network { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The configured clients, matched by source address (most specific network first).
#[derive(Debug, Clone, Default)]
pub struct Clients {
    entries: Vec<(Network, NasClient)>,
}

impl Clients {
    /// Validates and indexes a client list.
    pub fn new(list: Vec<NasClient>) -> Result<Clients, ClientError> {
        let mut entries = Vec::with_capacity(list.len());
        for c in list {
            let net = Network::parse(&c.address).ok_or_else(|| ClientError::BadAddress {
                name: c.name.clone(),
                address: c.address.clone(),
            })?;
            if c.secret.is_empty() {
                return Err(ClientError::EmptySecret(c.name));
            }
            entries.push((net, c));
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.0.prefix));
        Ok(Clients { entries })
    }

    /// The client a packet from `from` belongs to.
    pub fn find(&self, from: SocketAddr) -> Option<&NasClient> {
        self.entries
            .iter()
            .find(|(net, _)| net.contains(from.ip()))
            .map(|(_, c)| c)
    }

    /// Whether no client is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str, address: &str) -> NasClient {
        NasClient {
            name: name.into(),
            address: address.into(),
            secret: "s".into(),
            require_message_authenticator: true,
            coa_port: DEFAULT_COA_PORT,
        }
    }

    #[test]
    fn most_specific_network_wins_and_strangers_are_unknown() {
        let clients = Clients::new(vec![
            client("lan", "172.17.0.0/24"),
            client("router", "172.17.0.1"),
        ])
        .unwrap();
        assert_eq!(
            clients
                .find("172.17.0.1:5000".parse().unwrap())
                .unwrap()
                .name,
            "router"
        );
        assert_eq!(
            clients
                .find("172.17.0.9:5000".parse().unwrap())
                .unwrap()
                .name,
            "lan"
        );
        assert_eq!(
            clients
                .find("[::ffff:172.17.0.9]:5000".parse().unwrap())
                .unwrap()
                .name,
            "lan"
        );
        assert!(clients.find("10.0.0.1:5000".parse().unwrap()).is_none());
    }

    #[test]
    fn bad_entries_are_named() {
        let err = Clients::new(vec![client("x", "300.1.1.1")]).unwrap_err();
        assert!(err.to_string().contains("\"x\""));
        assert!(Clients::new(vec![client("y", "10.0.0.0/33")]).is_err());
        let mut c = client("z", "10.0.0.1");
        c.secret.clear();
        assert!(matches!(
            Clients::new(vec![c]),
            Err(ClientError::EmptySecret(_))
        ));
        assert!(!format!("{:?}", client("r", "1.2.3.4")).contains("\"s\""));
    }
}
