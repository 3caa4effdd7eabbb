//! The layouts of protocol 3 and earlier, for peers and stored entries from before fields
//! were appended to synced items (protocol 4: a plan's `mac_lock`, a voucher's per-site usage
//! and bound device). postcard is not self-describing: an item with extra fields inside a
//! list would shift every item after it, so each end speaks the layout the session's
//! negotiated version names ([`ControllerMessage::for_version`], [`ControllerMessageV3`]).

use crate::items::{Item, ItemKey, Plan, Stored, User, Voucher, VoucherStatus};
use crate::messages::{Change, ChangeOp, ControllerMessage, SyncCursor, SyncMessage};
use serde::{Deserialize, Serialize};

/// A plan as protocol 3 sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanV3 {
    id: String,
    name: String,
    rate_limit: Option<String>,
    time_limit_secs: Option<u64>,
    data_limit_bytes: Option<u64>,
    validity_secs: Option<u64>,
    shared_users: u32,
    interim_interval_secs: Option<u32>,
    router_group: Option<String>,
    address_list: Option<String>,
}

/// A voucher as protocol 3 sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherV3 {
    code: String,
    password: Option<String>,
    plan_id: String,
    status: VoucherStatus,
    activated_at_ms: Option<i64>,
    used_time_secs: u64,
    used_bytes: u64,
}

/// An item as protocol 3 sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemV3 {
    /// A plan.
    Plan(PlanV3),
    /// A voucher.
    Voucher(VoucherV3),
    /// A named account (unchanged).
    User(User),
}

/// [`ChangeOp`] of protocol 3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeOpV3 {
    /// Create or replace.
    Upsert(ItemV3),
    /// Remove.
    Delete(ItemKey),
}

/// [`Change`] of protocol 3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeV3 {
    seq: u64,
    op: ChangeOpV3,
}

/// [`SyncMessage`] of protocol 3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMessageV3 {
    /// See [`SyncMessage::SnapshotBegin`].
    SnapshotBegin {
        /// Cursor the agent holds once the snapshot ends.
        cursor: SyncCursor,
    },
    /// See [`SyncMessage::SnapshotItems`].
    SnapshotItems(Vec<ItemV3>),
    /// See [`SyncMessage::SnapshotEnd`].
    SnapshotEnd,
    /// See [`SyncMessage::Changes`].
    Changes(Vec<ChangeV3>),
    /// See [`SyncMessage::CaughtUp`].
    CaughtUp {
        /// The cursor to hold.
        cursor: SyncCursor,
    },
}

/// [`ControllerMessage`] of protocol 3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerMessageV3 {
    /// See [`ControllerMessage::HeartbeatAck`].
    HeartbeatAck {
        /// Controller clock, UTC unix milliseconds.
        server_time_ms: i64,
    },
    /// See [`ControllerMessage::Sync`].
    Sync(SyncMessageV3),
}

impl From<PlanV3> for Plan {
    fn from(p: PlanV3) -> Plan {
        Plan {
            id: p.id,
            name: p.name,
            rate_limit: p.rate_limit,
            time_limit_secs: p.time_limit_secs,
            data_limit_bytes: p.data_limit_bytes,
            validity_secs: p.validity_secs,
            shared_users: p.shared_users,
            interim_interval_secs: p.interim_interval_secs,
            router_group: p.router_group,
            address_list: p.address_list,
            mac_lock: false,
        }
    }
}

impl From<Plan> for PlanV3 {
    fn from(p: Plan) -> PlanV3 {
        PlanV3 {
            id: p.id,
            name: p.name,
            rate_limit: p.rate_limit,
            time_limit_secs: p.time_limit_secs,
            data_limit_bytes: p.data_limit_bytes,
            validity_secs: p.validity_secs,
            shared_users: p.shared_users,
            interim_interval_secs: p.interim_interval_secs,
            router_group: p.router_group,
            address_list: p.address_list,
        }
    }
}

impl From<VoucherV3> for Voucher {
    fn from(v: VoucherV3) -> Voucher {
        Voucher {
            code: v.code,
            password: v.password,
            plan_id: v.plan_id,
            status: v.status,
            activated_at_ms: v.activated_at_ms,
            used_time_secs: v.used_time_secs,
            used_bytes: v.used_bytes,
            sites: Vec::new(),
            bound_mac: None,
        }
    }
}

impl From<Voucher> for VoucherV3 {
    fn from(v: Voucher) -> VoucherV3 {
        VoucherV3 {
            code: v.code,
            password: v.password,
            plan_id: v.plan_id,
            status: v.status,
            activated_at_ms: v.activated_at_ms,
            used_time_secs: v.used_time_secs,
            used_bytes: v.used_bytes,
        }
    }
}

impl From<ItemV3> for Item {
    fn from(i: ItemV3) -> Item {
        match i {
            ItemV3::Plan(p) => Item::Plan(p.into()),
            ItemV3::Voucher(v) => Item::Voucher(v.into()),
            ItemV3::User(u) => Item::User(u),
        }
    }
}

impl From<Item> for ItemV3 {
    fn from(i: Item) -> ItemV3 {
        match i {
            Item::Plan(p) => ItemV3::Plan(p.into()),
            Item::Voucher(v) => ItemV3::Voucher(v.into()),
            Item::User(u) => ItemV3::User(u),
        }
    }
}

impl Stored for Plan {
    fn decode_stored(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes).or_else(|e| {
            postcard::from_bytes::<PlanV3>(bytes)
                .map(Plan::from)
                .map_err(|_| e)
        })
    }
}

impl Stored for Voucher {
    fn decode_stored(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes).or_else(|e| {
            postcard::from_bytes::<VoucherV3>(bytes)
                .map(Voucher::from)
                .map_err(|_| e)
        })
    }
}

impl Stored for User {
    fn decode_stored(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

impl Stored for Item {
    fn decode_stored(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes).or_else(|e| {
            postcard::from_bytes::<ItemV3>(bytes)
                .map(Item::from)
                .map_err(|_| e)
        })
    }
}

fn op_from(op: ChangeOpV3) -> ChangeOp {
    match op {
        ChangeOpV3::Upsert(i) => ChangeOp::Upsert(i.into()),
        ChangeOpV3::Delete(k) => ChangeOp::Delete(k),
    }
}

fn op_to(op: ChangeOp) -> ChangeOpV3 {
    match op {
        ChangeOp::Upsert(i) => ChangeOpV3::Upsert(i.into()),
        ChangeOp::Delete(k) => ChangeOpV3::Delete(k),
    }
}

impl From<SyncMessageV3> for SyncMessage {
    fn from(m: SyncMessageV3) -> SyncMessage {
        match m {
            SyncMessageV3::SnapshotBegin { cursor } => SyncMessage::SnapshotBegin { cursor },
            SyncMessageV3::SnapshotItems(items) => {
                SyncMessage::SnapshotItems(items.into_iter().map(Item::from).collect())
            }
            SyncMessageV3::SnapshotEnd => SyncMessage::SnapshotEnd,
            SyncMessageV3::Changes(changes) => SyncMessage::Changes(
                changes
                    .into_iter()
                    .map(|c| Change {
                        seq: c.seq,
                        op: op_from(c.op),
                    })
                    .collect(),
            ),
            SyncMessageV3::CaughtUp { cursor } => SyncMessage::CaughtUp { cursor },
        }
    }
}

impl From<SyncMessage> for SyncMessageV3 {
    fn from(m: SyncMessage) -> SyncMessageV3 {
        match m {
            SyncMessage::SnapshotBegin { cursor } => SyncMessageV3::SnapshotBegin { cursor },
            SyncMessage::SnapshotItems(items) => {
                SyncMessageV3::SnapshotItems(items.into_iter().map(ItemV3::from).collect())
            }
            SyncMessage::SnapshotEnd => SyncMessageV3::SnapshotEnd,
            SyncMessage::Changes(changes) => SyncMessageV3::Changes(
                changes
                    .into_iter()
                    .map(|c| ChangeV3 {
                        seq: c.seq,
                        op: op_to(c.op),
                    })
                    .collect(),
            ),
            SyncMessage::CaughtUp { cursor } => SyncMessageV3::CaughtUp { cursor },
        }
    }
}

impl From<ControllerMessageV3> for ControllerMessage {
    fn from(m: ControllerMessageV3) -> ControllerMessage {
        match m {
            ControllerMessageV3::HeartbeatAck { server_time_ms } => {
                ControllerMessage::HeartbeatAck { server_time_ms }
            }
            ControllerMessageV3::Sync(s) => ControllerMessage::Sync(s.into()),
        }
    }
}

impl From<ControllerMessage> for ControllerMessageV3 {
    fn from(m: ControllerMessage) -> ControllerMessageV3 {
        match m {
            ControllerMessage::HeartbeatAck { server_time_ms } => {
                ControllerMessageV3::HeartbeatAck { server_time_ms }
            }
            ControllerMessage::Sync(s) => ControllerMessageV3::Sync(s.into()),
        }
    }
}

/// A controller message in the layout of a session's negotiated version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ForVersion {
    /// Protocol 4 and later.
    Current(ControllerMessage),
    /// Protocol 3 and earlier.
    V3(ControllerMessageV3),
}

impl ControllerMessage {
    /// This message in the layout a peer speaking `version` decodes.
    pub fn for_version(self, version: u16) -> ForVersion {
        if version >= crate::FLEET_VERSION {
            ForVersion::Current(self)
        } else {
            ForVersion::V3(self.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::SiteUsage;

    fn voucher() -> Voucher {
        Voucher {
            code: "ABC".into(),
            password: None,
            plan_id: "p".into(),
            status: VoucherStatus::Active,
            activated_at_ms: Some(5),
            used_time_secs: 290,
            used_bytes: 10,
            sites: vec![SiteUsage {
                site_id: "a".into(),
                time_secs: 290,
                bytes: 10,
                open_last_seen_ms: vec![7],
            }],
            bound_mac: Some("AA:BB:CC:00:00:01".into()),
        }
    }

    #[test]
    fn an_old_peer_reads_what_is_sent_for_its_version() {
        let msg = ControllerMessage::Sync(SyncMessage::SnapshotItems(vec![
            Item::Voucher(voucher()),
            Item::Voucher(voucher()),
        ]));
        let bytes = postcard::to_stdvec(&msg.clone().for_version(3)).unwrap();
        let old: ControllerMessageV3 = postcard::from_bytes(&bytes).unwrap();
        let ControllerMessage::Sync(SyncMessage::SnapshotItems(items)) =
            ControllerMessage::from(old)
        else {
            panic!("not a snapshot chunk");
        };
        let Item::Voucher(v) = &items[1] else {
            panic!("not a voucher")
        };
        assert_eq!((v.used_time_secs, v.sites.len()), (290, 0));
        let bytes = postcard::to_stdvec(&msg.clone().for_version(4)).unwrap();
        assert_eq!(
            postcard::from_bytes::<ControllerMessage>(&bytes).unwrap(),
            msg
        );
    }

    #[test]
    fn entries_stored_before_protocol_4_still_decode() {
        let old = postcard::to_stdvec(&VoucherV3::from(voucher())).unwrap();
        let v = Voucher::decode_stored(&old).unwrap();
        assert_eq!((v.used_time_secs, v.bound_mac), (290, None));
        let item = postcard::to_stdvec(&ItemV3::from(Item::Voucher(voucher()))).unwrap();
        assert!(matches!(Item::decode_stored(&item), Ok(Item::Voucher(_))));
        let new = postcard::to_stdvec(&voucher()).unwrap();
        assert_eq!(Voucher::decode_stored(&new).unwrap(), voucher());
    }
}
