//! The layouts of older protocols, for peers and stored entries from before fields were
//! appended to synced items (protocol 4: a plan's `mac_lock`, a voucher's per-site usage and
//! bound device; protocol 6: a plan's `fup_rate_limit`). postcard is not self-describing: an item with extra fields inside a
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

/// [`ChangeOp`] with items of an older layout `I`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeOpAs<I> {
    /// Create or replace.
    Upsert(I),
    /// Remove.
    Delete(ItemKey),
}

/// [`Change`] with items of an older layout `I`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeAs<I> {
    seq: u64,
    op: ChangeOpAs<I>,
}

/// [`SyncMessage`] with items of an older layout `I`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMessageAs<I> {
    /// See [`SyncMessage::SnapshotBegin`].
    SnapshotBegin {
        /// Cursor the agent holds once the snapshot ends.
        cursor: SyncCursor,
    },
    /// See [`SyncMessage::SnapshotItems`].
    SnapshotItems(Vec<I>),
    /// See [`SyncMessage::SnapshotEnd`].
    SnapshotEnd,
    /// See [`SyncMessage::Changes`].
    Changes(Vec<ChangeAs<I>>),
    /// See [`SyncMessage::CaughtUp`].
    CaughtUp {
        /// The cursor to hold.
        cursor: SyncCursor,
    },
}

/// [`ControllerMessage`] with items of an older layout `I`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerMessageAs<I> {
    /// See [`ControllerMessage::HeartbeatAck`].
    HeartbeatAck {
        /// Controller clock, UTC unix milliseconds.
        server_time_ms: i64,
    },
    /// See [`ControllerMessage::Sync`].
    Sync(SyncMessageAs<I>),
}

/// [`ChangeOp`] of protocol 3.
pub type ChangeOpV3 = ChangeOpAs<ItemV3>;
/// [`Change`] of protocol 3.
pub type ChangeV3 = ChangeAs<ItemV3>;
/// [`SyncMessage`] of protocol 3.
pub type SyncMessageV3 = SyncMessageAs<ItemV3>;
/// [`ControllerMessage`] of protocol 3.
pub type ControllerMessageV3 = ControllerMessageAs<ItemV3>;
/// [`ControllerMessage`] of protocols 4 and 5.
pub type ControllerMessageV5 = ControllerMessageAs<ItemV5>;

/// A plan as protocols 4 and 5 send it: before `fup_rate_limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanV5 {
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
    mac_lock: bool,
}

/// An item as protocols 4 and 5 send it (vouchers and accounts unchanged since).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemV5 {
    /// A plan.
    Plan(PlanV5),
    /// A voucher.
    Voucher(Voucher),
    /// A named account.
    User(User),
}

impl From<PlanV5> for Plan {
    fn from(p: PlanV5) -> Plan {
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
            mac_lock: p.mac_lock,
            fup_rate_limit: None,
        }
    }
}

impl From<Plan> for PlanV5 {
    fn from(p: Plan) -> PlanV5 {
        PlanV5 {
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
            mac_lock: p.mac_lock,
        }
    }
}

impl From<ItemV5> for Item {
    fn from(i: ItemV5) -> Item {
        match i {
            ItemV5::Plan(p) => Item::Plan(p.into()),
            ItemV5::Voucher(v) => Item::Voucher(v),
            ItemV5::User(u) => Item::User(u),
        }
    }
}

impl From<Item> for ItemV5 {
    fn from(i: Item) -> ItemV5 {
        match i {
            Item::Plan(p) => ItemV5::Plan(p.into()),
            Item::Voucher(v) => ItemV5::Voucher(v),
            Item::User(u) => ItemV5::User(u),
        }
    }
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
            fup_rate_limit: None,
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
            postcard::from_bytes::<PlanV5>(bytes)
                .map(Plan::from)
                .or_else(|_| postcard::from_bytes::<PlanV3>(bytes).map(Plan::from))
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
            postcard::from_bytes::<ItemV5>(bytes)
                .map(Item::from)
                .or_else(|_| postcard::from_bytes::<ItemV3>(bytes).map(Item::from))
                .map_err(|_| e)
        })
    }
}

impl<I: Into<Item>> From<ChangeOpAs<I>> for ChangeOp {
    fn from(op: ChangeOpAs<I>) -> ChangeOp {
        match op {
            ChangeOpAs::Upsert(i) => ChangeOp::Upsert(i.into()),
            ChangeOpAs::Delete(k) => ChangeOp::Delete(k),
        }
    }
}

impl<I> From<ChangeOp> for ChangeOpAs<I>
where
    Item: Into<I>,
{
    fn from(op: ChangeOp) -> ChangeOpAs<I> {
        match op {
            ChangeOp::Upsert(i) => ChangeOpAs::Upsert(i.into()),
            ChangeOp::Delete(k) => ChangeOpAs::Delete(k),
        }
    }
}

impl<I: Into<Item>> From<SyncMessageAs<I>> for SyncMessage {
    fn from(m: SyncMessageAs<I>) -> SyncMessage {
        match m {
            SyncMessageAs::SnapshotBegin { cursor } => SyncMessage::SnapshotBegin { cursor },
            SyncMessageAs::SnapshotItems(items) => {
                SyncMessage::SnapshotItems(items.into_iter().map(Into::into).collect())
            }
            SyncMessageAs::SnapshotEnd => SyncMessage::SnapshotEnd,
            SyncMessageAs::Changes(changes) => SyncMessage::Changes(
                changes
                    .into_iter()
                    .map(|c| Change {
                        seq: c.seq,
                        op: c.op.into(),
                    })
                    .collect(),
            ),
            SyncMessageAs::CaughtUp { cursor } => SyncMessage::CaughtUp { cursor },
        }
    }
}

impl<I> From<SyncMessage> for SyncMessageAs<I>
where
    Item: Into<I>,
{
    fn from(m: SyncMessage) -> SyncMessageAs<I> {
        match m {
            SyncMessage::SnapshotBegin { cursor } => SyncMessageAs::SnapshotBegin { cursor },
            SyncMessage::SnapshotItems(items) => {
                SyncMessageAs::SnapshotItems(items.into_iter().map(Into::into).collect())
            }
            SyncMessage::SnapshotEnd => SyncMessageAs::SnapshotEnd,
            SyncMessage::Changes(changes) => SyncMessageAs::Changes(
                changes
                    .into_iter()
                    .map(|c| ChangeAs {
                        seq: c.seq,
                        op: c.op.into(),
                    })
                    .collect(),
            ),
            SyncMessage::CaughtUp { cursor } => SyncMessageAs::CaughtUp { cursor },
        }
    }
}

impl<I: Into<Item>> From<ControllerMessageAs<I>> for ControllerMessage {
    fn from(m: ControllerMessageAs<I>) -> ControllerMessage {
        match m {
            ControllerMessageAs::HeartbeatAck { server_time_ms } => {
                ControllerMessage::HeartbeatAck { server_time_ms }
            }
            ControllerMessageAs::Sync(s) => ControllerMessage::Sync(s.into()),
        }
    }
}

impl<I> ControllerMessageAs<I>
where
    Item: Into<I>,
{
    /// `m` in this older layout; `None` for a message the older layout has no place for (a
    /// trust bundle), which such a peer is never sent.
    pub fn from_current(m: ControllerMessage) -> Option<ControllerMessageAs<I>> {
        Some(match m {
            ControllerMessage::HeartbeatAck { server_time_ms } => {
                ControllerMessageAs::HeartbeatAck { server_time_ms }
            }
            ControllerMessage::Sync(s) => ControllerMessageAs::Sync(s.into()),
            ControllerMessage::TrustBundle(_) => return None,
        })
    }
}

/// A controller message in the layout of a session's negotiated version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ForVersion {
    /// Protocol 6 and later.
    Current(ControllerMessage),
    /// Protocols 4 and 5.
    V5(ControllerMessageV5),
    /// Protocol 3 and earlier.
    V3(ControllerMessageV3),
}

impl ControllerMessage {
    /// This message in the layout a peer speaking `version` decodes; `None` when that
    /// peer cannot decode it at all (a trust bundle before [`crate::CA_ROTATION_VERSION`]).
    pub fn for_version(self, version: u16) -> Option<ForVersion> {
        if matches!(self, ControllerMessage::TrustBundle(_)) && version < crate::CA_ROTATION_VERSION
        {
            return None;
        }
        Some(if version >= crate::FUP_VERSION {
            ForVersion::Current(self)
        } else if version >= crate::FLEET_VERSION {
            ForVersion::V5(ControllerMessageAs::from_current(self)?)
        } else {
            ForVersion::V3(ControllerMessageAs::from_current(self)?)
        })
    }

    /// Reads a frame of a controller speaking `version` from `recv`, in that version's
    /// layout, as a current message.
    pub async fn read_for_version<R: tokio::io::AsyncRead + Unpin>(
        recv: &mut R,
        version: u16,
    ) -> Result<Option<ControllerMessage>, crate::FrameError> {
        if version >= crate::FUP_VERSION {
            crate::read_frame::<_, ControllerMessage>(recv).await
        } else if version >= crate::FLEET_VERSION {
            crate::read_frame::<_, ControllerMessageV5>(recv)
                .await
                .map(|m| m.map(ControllerMessage::from))
        } else {
            crate::read_frame::<_, ControllerMessageV3>(recv)
                .await
                .map(|m| m.map(ControllerMessage::from))
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
        let bytes = postcard::to_stdvec(&msg.clone().for_version(3).unwrap()).unwrap();
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
        let bytes = postcard::to_stdvec(&msg.clone().for_version(4).unwrap()).unwrap();
        assert_eq!(
            postcard::from_bytes::<ControllerMessage>(&bytes).unwrap(),
            msg
        );
    }

    fn plan() -> Plan {
        Plan {
            id: "p".into(),
            name: "Hemat".into(),
            rate_limit: Some("2M/5M".into()),
            time_limit_secs: None,
            data_limit_bytes: Some(1_000_000),
            validity_secs: Some(86_400),
            shared_users: 1,
            interim_interval_secs: Some(60),
            router_group: None,
            address_list: None,
            mac_lock: true,
            fup_rate_limit: Some("256k/512k".into()),
        }
    }

    #[test]
    fn a_protocol_5_peer_reads_plans_without_fair_usage_both_ways() {
        let msg = ControllerMessage::Sync(SyncMessage::Changes(vec![
            Change {
                seq: 1,
                op: ChangeOp::Upsert(Item::Plan(plan())),
            },
            Change {
                seq: 2,
                op: ChangeOp::Upsert(Item::Voucher(voucher())),
            },
        ]));
        // A controller writing to a protocol 5 agent: the agent reads every item after the
        // plan too, and the plan keeps its MAC lock.
        for version in [crate::FLEET_VERSION, crate::ROUTER_IMPORT_VERSION] {
            let bytes = postcard::to_stdvec(&msg.clone().for_version(version).unwrap()).unwrap();
            let old: ControllerMessageV5 = postcard::from_bytes(&bytes).unwrap();
            let ControllerMessage::Sync(SyncMessage::Changes(changes)) =
                ControllerMessage::from(old)
            else {
                panic!("not a change list");
            };
            let ChangeOp::Upsert(Item::Plan(p)) = &changes[0].op else {
                panic!("not a plan");
            };
            assert_eq!((p.mac_lock, p.fup_rate_limit.as_deref()), (true, None));
            assert!(
                matches!(&changes[1].op, ChangeOp::Upsert(Item::Voucher(v)) if *v == voucher())
            );
        }
        // An agent of this version reading a protocol 5 controller: what it sends decodes.
        let from_old =
            postcard::to_stdvec(&ControllerMessageV5::from_current(msg.clone()).unwrap()).unwrap();
        let read = ControllerMessage::from(
            postcard::from_bytes::<ControllerMessageV5>(&from_old).unwrap(),
        );
        let expected = ControllerMessage::Sync(SyncMessage::Changes(vec![
            Change {
                seq: 1,
                op: ChangeOp::Upsert(Item::Plan(Plan {
                    fup_rate_limit: None,
                    ..plan()
                })),
            },
            Change {
                seq: 2,
                op: ChangeOp::Upsert(Item::Voucher(voucher())),
            },
        ]));
        assert_eq!(read, expected);
        // The current layout round-trips with the rate.
        let bytes =
            postcard::to_stdvec(&msg.clone().for_version(crate::FUP_VERSION).unwrap()).unwrap();
        assert_eq!(
            postcard::from_bytes::<ControllerMessage>(&bytes).unwrap(),
            msg
        );
    }

    #[test]
    fn plans_stored_before_protocol_6_still_decode() {
        let v5 = postcard::to_stdvec(&PlanV5::from(plan())).unwrap();
        let p = Plan::decode_stored(&v5).unwrap();
        assert_eq!((p.mac_lock, p.fup_rate_limit), (true, None));
        let v3 = postcard::to_stdvec(&PlanV3::from(plan())).unwrap();
        let p = Plan::decode_stored(&v3).unwrap();
        assert_eq!((p.mac_lock, p.data_limit_bytes), (false, Some(1_000_000)));
        let item = postcard::to_stdvec(&ItemV5::from(Item::Plan(plan()))).unwrap();
        assert!(
            matches!(Item::decode_stored(&item), Ok(Item::Plan(p)) if p.mac_lock && p.fup_rate_limit.is_none())
        );
        let new = postcard::to_stdvec(&Item::Plan(plan())).unwrap();
        assert_eq!(Item::decode_stored(&new).unwrap(), Item::Plan(plan()));
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

    #[test]
    fn a_trust_bundle_goes_only_to_protocol_8_peers() {
        let msg = ControllerMessage::TrustBundle(crate::messages::TrustBundle {
            ca_pems: vec!["-----BEGIN CERTIFICATE-----".into()],
        });
        for version in 1..crate::CA_ROTATION_VERSION {
            assert!(
                msg.clone().for_version(version).is_none(),
                "version {version}"
            );
        }
        let bytes =
            postcard::to_stdvec(&msg.clone().for_version(crate::CA_ROTATION_VERSION).unwrap())
                .unwrap();
        assert_eq!(
            postcard::from_bytes::<ControllerMessage>(&bytes).unwrap(),
            msg
        );
    }
}
