//! The records the controller syncs into an agent's cache.
//!
//! Each item travels as its complete current state, so applying an upsert twice, or an
//! older upsert followed by a newer one, always converges on the controller's state.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// A service plan: what an account may use and at what speed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Stable id assigned by the controller.
    pub id: String,
    /// Human name, also used as the router profile name.
    pub name: String,
    /// Mikrotik-Rate-Limit value from the subscriber's side, e.g. `2M/10M`.
    pub rate_limit: Option<String>,
    /// Total online time allowed, in seconds.
    pub time_limit_secs: Option<u64>,
    /// Total data allowed (download + upload), in bytes.
    pub data_limit_bytes: Option<u64>,
    /// How long the account stays valid after first use, in seconds.
    pub validity_secs: Option<u64>,
    /// Concurrent sessions allowed for one account.
    pub shared_users: u32,
    /// Acct-Interim-Interval sent to the router, in seconds.
    pub interim_interval_secs: Option<u32>,
    /// Mikrotik-Group: a router profile to put the session in.
    pub router_group: Option<String>,
    /// Mikrotik-Address-List to add the session's address to.
    pub address_list: Option<String>,
    /// A voucher is bound to the first device (Calling-Station-Id) that uses it, at every
    /// site. Protocol 4.
    pub mac_lock: bool,
    /// Fair usage: the Mikrotik-Rate-Limit an account gets once its data reaches
    /// `data_limit_bytes`, instead of losing service; `None` cuts it off there. Protocol 6.
    pub fup_rate_limit: Option<String>,
}

/// Where a voucher is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VoucherStatus {
    /// Generated, not handed out yet.
    New,
    /// Sold or handed out, never used.
    Sold,
    /// Used at least once; the validity window runs.
    Active,
    /// Validity window over.
    Expired,
    /// Time or data limit used up.
    Exhausted,
    /// Withdrawn by an operator.
    Revoked,
}

/// A hotspot voucher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voucher {
    /// The code the subscriber types; also the RADIUS User-Name.
    pub code: String,
    /// A separate password, or `None` when the code is also the password.
    pub password: Option<String>,
    /// The plan this voucher grants.
    pub plan_id: String,
    /// Lifecycle status as the controller knows it.
    pub status: VoucherStatus,
    /// First use (UTC, unix milliseconds), once known to the controller.
    pub activated_at_ms: Option<i64>,
    /// Usage the controller has already accounted (all sites), in seconds.
    pub used_time_secs: u64,
    /// Usage the controller has already accounted (all sites), in bytes.
    pub used_bytes: u64,
    /// `used_time_secs` and `used_bytes` split by site, with each site's open sessions, as
    /// the controller had folded them when it sent this; empty when nothing was used (or the
    /// split is unknown). Protocol 4.
    pub sites: Vec<SiteUsage>,
    /// The device (Calling-Station-Id) a MAC-locked voucher is bound to, as the controller
    /// decided it (the earliest session's). Protocol 4.
    pub bound_mac: Option<String>,
}

/// One site's share of a voucher's use, as the controller had folded it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteUsage {
    /// The site.
    pub site_id: String,
    /// Online seconds of its sessions.
    pub time_secs: u64,
    /// Octets of its sessions, both directions.
    pub bytes: u64,
    /// The latest record (UTC ms) of each of its sessions without a Stop.
    pub open_last_seen_ms: Vec<i64>,
}

/// Whether an account may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountStatus {
    /// Normal service.
    Active,
    /// Overdue: gets the isolation profile instead of the plan.
    Isolated,
    /// Locked out entirely.
    Suspended,
}

/// A named account (PPPoE subscriber or hotspot member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// RADIUS User-Name.
    pub username: String,
    /// Clear-text secret; CHAP and MS-CHAP need it in the clear.
    pub password: String,
    /// The plan this account is on.
    pub plan_id: String,
    /// Whether the account may log in.
    pub status: AccountStatus,
    /// A fixed address handed out as Framed-IP-Address.
    pub static_ip: Option<Ipv4Addr>,
}

/// Decoding of a stored item (the agent's cache, the controller's change log) whatever
/// protocol version wrote it: postcard fails on a short input, so an entry written before
/// fields were appended never decodes as the new layout by accident and is read through the
/// older one instead (the implementations are in `legacy.rs`, beside those layouts).
pub trait Stored: Sized {
    /// Decodes `bytes` of the current layout or any older one.
    fn decode_stored(bytes: &[u8]) -> Result<Self, postcard::Error>;
}

/// One cached record of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Item {
    /// A plan.
    Plan(Plan),
    /// A voucher.
    Voucher(Voucher),
    /// A named account.
    User(User),
}

/// The identity of a cached record, used for deletions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ItemKey {
    /// A plan by id.
    Plan(String),
    /// A voucher by code.
    Voucher(String),
    /// An account by username.
    User(String),
}

impl Item {
    /// The key this item is stored under.
    pub fn key(&self) -> ItemKey {
        match self {
            Item::Plan(p) => ItemKey::Plan(p.id.clone()),
            Item::Voucher(v) => ItemKey::Voucher(v.code.clone()),
            Item::User(u) => ItemKey::User(u.username.clone()),
        }
    }
}

impl ItemKey {
    /// Short name of the kind, for storage and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ItemKey::Plan(_) => "plan",
            ItemKey::Voucher(_) => "voucher",
            ItemKey::User(_) => "user",
        }
    }

    /// The kind-local key.
    pub fn id(&self) -> &str {
        match self {
            ItemKey::Plan(k) | ItemKey::Voucher(k) | ItemKey::User(k) => k,
        }
    }
}
