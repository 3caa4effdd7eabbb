//! The listener, one task per API connection, login, and command dispatch.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

use crate::faults::{Faults, Outage};
use crate::model::{self, Change, Kind, MENUS, Menu, Model, ModelError, Row};
use crate::query::Query;
use crate::sentence::{Command, Reply, SentenceReader, encode_sentence};

/// How many changes a slow `listen` connection may fall behind before it misses some.
const CHANGE_BACKLOG: usize = 1024;

/// The account the fake router accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRouterConfig {
    /// `=name=` of `/login`.
    pub username: String,
    /// `=password=` of `/login`.
    pub password: String,
}

impl Default for FakeRouterConfig {
    fn default() -> Self {
        FakeRouterConfig {
            username: "admin".into(),
            password: String::new(),
        }
    }
}

/// State every connection and the test's handle share.
#[derive(Debug)]
struct Shared {
    config: FakeRouterConfig,
    model: Mutex<Model>,
    changes: broadcast::Sender<Change>,
    log: Mutex<Vec<Vec<String>>>,
    faults: Faults,
    open: AtomicUsize,
}

/// Locks a mutex even if a panicking test poisoned it: the data is plain tables.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn model(&self) -> MutexGuard<'_, Model> {
        lock(&self.model)
    }

    /// Broadcasts changes; callers hold the model lock so listeners see them in order.
    fn publish(&self, changes: Vec<Change>) {
        for change in changes {
            // No receiver simply means nobody listens.
            let _ = self.changes.send(change);
        }
    }
}

/// A running fake router; dropping it stops it too, without waiting.
#[derive(Debug)]
pub struct FakeRouter {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeRouter {
    /// Starts a router on a free loopback port.
    pub async fn start(config: FakeRouterConfig) -> io::Result<FakeRouter> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts a router on `addr`, e.g. the address of one just stopped, to play a reboot.
    pub async fn start_on(addr: SocketAddr, config: FakeRouterConfig) -> io::Result<FakeRouter> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (changes, _) = broadcast::channel(CHANGE_BACKLOG);
        let shared = Arc::new(Shared {
            config,
            model: Mutex::new(Model::new()),
            changes,
            log: Mutex::default(),
            faults: Faults::default(),
            open: AtomicUsize::new(0),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared), shutdown_rx));
        debug!(%addr, "fake router listening");
        Ok(FakeRouter {
            addr,
            shared,
            shutdown,
            accept: Some(accept),
        })
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of a menu's rows, `.id` included; settings menus give their one row.
    ///
    /// # Panics
    /// If the fake router does not serve `menu`.
    pub fn rows(&self, menu: &str) -> Vec<BTreeMap<String, String>> {
        self.shared
            .model()
            .rows(menu)
            .unwrap_or_else(|| panic!("the fake router has no menu {menu}"))
    }

    /// Adds a row as the router itself would (also to `/ppp/active` and
    /// `/ip/hotspot/active`), notifies listeners, and returns the new `.id`.
    ///
    /// # Panics
    /// If `menu` is not a list menu, or the row's name is already taken there.
    pub fn add_row(&self, menu: &str, attrs: &[(&str, &str)]) -> String {
        let menu = list_menu(menu);
        let mut model = self.shared.model();
        let (id, change) = model
            .add(menu, &owned(attrs))
            .unwrap_or_else(|e| panic!("add_row({}): {e}", menu.path));
        self.shared.publish(vec![change]);
        id
    }

    /// Changes properties of one row (e.g. an active session's counters) and notifies
    /// listeners; false when no row has that id.
    ///
    /// # Panics
    /// If `menu` is not a list menu, or the change makes a unique name clash.
    pub fn update_row(&self, menu: &str, id: &str, attrs: &[(&str, &str)]) -> bool {
        let menu = list_menu(menu);
        let mut model = self.shared.model();
        match model.set(menu, Some(id), &owned(attrs)) {
            Ok(changes) => {
                self.shared.publish(changes);
                true
            }
            Err(ModelError::NoSuchItem) => false,
            Err(e) => panic!("update_row({}, {id}): {e}", menu.path),
        }
    }

    /// Changes a settings menu (`/system/resource` included: pinning `uptime` stops its
    /// clock) and notifies listeners.
    ///
    /// # Panics
    /// If `menu` is not a settings menu.
    pub fn set_settings(&self, menu: &str, attrs: &[(&str, &str)]) {
        let menu = known_menu(menu);
        assert!(
            matches!(menu.kind, Kind::Settings { .. }),
            "{} is a list menu: use update_row",
            menu.path
        );
        let mut model = self.shared.model();
        let changes = model
            .set(menu, None, &owned(attrs))
            .expect("a settings menu always has its row");
        self.shared.publish(changes);
    }

    /// Removes a row as the router would (a session ending) and notifies listeners; false
    /// when no row has that id.
    ///
    /// # Panics
    /// If `menu` is not a list menu.
    pub fn remove_row(&self, menu: &str, id: &str) -> bool {
        let menu = list_menu(menu);
        let mut model = self.shared.model();
        match model.remove(menu, id) {
            Ok(changes) => {
                self.shared.publish(changes);
                true
            }
            Err(_) => false,
        }
    }

    /// Every sentence received on logged-in connections, in arrival order, as words.
    pub fn commands(&self) -> Vec<Vec<String>> {
        lock(&self.shared.log).clone()
    }

    /// The fault knobs.
    pub fn faults(&self) -> Faults {
        self.shared.faults.clone()
    }

    /// How many API connections are open now.
    pub fn connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Closes the listener and every connection, and waits until they are closed.
    pub async fn stop(mut self) {
        self.shutdown.send_replace(true);
        if let Some(accept) = self.accept.take() {
            // The accept task ends by itself once told; a panic in it has been reported.
            let _ = accept.await;
        }
    }
}

impl Drop for FakeRouter {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

fn known_menu(path: &str) -> &'static Menu {
    model::menu(path).unwrap_or_else(|| panic!("the fake router has no menu {path}"))
}

fn list_menu(path: &str) -> &'static Menu {
    let menu = known_menu(path);
    assert!(
        matches!(menu.kind, Kind::List { .. }),
        "{path} is a settings menu: use set_settings"
    );
    menu
}

fn owned(attrs: &[(&str, &str)]) -> Vec<(String, String)> {
    attrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    // Handed to each connection: the loop's own receiver is borrowed by its `select!`.
    let for_connections = shutdown.clone();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if shared.faults.outage().refusing {
                        debug!(%peer, "router down: closing the new connection");
                        continue;
                    }
                    debug!(%peer, "API connection");
                    let open = OpenGuard::new(Arc::clone(&shared));
                    connections.spawn(serve(stream, open, for_connections.clone()));
                }
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// Counts a connection as open for as long as it lives, however its task ends.
struct OpenGuard(Arc<Shared>);

impl OpenGuard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.open.fetch_add(1, Ordering::SeqCst);
        OpenGuard(shared)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What to do with the connection after a batch of replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// Send the batch, then close (after `!fatal`).
    Close,
    /// Close at once, sending nothing: the connection "dropped".
    Abort,
}

/// Resolves when the router stops or goes down after this connection opened.
async fn went_down(
    shutdown: &mut watch::Receiver<bool>,
    outage: &mut watch::Receiver<Outage>,
    kicks_at_start: u64,
) {
    // A closed channel means the router is gone: that counts as down too.
    tokio::select! {
        () = stopped(shutdown) => {}
        _ = outage.wait_for(|o| o.kicks != kicks_at_start) => {}
    }
}

/// Resolves when the router is told to stop (or its handle is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // Dropping the returned guard here keeps it from living across the caller's awaits.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn serve(stream: TcpStream, open: OpenGuard, mut shutdown: watch::Receiver<bool>) {
    let shared = Arc::clone(&open.0);
    let mut outage = shared.faults.watch_outage();
    let kicks = outage.borrow().kicks;
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = SentenceReader::new(read_half);
    let mut conn = Connection {
        shared,
        logged_in: false,
        listens: Vec::new(),
        changes: None,
    };
    loop {
        let (batch, flow) = tokio::select! {
            // An outage wins over input that arrived with it: once `set_refuse(true)` has
            // returned, no command on an open connection may still be answered.
            biased;
            () = went_down(&mut shutdown, &mut outage, kicks) => return,
            read = reader.read() => match read {
                Ok(Some(words)) => conn.on_sentence(words),
                Ok(None) => return,
                Err(e) => {
                    debug!(error = %e, "closing a connection that sent garbage");
                    return;
                }
            },
            change = next_change(&mut conn.changes) => match change {
                Ok(change) => (conn.on_change(&change), Flow::Continue),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    warn!(missed, "a listen fell behind and missed changes");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    conn.changes = None;
                    continue;
                }
            },
        };
        if flow == Flow::Abort {
            return;
        }
        if !batch.is_empty() {
            let delay = conn.shared.faults.delay();
            tokio::select! {
                biased;
                () = went_down(&mut shutdown, &mut outage, kicks) => return,
                written = send_batch(&mut write_half, &batch, delay) => {
                    if let Err(e) = written {
                        debug!(error = %e, "peer went away");
                        return;
                    }
                }
            }
        }
        if flow == Flow::Close {
            // Best effort: the peer may already be gone.
            let _ = write_half.shutdown().await;
            return;
        }
    }
}

async fn send_batch(
    writer: &mut OwnedWriteHalf,
    batch: &[Vec<String>],
    delay: Duration,
) -> io::Result<()> {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let bytes: Vec<u8> = batch.iter().flat_map(|s| encode_sentence(s)).collect();
    writer.write_all(&bytes).await?;
    writer.flush().await
}

async fn next_change(
    changes: &mut Option<broadcast::Receiver<Change>>,
) -> Result<Change, broadcast::error::RecvError> {
    match changes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// One running `listen` command.
#[derive(Debug)]
struct Listen {
    tag: Option<String>,
    menu: &'static str,
    query: Query,
    proplist: Option<Vec<String>>,
}

/// The state of one API connection.
#[derive(Debug)]
struct Connection {
    shared: Arc<Shared>,
    logged_in: bool,
    listens: Vec<Listen>,
    // Subscribed only while a listen runs, so that idle connections cannot lag.
    changes: Option<broadcast::Receiver<Change>>,
}

impl Connection {
    fn on_sentence(&mut self, words: Vec<String>) -> (Vec<Vec<String>>, Flow) {
        // RouterOS ignores empty sentences; some clients send them as keepalives.
        let Some(cmd) = Command::parse(&words) else {
            return (Vec::new(), Flow::Continue);
        };
        if self.logged_in {
            lock(&self.shared.log).push(words);
        }
        if self.shared.faults.take_drop() {
            debug!(command = %cmd.path, "fault: dropping the connection");
            return (Vec::new(), Flow::Abort);
        }
        if !self.logged_in && cmd.path != "/login" {
            return (
                vec![Reply::Fatal("not logged in".into()).to_words(None)],
                Flow::Close,
            );
        }
        let tag = cmd.tag.as_deref();
        let tagged = |replies: Vec<Reply>| replies.iter().map(|r| r.to_words(tag)).collect();
        if let Some(message) = self.shared.faults.trap_for(&cmd.path) {
            return (
                tagged(vec![Reply::trap(message), Reply::Done(None)]),
                Flow::Continue,
            );
        }
        if let Some(word) = cmd.unknown.first() {
            let message = format!("unknown parameter {word}");
            return (
                tagged(vec![Reply::trap(message), Reply::Done(None)]),
                Flow::Continue,
            );
        }
        match cmd.path.as_str() {
            "/login" => (tagged(self.login(&cmd)), Flow::Continue),
            "/quit" => (
                vec![Reply::Fatal("session terminated on request".into()).to_words(None)],
                Flow::Close,
            ),
            "/cancel" => (self.cancel(&cmd), Flow::Continue),
            _ => (tagged(self.menu_command(&cmd)), Flow::Continue),
        }
    }

    fn login(&mut self, cmd: &Command) -> Vec<Reply> {
        let config = &self.shared.config;
        let ok = cmd.attribute("name") == Some(config.username.as_str())
            && cmd.attribute("password").unwrap_or("") == config.password;
        if ok {
            self.logged_in = true;
            vec![Reply::Done(None)]
        } else {
            vec![
                Reply::trap("invalid user name or password (6)"),
                Reply::Done(None),
            ]
        }
    }

    /// `/cancel =tag=X` ends that listen; a bare `/cancel` ends them all.
    fn cancel(&mut self, cmd: &Command) -> Vec<Vec<String>> {
        let own = cmd.tag.as_deref();
        let target = cmd.attribute("tag");
        let (cancelled, kept): (Vec<Listen>, Vec<Listen>) = std::mem::take(&mut self.listens)
            .into_iter()
            .partition(|l| target.is_none_or(|t| l.tag.as_deref() == Some(t)));
        self.listens = kept;
        if self.listens.is_empty() {
            self.changes = None;
        }
        if target.is_some() && cancelled.is_empty() {
            return [Reply::trap("no such command"), Reply::Done(None)]
                .iter()
                .map(|r| r.to_words(own))
                .collect();
        }
        let interrupted = Reply::Trap {
            category: Some(2),
            message: "interrupted".into(),
        };
        let mut out: Vec<Vec<String>> = cancelled
            .iter()
            .map(|l| interrupted.to_words(l.tag.as_deref()))
            .collect();
        out.push(Reply::Done(None).to_words(own));
        out.extend(
            cancelled
                .iter()
                .map(|l| Reply::Done(None).to_words(l.tag.as_deref())),
        );
        out
    }

    fn menu_command(&mut self, cmd: &Command) -> Vec<Reply> {
        let (path, verb) = cmd.path.rsplit_once('/').unwrap_or(("", cmd.path.as_str()));
        let Some(menu) = model::menu(path) else {
            return no_such_command(unknown_segment(&cmd.path));
        };
        match (&menu.kind, verb) {
            (_, "print" | "getall") => self.print(menu, cmd),
            (_, "listen") => self.listen(menu, cmd),
            (Kind::List { writable: true, .. }, "add") => {
                let mut model = self.shared.model();
                if menu.path == crate::files::MENU && !crate::files::add_exists(&model.version()) {
                    return no_such_command("add");
                }
                match model.add(menu, &cmd.attributes) {
                    Ok((id, change)) => {
                        self.shared.publish(vec![change]);
                        vec![Reply::Done(Some(id))]
                    }
                    Err(e) => trapped(&e),
                }
            }
            (Kind::List { writable: true, .. }, "set") => {
                let Some(ids) = target_ids(cmd) else {
                    return trapped(&ModelError::NoSuchItem);
                };
                let mut model = self.shared.model();
                self.applied(model.set(menu, Some(ids), &cmd.attributes))
            }
            (Kind::List { writable: true, .. }, "unset") => {
                let Some(ids) = target_ids(cmd) else {
                    return trapped(&ModelError::NoSuchItem);
                };
                let Some(names) = cmd.attribute("value-name") else {
                    return vec![Reply::trap("missing value-name"), Reply::Done(None)];
                };
                let names: Vec<&str> = names.split(',').collect();
                let mut model = self.shared.model();
                self.applied(model.unset(menu, Some(ids), &names))
            }
            (Kind::List { .. }, "remove") => {
                let Some(ids) = target_ids(cmd) else {
                    return trapped(&ModelError::NoSuchItem);
                };
                let mut model = self.shared.model();
                self.applied(model.remove(menu, ids))
            }
            (Kind::Settings { settable: true, .. }, "set") => {
                let mut model = self.shared.model();
                self.applied(model.set(menu, None, &cmd.attributes))
            }
            _ => no_such_command(verb),
        }
    }

    /// Publishes a successful change (the caller still holds the model lock) or traps.
    fn applied(&self, result: Result<Vec<Change>, ModelError>) -> Vec<Reply> {
        match result {
            Ok(changes) => {
                self.shared.publish(changes);
                vec![Reply::Done(None)]
            }
            Err(e) => trapped(&e),
        }
    }

    fn print(&self, menu: &Menu, cmd: &Command) -> Vec<Reply> {
        let query = match Query::parse(&cmd.queries) {
            Ok(q) => q,
            Err(e) => return vec![Reply::trap(e.to_string()), Reply::Done(None)],
        };
        let rows: Vec<Row> = self
            .shared
            .model()
            .rows(menu.path)
            .expect("every menu has a table")
            .into_iter()
            .filter(|row| query.matches(row))
            .collect();
        if cmd.attribute("count-only").is_some() {
            return vec![Reply::Done(Some(rows.len().to_string()))];
        }
        if rows.is_empty() {
            return vec![Reply::Empty, Reply::Done(None)];
        }
        let proplist = cmd.proplist();
        rows.iter()
            .map(|row| Reply::Re(project(row, proplist.as_deref())))
            .chain([Reply::Done(None)])
            .collect()
    }

    /// Registers a listen; it answers nothing until a change or its `/cancel`.
    fn listen(&mut self, menu: &'static Menu, cmd: &Command) -> Vec<Reply> {
        let query = match Query::parse(&cmd.queries) {
            Ok(q) => q,
            Err(e) => return vec![Reply::trap(e.to_string()), Reply::Done(None)],
        };
        if self.changes.is_none() {
            self.changes = Some(self.shared.changes.subscribe());
        }
        self.listens.push(Listen {
            tag: cmd.tag.clone(),
            menu: menu.path,
            query,
            proplist: cmd.proplist(),
        });
        Vec::new()
    }

    fn on_change(&self, change: &Change) -> Vec<Vec<String>> {
        self.listens
            .iter()
            .filter(|l| l.menu == change.menu)
            .filter_map(|l| {
                let attrs = if change.dead {
                    let id = change.row.get(".id").cloned().unwrap_or_default();
                    vec![
                        (".id".to_owned(), id),
                        (".dead".to_owned(), "yes".to_owned()),
                    ]
                } else if l.query.matches(&change.row) {
                    project(&change.row, l.proplist.as_deref())
                } else {
                    return None;
                };
                Some(Reply::Re(attrs).to_words(l.tag.as_deref()))
            })
            .collect()
    }
}

/// `.id`, or `numbers` as the CLI calls it.
fn target_ids(cmd: &Command) -> Option<&str> {
    cmd.attribute(".id").or_else(|| cmd.attribute("numbers"))
}

fn trapped(e: &ModelError) -> Vec<Reply> {
    vec![Reply::trap(e.to_string()), Reply::Done(None)]
}

fn no_such_command(word: &str) -> Vec<Reply> {
    vec![
        Reply::trap(format!("no such command or directory ({word})")),
        Reply::Done(None),
    ]
}

/// The first segment of a command path that leads to no menu, which RouterOS names in
/// its error; the verb when the menu exists but the command does not.
fn unknown_segment(path: &str) -> &str {
    let mut prefix = String::new();
    let mut last = path;
    for segment in path.trim_start_matches('/').split('/') {
        prefix.push('/');
        prefix.push_str(segment);
        let leads_somewhere = MENUS.iter().any(|m| {
            m.path == prefix
                || m.path
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        if !leads_somewhere {
            return segment;
        }
        last = segment;
    }
    last
}

/// A row as `!re` attributes: `.proplist` order when given, else `.id` first.
fn project(row: &Row, proplist: Option<&[String]>) -> Vec<(String, String)> {
    match proplist {
        Some(props) => props
            .iter()
            .filter_map(|p| row.get(p).map(|v| (p.clone(), v.clone())))
            .collect(),
        None => row
            .get_key_value(".id")
            .into_iter()
            .chain(row.iter().filter(|(k, _)| *k != ".id"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_unknown_segment() {
        assert_eq!(unknown_segment("/ip/nothing/print"), "nothing");
        assert_eq!(unknown_segment("/foo"), "foo");
        assert_eq!(unknown_segment("/ip/hotspot/user/frobnicate"), "frobnicate");
    }
}
