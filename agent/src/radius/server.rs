//! The UDP listeners. Auth is decided inline from memory on several receive loops;
//! accounting is handed to a task per request so that many requests share one disk flush
//! (group commit) and the Accounting-Response leaves only after it.

use super::clients::{Clients, NasClient};
use super::dedup::{ReplyCache, Seen};
use super::sessions::Sessions;
use super::stats::RadiusStats;
use super::throttle::Throttler;
use super::{access, accounting, coa, policy};
use crate::cache::Cache;
use crate::clock::Clock;
use crate::outbox::{Outbox, OutboxError};
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus};
use mikrobill_radius::auth::{self, MaStatus};
use mikrobill_radius::{Code, MAX_PACKET_LEN, Packet};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// Most accounting records committed together (session table updates, then one outbox
/// append and flush).
const COMMIT_GROUP: usize = 4096;

/// Where to listen and whom to answer.
#[derive(Debug, Clone)]
pub struct RadiusConfig {
    /// Authentication listener (RFC default port 1812).
    pub auth_listen: SocketAddr,
    /// Accounting listener (RFC default port 1813).
    pub acct_listen: SocketAddr,
    /// The routers allowed to ask.
    pub clients: Clients,
    /// How often sessions report usage when their plan sets no interval: every Access-Accept
    /// carries Acct-Interim-Interval, and bootstrap tells the router to use it.
    pub interim: Duration,
    /// Rate-Limit of isolated accounts (`[router] isolation_rate_limit`); `None` keeps the
    /// plan's.
    pub isolation_rate_limit: Option<String>,
}

/// The interim interval when nothing else is configured.
pub const DEFAULT_INTERIM: Duration = Duration::from_secs(300);

/// Everything the handlers need.
pub(super) struct Context {
    pub cache: Arc<Cache>,
    pub sessions: Arc<Sessions>,
    clients: Clients,
    /// Acct-Interim-Interval for plans that set none.
    interim_secs: u32,
    /// Rate-Limit of isolated accounts.
    isolation_rate_limit: Option<String>,
    stats: Arc<RadiusStats>,
    auth_replies: ReplyCache,
    acct_replies: ReplyCache,
    disconnected: Mutex<HashSet<(String, String)>>,
    throttler: Arc<Throttler>,
    committer: mpsc::Sender<Commit>,
    /// What "now" is for every decision and record: read once per request.
    clock: Clock,
}

impl Context {
    /// For a request seen before: `Some` with the reply to send again (or nothing while the
    /// first copy is still being processed); `None` for a new request.
    fn repeated(
        &self,
        replies: &ReplyCache,
        from: SocketAddr,
        req: &Packet,
    ) -> Option<Option<Vec<u8>>> {
        match replies.check(from, req.identifier, req.authenticator) {
            Seen::Answered(reply) => {
                RadiusStats::bump(&self.stats.retransmits);
                Some(Some(reply))
            }
            Seen::InFlight => Some(None),
            Seen::New => None,
        }
    }
}

/// A running RADIUS server.
pub struct RadiusServer {
    /// Bound authentication address.
    pub auth_addr: SocketAddr,
    /// Bound accounting address.
    pub acct_addr: SocketAddr,
    /// Counters.
    pub stats: Arc<RadiusStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    throttler: Arc<Throttler>,
}

impl Drop for RadiusServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl RadiusServer {
    /// Handles that tell whether the server's tasks still run, for a health check that
    /// outlives borrows of the server.
    pub fn task_handles(&self) -> Vec<tokio::task::AbortHandle> {
        self.tasks.iter().map(|t| t.abort_handle()).collect()
    }

    /// Stops serving and waits until every task has let go of the cache, the session table
    /// and the outbox, so the sled database can be opened again at once (an agent restarted
    /// in the same data directory); dropping only aborts them.
    pub async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        self.throttler.stop().await;
    }

    /// Binds both listeners and starts serving, on the system clock.
    pub async fn start(
        config: RadiusConfig,
        cache: Arc<Cache>,
        outbox: Arc<Outbox>,
        sessions: Arc<Sessions>,
    ) -> std::io::Result<RadiusServer> {
        RadiusServer::start_with_clock(config, cache, outbox, sessions, Clock::system()).await
    }

    /// Binds both listeners and starts serving; `clock` is what logins are decided and
    /// accounting is timed by.
    pub async fn start_with_clock(
        config: RadiusConfig,
        cache: Arc<Cache>,
        outbox: Arc<Outbox>,
        sessions: Arc<Sessions>,
        clock: Clock,
    ) -> std::io::Result<RadiusServer> {
        let auth_sock = Arc::new(
            UdpSocket::bind(config.auth_listen)
                .await
                .map_err(|e| bind_error(config.auth_listen, e))?,
        );
        let acct_sock = Arc::new(
            UdpSocket::bind(config.acct_listen)
                .await
                .map_err(|e| bind_error(config.acct_listen, e))?,
        );
        if config.clients.is_empty() {
            tracing::warn!(
                "no RADIUS clients configured: every request will be dropped (add [[radius.clients]] to the config file)"
            );
        }
        let stats = Arc::new(RadiusStats::default());
        let (committer, commits) = mpsc::channel(COMMIT_GROUP);
        let commit_task = tokio::spawn(commit_loop(sessions.clone(), outbox, commits));
        let throttler = Arc::new(Throttler::new(
            cache.clone(),
            sessions.clone(),
            config.clients.clone(),
            stats.clone(),
            clock.clone(),
        ));
        let ctx = Arc::new(Context {
            cache,
            sessions,
            clients: config.clients,
            interim_secs: config.interim.as_secs().clamp(60, u32::MAX as u64) as u32,
            isolation_rate_limit: config.isolation_rate_limit,
            stats: stats.clone(),
            auth_replies: ReplyCache::default(),
            acct_replies: ReplyCache::default(),
            disconnected: Mutex::new(HashSet::new()),
            throttler: throttler.clone(),
            committer,
            clock,
        });
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8);
        let mut tasks = vec![commit_task];
        for _ in 0..workers {
            tasks.push(tokio::spawn(auth_loop(ctx.clone(), auth_sock.clone())));
        }
        tasks.push(tokio::spawn(acct_loop(ctx.clone(), acct_sock.clone())));
        tasks.push(tokio::spawn(housekeeping(ctx.clone())));
        tasks.push(tokio::spawn(throttler.clone().watch_sync()));
        Ok(RadiusServer {
            auth_addr: auth_sock.local_addr()?,
            acct_addr: acct_sock.local_addr()?,
            stats,
            tasks,
            throttler,
        })
    }
}

fn bind_error(addr: SocketAddr, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot listen for RADIUS on {addr}: {e}"))
}

async fn housekeeping(ctx: Arc<Context>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        ctx.auth_replies.expire();
        ctx.acct_replies.expire();
        if let Err(e) = ctx.sessions.prune(ctx.clock.now_ms()) {
            tracing::warn!("cannot prune the session table: {e}");
        }
        let mut d = ctx.disconnected.lock().expect("disconnect set");
        if d.len() > 10_000 {
            d.clear();
        }
    }
}

/// Checks origin and integrity shared by both listeners; returns the client and packet.
fn admit<'a>(
    ctx: &'a Context,
    raw: &[u8],
    from: SocketAddr,
    expected: Code,
) -> Option<(&'a NasClient, Packet)> {
    let Some(client) = ctx.clients.find(from) else {
        RadiusStats::bump(&ctx.stats.unknown_client);
        tracing::debug!(%from, "RADIUS packet from an unknown client dropped");
        return None;
    };
    let packet = match Packet::decode(raw) {
        Ok(p) if p.code == expected => p,
        Ok(p) => {
            RadiusStats::bump(&ctx.stats.malformed);
            tracing::debug!(%from, code = ?p.code, "unexpected RADIUS code dropped");
            return None;
        }
        Err(e) => {
            RadiusStats::bump(&ctx.stats.malformed);
            tracing::debug!(%from, "malformed RADIUS packet dropped: {e}");
            return None;
        }
    };
    let secret = client.secret.as_bytes();
    if expected == Code::AccountingRequest && !auth::verify_request_authenticator(raw, secret) {
        RadiusStats::bump(&ctx.stats.bad_authenticator);
        tracing::warn!(%from, nas = client.name, "accounting request with a bad authenticator dropped (wrong secret?)");
        return None;
    }
    match auth::verify_request_message_authenticator(raw, secret) {
        MaStatus::Invalid => {
            RadiusStats::bump(&ctx.stats.bad_authenticator);
            tracing::warn!(%from, nas = client.name, "request with a bad Message-Authenticator dropped (wrong secret?)");
            None
        }
        MaStatus::Absent
            if expected == Code::AccessRequest && client.require_message_authenticator =>
        {
            RadiusStats::bump(&ctx.stats.missing_message_authenticator);
            tracing::warn!(%from, nas = client.name, "Access-Request without Message-Authenticator dropped");
            None
        }
        _ => Some((client, packet)),
    }
}

async fn auth_loop(ctx: Arc<Context>, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; MAX_PACKET_LEN];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("RADIUS auth receive failed: {e}");
                continue;
            }
        };
        if let Some(reply) = handle_auth(&ctx, &buf[..n], from)
            && let Err(e) = socket.send_to(&reply, from).await
        {
            tracing::warn!(%from, "cannot send RADIUS reply: {e}");
        }
    }
}

fn handle_auth(ctx: &Context, raw: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    let started = std::time::Instant::now();
    let (client, req) = admit(ctx, raw, from, Code::AccessRequest)?;
    if let Some(resend) = ctx.repeated(&ctx.auth_replies, from, &req) {
        return resend;
    }
    let now = ctx.clock.now_ms();
    let answer = access::handle(
        &ctx.cache,
        &ctx.sessions,
        client,
        &req,
        &access::Defaults {
            interim_secs: ctx.interim_secs,
            isolation_rate_limit: ctx.isolation_rate_limit.as_deref(),
        },
        now,
    );
    let reply =
        match auth::encode_response(&answer.reply, &req.authenticator, client.secret.as_bytes()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(user = answer.username, "cannot encode the reply: {e}");
                ctx.auth_replies
                    .abandon(from, req.identifier, req.authenticator);
                return None;
            }
        };
    match &answer.outcome {
        Ok(()) => {
            RadiusStats::bump(&ctx.stats.accepted);
            tracing::debug!(user = answer.username, nas = client.name, "access accepted");
        }
        Err(reason) => {
            ctx.stats
                .reject(reason, &answer.username, &client.name, now);
            tracing::info!(
                user = answer.username,
                nas = client.name,
                reason = reason.code(),
                "access rejected"
            );
        }
    }
    ctx.auth_replies
        .finish(from, req.identifier, req.authenticator, reply.clone());
    ctx.stats.auth_latency.observe(started.elapsed());
    Some(reply)
}

async fn acct_loop(ctx: Arc<Context>, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; MAX_PACKET_LEN];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("RADIUS accounting receive failed: {e}");
                continue;
            }
        };
        let raw = buf[..n].to_vec();
        let ctx = ctx.clone();
        let socket = socket.clone();
        tokio::spawn(async move {
            if let Some(reply) = handle_acct(&ctx, &raw, from).await
                && let Err(e) = socket.send_to(&reply, from).await
            {
                tracing::warn!(%from, "cannot send Accounting-Response: {e}");
            }
        });
    }
}

async fn handle_acct(ctx: &Arc<Context>, raw: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    let started = std::time::Instant::now();
    let (client, req) = admit(ctx, raw, from, Code::AccountingRequest)?;
    if let Some(resend) = ctx.repeated(&ctx.acct_replies, from, &req) {
        return resend;
    }
    let now = ctx.clock.now_ms();
    let record = match accounting::record_from(&req, &client.name, from, now) {
        Ok(r) => r,
        Err(e) => {
            RadiusStats::bump(&ctx.stats.malformed);
            tracing::warn!(%from, nas = client.name, "accounting request not stored: {e}");
            ctx.acct_replies
                .abandon(from, req.identifier, req.authenticator);
            return None;
        }
    };
    // The answer waits for the disk: the router keeps retrying until it gets one.
    if let Err(e) = commit(ctx, record.clone(), from.ip(), now).await {
        RadiusStats::bump(&ctx.stats.accounting_failed);
        tracing::error!(
            session = record.session_id,
            "accounting record not stored, the router will retry: {e}"
        );
        ctx.acct_replies
            .abandon(from, req.identifier, req.authenticator);
        return None;
    }
    let response = Packet::new(Code::AccountingResponse, req.identifier, [0; 16]);
    let reply = match auth::encode_response(&response, &req.authenticator, client.secret.as_bytes())
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot encode the Accounting-Response: {e}");
            ctx.acct_replies
                .abandon(from, req.identifier, req.authenticator);
            return None;
        }
    };
    RadiusStats::bump(&ctx.stats.accounted);
    ctx.acct_replies
        .finish(from, req.identifier, req.authenticator, reply.clone());
    ctx.stats.acct_latency.observe(started.elapsed());
    enforce_quota(ctx, client, from, &record, now);
    Some(reply)
}

/// One accounting record on its way into the session table and the outbox.
struct Commit {
    record: AccountingRecord,
    from: IpAddr,
    now: i64,
    done: oneshot::Sender<Result<(), OutboxError>>,
}

/// Folds the record into the session table and stores it durably; returns once it is on disk.
async fn commit(
    ctx: &Context,
    record: AccountingRecord,
    from: IpAddr,
    now: i64,
) -> Result<(), OutboxError> {
    let (done, wait) = oneshot::channel();
    ctx.committer
        .send(Commit {
            record,
            from,
            now,
            done,
        })
        .await
        .map_err(|_| OutboxError::Closed)?;
    wait.await.map_err(|_| OutboxError::Closed)?
}

/// Commits accounting records in groups: the session-table updates of a whole group in one
/// sled transaction on a blocking thread, then one outbox append (one flush), then the next
/// group.
///
/// Why not a transaction per request on the listener's task, as before: each sled
/// transaction seals sled's log buffer and has it written; and sled's transactions take a
/// process-wide lock exclusively that a flush holds shared for its whole fsync, so each
/// one waited for the running flush while blocking a runtime worker (and, queued for the
/// lock, every other sled reader). Few requests reached each group commit: about 7,000
/// accounting requests/s on two cores.
async fn commit_loop(
    sessions: Arc<Sessions>,
    outbox: Arc<Outbox>,
    mut commits: mpsc::Receiver<Commit>,
) {
    let mut group = Vec::new();
    while commits.recv_many(&mut group, COMMIT_GROUP).await > 0 {
        let records: Vec<(AccountingRecord, Option<IpAddr>, i64)> = group
            .iter()
            .map(|c| (c.record.clone(), Some(c.from), c.now))
            .collect();
        let sessions = sessions.clone();
        let applied = tokio::task::spawn_blocking(move || {
            for e in sessions.apply_all(&records) {
                tracing::error!("cannot update the session table: {e}");
            }
            records
        })
        .await;
        let result = match applied {
            Ok(records) => {
                outbox
                    .append(records.into_iter().map(|(r, _, _)| r).collect())
                    .await
            }
            Err(e) => Err(OutboxError::Storage(format!(
                "session table update panicked: {e}"
            ))),
        };
        for c in group.drain(..) {
            let _ = c.done.send(result.clone());
        }
    }
}

/// Ends a running session whose account has used up its plan (the router enforces per-session
/// limits itself; this covers usage across sessions and devices), or, when its data limit is
/// reached under a fair-usage plan, slows its sessions down instead ([`Throttler`]).
fn enforce_quota(
    ctx: &Arc<Context>,
    client: &NasClient,
    from: SocketAddr,
    record: &AccountingRecord,
    now: i64,
) {
    if record.status != AcctStatus::InterimUpdate || record.username.is_empty() {
        return;
    }
    let plan_id = match ctx.cache.voucher(&record.username) {
        Ok(Some(v)) => v.plan_id,
        _ => match ctx.cache.user(&record.username) {
            Ok(Some(u)) => u.plan_id,
            _ => return,
        },
    };
    let Ok(Some(plan)) = ctx.cache.plan(&plan_id) else {
        return;
    };
    let Ok(local) = ctx.sessions.account(&record.username, now) else {
        return;
    };
    let Some(usage) = access::fleet_usage(&ctx.cache, &record.username, &local.usage) else {
        return;
    };
    let Some(reason) = policy::exhausted(&plan, usage.time_secs, usage.bytes) else {
        if policy::fair_usage_rate(&plan, usage.bytes).is_some()
            && let Some(rate) = ctx.throttler.rate_for(&record.username, now)
        {
            ctx.throttler.throttle(&record.username, &rate, now);
        }
        return;
    };
    let key = (record.nas_identifier.clone(), record.session_id.clone());
    if !ctx.disconnected.lock().expect("disconnect set").insert(key) {
        return;
    }
    RadiusStats::bump(&ctx.stats.disconnects);
    let nas = SocketAddr::new(from.ip(), client.coa_port);
    let secret = client.secret.clone();
    let (user, session, nas_ip) = (
        record.username.clone(),
        record.session_id.clone(),
        record.nas_ip,
    );
    tracing::info!(
        user,
        session,
        reason = reason.code(),
        "quota used up: disconnecting the session"
    );
    tokio::spawn(async move {
        match coa::disconnect(nas, secret.as_bytes(), &user, Some(&session), nas_ip).await {
            Ok(answer) => tracing::info!(user, session, ?answer, "disconnect answered"),
            Err(e) => tracing::warn!(user, session, "disconnect failed: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use mikrobill_protocol::items::{AccountStatus, Item, Plan, User};
    use mikrobill_protocol::messages::{Change, ChangeOp, SyncMessage};
    use mikrobill_radius::dict;

    const SECRET: &str = "s3cret";

    async fn context(dir: &std::path::Path) -> Context {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(1 << 20)
            .open()
            .unwrap();
        let cache = Arc::new(Cache::open(&db, "site").unwrap());
        let plan = Plan {
            id: "p".into(),
            name: "Member".into(),
            rate_limit: Some("1M/1M".into()),
            time_limit_secs: None,
            data_limit_bytes: None,
            validity_secs: None,
            shared_users: 1,
            interim_interval_secs: None,
            router_group: None,
            address_list: None,
            mac_lock: false,
            fup_rate_limit: None,
        };
        // MAC login: the router sends the client's MAC as User-Name and an empty password.
        let member = User {
            username: "AA:BB:CC:DD:EE:FF".into(),
            password: String::new(),
            plan_id: "p".into(),
            status: AccountStatus::Active,
            static_ip: None,
        };
        cache
            .apply(SyncMessage::Changes(vec![
                Change {
                    seq: 1,
                    op: ChangeOp::Upsert(Item::Plan(plan)),
                },
                Change {
                    seq: 2,
                    op: ChangeOp::Upsert(Item::User(member)),
                },
            ]))
            .await
            .unwrap();
        let clients = Clients::new(vec![NasClient {
            name: "r".into(),
            address: "10.0.0.1".into(),
            secret: SECRET.into(),
            require_message_authenticator: false,
            coa_port: 3799,
        }])
        .unwrap();
        let outbox = Outbox::open(&db).unwrap();
        let sessions = Arc::new(Sessions::open(&db).unwrap());
        let (committer, commits) = mpsc::channel(COMMIT_GROUP);
        tokio::spawn(commit_loop(sessions.clone(), outbox, commits));
        let stats = Arc::new(RadiusStats::default());
        let throttler = Arc::new(Throttler::new(
            cache.clone(),
            sessions.clone(),
            clients.clone(),
            stats.clone(),
            Clock::system(),
        ));
        Context {
            cache,
            sessions,
            clients,
            interim_secs: 300,
            isolation_rate_limit: None,
            stats,
            auth_replies: ReplyCache::default(),
            acct_replies: ReplyCache::default(),
            disconnected: Mutex::new(HashSet::new()),
            throttler,
            committer,
            clock: Clock::system(),
        }
    }

    fn login(user: &str, password: &str) -> (Packet, Vec<u8>) {
        let mut req = Packet::new(Code::AccessRequest, 3, rand::random());
        req.push(dict::USER_NAME, user.as_bytes().to_vec());
        req.push(
            dict::USER_PASSWORD,
            auth::encrypt_user_password(password.as_bytes(), SECRET.as_bytes(), &req.authenticator),
        );
        let raw = auth::encode_access_request(&req, SECRET.as_bytes(), false).unwrap();
        (req, raw)
    }

    #[tokio::test]
    async fn mac_login_and_client_without_message_authenticator_requirement() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path()).await;
        let from: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let (req, raw) = login("AA:BB:CC:DD:EE:FF", "");
        let reply = handle_auth(&ctx, &raw, from).expect("answered");
        assert!(auth::verify_response_authenticator(
            &reply,
            &req.authenticator,
            SECRET.as_bytes()
        ));
        assert_eq!(
            auth::verify_response_message_authenticator(
                &reply,
                &req.authenticator,
                SECRET.as_bytes()
            ),
            MaStatus::Valid
        );
        let reply = Packet::decode(&reply).unwrap();
        assert_eq!(reply.code, Code::AccessAccept);
        assert_eq!(
            reply.get_vendor(dict::VENDOR_MIKROTIK, dict::mikrotik::RATE_LIMIT),
            Some(&b"1M/1M"[..])
        );
        // Another MAC is not a member.
        let (_, raw) = login("11:22:33:44:55:66", "");
        let reply = Packet::decode(&handle_auth(&ctx, &raw, from).unwrap()).unwrap();
        assert_eq!(reply.code, Code::AccessReject);
        assert_eq!(RadiusStats::get(&ctx.stats.accepted), 1);
        assert_eq!(RadiusStats::get(&ctx.stats.rejected), 1);
    }
}
