//! Controller commands applied at the site: ending or re-speeding a subscriber's running
//! sessions (RADIUS Disconnect/CoA to the NAS, the RouterOS API on the managed router) and
//! re-applying the router configuration, and writing the site's hotspot pages to the router.
//!
//! Each command id is applied at most once: its outcome is stored in sled and flushed
//! before it is answered, a redelivered id gets the stored outcome back, and concurrent
//! deliveries of one id wait for each other. A command past its deadline is answered
//! `Expired` and nothing is done. While the router is unreachable (or its breaker open)
//! router steps are retried with backoff until the command's deadline; a refusal (`!trap`)
//! fails the command at once, except "no such item", which means the row is already gone.
//! Nothing here is on the RADIUS path: the server answers from the cache whatever a
//! command is waiting for.

use crate::cache::Cache;
use crate::radius::access::{push_coa_attributes, running_grant};
use crate::radius::coa::{self, CoaAnswer};
use crate::radius::sessions::{OpenSession, Sessions};
use crate::radius::{Clients, NasClient};
use crate::reconnect::Reconnect;
use crate::router::{self, Change, Mode, Owned, Router, RouterConfig, RouterError};
use mikrobill_protocol::inventory::{EntryRef, TakeOver};
use mikrobill_protocol::items::AccountStatus;
use mikrobill_protocol::messages::{
    Command, CommandEnvelope, CommandOutcome, CommandResult, HotspotFile,
};
use mikrobill_radius::Code;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// How long outcomes are kept: far longer than the controller redelivers a command.
const KEEP_RESULTS_MS: i64 = 7 * 24 * 3600 * 1000;
/// Outcomes are pruned at most this often (on the way into a command).
const PRUNE_EVERY_MS: i64 = 3600 * 1000;
/// Longest pause between attempts to reach the router.
const RETRY_MAX: Duration = Duration::from_secs(10);
/// How long a take-over waits for sync to bring the imported logins into the cache.
const TAKE_OVER_CACHE_WAIT: Duration = Duration::from_secs(15);
/// Lets the steps report their own error at the deadline before the backstop fires.
const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// Active PPP sessions; rows are named by the account.
const PPP_ACTIVE: &str = "/ppp/active";
/// Active hotspot sessions; rows name the account in `user`.
const HOTSPOT_ACTIVE: &str = "/ip/hotspot/active";

/// The managed router, as commands need it.
#[derive(Debug, Clone)]
pub struct ManagedRouter {
    /// The supervised connection.
    pub router: Router,
    /// Its settings (mode, bootstrap, isolation profile).
    pub config: RouterConfig,
    /// Records of the router items the agent made.
    pub owned: Owned,
    /// Where each reconciliation's drift report goes.
    pub drift: router::DriftLog,
}

/// An outcome as stored under its command id.
#[derive(Serialize, Deserialize)]
struct Stored {
    outcome: CommandOutcome,
    stored_at_ms: i64,
}

/// Why a stored outcome cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    /// sled failed.
    #[error("command outcome storage failed: {0}")]
    Storage(#[from] sled::Error),
    /// The stored value is damaged.
    #[error("stored command outcome is damaged: {0}")]
    Decode(#[from] postcard::Error),
}

/// Applies controller commands once each and remembers what happened.
pub struct Applier {
    db: sled::Db,
    results: sled::Tree,
    cache: Arc<Cache>,
    sessions: Arc<Sessions>,
    clients: Clients,
    router: Option<ManagedRouter>,
    in_flight: Mutex<HashMap<u64, Weak<tokio::sync::Mutex<()>>>>,
    last_prune_ms: AtomicI64,
    clock: crate::clock::Clock,
}

impl std::fmt::Debug for Applier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applier")
            .field("router", &self.router.as_ref().map(|r| r.router.address()))
            .finish_non_exhaustive()
    }
}

/// Short name of a command kind, for logs.
pub fn command_kind(command: &Command) -> &'static str {
    match command {
        Command::Disconnect { .. } => "disconnect",
        Command::SetIsolation { .. } => "set_isolation",
        Command::ApplyPlan { .. } => "apply_plan",
        Command::ResyncRouter => "resync_router",
        Command::InstallHotspotPages { .. } => "install_hotspot_pages",
        Command::ReadRouterAccounts => "read_router_accounts",
        Command::TakeOverRouterAccounts { .. } => "take_over_router_accounts",
    }
}

/// The answer to a router read: the accounts, or a failure with their counts when they
/// would not fit one frame (the command stream carries exactly one).
fn answer_fitting_one_frame(
    id: u64,
    accounts: mikrobill_protocol::inventory::RouterAccounts,
) -> CommandOutcome {
    let outcome = CommandOutcome::RouterAccounts(accounts);
    let size = postcard::experimental::serialized_size(&CommandResult {
        id,
        outcome: outcome.clone(),
    })
    .unwrap_or(usize::MAX);
    if size <= mikrobill_protocol::MAX_FRAME_LEN {
        return outcome;
    }
    let CommandOutcome::RouterAccounts(a) = outcome else {
        unreachable!("built above")
    };
    CommandOutcome::Failed(format!(
        "the router's {} hotspot users and {} PPP secrets take {size} bytes, more than one answer carries ({} bytes)",
        a.hotspot_users.len(),
        a.ppp_secrets.len(),
        mikrobill_protocol::MAX_FRAME_LEN
    ))
}

/// Errors worth another attempt: the router may come back before the deadline.
fn retryable(e: &RouterError) -> bool {
    e.is_connection_failure() || matches!(e, RouterError::Unavailable(_))
}

/// Whether a trap says the item is gone already (a session that ended on its own).
fn already_gone(e: &RouterError) -> bool {
    matches!(e, RouterError::Trap { message, .. } if message.contains("no such item"))
}

fn log_changes(what: &str, changes: &[Change]) {
    for change in changes {
        tracing::info!("{what}: {change}");
    }
}

impl Applier {
    /// Opens the `command_results` tree of `db`. `clients` are the NAS secrets and CoA
    /// ports; `router` is the managed router, if any.
    pub fn open(
        db: &sled::Db,
        cache: Arc<Cache>,
        sessions: Arc<Sessions>,
        clients: Clients,
        router: Option<ManagedRouter>,
    ) -> Result<Applier, sled::Error> {
        Ok(Applier {
            db: db.clone(),
            results: db.open_tree("command_results")?,
            cache,
            sessions,
            clients,
            router,
            in_flight: Mutex::new(HashMap::new()),
            last_prune_ms: AtomicI64::new(0),
            clock: crate::clock::Clock::system(),
        })
    }

    /// Decides the grants of running sessions (a plan change) at `clock`'s time, the one the
    /// RADIUS server decides logins at; command deadlines stay on the system clock, the
    /// controller's.
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Applier {
        self.clock = clock;
        self
    }

    /// Applies a command unless this id was applied before, and answers its outcome.
    pub async fn apply(&self, envelope: CommandEnvelope) -> CommandResult {
        let id = envelope.id;
        let lock = self.lock_for(id);
        let _applying = lock.lock().await;
        self.prune_now_and_then();
        match self.stored(id) {
            Ok(Some(outcome)) => return CommandResult { id, outcome },
            Ok(None) => {}
            Err(e) => tracing::error!(id, "stored command outcome unreadable, applying again: {e}"),
        }
        let span = tracing::info_span!("command", id, kind = command_kind(&envelope.command));
        // The controller's delivery span is the parent: one trace from the API call on.
        if let Some(parent) = &envelope.trace_parent {
            mikrobill_telemetry::set_parent(&span, parent);
        }
        let outcome = self.run(&envelope).instrument(span).await;
        if let Err(e) = self.store(id, &outcome).await {
            // Every command is safe to repeat; only the once-only guarantee is lost.
            tracing::error!(id, "cannot store the command outcome: {e}");
        }
        CommandResult { id, outcome }
    }

    /// The stored outcome of command `id`, if it was applied.
    pub fn stored(&self, id: u64) -> Result<Option<CommandOutcome>, OutcomeError> {
        match self.results.get(id.to_be_bytes())? {
            Some(bytes) => Ok(Some(postcard::from_bytes::<Stored>(&bytes)?.outcome)),
            None => Ok(None),
        }
    }

    /// Forgets outcomes stored before `now_ms` minus seven days; returns how many.
    pub fn prune(&self, now_ms: i64) -> Result<usize, sled::Error> {
        let mut removed = 0;
        for entry in self.results.iter() {
            let (key, value) = entry?;
            let old = match postcard::from_bytes::<Stored>(&value) {
                Ok(s) => now_ms - s.stored_at_ms > KEEP_RESULTS_MS,
                Err(_) => true,
            };
            if old {
                self.results.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn prune_now_and_then(&self) {
        let now = crate::now_ms();
        let last = self.last_prune_ms.load(Ordering::Relaxed);
        if now - last < PRUNE_EVERY_MS
            || self
                .last_prune_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        match self.prune(now) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "old command outcomes pruned"),
            Err(e) => tracing::warn!("cannot prune old command outcomes: {e}"),
        }
    }

    async fn store(&self, id: u64, outcome: &CommandOutcome) -> Result<(), sled::Error> {
        let stored = Stored {
            outcome: outcome.clone(),
            stored_at_ms: crate::now_ms(),
        };
        let bytes = postcard::to_stdvec(&stored).expect("outcomes encode");
        self.results.insert(id.to_be_bytes(), bytes)?;
        crate::flush(&self.db).await
    }

    /// The lock deliveries of `id` share; entries go once nobody holds them.
    fn lock_for(&self, id: u64) -> Arc<tokio::sync::Mutex<()>> {
        // A few map operations: a panic elsewhere cannot leave the map inconsistent.
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, lock| lock.strong_count() > 0);
        if let Some(lock) = map.get(&id).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(id, Arc::downgrade(&lock));
        lock
    }

    async fn run(&self, envelope: &CommandEnvelope) -> CommandOutcome {
        // The controller's deadline, by the controller's clock: the system's, not `self.clock`.
        let now = crate::now_ms();
        if envelope.expires_at_ms <= now {
            return CommandOutcome::Expired;
        }
        // Capped so that a far-off deadline cannot overflow the clock; a command still
        // retrying after a week has outlived its stored outcome anyway.
        let valid_for = Duration::from_millis((envelope.expires_at_ms - now) as u64)
            .min(Duration::from_millis(KEEP_RESULTS_MS as u64));
        let deadline = Instant::now() + valid_for;
        let applied = async {
            match &envelope.command {
                Command::Disconnect { username } => self.disconnect(username, deadline).await,
                Command::SetIsolation { username, isolated } => {
                    self.set_isolation(username, *isolated, deadline).await
                }
                Command::ApplyPlan { username, plan_id } => {
                    self.apply_plan(username, plan_id, deadline).await
                }
                Command::ResyncRouter => return self.resync_router(deadline).await,
                Command::InstallHotspotPages { files } => {
                    return self.install_hotspot_pages(files, deadline).await;
                }
                Command::ReadRouterAccounts => {
                    return self.read_router_accounts(envelope.id, deadline).await;
                }
                Command::TakeOverRouterAccounts {
                    mode,
                    hotspot_users,
                    ppp_secrets,
                } => {
                    return self
                        .take_over_router_accounts(*mode, hotspot_users, ppp_secrets, deadline)
                        .await;
                }
            }
            .map_or_else(CommandOutcome::Failed, |()| CommandOutcome::Applied)
        };
        match tokio::time::timeout_at(deadline + DEADLINE_GRACE, applied).await {
            Ok(outcome) => outcome,
            Err(_) => {
                CommandOutcome::Failed("the command's deadline passed before it completed".into())
            }
        }
    }

    /// Ends every session of the account: Disconnect-Requests for the sessions RADIUS
    /// knows, then, with a router, its active PPP and hotspot rows.
    async fn disconnect(&self, username: &str, deadline: Instant) -> Result<(), String> {
        let sessions = self.open_sessions(username)?;
        self.end_sessions(username, &sessions, true, deadline).await
    }

    /// The account's status reaches the cache through sync; once it has, the running
    /// sessions are ended so that the next login gets the isolation profile (or the plan).
    async fn set_isolation(
        &self,
        username: &str,
        isolated: bool,
        deadline: Instant,
    ) -> Result<(), String> {
        let wanted = if isolated { "isolated" } else { "not isolated" };
        self.wait_for_cache(deadline, &format!("account {username} {wanted}"), || {
            self.cache
                .user(username)
                .map(|u| u.is_some_and(|u| (u.status == AccountStatus::Isolated) == isolated))
        })
        .await?;
        self.reconcile_api_mode(deadline).await?;
        let sessions = self.open_sessions(username)?;
        self.end_sessions(username, &sessions, true, deadline).await
    }

    /// Re-speeds the running sessions with a CoA-Request carrying what a fresh login would
    /// get under the new plan; a session that refuses or does not answer is ended instead,
    /// and so is every session when a fresh login would be refused. In API mode the
    /// sessions are ended after the account's profile changed: that is how they pick it up.
    async fn apply_plan(
        &self,
        username: &str,
        plan_id: &str,
        deadline: Instant,
    ) -> Result<(), String> {
        self.wait_for_cache(
            deadline,
            &format!("account {username} on plan {plan_id}"),
            || {
                let on_plan = match self.cache.voucher(username)? {
                    Some(v) => v.plan_id == plan_id,
                    None => self
                        .cache
                        .user(username)?
                        .is_some_and(|u| u.plan_id == plan_id),
                };
                Ok(on_plan && self.cache.plan(plan_id)?.is_some())
            },
        )
        .await?;
        self.reconcile_api_mode(deadline).await?;
        let sessions = self.open_sessions(username)?;
        let grant = match running_grant(&self.cache, &self.sessions, username, self.clock.now_ms())
        {
            Ok(grant) => grant,
            Err(reason) => {
                tracing::info!(
                    reason = reason.code(),
                    "the new plan refuses the account: ending its sessions"
                );
                return self.end_sessions(username, &sessions, true, deadline).await;
            }
        };
        let before = self.sessions.granted(username).map_err(|e| e.to_string())?;
        if !crate::radius::policy::coa_can_apply(before.as_ref(), &grant) {
            tracing::info!(
                "the new plan changes the address list or the data cap, which CoA cannot: ending the sessions"
            );
            return self.end_sessions(username, &sessions, true, deadline).await;
        }
        let mut unchanged = Vec::new();
        for session in sessions {
            let mut request = coa::session_request(
                Code::CoaRequest,
                username,
                Some(&session.session_id),
                session.nas_ip,
            );
            // A plan that sets nothing CoA can change cannot be expressed as a change.
            let answered = if push_coa_attributes(&mut request, &grant) {
                self.ask_nas(&session, &request, deadline).await
            } else {
                Err("the plan sets no rate limit, group or time limit".into())
            };
            if let Err(e) = answered {
                tracing::info!(session = %session.session_id, "CoA not applied, ending the session instead: {e}");
                unchanged.push(session);
            }
        }
        let api_mode = self
            .router
            .as_ref()
            .is_some_and(|r| r.config.mode == Mode::Api);
        if api_mode || !unchanged.is_empty() {
            return self
                .end_sessions(username, &unchanged, api_mode, deadline)
                .await;
        }
        Ok(())
    }

    /// A full reconciliation that also writes back RADIUS/AAA settings changed on the
    /// router (when the router is set to bootstrap): the operator's repair of drift.
    async fn resync_router(&self, deadline: Instant) -> CommandOutcome {
        let Some(managed) = &self.router else {
            return CommandOutcome::Unsupported("no router configured".into());
        };
        match self
            .reconcile_with(managed, deadline, router::Aaa::Repair)
            .await
        {
            Ok(()) => CommandOutcome::Applied,
            Err(e) => CommandOutcome::Failed(e),
        }
    }

    /// Writes the hotspot pages into their directory on the router, after checking that
    /// its RouterOS can receive files over the API at all.
    async fn install_hotspot_pages(
        &self,
        files: &[HotspotFile],
        deadline: Instant,
    ) -> CommandOutcome {
        let Some(managed) = &self.router else {
            return CommandOutcome::Unsupported("no router configured".into());
        };
        if let Err(e) = router::check_files(files) {
            return CommandOutcome::Failed(e);
        }
        let version = match self
            .on_router("router version", deadline, || {
                router_version(&managed.router)
            })
            .await
        {
            Ok(v) => v,
            Err(e) => return CommandOutcome::Failed(e),
        };
        let too_old = |v: &str| {
            let (major, minor) = router::FILE_ADD_SINCE;
            CommandOutcome::Unsupported(format!(
                "RouterOS {v} cannot receive files over the API (RouterOS {major}.{minor} or newer can); download the zip from the admin UI and upload it with Winbox or FTP"
            ))
        };
        if let Some(v) = &version
            && router::receives_files(v) == Some(false)
        {
            return too_old(v);
        }
        match self
            .on_router("hotspot pages", deadline, || {
                router::install_hotspot_files(&managed.router, files)
            })
            .await
        {
            Ok(dir) => CommandOutcome::AppliedWithNote(format!(
                "{} files written to {dir} on the router; set html-directory={dir} on the hotspot server profile to use them",
                files.len()
            )),
            // A router whose version could not be read tells by refusing the command.
            Err(e) if e.contains("no such command") => {
                too_old(version.as_deref().unwrap_or("of unknown version"))
            }
            Err(e) => CommandOutcome::Failed(e),
        }
    }

    /// Reads the router's own accounts for an import; an answer too large for one frame
    /// fails with the counts instead of breaking the command stream.
    async fn read_router_accounts(&self, id: u64, deadline: Instant) -> CommandOutcome {
        let Some(managed) = &self.router else {
            return CommandOutcome::Unsupported("no router configured".into());
        };
        let accounts = match self
            .on_router("reading the router's accounts", deadline, || {
                router::read_accounts(&managed.router)
            })
            .await
        {
            Ok(accounts) => accounts,
            Err(e) => return CommandOutcome::Failed(e),
        };
        answer_fitting_one_frame(id, accounts)
    }

    /// Adopts (API mode) or retires (RADIUS mode) the router entries an import carried
    /// over, once sync has brought their vouchers and accounts into the cache: adopted
    /// entries are then reconciled, and retired logins answered by RADIUS, from the cache.
    async fn take_over_router_accounts(
        &self,
        mode: TakeOver,
        hotspot_users: &[EntryRef],
        ppp_secrets: &[EntryRef],
        deadline: Instant,
    ) -> CommandOutcome {
        let Some(managed) = &self.router else {
            return CommandOutcome::Unsupported("no router configured".into());
        };
        match (mode, managed.config.mode) {
            (TakeOver::Adopt, Mode::Radius) => {
                return CommandOutcome::Failed(
                    "the agent manages this router in RADIUS mode, where it keeps no hotspot users or PPP secrets: import with mode retire".into(),
                );
            }
            (TakeOver::Retire, Mode::Api) => {
                return CommandOutcome::Failed(
                    "the agent manages this router in API mode, where logins are router entries: import with mode adopt".into(),
                );
            }
            _ => {}
        }
        let in_cache = |users: &[EntryRef], secrets: &[EntryRef]| {
            let mut missing = Vec::new();
            for u in users {
                if self.cache.voucher(&u.name)?.is_none() {
                    missing.push(u.name.clone());
                }
            }
            for s in secrets {
                if self.cache.user(&s.name)?.is_none() {
                    missing.push(s.name.clone());
                }
            }
            Ok::<_, crate::cache::CacheError>(missing)
        };
        // Sync brings the import's changes within moments; one that never comes (a voucher
        // revoked since) must not hold the site's command queue until the deadline.
        // Half the time left at most: the router steps need the rest.
        let now = Instant::now();
        let wait_until =
            now + TAKE_OVER_CACHE_WAIT.min(deadline.saturating_duration_since(now) / 2);
        let _ = self
            .wait_for_cache(wait_until, "the imported vouchers and accounts", || {
                Ok(in_cache(hotspot_users, ppp_secrets)?.is_empty())
            })
            .await;
        let missing = match in_cache(hotspot_users, ppp_secrets) {
            Ok(missing) => missing,
            Err(e) => return CommandOutcome::Failed(format!("cannot read the cache: {e}")),
        };
        // Entries whose login the agent cannot answer stay on the router as they are.
        let keep = |entries: &[EntryRef]| -> Vec<EntryRef> {
            entries
                .iter()
                .filter(|e| !missing.contains(&e.name))
                .cloned()
                .collect()
        };
        let (hotspot_users, ppp_secrets) = (keep(hotspot_users), keep(ppp_secrets));
        let summary = match self
            .on_router("taking over the router's accounts", deadline, || {
                router::take_over(&managed.router, mode, &hotspot_users, &ppp_secrets)
            })
            .await
        {
            Ok(mut summary) => {
                summary.not_cached = missing;
                summary
            }
            Err(e) => return CommandOutcome::Failed(e),
        };
        if mode == TakeOver::Adopt
            && let Err(e) = self.reconcile(managed, deadline).await
        {
            return CommandOutcome::Failed(format!("{}; then {e}", summary.note(mode)));
        }
        CommandOutcome::AppliedWithNote(summary.note(mode))
    }

    async fn reconcile_api_mode(&self, deadline: Instant) -> Result<(), String> {
        match &self.router {
            Some(managed) if managed.config.mode == Mode::Api => {
                self.reconcile(managed, deadline).await
            }
            _ => Ok(()),
        }
    }

    async fn reconcile(&self, managed: &ManagedRouter, deadline: Instant) -> Result<(), String> {
        self.reconcile_with(managed, deadline, router::Aaa::Check)
            .await
    }

    /// A reconciliation with its drift report (and, on a repair, RADIUS settings written back).
    async fn reconcile_with(
        &self,
        managed: &ManagedRouter,
        deadline: Instant,
        aaa: router::Aaa,
    ) -> Result<(), String> {
        let changes = self
            .on_router("router sync", deadline, || {
                router::reconcile_reported(
                    &managed.router,
                    &self.cache,
                    &managed.owned,
                    &managed.config,
                    &managed.drift,
                    aaa,
                )
            })
            .await?;
        log_changes("router sync", &changes);
        Ok(())
    }

    fn open_sessions(&self, username: &str) -> Result<Vec<OpenSession>, String> {
        self.sessions
            .open_sessions(username)
            .map_err(|e| format!("cannot read the session table: {e}"))
    }

    /// Ends `sessions` with Disconnect-Requests; with a router, removes the account's
    /// active rows too when `always_on_router`, or when a Disconnect failed. A failed
    /// Disconnect is forgiven when its session is on the managed router and the rows are
    /// gone: the router is then known to have ended it.
    async fn end_sessions(
        &self,
        username: &str,
        sessions: &[OpenSession],
        always_on_router: bool,
        deadline: Instant,
    ) -> Result<(), String> {
        let mut failures = Vec::new();
        for session in sessions {
            let request = coa::session_request(
                Code::DisconnectRequest,
                username,
                Some(&session.session_id),
                session.nas_ip,
            );
            if let Err(e) = self.ask_nas(session, &request, deadline).await {
                failures.push((session, e));
            }
        }
        if let Some(managed) = &self.router
            && (always_on_router || !failures.is_empty())
        {
            let kicked = self
                .on_router("ending the sessions on the router", deadline, || {
                    kick(&managed.router, username)
                })
                .await?;
            if kicked > 0 {
                tracing::info!(rows = kicked, "active sessions removed on the router");
            }
            let router_ip = managed_router_ip(&managed.router).await;
            failures.retain(|(s, _)| {
                router_ip
                    .is_none_or(|ip| s.nas_addr != Some(ip) && s.nas_ip.map(IpAddr::V4) != Some(ip))
            });
        }
        if failures.is_empty() {
            return Ok(());
        }
        let messages: Vec<String> = failures.into_iter().map(|(_, e)| e).collect();
        Err(messages.join("; "))
    }

    /// Sends a Disconnect- or CoA-Request for `session` to its NAS. Done when the NAS
    /// acknowledges, or answers that it has no such session (it has ended already).
    async fn ask_nas(
        &self,
        session: &OpenSession,
        request: &mikrobill_radius::Packet,
        deadline: Instant,
    ) -> Result<(), String> {
        let what = match request.code {
            Code::CoaRequest => "CoA-Request",
            _ => "Disconnect-Request",
        };
        let (nas, client) = self.nas_of(session)?;
        let sent = coa::send(nas, client.secret.as_bytes(), request);
        match tokio::time::timeout_at(deadline, sent).await {
            Ok(Ok(CoaAnswer::Ack | CoaAnswer::Nak(Some(coa::SESSION_NOT_FOUND)))) => Ok(()),
            Ok(Ok(CoaAnswer::Nak(cause))) => Err(format!(
                "{} refused the {what} for session {} (Error-Cause {})",
                client.name,
                session.session_id,
                cause.map_or_else(|| "none".to_owned(), |c| c.to_string())
            )),
            Ok(Err(e)) => Err(format!(
                "{what} for session {} to {}: {e}",
                session.session_id, client.name
            )),
            Err(_) => Err(format!(
                "{what} for session {} to {}: the command's deadline passed",
                session.session_id, client.name
            )),
        }
    }

    /// Where a session's NAS takes CoA, and its client entry (secret, port).
    fn nas_of(&self, session: &OpenSession) -> Result<(SocketAddr, &NasClient), String> {
        let ip = session
            .nas_addr
            .or(session.nas_ip.map(IpAddr::V4))
            .ok_or_else(|| {
                format!(
                    "the address of the NAS of session {} is unknown",
                    session.session_id
                )
            })?;
        let client = self.clients.find(SocketAddr::new(ip, 0)).ok_or_else(|| {
            format!(
                "no RADIUS client is configured for {ip}, the NAS of session {}",
                session.session_id
            )
        })?;
        Ok((SocketAddr::new(ip, client.coa_port), client))
    }

    /// Waits until `ready` holds for the cache (sync brings what a command relies on,
    /// possibly after the command itself), or fails at the deadline.
    async fn wait_for_cache<F>(&self, deadline: Instant, what: &str, ready: F) -> Result<(), String>
    where
        F: Fn() -> Result<bool, crate::cache::CacheError>,
    {
        let mut synced = self.cache.subscribe();
        loop {
            synced.borrow_and_update();
            match ready() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => return Err(format!("cannot read the cache: {e}")),
            }
            tokio::select! {
                changed = synced.changed() => if changed.is_err() {
                    return Err("the cache has closed".into());
                },
                () = tokio::time::sleep_until(deadline) => {
                    return Err(format!("the cache did not show {what} by the command's deadline"));
                }
            }
        }
    }

    /// Runs a router step, retrying with backoff while the router is unreachable, until
    /// the deadline; errors say which step failed and the last reason.
    async fn on_router<T, F, Fut>(
        &self,
        step: &str,
        deadline: Instant,
        mut op: F,
    ) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RouterError>>,
    {
        let mut pacing = Reconnect::new(RETRY_MAX);
        let mut last: Option<RouterError> = None;
        loop {
            let error = match tokio::time::timeout_at(deadline, op()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if retryable(&e) => e,
                Ok(Err(e)) => return Err(format!("{step}: {e}")),
                Err(_) => {
                    let last = last.map_or_else(|| "none".to_owned(), |e| e.to_string());
                    return Err(format!(
                        "{step}: the command's deadline passed while waiting for the router; last error: {last}"
                    ));
                }
            };
            let delay = pacing.next_delay();
            if Instant::now() + delay >= deadline {
                return Err(format!(
                    "{step}: gave up at the command's deadline: {error}"
                ));
            }
            tracing::debug!(step, ?delay, "router unavailable, retrying: {error}");
            last = Some(error);
            tokio::time::sleep(delay).await;
        }
    }
}

/// The managed router's address, when its API address names it (hostnames are resolved).
async fn managed_router_ip(router: &Router) -> Option<IpAddr> {
    let address = router.address();
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    tokio::net::lookup_host(address)
        .await
        .ok()?
        .next()
        .map(|a| a.ip())
}

/// The router's RouterOS version, read now when the supervisor has not seen it yet.
async fn router_version(router: &Router) -> Result<Option<String>, RouterError> {
    let seen = router.state().borrow().version.clone();
    match seen {
        Some(v) => Ok(Some(v)),
        None => Ok(router.refresh().await?.version),
    }
}

/// Removes the account's rows in the active PPP and hotspot tables; returns how many.
async fn kick(router: &Router, username: &str) -> Result<usize, RouterError> {
    let mut removed = 0;
    for (menu, key) in [(PPP_ACTIVE, "name"), (HOTSPOT_ACTIVE, "user")] {
        let rows = router.print(menu, &[(key, username)]).await?;
        // The query already selects them; checked again so a lax query never kicks others.
        for row in rows
            .iter()
            .filter(|r| r.get(key).map(String::as_str) == Some(username))
        {
            let Some(id) = row.get(".id") else { continue };
            match router.remove(menu, id).await {
                Ok(()) => removed += 1,
                Err(e) if already_gone(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_and_gone_classification() {
        let trap = |message: &str| RouterError::Trap {
            path: "/ppp/active/remove".into(),
            message: message.into(),
        };
        assert!(already_gone(&trap("no such item (4)")));
        assert!(!already_gone(&trap("failure: not allowed")));
        assert!(!retryable(&trap("no such item (4)")));
        assert!(retryable(&RouterError::Unavailable("breaker open".into())));
        assert!(retryable(&RouterError::ConnectionLost {
            path: "/x".into()
        }));
        assert!(!retryable(&RouterError::Stopped));
        assert!(!retryable(&RouterError::Config("no secret".into())));
    }

    #[test]
    fn a_read_too_large_for_one_frame_fails_with_its_counts() {
        use mikrobill_protocol::inventory::{HotspotUserEntry, RouterAccounts};
        let user = |i: usize| HotspotUserEntry {
            id: format!("*{i:X}"),
            name: format!("vc{i}"),
            comment: Some("x".repeat(1000)),
            ..HotspotUserEntry::default()
        };
        let small = RouterAccounts {
            hotspot_users: (0..10).map(user).collect(),
            ..RouterAccounts::default()
        };
        assert!(matches!(
            answer_fitting_one_frame(1, small),
            CommandOutcome::RouterAccounts(_)
        ));
        let huge = RouterAccounts {
            hotspot_users: (0..5000).map(user).collect(),
            ..RouterAccounts::default()
        };
        match answer_fitting_one_frame(1, huge) {
            CommandOutcome::Failed(m) => {
                assert!(m.contains("5000 hotspot users"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kinds_are_short_names() {
        assert_eq!(command_kind(&Command::ResyncRouter), "resync_router");
        assert_eq!(
            command_kind(&Command::SetIsolation {
                username: "u".into(),
                isolated: true
            }),
            "set_isolation"
        );
    }
}
