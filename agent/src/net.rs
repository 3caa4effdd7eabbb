//! Address resolution and QUIC client endpoints.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Resolves `host:port` to the first address.
pub(crate) async fn resolve(addr: &str) -> std::io::Result<SocketAddr> {
    tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{addr} resolves to no address"),
        )
    })
}

/// A client-only endpoint on an ephemeral port of the right address family.
pub(crate) fn client_endpoint(remote: SocketAddr) -> std::io::Result<quinn::Endpoint> {
    let local: SocketAddr = if remote.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    quinn::Endpoint::client(local)
}
