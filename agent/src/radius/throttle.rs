//! Fair-usage throttling of running sessions: once an account's data (the fleet's total plus
//! this site's unacknowledged use) reaches its plan's limit and the plan has a fair-usage
//! rate, each of its sessions open here gets a CoA-Request with that Mikrotik-Rate-Limit
//! instead of a Disconnect. An interim update that takes the account over the limit starts it,
//! and so does a sync that brings other sites' use ([`Throttler::watch_sync`]). Each session
//! is told once per rate ([`super::fair_usage`]); a NAS that refuses the change gets the
//! session ended instead, so that its next login is decided at the fair-usage rate.

use super::clients::{Clients, NasClient};
use super::coa::{self, CoaAnswer};
use super::fair_usage::Attempt;
use super::sessions::{OpenSession, Sessions};
use super::stats::RadiusStats;
use super::{access, policy};
use crate::cache::Cache;
use crate::clock::Clock;
use mikrobill_protocol::items::AccountStatus;
use mikrobill_radius::dict::{self, mikrotik};
use mikrobill_radius::{Code, Packet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

/// How often at most a sync's news is checked against the open sessions: syncs come with
/// every accounting batch of any site, and each check reads the whole session table.
const SYNC_CHECK_EVERY: Duration = Duration::from_secs(2);

/// What throttling needs: the cache (plans, vouchers), the session table (who is open, what
/// was sent), the NAS secrets and the counters.
pub(super) struct Throttler {
    cache: Arc<Cache>,
    sessions: Arc<Sessions>,
    clients: Clients,
    stats: Arc<RadiusStats>,
    clock: Clock,
    /// CoA exchanges under way: each holds the session table until it records the answer,
    /// so stopping the server waits for them ([`Throttler::stop`]).
    inflight: Mutex<JoinSet<()>>,
}

/// The CoA-Request that slows `session` of `username` to `rate`: the session's identity
/// (User-Name, Acct-Session-Id, NAS-IP-Address) and the new Mikrotik-Rate-Limit.
pub fn request(username: &str, session: &OpenSession, rate: &str) -> Packet {
    let mut req = coa::session_request(
        Code::CoaRequest,
        username,
        Some(&session.session_id),
        session.nas_ip,
    );
    req.push_vendor(dict::VENDOR_MIKROTIK, mikrotik::RATE_LIMIT, rate.as_bytes());
    req
}

impl Throttler {
    /// A throttler over the server's cache, table, clients and counters.
    pub(super) fn new(
        cache: Arc<Cache>,
        sessions: Arc<Sessions>,
        clients: Clients,
        stats: Arc<RadiusStats>,
        clock: Clock,
    ) -> Throttler {
        Throttler {
            cache,
            sessions,
            clients,
            stats,
            clock,
            inflight: Mutex::new(JoinSet::new()),
        }
    }

    /// The fair-usage rate `username` should run at now, from the cache and the session
    /// table; `None` while its data limit is not reached or its plan has none.
    pub(super) fn rate_for(&self, username: &str, now_ms: i64) -> Option<String> {
        let plan_id = match self.cache.voucher(username) {
            Ok(Some(v)) => v.plan_id,
            _ => {
                let user = self.cache.user(username).ok()??;
                // An isolated account runs at the isolation profile's speed, which its
                // plan's fair-usage rate must not replace.
                if user.status != AccountStatus::Active {
                    return None;
                }
                user.plan_id
            }
        };
        let plan = self.cache.plan(&plan_id).ok()??;
        plan.fup_rate_limit.as_ref()?;
        let local = self.sessions.account(username, now_ms).ok()?;
        let usage = access::fleet_usage(&self.cache, username, &local.usage)?;
        policy::fair_usage_rate(&plan, usage.bytes).map(str::to_string)
    }

    /// Sends each open session of `username` that has not been told `rate` yet its
    /// CoA-Request, in the background.
    pub(super) fn throttle(self: &Arc<Self>, username: &str, rate: &str, now_ms: i64) {
        let open = match self.sessions.open_sessions(username) {
            Ok(open) => open,
            Err(e) => {
                tracing::error!(user = username, "session table read failed: {e}");
                return;
            }
        };
        for session in open {
            let attempt = match self
                .sessions
                .claim_throttle(username, &session, rate, now_ms)
            {
                Ok(Some(attempt)) => attempt,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(user = username, "cannot record the fair-usage CoA: {e}");
                    continue;
                }
            };
            let Some((nas, client)) = self.nas_of(&session) else {
                tracing::warn!(
                    user = username,
                    session = session.session_id,
                    "cannot slow the session to its fair-usage rate: its NAS is unknown"
                );
                continue;
            };
            let secret = client.secret.clone();
            let this = self.clone();
            let user = username.to_string();
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            while inflight.try_join_next().is_some() {}
            inflight.spawn(async move {
                let req = request(&user, &session, &attempt.rate);
                let answer = coa::send(nas, secret.as_bytes(), &req).await;
                this.answered(&user, &session, &attempt, nas, &secret, answer)
                    .await;
            });
        }
    }

    async fn answered(
        &self,
        user: &str,
        session: &OpenSession,
        attempt: &Attempt,
        nas: SocketAddr,
        secret: &str,
        answer: Result<CoaAnswer, coa::CoaError>,
    ) {
        let sid = &session.session_id;
        match answer {
            Ok(CoaAnswer::Ack) => {
                RadiusStats::bump(&self.stats.fup_throttles);
                tracing::info!(
                    user,
                    session = sid,
                    rate = attempt.rate,
                    "data limit reached: session slowed to its fair-usage rate"
                );
            }
            Ok(CoaAnswer::Nak(Some(coa::SESSION_NOT_FOUND))) => {
                tracing::debug!(user, session = sid, "session already ended at its NAS");
            }
            Ok(CoaAnswer::Nak(cause)) => {
                // The NAS will not change the session: ending it makes the next login take the
                // fair-usage rate, which is what the plan promises instead of a cut-off.
                tracing::info!(
                    user,
                    session = sid,
                    ?cause,
                    "the NAS refused the fair-usage rate: ending the session instead"
                );
                RadiusStats::bump(&self.stats.disconnects);
                match coa::disconnect(nas, secret.as_bytes(), user, Some(sid), session.nas_ip).await
                {
                    Ok(answer) => {
                        tracing::info!(user, session = sid, ?answer, "disconnect answered")
                    }
                    Err(e) => tracing::warn!(user, session = sid, "disconnect failed: {e}"),
                }
            }
            Err(e) => {
                // Left unsettled: a later interim update or sync tries again, spaced out.
                tracing::warn!(
                    user,
                    session = sid,
                    tries = attempt.tries,
                    "fair-usage CoA not answered, will try again: {e}"
                );
                return;
            }
        }
        if let Err(e) = self.sessions.settle_throttle(user, session, attempt) {
            tracing::error!(
                user,
                session = sid,
                "cannot record the fair-usage answer: {e}"
            );
        }
    }

    /// Where a session's NAS takes CoA, and its client entry (secret, port).
    fn nas_of(&self, session: &OpenSession) -> Option<(SocketAddr, &NasClient)> {
        let ip = session.nas_addr.or(session.nas_ip.map(IpAddr::V4))?;
        let client = self.clients.find(SocketAddr::new(ip, 0))?;
        Some((SocketAddr::new(ip, client.coa_port), client))
    }

    /// Aborts the CoA exchanges under way and waits until they let go of the session table.
    /// One cut short stays unsettled and is sent again, spaced out, after a restart.
    pub(super) async fn stop(&self) {
        let mut inflight =
            std::mem::take(&mut *self.inflight.lock().unwrap_or_else(|p| p.into_inner()));
        inflight.shutdown().await;
    }

    /// Checks every account with a session open here after each sync (at most every
    /// [`SYNC_CHECK_EVERY`]): other sites' use arrives with the voucher, and may take an
    /// account over its limit between two of this site's interim updates.
    pub(super) async fn watch_sync(self: Arc<Self>) {
        let mut synced = self.cache.subscribe();
        loop {
            if synced.changed().await.is_err() {
                return;
            }
            synced.borrow_and_update();
            let now = self.clock.now_ms();
            let this = self.clone();
            let due = tokio::task::spawn_blocking(move || {
                let accounts = match this.sessions.open_accounts() {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::error!("session table read failed: {e}");
                        return Vec::new();
                    }
                };
                accounts
                    .into_iter()
                    .filter_map(|user| this.rate_for(&user, now).map(|rate| (user, rate)))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for (user, rate) in due {
                self.throttle(&user, &rate, now);
            }
            tokio::time::sleep(SYNC_CHECK_EVERY).await;
        }
    }
}
