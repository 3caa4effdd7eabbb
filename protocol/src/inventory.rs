//! A router's own accounts, read for an import: hotspot user profiles and users (Mikhmon's
//! vouchers with their limits and used counters), PPP profiles and secrets, and who is online.
//! Values travel as the router printed them; the controller parses them, so a bad value is
//! reported there with its entry and field instead of being lost on the way.

use serde::{Deserialize, Serialize};

/// Everything an import reads from a router, in one command answer. Its `Debug` shows only
/// counts: outcomes are logged, and the entries hold passwords.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterAccounts {
    /// `/ip/hotspot/user/profile`.
    pub hotspot_profiles: Vec<HotspotProfileEntry>,
    /// `/ip/hotspot/user`.
    pub hotspot_users: Vec<HotspotUserEntry>,
    /// `/ppp/profile`.
    pub ppp_profiles: Vec<PppProfileEntry>,
    /// `/ppp/secret`.
    pub ppp_secrets: Vec<PppSecretEntry>,
    /// `user` of each `/ip/hotspot/active` row: who is online on the hotspot.
    pub hotspot_active: Vec<String>,
    /// `name` of each `/ppp/active` row: who is online over PPP.
    pub ppp_active: Vec<String>,
}

/// One `/ip/hotspot/user/profile` row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotspotProfileEntry {
    /// The router's `.id`, e.g. `*1`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `rate-limit`, e.g. `1M/2M`.
    pub rate_limit: Option<String>,
    /// `shared-users`.
    pub shared_users: Option<String>,
    /// `session-timeout`.
    pub session_timeout: Option<String>,
    /// `on-login`: Mikhmon keeps its price and validity in this script.
    pub on_login: Option<String>,
}

impl std::fmt::Debug for RouterAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterAccounts")
            .field("hotspot_profiles", &self.hotspot_profiles.len())
            .field("hotspot_users", &self.hotspot_users.len())
            .field("ppp_profiles", &self.ppp_profiles.len())
            .field("ppp_secrets", &self.ppp_secrets.len())
            .field("hotspot_active", &self.hotspot_active.len())
            .field("ppp_active", &self.ppp_active.len())
            .finish()
    }
}

/// One `/ip/hotspot/user` row; its `Debug` leaves the password out.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotspotUserEntry {
    /// The router's `.id`.
    pub id: String,
    /// `name`: the login.
    pub name: String,
    /// `password`.
    pub password: Option<String>,
    /// `profile`.
    pub profile: Option<String>,
    /// `limit-uptime`, a RouterOS duration.
    pub limit_uptime: Option<String>,
    /// `limit-bytes-total`.
    pub limit_bytes_total: Option<String>,
    /// `limit-bytes-in`.
    pub limit_bytes_in: Option<String>,
    /// `limit-bytes-out`.
    pub limit_bytes_out: Option<String>,
    /// `uptime`: online time used so far.
    pub uptime: Option<String>,
    /// `bytes-in` used so far.
    pub bytes_in: Option<String>,
    /// `bytes-out` used so far.
    pub bytes_out: Option<String>,
    /// `mac-address` the login is bound to.
    pub mac_address: Option<String>,
    /// `comment`.
    pub comment: Option<String>,
    /// `disabled` (`true`/`false` or `yes`/`no`).
    pub disabled: Option<String>,
}

/// One `/ppp/profile` row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PppProfileEntry {
    /// The router's `.id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `rate-limit`.
    pub rate_limit: Option<String>,
    /// `local-address`.
    pub local_address: Option<String>,
    /// `remote-address`.
    pub remote_address: Option<String>,
}

/// One `/ppp/secret` row; its `Debug` leaves the password out.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PppSecretEntry {
    /// The router's `.id`.
    pub id: String,
    /// `name`: the login.
    pub name: String,
    /// `password`.
    pub password: Option<String>,
    /// `service` (`any`, `pppoe`, ...).
    pub service: Option<String>,
    /// `profile`.
    pub profile: Option<String>,
    /// `remote-address`: a fixed address.
    pub remote_address: Option<String>,
    /// `disabled`.
    pub disabled: Option<String>,
    /// `comment`.
    pub comment: Option<String>,
}

impl std::fmt::Debug for HotspotUserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotspotUserEntry")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("profile", &self.profile)
            .field("limit_uptime", &self.limit_uptime)
            .field("limit_bytes_total", &self.limit_bytes_total)
            .field("uptime", &self.uptime)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PppSecretEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PppSecretEntry")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("service", &self.service)
            .field("profile", &self.profile)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A router entry an import took over, named by both `.id` and name: the agent acts on it
/// only while the row with that id still has that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    /// The router's `.id`.
    pub id: String,
    /// Its `name`.
    pub name: String,
}

/// What becomes of the router's own entries once they are imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TakeOver {
    /// The agent owns them from now on (API mode): they get its marker comment, and
    /// reconciliation keeps them in line with the controller.
    Adopt,
    /// RADIUS answers for them from now on: the local entries of logins not online are
    /// removed; online ones stay until a later run, so nobody is disconnected.
    Retire,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{CommandOutcome, CommandResult};

    /// A Mikhmon voucher as a busy router holds it, every field filled.
    fn mikhmon_user(i: usize) -> HotspotUserEntry {
        let some = |s: String| Some(s);
        HotspotUserEntry {
            id: format!("*{i:X}"),
            name: format!("vc{i:08}"),
            password: some(format!("pw{i:06}")),
            profile: some("3jam-5000".into()),
            limit_uptime: some("3h".into()),
            limit_bytes_total: some("1073741824".into()),
            limit_bytes_in: some("536870912".into()),
            limit_bytes_out: some("536870912".into()),
            uptime: some("1h2m3s".into()),
            bytes_in: some("123456789".into()),
            bytes_out: some("987654321".into()),
            mac_address: some("AA:BB:CC:DD:EE:FF".into()),
            comment: some(format!("vc-{i}-08.12.26-reseller paket tiga jam")),
            disabled: some("false".into()),
        }
    }

    #[test]
    fn ten_thousand_vouchers_and_secrets_fit_one_frame() {
        let accounts = RouterAccounts {
            hotspot_profiles: vec![HotspotProfileEntry {
                id: "*1".into(),
                name: "3jam-5000".into(),
                rate_limit: Some("1M/2M".into()),
                shared_users: Some("1".into()),
                session_timeout: None,
                on_login: Some(":put (\",rem,5000,1d,5000,,Disable,\"); {:local x}".repeat(20)),
            }],
            hotspot_users: (0..10_000).map(mikhmon_user).collect(),
            ppp_profiles: vec![PppProfileEntry::default(); 50],
            ppp_secrets: (0..2_000)
                .map(|i| PppSecretEntry {
                    id: format!("*{i:X}"),
                    name: format!("pelanggan-{i}"),
                    password: Some("secret-password".into()),
                    service: Some("pppoe".into()),
                    profile: Some("10Mbps".into()),
                    remote_address: Some("10.10.10.10".into()),
                    disabled: Some("false".into()),
                    comment: Some("Pak Budi, Jl. Melati 12".into()),
                })
                .collect(),
            hotspot_active: (0..2_000).map(|i| format!("vc{i:08}")).collect(),
            ppp_active: (0..2_000).map(|i| format!("pelanggan-{i}")).collect(),
        };
        let result = CommandResult {
            id: 7,
            outcome: CommandOutcome::RouterAccounts(accounts.clone()),
        };
        let frame = crate::frame::encode_frame(&result).expect("fits one frame");
        assert!(
            frame.len() < crate::MAX_FRAME_LEN / 2,
            "{} bytes leave too little room",
            frame.len()
        );
        let back: CommandResult = crate::frame::decode_payload(&frame[4..]).unwrap();
        assert_eq!(back.outcome, CommandOutcome::RouterAccounts(accounts));
    }

    #[test]
    fn debug_output_shows_no_password() {
        let user = mikhmon_user(1);
        let shown = format!(
            "{user:?} {:?}",
            RouterAccounts {
                hotspot_users: vec![user.clone()],
                ..RouterAccounts::default()
            }
        );
        assert!(!shown.contains("pw000001"), "{shown}");
        let secret = PppSecretEntry {
            password: Some("hunter2".into()),
            ..PppSecretEntry::default()
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
