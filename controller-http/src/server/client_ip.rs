//! The client's address behind reverse proxies. The listener works it out once per request
//! from the peer and `X-Forwarded-For`, so the API, the admin UI and the portal throttle,
//! rate-limit and audit the same address.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The address of the client that sent a request (a request extension set by the listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client behind `peer`: `X-Forwarded-For` counts only when the peer is one of the
/// `trusted` proxies, and then the rightmost entry that is not itself a trusted proxy is the
/// client (entries left of it were written by the client and prove nothing). An entry that
/// is not an address stops the walk at the last proxy that wrote a trustworthy one.
pub fn resolve<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip));
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|header| header.split(','))
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        match parse_entry(entry) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`), as some proxies write it.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    entry
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

/// Parses `--trusted-proxies`: CIDRs or single addresses, separated by commas or spaces.
pub fn parse_trusted(text: &str) -> Result<Vec<IpNet>, String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| format!("{s:?} is not an address or a CIDR such as 10.0.0.0/8"))
        })
        .collect()
}

/// The client's address as the listener resolved it behind trusted proxies (the peer's
/// address when a router is served some other way).
pub fn client_addr(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ClientIp>().map(|c| c.0).or_else(|| {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    })
}

/// The client's address (absent when the server runs without connect info).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let trusted = parse_trusted("10.0.0.0/8, 192.168.1.1").unwrap();
        // Not through a proxy: whatever the header claims, the peer is the client.
        assert_eq!(
            resolve(ip("203.0.113.9"), ["198.51.100.1"], &trusted),
            ip("203.0.113.9")
        );
        // Through the proxy: the entry the proxy appended, not the client's own claims.
        assert_eq!(
            resolve(ip("10.1.2.3"), ["1.1.1.1, 198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // Two proxies in a row, over two header lines.
        assert_eq!(
            resolve(
                ip("10.1.2.3"),
                ["6.6.6.6, 198.51.100.7", "192.168.1.1"],
                &trusted
            ),
            ip("198.51.100.7")
        );
        // A garbage entry stops the walk at the last proxy that wrote something sound.
        assert_eq!(
            resolve(ip("10.1.2.3"), ["198.51.100.7, bogus, 10.9.9.9"], &trusted),
            ip("10.9.9.9")
        );
        assert_eq!(resolve(ip("10.1.2.3"), [], &trusted), ip("10.1.2.3"));
        assert_eq!(
            resolve(ip("::ffff:10.1.2.3"), ["[2001:db8::5]:4711"], &trusted),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn bad_proxy_lists_are_refused_with_the_entry() {
        let err = parse_trusted("10.0.0.0/8,example.com").unwrap_err();
        assert!(err.contains("example.com"), "{err}");
        assert_eq!(parse_trusted("").unwrap(), vec![]);
        assert_eq!(
            parse_trusted("10.1.2.3/8").unwrap(),
            vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]
        );
    }

    proptest! {
        /// A client that does not come through a trusted proxy cannot choose its address.
        #[test]
        fn an_untrusted_peer_is_always_the_client(
            peer in any::<[u8; 4]>(),
            claims in proptest::collection::vec(any::<[u8; 4]>(), 0..5),
        ) {
            let trusted = parse_trusted("10.0.0.0/8").unwrap();
            let peer = IpAddr::from(peer);
            prop_assume!(!trusted[0].contains(&peer));
            let header = claims.iter().map(|c| IpAddr::from(*c).to_string()).collect::<Vec<_>>().join(", ");
            prop_assert_eq!(resolve(peer, [header.as_str()], &trusted), peer);
        }

        /// Behind a trusted proxy the client is never an address the proxy did not write
        /// last among untrusted ones.
        #[test]
        fn behind_a_proxy_the_rightmost_untrusted_entry_wins(
            claims in proptest::collection::vec(any::<[u8; 4]>(), 1..5),
            appended in any::<[u8; 4]>(),
        ) {
            let trusted = parse_trusted("10.0.0.0/8").unwrap();
            let appended = IpAddr::from(appended);
            prop_assume!(!trusted[0].contains(&appended));
            let mut header = claims.iter().map(|c| IpAddr::from(*c).to_string()).collect::<Vec<_>>();
            header.push(appended.to_string());
            let header = header.join(",");
            prop_assert_eq!(resolve(ip("10.0.0.1"), [header.as_str()], &trusted), appended);
        }
    }
}
