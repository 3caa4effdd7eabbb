//! The MikroBill agent-controller wire contract.
//!
//! Everything that crosses the QUIC link is defined here: the versioned hello, the
//! length-prefixed postcard framing with its size limit, the sync items, accounting
//! records and the enrollment exchange. The crate does no networking of its own beyond
//! reading and writing frames on any tokio byte stream, so both ends share one codec.

#![warn(missing_docs, unreachable_pub)]

pub mod accounting;
pub mod drift;
pub mod enroll;
pub mod frame;
pub mod inventory;
pub mod items;
pub mod legacy;
pub mod messages;
pub mod radius_counters;

pub use frame::{FrameError, MAX_FRAME_LEN, read_frame, write_frame};

/// The protocol version this build speaks. 2 added `AgentMessage::Router`, 3 certificate
/// renewal (`AgentRequest::RenewCertificate`) and hotspot pages
/// (`Command::InstallHotspotPages`, answered `CommandOutcome::AppliedWithNote`), and
/// `SyncMessage::CaughtUp`, 4 the fleet ledger's item fields (see [`FLEET_VERSION`]), 5 the
/// router import (`Command::ReadRouterAccounts`, answered `CommandOutcome::RouterAccounts`,
/// and `Command::TakeOverRouterAccounts`), 6 a plan's fair-usage rate (see [`FUP_VERSION`]),
/// 7 drift reports (`AgentMessage::Drift`, see [`DRIFT_VERSION`]), 8 the CA trust bundle
/// (`ControllerMessage::TrustBundle`, see [`CA_ROTATION_VERSION`]), 9 RADIUS counters
/// (`AgentMessage::Radius`, see [`RADIUS_COUNTERS_VERSION`]).
pub const PROTOCOL_VERSION: u16 = 9;
/// The first version whose controllers understand `AgentMessage::Router`.
pub const ROUTER_REPORT_VERSION: u16 = 2;
/// The first version whose controllers renew agent certificates over the session.
pub const CERT_RENEWAL_VERSION: u16 = 3;
/// The first version whose agents take `SyncMessage::CaughtUp`.
pub const SYNC_CAUGHT_UP_VERSION: u16 = 3;
/// The first version whose synced items carry a plan's `mac_lock` and a voucher's per-site
/// usage and bound device; older peers get the layout of [`legacy`].
pub const FLEET_VERSION: u16 = 4;
/// The first version whose agents read and take over a router's own accounts.
pub const ROUTER_IMPORT_VERSION: u16 = 5;
/// The first version whose synced plans carry `fup_rate_limit`; protocol 4 and 5 peers get
/// the plan layout of [`legacy::PlanV5`].
pub const FUP_VERSION: u16 = 6;
/// The first version whose controllers understand `AgentMessage::Drift`.
pub const DRIFT_VERSION: u16 = 7;
/// The first version whose agents take `ControllerMessage::TrustBundle` (the CAs to trust
/// during a CA rotation); older agents are never sent it.
pub const CA_ROTATION_VERSION: u16 = 8;
/// The first version whose controllers understand `AgentMessage::Radius`.
pub const RADIUS_COUNTERS_VERSION: u16 = 9;
/// The oldest peer version this build still talks to.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// ALPN of an enrolled agent's long-lived session (mutual TLS).
pub const ALPN_SESSION: &[u8] = b"mikrobill-session";
/// ALPN of the one-shot enrollment exchange (server-authenticated TLS only).
pub const ALPN_ENROLL: &[u8] = b"mikrobill-enroll";

/// DNS name in the controller's edge certificate; agents verify it whatever address they dial,
/// so NAT, changed IPs and DNS names never break the TLS check.
pub const CONTROLLER_SERVER_NAME: &str = "edge.mikrobill.internal";

/// Whether a peer speaking `version` can talk to this build.
pub fn version_supported(version: u16) -> bool {
    (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version)
}

/// Whether a controller lets an agent speaking `version` in. A newer agent is let in: the
/// session runs at [`negotiate`]'s version, which every agent speaks to older controllers
/// (it reads the `Welcome`'s version and sends and decodes that version's layouts), so agents
/// and controllers can be upgraded in either order.
pub fn controller_admits(version: u16) -> bool {
    version >= MIN_PROTOCOL_VERSION
}

/// The version a session with a peer speaking `version` runs at: the older of the two.
pub fn negotiate(version: u16) -> u16 {
    version.min(PROTOCOL_VERSION)
}

/// QUIC application close codes used on the link.
pub mod close_code {
    /// Normal shutdown of either side.
    pub const SHUTDOWN: u32 = 0;
    /// The agent's certificate or site was revoked.
    pub const REVOKED: u32 = 1;
    /// A peer violated the protocol (bad frame, unexpected message).
    pub const PROTOCOL_ERROR: u32 = 2;
    /// Versions are incompatible.
    pub const INCOMPATIBLE_VERSION: u32 = 3;
    /// A newer session of the same site replaced this one.
    pub const REPLACED: u32 = 4;
    /// The controller failed internally; the agent should retry later.
    pub const INTERNAL: u32 = 5;
}
