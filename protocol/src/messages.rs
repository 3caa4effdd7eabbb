//! Messages of the long-lived agent session.
//!
//! Streams on one connection:
//! - the **control stream**, a bidirectional stream the agent opens first: [`Hello`] then
//!   [`HelloReply`], then [`AgentMessage`]s up and [`ControllerMessage`]s down (heartbeats
//!   and sync) for the life of the connection;
//! - one bidirectional **request stream** per [`AgentRequest`] (an accounting batch), answered
//!   by exactly one [`ControllerReply`] and then finished;
//! - one bidirectional **command stream** per [`CommandEnvelope`] the controller opens,
//!   answered by exactly one [`CommandResult`].

use crate::accounting::AccountingRecord;
use crate::inventory::{EntryRef, RouterAccounts, TakeOver};
use crate::items::{Item, ItemKey};
use serde::{Deserialize, Serialize};

/// First frame of a session. Its layout is frozen: later versions may only append fields,
/// so any controller can at least read the version and answer with a clear refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version the agent speaks.
    pub protocol_version: u16,
    /// The agent's software version, for display.
    pub agent_version: String,
    /// Where the agent's cache stands.
    pub cursor: SyncCursor,
}

/// Just the version field of a [`Hello`], decodable whatever follows it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct HelloVersion {
    /// Protocol version the agent speaks.
    pub protocol_version: u16,
}

/// The controller's answer to a [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// The session is up.
    Welcome {
        /// Version both ends use.
        protocol_version: u16,
        /// The site this agent serves (from its certificate).
        site_id: String,
        /// The site's display name.
        site_name: String,
        /// Controller clock, UTC unix milliseconds.
        server_time_ms: i64,
        /// How often the agent should send heartbeats.
        heartbeat_interval_secs: u32,
    },
    /// The session is refused; the connection closes after this frame.
    Refused(Refusal),
}

/// Why the controller refused a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The versions cannot talk; the agent needs an upgrade (or the controller does).
    IncompatibleVersion {
        /// Oldest version the controller accepts.
        min: u16,
        /// Newest version the controller speaks.
        max: u16,
    },
    /// The certificate or its site was revoked.
    Revoked,
    /// The certificate is not one the controller issued to a live site.
    UnknownCertificate,
    /// Something failed at the controller; retry later.
    Internal(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::IncompatibleVersion { min, max } => write!(
                f,
                "incompatible protocol version: the controller accepts versions {min} to {max}, this agent speaks {}",
                crate::PROTOCOL_VERSION
            ),
            Refusal::Revoked => write!(f, "this agent's site or certificate has been revoked"),
            Refusal::UnknownCertificate => {
                write!(f, "the controller does not know this agent's certificate")
            }
            Refusal::Internal(m) => write!(f, "controller error: {m}"),
        }
    }
}

/// The agent's sync position: which controller log and how far into it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCursor {
    /// Identity of the controller's change log; empty before the first sync. A different
    /// epoch (a rebuilt controller database) forces a snapshot.
    pub epoch: String,
    /// Last change sequence applied.
    pub seq: u64,
}

/// Periodic liveness report from the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Agent clock, UTC unix milliseconds.
    pub sent_at_ms: i64,
    /// Accounting records waiting in the outbox.
    pub outbox_pending: u64,
    /// Records in the cache.
    pub cache_items: u64,
    /// Seconds since the agent started.
    pub uptime_secs: u64,
}

/// Agent to controller, on the control stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentMessage {
    /// Liveness and status.
    Heartbeat(Heartbeat),
    /// The agent has applied sync up to this cursor.
    SyncApplied(SyncCursor),
    /// The router's state as the agent last read it (protocol 2 and later; sent only when
    /// the controller's `Welcome` names version 2 or more).
    Router(RouterReport),
    /// What the agent's last reconciliation found changed on the router by hand (protocol
    /// 7 and later; sent only when the controller's `Welcome` names [`crate::DRIFT_VERSION`]
    /// or more).
    Drift(crate::drift::DriftReport),
    /// The agent's RADIUS counters, sent before each heartbeat (protocol 9 and later; sent
    /// only when the controller's `Welcome` names [`crate::RADIUS_COUNTERS_VERSION`] or more).
    Radius(crate::radius_counters::RadiusCounters),
}

/// What the agent knows about its router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterReport {
    /// Whether the RouterOS API answers.
    pub reachable: bool,
    /// RouterOS version.
    pub version: Option<String>,
    /// Board name.
    pub board: Option<String>,
    /// CPU architecture.
    pub architecture: Option<String>,
    /// CPU load, percent.
    pub cpu_load: Option<u8>,
    /// Free RAM, bytes.
    pub free_memory: Option<u64>,
    /// Total RAM, bytes.
    pub total_memory: Option<u64>,
    /// Seconds since the router booted.
    pub uptime_secs: Option<u64>,
    /// `/system/identity`.
    pub identity: Option<String>,
    /// Hotspot sessions online.
    pub hotspot_active: Option<u32>,
    /// PPP sessions online.
    pub ppp_active: Option<u32>,
    /// Why it is unreachable, or the last failure.
    pub last_error: Option<String>,
    /// When the agent read this (UTC unix milliseconds).
    pub checked_at_ms: i64,
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Position in the site's change log.
    pub seq: u64,
    /// What changed.
    pub op: ChangeOp,
}

/// A change to one cached record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeOp {
    /// Create or replace the record with this state.
    Upsert(Item),
    /// Remove the record.
    Delete(ItemKey),
}

/// Cache sync from the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMessage {
    /// A full snapshot follows; it reflects at least the log up to `cursor`.
    SnapshotBegin {
        /// Cursor the agent holds once the snapshot ends.
        cursor: SyncCursor,
    },
    /// A chunk of the snapshot.
    SnapshotItems(Vec<Item>),
    /// The snapshot is complete: records not in it are gone.
    SnapshotEnd,
    /// Ordered changes after the agent's cursor.
    Changes(Vec<Change>),
    /// Nothing for this site up to `cursor`: the agent's cursor may move there, so a site
    /// without changes of its own does not fall behind the compacted log. Protocol 3.
    CaughtUp {
        /// The cursor to hold.
        cursor: SyncCursor,
    },
}

/// Controller to agent, on the control stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerMessage {
    /// Answer to a heartbeat.
    HeartbeatAck {
        /// Controller clock, UTC unix milliseconds.
        server_time_ms: i64,
    },
    /// Cache sync.
    Sync(SyncMessage),
    /// The CAs the agent must trust from now on (protocol 8 and later; sent only to agents
    /// whose `Hello` names [`crate::CA_ROTATION_VERSION`] or more): at every session start
    /// and whenever a CA rotation moves on.
    TrustBundle(TrustBundle),
}

/// The controller's CAs an agent trusts, during a CA rotation more than one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustBundle {
    /// PEM certificates, the CA that issues agent certificates now first: an agent whose
    /// certificate another one issued renews onto it.
    pub ca_pems: Vec<String>,
}

/// A batch of accounting records, sent on its own request stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountingBatch {
    /// Agent-chosen id echoed in the reply.
    pub batch_id: u64,
    /// The records, oldest first.
    pub records: Vec<AccountingRecord>,
}

/// Largest number of records in one accounting batch.
pub const MAX_ACCOUNTING_BATCH: usize = 1000;

/// Agent to controller, one per request stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentRequest {
    /// Store these records.
    Accounting(AccountingBatch),
    /// Sign a new certificate for this site's agent (a new key pair; the CSR's public key is
    /// all the controller takes from it). Protocol 3 and later.
    RenewCertificate {
        /// DER PKCS#10 request.
        csr_der: Vec<u8>,
    },
}

/// Controller to agent, the single answer on a request stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerReply {
    /// The batch is committed; the agent may forget it.
    AccountingCommitted {
        /// The batch this answers.
        batch_id: u64,
        /// Records newly stored.
        inserted: u32,
        /// Records already stored before (replays).
        duplicates: u32,
    },
    /// The request was refused and nothing was stored.
    Rejected {
        /// Why.
        message: String,
    },
    /// The renewed certificate; the one the session runs on stays valid until the agent
    /// connects with this one.
    Certificate {
        /// PEM of the new certificate.
        certificate_pem: String,
        /// End of its validity (UTC ms).
        not_after_ms: i64,
    },
}

/// Work the controller asks an agent to do on its router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// End a subscriber's sessions (RADIUS Disconnect and/or RouterOS API).
    Disconnect {
        /// Account to kick.
        username: String,
    },
    /// Put an account into isolation (overdue) or take it out.
    SetIsolation {
        /// Account.
        username: String,
        /// True to isolate, false to restore normal service.
        isolated: bool,
    },
    /// Re-speed running sessions after a plan change (CoA).
    ApplyPlan {
        /// Account.
        username: String,
        /// The new plan id.
        plan_id: String,
    },
    /// Re-apply the router configuration the agent manages.
    ResyncRouter,
    /// Write the site's hotspot login pages into a directory on the router.
    InstallHotspotPages {
        /// The files of the hotspot directory, named relative to it.
        files: Vec<HotspotFile>,
    },
    /// Read the router's own hotspot users and PPP secrets with their profiles, and who is
    /// online, for an import; answered [`CommandOutcome::RouterAccounts`]. Protocol 5.
    ReadRouterAccounts,
    /// Adopt or retire router entries an import carried over (once their vouchers and
    /// accounts are in the agent's cache). Protocol 5.
    TakeOverRouterAccounts {
        /// Adopt (API mode) or retire (RADIUS mode).
        mode: TakeOver,
        /// `/ip/hotspot/user` rows.
        hotspot_users: Vec<EntryRef>,
        /// `/ppp/secret` rows.
        ppp_secrets: Vec<EntryRef>,
    },
}

/// One file of a hotspot directory (pages, stylesheet, script): all text, as the RouterOS
/// API's `contents` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotspotFile {
    /// File name inside the hotspot directory, e.g. `login.html`.
    pub name: String,
    /// The file's text.
    pub contents: String,
}

impl Command {
    /// The first protocol version whose agents decode this command: an older agent would
    /// fail on it at every redelivery, so the controller answers for it instead.
    pub fn min_version(&self) -> u16 {
        match self {
            Command::InstallHotspotPages { .. } => 3,
            Command::ReadRouterAccounts | Command::TakeOverRouterAccounts { .. } => {
                crate::ROUTER_IMPORT_VERSION
            }
            _ => 1,
        }
    }
}

/// A command with its identity and deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    /// Controller-assigned id, stable across redeliveries (agents apply each id once).
    pub id: u64,
    /// Not to be applied after this time (UTC unix milliseconds).
    pub expires_at_ms: i64,
    /// What to do.
    pub command: Command,
    /// The W3C `traceparent` of the delivery, so the agent's apply joins its trace. Last, so
    /// an older agent (which stops reading after `command`) takes the envelope unchanged;
    /// [`CommandEnvelope::decode`] reads an older controller's envelope without it.
    pub trace_parent: Option<String>,
}

/// The envelope as controllers before the trace context sent it.
#[derive(Deserialize)]
struct CommandEnvelopeUntraced {
    id: u64,
    expires_at_ms: i64,
    command: Command,
}

impl CommandEnvelope {
    /// Decodes a command frame's payload, with or without the trailing trace context.
    pub fn decode(payload: &[u8]) -> Result<CommandEnvelope, postcard::Error> {
        match postcard::from_bytes::<CommandEnvelope>(payload) {
            Ok(envelope) => Ok(envelope),
            // Only a payload that ends right after the command lacks the last field.
            Err(postcard::Error::DeserializeUnexpectedEnd) => {
                let old: CommandEnvelopeUntraced = postcard::from_bytes(payload)?;
                Ok(CommandEnvelope {
                    id: old.id,
                    expires_at_ms: old.expires_at_ms,
                    command: old.command,
                    trace_parent: None,
                })
            }
            Err(e) => Err(e),
        }
    }
}

/// What happened to a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    /// Done.
    Applied,
    /// Tried and failed; the message says why.
    Failed(String),
    /// Arrived after its deadline; not applied.
    Expired,
    /// This agent cannot apply this kind of command.
    Unsupported(String),
    /// Done, with a note for the operator (e.g. where on the router the files are).
    AppliedWithNote(String),
    /// The router's accounts, answering [`Command::ReadRouterAccounts`].
    RouterAccounts(RouterAccounts),
}

/// The agent's answer on a command stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// The command this answers.
    pub id: u64,
    /// What happened.
    pub outcome: CommandOutcome,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hypothetical later hello with an extra trailing field.
    #[derive(Serialize)]
    struct FutureHello {
        protocol_version: u16,
        agent_version: String,
        cursor: SyncCursor,
        something_new: Vec<u32>,
    }

    /// The envelope as the controllers before the trace context wrote it.
    #[derive(Serialize)]
    struct UntracedEnvelope {
        id: u64,
        expires_at_ms: i64,
        command: Command,
    }

    #[test]
    fn envelopes_with_and_without_the_trace_context_decode() {
        let traced = CommandEnvelope {
            id: 7,
            expires_at_ms: 1_000,
            command: Command::ResyncRouter,
            trace_parent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        };
        let bytes = postcard::to_stdvec(&traced).unwrap();
        assert_eq!(CommandEnvelope::decode(&bytes).unwrap(), traced);
        // An older agent reads the fields it knows and leaves the trace context.
        #[derive(Deserialize, PartialEq, Debug)]
        struct OldAgentView {
            id: u64,
            expires_at_ms: i64,
            command: Command,
        }
        let old: OldAgentView = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(old.command, Command::ResyncRouter);
        // An older controller's envelope ends after the command.
        let untraced = postcard::to_stdvec(&UntracedEnvelope {
            id: 7,
            expires_at_ms: 1_000,
            command: Command::ResyncRouter,
        })
        .unwrap();
        let decoded = CommandEnvelope::decode(&untraced).unwrap();
        assert_eq!(decoded.trace_parent, None);
        assert_eq!(decoded.id, 7);
        // Garbage is still an error.
        assert!(CommandEnvelope::decode(&[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn appended_variants_keep_the_old_ones_encoded_as_before() {
        let resync = postcard::to_stdvec(&Command::ResyncRouter).unwrap();
        assert_eq!(resync, [3]);
        let install = postcard::to_stdvec(&Command::InstallHotspotPages {
            files: vec![HotspotFile {
                name: "login.html".into(),
                contents: "x".into(),
            }],
        })
        .unwrap();
        assert_eq!(install[0], 4);
        let note = postcard::to_stdvec(&CommandOutcome::AppliedWithNote("x".into())).unwrap();
        assert_eq!(note[0], 4);
        assert_eq!(
            postcard::to_stdvec(&CommandOutcome::Applied).unwrap(),
            [0],
            "an outcome stored by an older agent still reads back"
        );
    }

    #[test]
    fn router_import_variants_come_after_the_old_ones() {
        assert_eq!(
            postcard::to_stdvec(&Command::ReadRouterAccounts).unwrap(),
            [5]
        );
        let take = Command::TakeOverRouterAccounts {
            mode: TakeOver::Retire,
            hotspot_users: vec![EntryRef {
                id: "*1".into(),
                name: "vc1".into(),
            }],
            ppp_secrets: vec![],
        };
        let bytes = postcard::to_stdvec(&take).unwrap();
        assert_eq!(bytes[0], 6);
        assert_eq!(postcard::from_bytes::<Command>(&bytes).unwrap(), take);
        assert_eq!(take.min_version(), crate::ROUTER_IMPORT_VERSION);
        assert_eq!(Command::ReadRouterAccounts.min_version(), 5);
        let accounts = CommandOutcome::RouterAccounts(RouterAccounts::default());
        let bytes = postcard::to_stdvec(&accounts).unwrap();
        assert_eq!(bytes[0], 5);
        assert_eq!(
            postcard::from_bytes::<CommandOutcome>(&bytes).unwrap(),
            accounts
        );
    }

    #[test]
    fn the_drift_report_comes_after_the_router_report() {
        use crate::drift::{DriftEntry, DriftKind, DriftReport, PropertyDrift};
        let report = AgentMessage::Drift(DriftReport {
            checked_at_ms: 1_700_000_000_000,
            entries: vec![DriftEntry {
                menu: "/ppp/aaa".into(),
                name: "settings".into(),
                kind: DriftKind::AaaChanged,
                properties: vec![PropertyDrift::new("use-radius", Some("yes"), Some("no"))],
                repaired: false,
            }],
        });
        let bytes = postcard::to_stdvec(&report).unwrap();
        assert_eq!(bytes[0], 3, "appended after Router");
        assert_eq!(
            postcard::from_bytes::<AgentMessage>(&bytes).unwrap(),
            report
        );
        // A controller of protocol 6 or older knows three variants and cannot read it: hence
        // the agent sends it only to controllers that negotiated DRIFT_VERSION.
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        enum OldAgentMessage {
            Heartbeat(Heartbeat),
            SyncApplied(SyncCursor),
            Router(RouterReport),
        }
        assert!(postcard::from_bytes::<OldAgentMessage>(&bytes).is_err());
        let heartbeat = postcard::to_stdvec(&AgentMessage::Heartbeat(Heartbeat {
            sent_at_ms: 1,
            outbox_pending: 2,
            cache_items: 3,
            uptime_secs: 4,
        }))
        .unwrap();
        assert!(postcard::from_bytes::<OldAgentMessage>(&heartbeat).is_ok());
        const { assert!(crate::DRIFT_VERSION == 7 && crate::PROTOCOL_VERSION >= 7) };
        assert!(crate::version_supported(crate::DRIFT_VERSION));
    }

    #[test]
    fn radius_counters_come_after_the_drift_report() {
        use crate::radius_counters::RadiusCounters;
        let counters = AgentMessage::Radius(RadiusCounters {
            since_ms: 1_700_000_000_000,
            accepted: 7,
            rejected: vec![("expired".into(), 2)],
            accounted: 40,
            dropped: vec![],
        });
        let bytes = postcard::to_stdvec(&counters).unwrap();
        assert_eq!(bytes[0], 4, "appended after Drift");
        assert_eq!(
            postcard::from_bytes::<AgentMessage>(&bytes).unwrap(),
            counters
        );
        const { assert!(crate::RADIUS_COUNTERS_VERSION > crate::DRIFT_VERSION) };
        assert!(crate::version_supported(crate::RADIUS_COUNTERS_VERSION));
    }

    #[test]
    fn a_future_hello_still_yields_its_version() {
        let bytes = postcard::to_stdvec(&FutureHello {
            protocol_version: 99,
            agent_version: "99.0.0".into(),
            cursor: SyncCursor::default(),
            something_new: vec![1, 2, 3],
        })
        .unwrap();
        let v: HelloVersion = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(v.protocol_version, 99);
        assert!(!crate::version_supported(99));
        let hello: Hello = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(hello.agent_version, "99.0.0");
    }

    #[test]
    fn refusal_messages_are_readable() {
        let msg = Refusal::IncompatibleVersion { min: 2, max: 3 }.to_string();
        assert!(msg.contains("accepts versions 2 to 3"), "{msg}");
    }
}
