//! One task owns the router connection: it connects (and reconnects with backoff after any
//! failure), runs calls one at a time with a time limit each, reads the router state
//! periodically, and keeps a circuit breaker. [`Router`] is the cloneable handle.
//!
//! The breaker: after `breaker_threshold` consecutive connection failures it opens, and
//! calls fail at once with [`RouterError::Unavailable`] for `breaker_cooldown` instead of
//! queueing behind connect attempts to a dead router. After the cool-down one attempt goes
//! through (a call or the background reconnect); success closes it, failure reopens it.

use super::client::Client;
use super::state::{self, RouterState};
use super::{RouterConfig, RouterError, Row};
use crate::reconnect::Reconnect;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Calls that may wait for the connection; more fail fast.
const QUEUE: usize = 32;

enum Op {
    Call {
        path: String,
        attrs: Vec<(String, String)>,
        queries: Vec<(String, String)>,
    },
    Add {
        menu: String,
        attrs: Vec<(String, String)>,
        key: String,
    },
    Refresh,
}

struct Request {
    op: Op,
    reply: oneshot::Sender<Result<Vec<Row>, RouterError>>,
}

#[derive(Debug)]
struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    open_until: Option<Instant>,
    last_error: String,
}

impl Breaker {
    fn check(&self, now: Instant) -> Result<(), RouterError> {
        match self.open_until {
            Some(until) if now < until => Err(RouterError::Unavailable(format!(
                "{} consecutive failures, next try in {:?}; last: {}",
                self.failures,
                until - now,
                self.last_error
            ))),
            _ => Ok(()),
        }
    }

    fn success(&mut self) {
        self.failures = 0;
        self.open_until = None;
    }

    /// Counts a failure; true when this one opened (or reopened) the breaker.
    fn failure(&mut self, now: Instant, error: &RouterError) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.last_error = error.to_string();
        if self.failures >= self.threshold.max(1) {
            self.open_until = Some(now + self.cooldown);
            return true;
        }
        false
    }
}

struct Shared {
    address: String,
    breaker: Mutex<Breaker>,
    shutdown: watch::Sender<bool>,
    exclusive: tokio::sync::Mutex<()>,
}

impl Shared {
    fn breaker(&self) -> MutexGuard<'_, Breaker> {
        // The breaker is a few counters: a panic elsewhere cannot leave it inconsistent.
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A cloneable handle on the supervised router connection.
#[derive(Clone)]
pub struct Router {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
    state: watch::Receiver<RouterState>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("address", &self.shared.address)
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Starts the supervisor task; it begins connecting at once.
    pub fn spawn(config: &RouterConfig) -> Router {
        let (requests, rx) = mpsc::channel(QUEUE);
        let (state_tx, state) = watch::channel(RouterState::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            address: config.address.clone(),
            breaker: Mutex::new(Breaker {
                threshold: config.breaker_threshold,
                cooldown: config.breaker_cooldown,
                failures: 0,
                open_until: None,
                last_error: String::new(),
            }),
            shutdown,
            exclusive: tokio::sync::Mutex::new(()),
        });
        let now = Instant::now();
        let task = Task {
            config: config.clone(),
            shared: shared.clone(),
            client: None,
            pacing: Reconnect::new(config.reconnect_max),
            next_attempt: now,
            next_refresh: now,
            state: state_tx,
        };
        tokio::spawn(task.run(rx, shutdown_rx));
        Router {
            shared,
            requests,
            state,
        }
    }

    /// Whether the circuit breaker is open (calls fail at once until its cooldown ends).
    pub fn breaker_open(&self) -> bool {
        self.shared.breaker().check(Instant::now()).is_err()
    }

    /// The API address.
    pub fn address(&self) -> &str {
        &self.shared.address
    }

    /// The router state, updated on every read and connection change.
    pub fn state(&self) -> watch::Receiver<RouterState> {
        self.state.clone()
    }

    /// Runs any command: `=key=value` attributes and `?key=value` queries.
    pub async fn call(
        &self,
        path: &str,
        attrs: &[(&str, &str)],
        queries: &[(&str, &str)],
    ) -> Result<Vec<Row>, RouterError> {
        self.submit(Op::Call {
            path: path.to_owned(),
            attrs: owned(attrs),
            queries: owned(queries),
        })
        .await
    }

    /// The rows of `menu` matching every `?key=value` query.
    pub async fn print(
        &self,
        menu: &str,
        queries: &[(&str, &str)],
    ) -> Result<Vec<Row>, RouterError> {
        self.call(&format!("{menu}/print"), &[], queries).await
    }

    /// Adds an item and returns its `.id`, read back by the unique property `key`.
    pub async fn add(
        &self,
        menu: &str,
        attrs: &[(String, String)],
        key: &str,
    ) -> Result<String, RouterError> {
        let rows = self
            .submit(Op::Add {
                menu: menu.to_owned(),
                attrs: attrs.to_vec(),
                key: key.to_owned(),
            })
            .await?;
        rows.into_iter()
            .next()
            .and_then(|mut r| r.remove(".id"))
            .ok_or_else(|| RouterError::Unexpected {
                path: format!("{menu}/add"),
                message: "no id".into(),
            })
    }

    /// Sets properties of the item `id`, or of a settings menu when `id` is `None`.
    pub async fn set(
        &self,
        menu: &str,
        id: Option<&str>,
        attrs: &[(String, String)],
    ) -> Result<(), RouterError> {
        let mut all = Vec::with_capacity(attrs.len() + 1);
        if let Some(id) = id {
            all.push((".id".to_owned(), id.to_owned()));
        }
        all.extend_from_slice(attrs);
        self.submit(Op::Call {
            path: format!("{menu}/set"),
            attrs: all,
            queries: Vec::new(),
        })
        .await
        .map(drop)
    }

    /// Returns one property of the item `id` to its default.
    pub async fn unset(&self, menu: &str, id: &str, name: &str) -> Result<(), RouterError> {
        self.call(
            &format!("{menu}/unset"),
            &[(".id", id), ("value-name", name)],
            &[],
        )
        .await
        .map(drop)
    }

    /// Removes the item `id`.
    pub async fn remove(&self, menu: &str, id: &str) -> Result<(), RouterError> {
        self.call(&format!("{menu}/remove"), &[(".id", id)], &[])
            .await
            .map(drop)
    }

    /// Reads the router state now (connecting first if needed).
    pub async fn refresh(&self) -> Result<RouterState, RouterError> {
        self.submit(Op::Refresh).await?;
        Ok(self.state.borrow().clone())
    }

    /// Waits until the router is reachable; false if `limit` passes first.
    pub async fn wait_reachable(&self, limit: Duration) -> bool {
        let mut state = self.state.clone();
        matches!(
            tokio::time::timeout(limit, state.wait_for(|s| s.reachable)).await,
            Ok(Ok(_))
        )
    }

    /// Serialises changes made of several calls (bootstrap, reconciliation): two of them
    /// interleaved could each read a menu, miss the item the other is adding, and add it too.
    pub async fn exclusive(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.shared.exclusive.lock().await
    }

    /// Stops the supervisor and closes the connection; calls then fail with `Stopped`.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    async fn submit(&self, op: Op) -> Result<Vec<Row>, RouterError> {
        self.shared.breaker().check(Instant::now())?;
        let (reply, answer) = oneshot::channel();
        self.requests
            .try_send(Request { op, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    RouterError::Unavailable(format!("{QUEUE} calls already wait for the router"))
                }
                mpsc::error::TrySendError::Closed(_) => RouterError::Stopped,
            })?;
        answer.await.map_err(|_| RouterError::Stopped)?
    }
}

/// Resolves once told to stop, or when nobody can tell it any more.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, not held across the caller's awaits.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

struct Task {
    config: RouterConfig,
    shared: Arc<Shared>,
    client: Option<Client>,
    pacing: Reconnect,
    next_attempt: Instant,
    next_refresh: Instant,
    state: watch::Sender<RouterState>,
}

impl Task {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let connected = self.client.is_some();
            tokio::select! {
                biased;
                () = stopped(&mut shutdown) => break,
                request = requests.recv() => match request {
                    Some(request) => self.handle(request).await,
                    None => break,
                },
                () = tokio::time::sleep_until(self.next_attempt), if !connected => {
                    // Failures are recorded (state, breaker, next attempt) inside.
                    let _ = self.connect().await;
                }
                () = tokio::time::sleep_until(self.next_refresh), if connected => {
                    let _ = self.refresh().await;
                }
            }
        }
        self.client = None;
        self.state.send_modify(|s| {
            s.reachable = false;
            s.last_error = Some("the router supervisor has stopped".into());
        });
    }

    async fn handle(&mut self, request: Request) {
        // The caller gave up (its own timeout, or it was dropped): don't touch the router.
        if request.reply.is_closed() {
            return;
        }
        let result = self.execute(request.op).await;
        let _ = request.reply.send(result);
    }

    async fn execute(&mut self, op: Op) -> Result<Vec<Row>, RouterError> {
        // Checked again here: the breaker may have opened while this call waited.
        self.shared.breaker().check(Instant::now())?;
        if self.client.is_none() {
            self.connect().await?;
            if matches!(op, Op::Refresh) {
                // A fresh connection has just read the state.
                return Ok(Vec::new());
            }
        }
        let Some(client) = &self.client else {
            return Err(RouterError::Stopped);
        };
        let result = match op {
            Op::Call {
                path,
                attrs,
                queries,
            } => client.call(&path, &attrs, &queries).await,
            Op::Add { menu, attrs, key } => client.add(&menu, &attrs, &key).await.map(|id| {
                let mut row = Row::new();
                row.insert(".id".into(), id);
                vec![row]
            }),
            Op::Refresh => return self.refresh().await.map(|()| Vec::new()),
        };
        match &result {
            Err(e) if e.is_connection_failure() => self.failed(e),
            _ => self.shared.breaker().success(),
        }
        result
    }

    async fn connect(&mut self) -> Result<(), RouterError> {
        let c = &self.config;
        match Client::connect(
            &c.address,
            &c.username,
            c.password.expose(),
            c.connect_timeout,
            c.call_timeout,
        )
        .await
        {
            Ok(client) => {
                tracing::info!(router = %c.address, "connected to the router API");
                self.client = Some(client);
                self.pacing.reset();
                self.shared.breaker().success();
                // The state is read right away so that `reachable` comes with the facts.
                self.refresh().await
            }
            Err(e) => {
                self.failed(&e);
                Err(e)
            }
        }
    }

    async fn refresh(&mut self) -> Result<(), RouterError> {
        let Some(client) = &self.client else {
            return Err(RouterError::Stopped);
        };
        let result = state::collect(client).await;
        self.next_refresh = Instant::now() + self.config.refresh_interval;
        match result {
            Ok(state) => {
                self.state.send_replace(state);
                Ok(())
            }
            Err(e) => {
                if e.is_connection_failure() {
                    self.failed(&e);
                } else {
                    tracing::warn!(router = %self.config.address, "cannot read the router state: {e}");
                }
                Err(e)
            }
        }
    }

    /// Records a connection failure: drop the connection, count it, schedule a reconnect.
    fn failed(&mut self, error: &RouterError) {
        self.client = None;
        let now = Instant::now();
        let (opened, failures, reopen_in) = {
            let mut breaker = self.shared.breaker();
            let opened = breaker.failure(now, error);
            let reopen_in = breaker
                .open_until
                .map(|until| until.saturating_duration_since(now))
                .unwrap_or_default();
            (opened, breaker.failures, reopen_in)
        };
        self.next_attempt = now + self.pacing.next_delay().max(reopen_in);
        let was_reachable = self.state.borrow().reachable;
        self.state.send_modify(|s| {
            s.reachable = false;
            s.last_error = Some(error.to_string());
            s.checked_at_ms = crate::now_ms();
        });
        let router = &self.config.address;
        if was_reachable || failures == 1 {
            tracing::warn!(%router, "router connection failed, retrying: {error}");
        } else if opened && failures == self.config.breaker_threshold.max(1) {
            tracing::warn!(%router, failures, cooldown = ?self.config.breaker_cooldown,
                "router keeps failing: calls fail fast until the cool-down passes; last error: {error}");
        } else {
            tracing::debug!(%router, failures, "router still unavailable: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_at_the_threshold_and_closes_on_success() {
        let mut b = Breaker {
            threshold: 2,
            cooldown: Duration::from_secs(10),
            failures: 0,
            open_until: None,
            last_error: String::new(),
        };
        let now = Instant::now();
        let e = RouterError::Stopped;
        assert!(!b.failure(now, &e));
        assert!(b.check(now).is_ok());
        assert!(b.failure(now, &e));
        assert!(matches!(b.check(now), Err(RouterError::Unavailable(_))));
        assert!(b.check(now + Duration::from_secs(11)).is_ok(), "half-open");
        assert!(b.failure(now + Duration::from_secs(11), &e), "reopens");
        b.success();
        assert!(b.check(now).is_ok());
    }
}
