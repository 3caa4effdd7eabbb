//! RFC 5176 client: Disconnect-Request and CoA-Request to a NAS. RouterOS's `/radius incoming`
//! listens on 1700 out of the box; bootstrap moves it to the RFC 5176 port 3799, which is what
//! the agent sends to unless a client entry says otherwise.

use mikrobill_radius::{Code, Packet, auth, dict};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;

/// Attempts before giving up.
const TRIES: u32 = 3;
/// Wait for an answer per attempt.
const WAIT: Duration = Duration::from_secs(2);

/// Why a CoA exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum CoaError {
    /// Socket trouble.
    #[error("CoA socket error: {0}")]
    Io(#[from] std::io::Error),
    /// The request could not be encoded.
    #[error("CoA request cannot be encoded: {0}")]
    Encode(#[from] mikrobill_radius::EncodeError),
    /// No valid answer after all attempts.
    #[error("no answer from {0} after {TRIES} attempts")]
    NoAnswer(SocketAddr),
}

/// Error-Cause 503 (RFC 5176): the NAS has no such session, so it has already ended.
pub const SESSION_NOT_FOUND: u32 = 503;

/// The NAS's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoaAnswer {
    /// Disconnect-ACK or CoA-ACK.
    Ack,
    /// NAK, with the Error-Cause if given (503: session not found).
    Nak(Option<u32>),
}

/// Sends a Disconnect- or CoA-Request and waits for a verified answer.
pub async fn send(nas: SocketAddr, secret: &[u8], request: &Packet) -> Result<CoaAnswer, CoaError> {
    let bind: SocketAddr = if nas.is_ipv6() {
        "[::]:0".parse().expect("addr")
    } else {
        "0.0.0.0:0".parse().expect("addr")
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(nas).await?;
    let raw = auth::encode_request(request, secret, true)?;
    let mut request_authenticator = [0u8; 16];
    request_authenticator.copy_from_slice(&raw[4..20]);
    let mut buf = vec![0u8; mikrobill_radius::MAX_PACKET_LEN];
    for _ in 0..TRIES {
        socket.send(&raw).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            let answer = &buf[..n];
            let Ok(reply) = Packet::decode(answer) else {
                continue;
            };
            // Anything not matching our identifier and authenticated with our secret is ignored.
            if reply.identifier != request.identifier
                || !auth::verify_response_authenticator(answer, &request_authenticator, secret)
                || auth::verify_response_message_authenticator(
                    answer,
                    &request_authenticator,
                    secret,
                ) == auth::MaStatus::Invalid
            {
                continue;
            }
            return Ok(match reply.code {
                Code::DisconnectAck | Code::CoaAck => CoaAnswer::Ack,
                _ => CoaAnswer::Nak(reply.get_u32(dict::ERROR_CAUSE)),
            });
        }
    }
    Err(CoaError::NoAnswer(nas))
}

/// A Disconnect- or CoA-Request naming one session the way RFC 5176 identifies it:
/// User-Name, Acct-Session-Id and the NAS-IP-Address the router knows itself by.
pub fn session_request(
    code: Code,
    username: &str,
    session_id: Option<&str>,
    nas_ip: Option<Ipv4Addr>,
) -> Packet {
    let mut req = Packet::new(code, rand::random(), [0; 16]);
    req.push(dict::USER_NAME, username.as_bytes().to_vec());
    if let Some(id) = session_id {
        req.push(dict::ACCT_SESSION_ID, id.as_bytes().to_vec());
    }
    if let Some(ip) = nas_ip {
        req.push(dict::NAS_IP_ADDRESS, ip.octets().to_vec());
    }
    req
}

/// Asks the NAS to end a subscriber's session.
pub async fn disconnect(
    nas: SocketAddr,
    secret: &[u8],
    username: &str,
    session_id: Option<&str>,
    nas_ip: Option<Ipv4Addr>,
) -> Result<CoaAnswer, CoaError> {
    let req = session_request(Code::DisconnectRequest, username, session_id, nas_ip);
    send(nas, secret, &req).await
}
