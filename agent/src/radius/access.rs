//! Access-Request handling: check the credentials against the cached account, ask the
//! policy, and build the Access-Accept or Access-Reject.

use super::clients::NasClient;
use super::policy::{self, Account, Grant, RejectReason, Service, Usage};
use super::sessions::{AccountUsage, Sessions};
use super::{fleet, mac_lock};
use crate::cache::Cache;
use mikrobill_protocol::items::{Plan, User, Voucher};
use mikrobill_radius::dict::{self, microsoft, mikrotik};
use mikrobill_radius::{Code, Packet, auth, mschap};
use subtle::ConstantTimeEq;

/// The decision and the reply that carries it.
pub(super) struct Answer {
    pub reply: Packet,
    pub username: String,
    pub outcome: Result<(), RejectReason>,
}

/// What the MS-CHAPv2 exchange adds to an Access-Accept.
struct MsChapAccept {
    ident: u8,
    success: mschap::MsChap2Success,
}

enum Cached {
    Voucher(Voucher),
    User(User),
}

impl Cached {
    fn account(&self) -> Account<'_> {
        match self {
            Cached::Voucher(v) => Account::Voucher(v),
            Cached::User(u) => Account::User(u),
        }
    }

    /// Use and open sessions across the fleet: a voucher's other sites as last synced plus
    /// this site's table ([`fleet`]); a named account is served by its own site alone.
    fn fleet_wide(
        &self,
        site_id: &str,
        local: AccountUsage,
        interim_secs: u32,
        now_ms: i64,
    ) -> (Usage, u32) {
        match self {
            Cached::Voucher(v) => (
                fleet::usage(v, site_id, &local.usage),
                local.open_sessions.saturating_add(fleet::open_elsewhere(
                    v,
                    site_id,
                    interim_secs,
                    now_ms,
                )),
            ),
            Cached::User(_) => (local.usage, local.open_sessions),
        }
    }
}

/// The use of the account `username` across the fleet as this site knows it, for the
/// mid-session quota check; `None` when it is not cached.
pub(crate) fn fleet_usage(cache: &Cache, username: &str, local: &Usage) -> Option<Usage> {
    match lookup(cache, username).ok()? {
        Cached::Voucher(v) => Some(fleet::usage(&v, cache.site_id(), local)),
        Cached::User(_) => Some(*local),
    }
}

/// The account a User-Name names: a voucher code first, then a named account.
fn lookup(cache: &Cache, username: &str) -> Result<Cached, RejectReason> {
    if username.is_empty() {
        return Err(RejectReason::UnknownAccount);
    }
    let found = match cache.voucher(username) {
        Ok(Some(v)) => Ok(Some(Cached::Voucher(v))),
        Ok(None) => cache.user(username).map(|u| u.map(Cached::User)),
        Err(e) => Err(e),
    };
    match found {
        Ok(Some(cached)) => Ok(cached),
        Ok(None) => Err(RejectReason::UnknownAccount),
        Err(e) => {
            tracing::error!("cache read failed: {e}");
            Err(RejectReason::UnknownAccount)
        }
    }
}

/// What a running session of `username` should have under the cache as it stands: the
/// grant a fresh login would get, except that the open sessions do not count against the
/// shared-users limit (the session asking is one of them). `Err` when a fresh login would
/// be refused, so the session should end instead.
pub(crate) fn running_grant(
    cache: &Cache,
    sessions: &Sessions,
    username: &str,
    now_ms: i64,
) -> Result<Grant, RejectReason> {
    let cached = lookup(cache, username)?;
    let account = cached.account();
    let plan = cache.plan(account.plan_id()).ok().flatten();
    let usage = sessions.account(username, now_ms).map_err(|e| {
        tracing::error!("session table read failed: {e}");
        RejectReason::UnknownAccount
    })?;
    let (usage, _) = cached.fleet_wide(cache.site_id(), usage, 0, now_ms);
    policy::decide(account, plan.as_ref(), &usage, 0, now_ms)
}

fn check_credentials(
    req: &Packet,
    client: &NasClient,
    username: &str,
    password: &str,
) -> Result<Option<MsChapAccept>, RejectReason> {
    if let Some(hidden) = req.get(dict::USER_PASSWORD) {
        let given =
            auth::decrypt_user_password(hidden, client.secret.as_bytes(), &req.authenticator)
                .map_err(|_| RejectReason::BadCredentials)?;
        return match bool::from(given.as_slice().ct_eq(password.as_bytes())) {
            true => Ok(None),
            false => Err(RejectReason::BadCredentials),
        };
    }
    if let Some(chap) = req.get(dict::CHAP_PASSWORD) {
        // RouterOS hotspot sends CHAP-Challenge; without it the Request Authenticator is the challenge.
        let challenge = req.get(dict::CHAP_CHALLENGE).unwrap_or(&req.authenticator);
        return match auth::verify_chap(chap, challenge, password.as_bytes()) {
            true => Ok(None),
            false => Err(RejectReason::BadCredentials),
        };
    }
    if let (Some(challenge), Some(response)) = (
        req.get_vendor(dict::VENDOR_MICROSOFT, microsoft::MS_CHAP_CHALLENGE),
        req.get_vendor(dict::VENDOR_MICROSOFT, microsoft::MS_CHAP2_RESPONSE),
    ) {
        let response =
            mschap::MsChap2Response::parse(response).ok_or(RejectReason::BadCredentials)?;
        let success = mschap::verify(challenge, &response, username.as_bytes(), password)
            .ok_or(RejectReason::BadCredentials)?;
        return Ok(Some(MsChapAccept {
            ident: response.ident,
            success,
        }));
    }
    Err(RejectReason::BadCredentials)
}

/// Pushes what the plan (or isolation) sets for a session's service: Mikrotik-Rate-Limit,
/// Mikrotik-Group and Mikrotik-Address-List. The Access-Accept and the CoA-Request that
/// re-speeds a running session share it, so both always say the same; false when the
/// grant sets none of them.
fn push_service_attributes(packet: &mut Packet, grant: &Grant) -> bool {
    let mut pushed = false;
    if let Some(rate) = &grant.rate_limit {
        packet.push_vendor(dict::VENDOR_MIKROTIK, mikrotik::RATE_LIMIT, rate.as_bytes());
        pushed = true;
    }
    if let Some(group) = &grant.router_group {
        packet.push_vendor(dict::VENDOR_MIKROTIK, mikrotik::GROUP, group.as_bytes());
        pushed = true;
    }
    if let Some(list) = &grant.address_list {
        packet.push_vendor(
            dict::VENDOR_MIKROTIK,
            mikrotik::ADDRESS_LIST,
            list.as_bytes(),
        );
        pushed = true;
    }
    pushed
}

/// Puts into a CoA-Request what RouterOS changes in a running session: Rate-Limit,
/// Mikrotik-Group and Session-Timeout (a new time limit). Address list and data cap are not
/// among them ([`policy::coa_can_apply`] decides when that forces a disconnect). Returns
/// whether anything was put.
pub(crate) fn push_coa_attributes(packet: &mut Packet, grant: &Grant) -> bool {
    let mut pushed = false;
    if let Some(rate) = &grant.rate_limit {
        packet.push_vendor(dict::VENDOR_MIKROTIK, mikrotik::RATE_LIMIT, rate.as_bytes());
        pushed = true;
    }
    if let Some(group) = &grant.router_group {
        packet.push_vendor(dict::VENDOR_MIKROTIK, mikrotik::GROUP, group.as_bytes());
        pushed = true;
    }
    if let Some(t) = grant.session_timeout_secs {
        packet.push_u32(dict::SESSION_TIMEOUT, t.min(u32::MAX as u64) as u32);
        pushed = true;
    }
    pushed
}

fn accept(
    req: &Packet,
    client: &NasClient,
    grant: &Grant,
    plan: &Plan,
    mschap: Option<MsChapAccept>,
) -> Packet {
    let mut reply = Packet::new(Code::AccessAccept, req.identifier, [0; 16]);
    if let Some(t) = grant.session_timeout_secs {
        reply.push_u32(dict::SESSION_TIMEOUT, t.min(u32::MAX as u64) as u32);
    }
    if let Some(i) = grant.interim_interval_secs {
        reply.push_u32(dict::ACCT_INTERIM_INTERVAL, i);
    }
    push_service_attributes(&mut reply, grant);
    if let Some(bytes) = grant.total_limit_bytes {
        reply.push_vendor_u32(
            dict::VENDOR_MIKROTIK,
            mikrotik::TOTAL_LIMIT,
            (bytes & 0xffff_ffff) as u32,
        );
        if bytes >> 32 > 0 {
            reply.push_vendor_u32(
                dict::VENDOR_MIKROTIK,
                mikrotik::TOTAL_LIMIT_GIGAWORDS,
                (bytes >> 32).min(u32::MAX as u64) as u32,
            );
        }
    }
    if let Some(ip) = grant.framed_ip {
        reply.push(dict::FRAMED_IP_ADDRESS, ip.octets().to_vec());
    }
    reply.push_u32(dict::PORT_LIMIT, grant.port_limit);
    // Echoed by the router in accounting, tying sessions back to the plan they were sold under.
    reply.push(dict::CLASS, format!("mikrobill:{}", plan.id).into_bytes());
    if let Some(ms) = mschap {
        let secret = client.secret.as_bytes();
        reply.push_vendor(
            dict::VENDOR_MICROSOFT,
            microsoft::MS_CHAP2_SUCCESS,
            &mschap::success_attribute(ms.ident, &ms.success),
        );
        let salt: u16 = rand::random();
        reply.push_vendor(
            dict::VENDOR_MICROSOFT,
            microsoft::MS_MPPE_SEND_KEY,
            &mschap::mppe_key_attribute(
                &ms.success.master_send_key,
                secret,
                &req.authenticator,
                salt,
            ),
        );
        reply.push_vendor(
            dict::VENDOR_MICROSOFT,
            microsoft::MS_MPPE_RECV_KEY,
            &mschap::mppe_key_attribute(
                &ms.success.master_recv_key,
                secret,
                &req.authenticator,
                salt.wrapping_add(1),
            ),
        );
        // No MS-MPPE-Encryption-Policy/Types: RouterOS turns them into require-encryption
        // and use-encryption for the session, which breaks PPPoE clients without MPPE.
        // Encryption stays the PPP profile's choice; the keys above are used only when the
        // profile negotiates it.
    }
    reply
}

/// The service a request logs in to: PPP when it says Framed-Protocol = PPP (1) or
/// Service-Type = Framed (2), the hotspot otherwise.
fn service(req: &Packet) -> Service {
    let ppp =
        req.get_u32(dict::FRAMED_PROTOCOL) == Some(1) || req.get_u32(dict::SERVICE_TYPE) == Some(2);
    if ppp { Service::Ppp } else { Service::Hotspot }
}

fn reject(req: &Packet, reason: &RejectReason) -> Packet {
    let mut reply = Packet::new(Code::AccessReject, req.identifier, [0; 16]);
    let message = reason.message(service(req));
    // An MS-CHAPv2 peer reads its failure from MS-CHAP-Error (RFC 2548, RFC 2759 section
    // 6): E=691 is "authentication failure", R=0 "do not retry with these credentials".
    if let Some(ident) = req
        .get_vendor(dict::VENDOR_MICROSOFT, microsoft::MS_CHAP2_RESPONSE)
        .and_then(|r| r.first().copied())
    {
        let challenge: [u8; 16] = rand::random();
        let mut error = vec![ident];
        error.extend_from_slice(
            format!(
                "E=691 R=0 C={} V=3 M={message}",
                hex::encode_upper(challenge)
            )
            .as_bytes(),
        );
        reply.push_vendor(dict::VENDOR_MICROSOFT, microsoft::MS_CHAP_ERROR, &error);
    }
    reply.push(dict::REPLY_MESSAGE, message.into_bytes());
    reply
}

/// What the agent's configuration adds to every decision.
#[derive(Debug, Clone, Copy)]
pub(super) struct Defaults<'a> {
    /// Acct-Interim-Interval for plans that set none.
    pub interim_secs: u32,
    /// Rate-Limit of isolated accounts, when the operator set one.
    pub isolation_rate_limit: Option<&'a str>,
}

/// Decides one Access-Request from the cache and the session table alone (what the server
/// owns beyond them is none of a decision's business).
pub(super) fn handle(
    cache: &Cache,
    sessions: &Sessions,
    client: &NasClient,
    req: &Packet,
    defaults: &Defaults<'_>,
    now_ms: i64,
) -> Answer {
    let username = req.get_string(dict::USER_NAME).unwrap_or_default();
    let decided = decide(cache, sessions, client, req, &username, defaults, now_ms)
        .map(|(grant, plan, mschap)| (accept(req, client, &grant, &plan, mschap), grant));
    match decided {
        Ok((reply, _)) => Answer {
            reply,
            username,
            outcome: Ok(()),
        },
        Err(reason) => Answer {
            reply: reject(req, &reason),
            username,
            outcome: Err(reason),
        },
    }
}

fn decide(
    cache: &Cache,
    sessions: &Sessions,
    client: &NasClient,
    req: &Packet,
    username: &str,
    defaults: &Defaults<'_>,
    now_ms: i64,
) -> Result<(Grant, Plan, Option<MsChapAccept>), RejectReason> {
    let cached = lookup(cache, username)?;
    let account = cached.account();
    let mschap = check_credentials(req, client, username, account.password())?;
    let plan = cache.plan(account.plan_id()).ok().flatten();
    // Every session reports at an interval the agent knows (the plan's, else the agent's;
    // bootstrap sets the router to take it from here), so silence means a dead session.
    let interim = plan
        .as_ref()
        .and_then(|p| p.interim_interval_secs)
        .unwrap_or(defaults.interim_secs);
    let device = req.get_string(dict::CALLING_STATION_ID);
    let usage = sessions
        .account_at_login(
            username,
            now_ms,
            policy::stale_after_ms(interim),
            device.as_deref(),
        )
        .map_err(|e| {
            tracing::error!("session table read failed: {e}");
            RejectReason::UnknownAccount
        })?;
    let (usage, open_sessions) = cached.fleet_wide(cache.site_id(), usage, interim, now_ms);
    let mut grant = policy::decide(account, plan.as_ref(), &usage, open_sessions, now_ms)?;
    let binds = match (&cached, &plan) {
        (Cached::Voucher(v), Some(plan)) => {
            let here = sessions.bound_mac(username).map_err(|e| {
                tracing::error!("session table read failed: {e}");
                RejectReason::UnknownAccount
            })?;
            mac_lock::check(
                plan.mac_lock,
                v.bound_mac.as_deref(),
                here.as_deref(),
                device.as_deref(),
            )?
        }
        _ => None,
    };
    if let Some(mac) = binds
        && let Err(e) = sessions.bind_mac(username, &mac)
    {
        tracing::error!("cannot record the voucher's device: {e}");
    }
    grant.interim_interval_secs = Some(interim);
    if grant.isolated {
        grant.rate_limit =
            policy::isolated_rate_limit(grant.rate_limit.take(), defaults.isolation_rate_limit);
    }
    if grant.activates
        && let Err(e) = sessions.record_activation(username, now_ms)
    {
        tracing::error!("cannot record voucher activation: {e}");
    }
    if let Err(e) = sessions.record_grant(username, &policy::FixedAtLogin::of(&grant)) {
        // Only costs a later plan change its CoA (it disconnects instead).
        tracing::error!("cannot record what the login was granted: {e}");
    }
    let plan = plan.expect("policy accepts only with a plan");
    Ok((grant, plan, mschap))
}
