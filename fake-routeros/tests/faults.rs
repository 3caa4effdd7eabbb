//! Each fault knob, seen from a raw client.

mod common;

use std::time::{Duration, Instant};

use common::{Client, eventually};
use mikrobill_fake_routeros::{FakeRouter, FakeRouterConfig};
use tokio::net::TcpStream;

async fn router() -> FakeRouter {
    FakeRouter::start(FakeRouterConfig::default())
        .await
        .expect("start")
}

#[tokio::test]
async fn delay_holds_every_reply_batch() {
    let router = router().await;
    let mut c = Client::logged_in(router.addr()).await;
    router.faults().set_delay(Duration::from_millis(300));
    let started = Instant::now();
    let reply = c.call(&["/system/identity/print"]).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.len(), 2, "the whole batch arrives after the delay");

    router.faults().set_delay(Duration::ZERO);
    let started = Instant::now();
    c.call(&["/system/identity/print"]).await;
    assert!(started.elapsed() < Duration::from_millis(300));
    router.stop().await;
}

#[tokio::test]
async fn drop_after_closes_on_the_nth_command_without_a_reply() {
    let router = router().await;
    let mut c = Client::logged_in(router.addr()).await;
    router.faults().drop_after(2);
    let reply = c.call(&["/system/identity/print"]).await;
    assert_eq!(reply.last().unwrap()[0], "!done", "the first is answered");
    c.send(&["/ip/hotspot/user/add", "=name=lost"]).await;
    assert!(
        c.closed().await,
        "the second gets no reply, only a closed socket"
    );
    eventually("the dropped connection is gone", || {
        router.connections() == 0
    })
    .await;
    assert_eq!(
        router.commands().last().unwrap(),
        &["/ip/hotspot/user/add", "=name=lost"],
        "the fatal command was received"
    );
    assert!(
        router.rows("/ip/hotspot/user").is_empty(),
        "and not executed"
    );

    // One shot: a reconnect works.
    let mut c = Client::logged_in(router.addr()).await;
    let reply = c.call(&["/ip/hotspot/user/add", "=name=kept"]).await;
    assert_eq!(reply[0][0], "!done");
    router.stop().await;
}

#[tokio::test]
async fn trap_on_refuses_one_command_until_cleared() {
    let router = router().await;
    let id = router.add_row("/ppp/active", &[("name", "alice")]);
    let mut c = Client::logged_in(router.addr()).await;
    router
        .faults()
        .trap_on("/ppp/active/remove", "failure: simulated");
    c.send(&["/ppp/active/remove", &format!("=.id={id}"), ".tag=k"])
        .await;
    assert_eq!(
        c.recv().await,
        ["!trap", ".tag=k", "=message=failure: simulated"]
    );
    assert_eq!(c.recv().await, ["!done", ".tag=k"]);
    assert_eq!(router.rows("/ppp/active").len(), 1, "nothing was done");
    let reply = c.call(&["/ppp/active/print"]).await;
    assert_eq!(reply[0][0], "!re", "other commands are unaffected");

    router.faults().clear();
    let reply = c.call(&["/ppp/active/remove", &format!("=.id={id}")]).await;
    assert_eq!(reply, [["!done"]]);
    assert!(router.rows("/ppp/active").is_empty());
    router.stop().await;
}

#[tokio::test]
async fn refuse_takes_the_router_down_and_back_up() {
    let router = router().await;
    let mut open = Client::logged_in(router.addr()).await;
    let mut listening = Client::logged_in(router.addr()).await;
    listening.send(&["/ppp/active/listen", ".tag=l"]).await;
    assert_eq!(router.connections(), 2);

    router.faults().set_refuse(true);
    assert!(open.closed().await, "open connections are closed");
    assert!(listening.closed().await, "listening ones too");
    eventually("no connection left", || router.connections() == 0).await;

    // Accepted (the port is open) and closed at once.
    let mut refused = Client::connect(router.addr()).await;
    assert!(refused.closed().await);
    assert_eq!(router.connections(), 0);

    router.faults().set_refuse(false);
    let mut back = Client::logged_in(router.addr()).await;
    let reply = back.call(&["/system/identity/print"]).await;
    assert_eq!(reply[0][0], "!re");

    // A down-and-up too quick to observe still kicks open connections.
    router.faults().set_refuse(true);
    router.faults().set_refuse(false);
    assert!(back.closed().await);

    // clear() brings the router back up as well.
    router.faults().set_refuse(true);
    router.faults().clear();
    Client::logged_in(router.addr()).await;
    router.stop().await;
}

#[tokio::test]
async fn stop_closes_the_listener() {
    let router = router().await;
    let addr = router.addr();
    router.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "nothing listens after stop"
    );
}
