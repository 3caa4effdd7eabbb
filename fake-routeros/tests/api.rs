//! The fake router through a raw TCP client: login, tags, the menus, listen/cancel and
//! queries on the wire.

mod common;

use std::time::Duration;

use common::{Client, attrs, eventually};
use mikrobill_fake_routeros::{FakeRouter, FakeRouterConfig};

async fn router() -> FakeRouter {
    FakeRouter::start(FakeRouterConfig::default())
        .await
        .expect("start")
}

fn words(sentences: &[Vec<String>]) -> Vec<Vec<&str>> {
    sentences
        .iter()
        .map(|s| s.iter().map(String::as_str).collect())
        .collect()
}

#[tokio::test]
async fn login_failure_traps_then_done_and_allows_a_retry() {
    let router = FakeRouter::start(FakeRouterConfig {
        username: "api".into(),
        password: "s3cret".into(),
    })
    .await
    .unwrap();
    let mut c = Client::connect(router.addr()).await;
    let reply = c.call(&["/login", "=name=api", "=password=wrong"]).await;
    assert_eq!(
        words(&reply),
        [
            vec!["!trap", "=message=invalid user name or password (6)"],
            vec!["!done"]
        ]
    );
    let reply = c.call(&["/login", "=name=admin", "=password=s3cret"]).await;
    assert_eq!(reply[0][0], "!trap");
    let reply = c.call(&["/login", "=name=api", "=password=s3cret"]).await;
    assert_eq!(words(&reply), [["!done"]]);
    let reply = c.call(&["/system/identity/print"]).await;
    assert_eq!(
        words(&reply),
        [vec!["!re", "=name=MikroTik"], vec!["!done"]]
    );
    router.stop().await;
}

#[tokio::test]
async fn a_command_before_login_is_fatal() {
    let router = router().await;
    let mut c = Client::connect(router.addr()).await;
    let reply = c.call(&["/ip/hotspot/user/print"]).await;
    assert_eq!(words(&reply), [["!fatal", "not logged in"]]);
    assert!(c.closed().await);
    // After a failed login too: only a successful one opens the API.
    let mut c = Client::connect(router.addr()).await;
    c.call(&["/login", "=name=admin", "=password=x"]).await;
    let reply = c.call(&["/ppp/secret/print"]).await;
    assert_eq!(words(&reply), [["!fatal", "not logged in"]]);
    assert!(c.closed().await);
    assert!(
        router.commands().is_empty(),
        "nothing is logged before login"
    );
    router.stop().await;
}

#[tokio::test]
async fn tags_come_second_in_every_reply() {
    let router = router().await;
    router.add_row("/ppp/active", &[("name", "a")]);
    router.add_row("/ppp/active", &[("name", "b")]);
    let mut c = Client::connect(router.addr()).await;
    c.send(&["/login", ".tag=L", "=name=admin", "=password="])
        .await;
    assert_eq!(c.recv().await, ["!done", ".tag=L"]);

    c.send(&["/ppp/active/print", "=.proplist=name", ".tag=p"])
        .await;
    assert_eq!(c.recv().await, ["!re", ".tag=p", "=name=a"]);
    assert_eq!(c.recv().await, ["!re", ".tag=p", "=name=b"]);
    assert_eq!(c.recv().await, ["!done", ".tag=p"]);

    c.send(&["/ppp/secret/set", ".tag=7", "=.id=*9", "=comment=x"])
        .await;
    assert_eq!(
        c.recv().await,
        ["!trap", ".tag=7", "=message=no such item (4)"]
    );
    assert_eq!(c.recv().await, ["!done", ".tag=7"]);

    c.send(&["/ppp/secret/print", ".tag=e"]).await;
    assert_eq!(c.recv().await, ["!empty", ".tag=e"]);
    assert_eq!(c.recv().await, ["!done", ".tag=e"]);

    c.send(&["/ppp/secret/add", "=name=x", ".tag=add"]).await;
    assert_eq!(c.recv().await, ["!done", ".tag=add", "=ret=*1"]);
    router.stop().await;
}

#[tokio::test]
async fn add_print_set_remove_on_hotspot_users() {
    let router = router().await;
    let mut c = Client::logged_in(router.addr()).await;

    let reply = c
        .call(&[
            "/ip/hotspot/user/add",
            "=name=alice",
            "=password=pw",
            "=limit-uptime=1h",
        ])
        .await;
    assert_eq!(words(&reply), [["!done", "=ret=*1"]]);
    let reply = c
        .call(&["/ip/hotspot/user/add", "=name=bob", "=profile=gold"])
        .await;
    assert_eq!(words(&reply), [["!done", "=ret=*2"]]);
    let reply = c.call(&["/ip/hotspot/user/add", "=name=alice"]).await;
    assert_eq!(
        words(&reply),
        [
            vec![
                "!trap",
                "=message=failure: already have user with this name for this server"
            ],
            vec!["!done"]
        ]
    );

    let reply = c.call(&["/ip/hotspot/user/print"]).await;
    assert_eq!(reply.len(), 3);
    assert_eq!(reply[0][1], "=.id=*1", ".id comes first");
    let alice = attrs(&reply[0]);
    assert_eq!(alice["name"], "alice");
    assert_eq!(alice["password"], "pw");
    assert_eq!(alice["limit-uptime"], "1h");
    assert_eq!(alice["profile"], "default", "RouterOS's default profile");
    assert_eq!(attrs(&reply[1])["profile"], "gold");

    let reply = c
        .call(&["/ip/hotspot/user/print", "=.proplist=name,.id,nothing"])
        .await;
    assert_eq!(
        words(&reply),
        [
            vec!["!re", "=name=alice", "=.id=*1"],
            vec!["!re", "=name=bob", "=.id=*2"],
            vec!["!done"]
        ]
    );

    let reply = c
        .call(&[
            "/ip/hotspot/user/set",
            "=.id=*1",
            "=limit-uptime=2h",
            "=comment=",
        ])
        .await;
    assert_eq!(words(&reply), [["!done"]]);
    let row = &router.rows("/ip/hotspot/user")[0];
    assert_eq!(row["limit-uptime"], "2h");
    assert_eq!(row["comment"], "");
    let reply = c
        .call(&["/ip/hotspot/user/set", "=numbers=bob", "=profile=silver"])
        .await;
    assert_eq!(words(&reply), [["!done"]], "numbers=, and a name as the id");
    assert_eq!(router.rows("/ip/hotspot/user")[1]["profile"], "silver");
    let reply = c
        .call(&["/ip/hotspot/user/set", "=.id=*2", "=name=alice"])
        .await;
    assert_eq!(reply[0][0], "!trap", "renaming onto a taken name");
    let reply = c
        .call(&["/ip/hotspot/user/set", "=.id=*7", "=comment=x"])
        .await;
    assert_eq!(
        words(&reply),
        [vec!["!trap", "=message=no such item (4)"], vec!["!done"]]
    );
    let reply = c
        .call(&[
            "/ip/hotspot/user/unset",
            "=.id=*1",
            "=value-name=limit-uptime",
        ])
        .await;
    assert_eq!(words(&reply), [["!done"]]);
    assert!(!router.rows("/ip/hotspot/user")[0].contains_key("limit-uptime"));

    let reply = c.call(&["/ip/hotspot/user/remove", "=.id=*1,*9"]).await;
    assert_eq!(reply[0], ["!trap", "=message=no such item (4)"]);
    assert_eq!(router.rows("/ip/hotspot/user").len(), 2, "all or nothing");
    let reply = c.call(&["/ip/hotspot/user/remove", "=.id=*1,*2"]).await;
    assert_eq!(words(&reply), [["!done"]]);
    assert!(router.rows("/ip/hotspot/user").is_empty());
    let reply = c.call(&["/ip/hotspot/user/remove", "=.id=*1"]).await;
    assert_eq!(reply[0], ["!trap", "=message=no such item (4)"]);

    // The id counter never goes back.
    let reply = c.call(&["/ip/hotspot/user/add", "=name=carol"]).await;
    assert_eq!(words(&reply), [["!done", "=ret=*3"]]);
    router.stop().await;
}

#[tokio::test]
async fn default_rows_and_unique_names() {
    let router = router().await;
    let names = |menu: &str| -> Vec<String> {
        router
            .rows(menu)
            .iter()
            .map(|r| r["name"].clone())
            .collect()
    };
    assert_eq!(names("/ip/hotspot/profile"), ["default"]);
    assert_eq!(router.rows("/ip/hotspot/profile")[0]["use-radius"], "no");
    assert_eq!(names("/ip/hotspot/user/profile"), ["default"]);
    assert_eq!(names("/ppp/profile"), ["default", "default-encryption"]);

    let mut c = Client::logged_in(router.addr()).await;
    for (menu, message) in [
        (
            "/ip/hotspot/user/profile",
            "failure: already have such name",
        ),
        ("/ip/hotspot/profile", "failure: already have such name"),
        ("/ppp/profile", "failure: already have such name"),
    ] {
        let reply = c.call(&[&format!("{menu}/add"), "=name=default"]).await;
        assert_eq!(
            reply[0],
            ["!trap", &format!("=message={message}")],
            "{menu}"
        );
    }
    c.call(&["/ppp/secret/add", "=name=u", "=password=p"]).await;
    let reply = c.call(&["/ppp/secret/add", "=name=u"]).await;
    assert_eq!(
        reply[0],
        [
            "!trap",
            "=message=failure: secret with the same name already exists"
        ]
    );
    // /radius rows need no name and may repeat.
    for _ in 0..2 {
        let reply = c
            .call(&[
                "/radius/add",
                "=service=hotspot,ppp",
                "=address=127.0.0.1",
                "=secret=s",
            ])
            .await;
        assert_eq!(reply[0][0], "!done");
    }
    assert_eq!(router.rows("/radius").len(), 2);
    assert_eq!(router.rows("/radius")[0]["service"], "hotspot,ppp");
    router.stop().await;
}

#[tokio::test]
async fn settings_menus() {
    let router = router().await;
    let mut c = Client::logged_in(router.addr()).await;

    // RouterOS's own default: 1700, not RFC 5176's 3799.
    let reply = c.call(&["/radius/incoming/print"]).await;
    assert_eq!(
        words(&reply),
        [vec!["!re", "=accept=no", "=port=1700"], vec!["!done"]]
    );
    let reply = c
        .call(&["/radius/incoming/set", "=accept=yes", "=port=3799"])
        .await;
    assert_eq!(words(&reply), [["!done"]]);
    assert_eq!(router.rows("/radius/incoming")[0]["accept"], "yes");

    let reply = c.call(&["/ppp/aaa/print"]).await;
    let aaa = attrs(&reply[0]);
    assert_eq!(aaa["use-radius"], "no");
    assert_eq!(aaa["accounting"], "yes");
    assert_eq!(aaa["interim-update"], "0s");
    c.call(&["/ppp/aaa/set", "=use-radius=yes", "=interim-update=5m"])
        .await;
    assert_eq!(router.rows("/ppp/aaa")[0]["interim-update"], "5m");

    let reply = c.call(&["/system/resource/print"]).await;
    let resource = attrs(&reply[0]);
    for key in [
        "uptime",
        "version",
        "board-name",
        "architecture-name",
        "cpu-load",
        "free-memory",
        "total-memory",
    ] {
        assert!(resource.contains_key(key), "/system/resource has {key}");
    }
    assert_eq!(resource["version"], "7.16.1");
    let reply = c.call(&["/system/resource/set", "=version=8"]).await;
    assert_eq!(
        reply[0],
        ["!trap", "=message=no such command or directory (set)"]
    );
    router.set_settings("/system/resource", &[("uptime", "3d"), ("cpu-load", "97")]);
    let reply = c
        .call(&["/system/resource/print", "=.proplist=uptime,cpu-load"])
        .await;
    assert_eq!(reply[0], ["!re", "=uptime=3d", "=cpu-load=97"]);

    let reply = c.call(&["/system/identity/set", "=name=hap-lobby"]).await;
    assert_eq!(words(&reply), [["!done"]]);
    let reply = c.call(&["/system/identity/print"]).await;
    assert_eq!(reply[0], ["!re", "=name=hap-lobby"]);
    router.stop().await;
}

#[tokio::test]
async fn active_sessions_come_from_the_handle_and_remove_kicks() {
    let router = router().await;
    let id = router.add_row(
        "/ppp/active",
        &[
            ("name", "alice"),
            ("service", "pppoe"),
            ("address", "10.0.0.2"),
        ],
    );
    router.add_row("/ip/hotspot/active", &[("user", "bob"), ("bytes-in", "10")]);
    let mut c = Client::logged_in(router.addr()).await;

    let reply = c.call(&["/ppp/active/add", "=name=x"]).await;
    assert_eq!(
        reply[0],
        ["!trap", "=message=no such command or directory (add)"]
    );
    let reply = c
        .call(&["/ppp/active/print", "?name=alice", "=.proplist=.id,address"])
        .await;
    assert_eq!(
        words(&reply),
        [
            vec!["!re", &format!("=.id={id}"), "=address=10.0.0.2"],
            vec!["!done"]
        ]
    );
    let reply = c.call(&["/ppp/active/remove", &format!("=.id={id}")]).await;
    assert_eq!(words(&reply), [["!done"]]);
    assert!(router.rows("/ppp/active").is_empty());

    assert!(router.update_row("/ip/hotspot/active", "*1", &[("bytes-in", "99")]));
    assert!(!router.update_row("/ip/hotspot/active", "*5", &[("bytes-in", "1")]));
    let reply = c.call(&["/ip/hotspot/active/print"]).await;
    assert_eq!(attrs(&reply[0])["bytes-in"], "99");
    assert!(router.remove_row("/ip/hotspot/active", "*1"));
    assert!(!router.remove_row("/ip/hotspot/active", "*1"));
    router.stop().await;
}

#[tokio::test]
async fn listen_streams_changes_until_cancel() {
    let router = router().await;
    let mut watcher = Client::logged_in(router.addr()).await;
    let mut writer = Client::logged_in(router.addr()).await;

    watcher.send(&["/ip/hotspot/user/listen", ".tag=L"]).await;
    // A listen answers nothing; a reply to a later command shows it is registered.
    watcher.call(&["/system/identity/print"]).await;
    assert!(
        watcher.silent_for(Duration::from_millis(100)).await,
        "listen sends nothing until a change"
    );

    writer
        .call(&["/ip/hotspot/user/add", "=name=u1", "=password=p"])
        .await;
    let added = watcher.recv().await;
    assert_eq!(added[..3], ["!re", ".tag=L", "=.id=*1"]);
    assert_eq!(attrs(&added)["name"], "u1");

    writer
        .call(&["/ip/hotspot/user/set", "=.id=*1", "=comment=vip"])
        .await;
    let set = watcher.recv().await;
    assert_eq!(attrs(&set)["comment"], "vip");

    // Changes through the handle are seen too, and other menus are not.
    router.add_row("/ppp/active", &[("name", "x")]);
    router.add_row("/ip/hotspot/user", &[("name", "u2")]);
    assert_eq!(attrs(&watcher.recv().await)["name"], "u2");

    writer.call(&["/ip/hotspot/user/remove", "=.id=*1"]).await;
    assert_eq!(
        watcher.recv().await,
        ["!re", ".tag=L", "=.id=*1", "=.dead=yes"]
    );

    // Other commands run on the same connection while the listen goes on.
    let reply = watcher.call(&["/system/identity/print"]).await;
    assert_eq!(reply[0], ["!re", "=name=MikroTik"]);

    watcher.send(&["/cancel", "=tag=L", ".tag=C"]).await;
    assert_eq!(
        watcher.recv().await,
        ["!trap", ".tag=L", "=category=2", "=message=interrupted"]
    );
    assert_eq!(watcher.recv().await, ["!done", ".tag=C"]);
    assert_eq!(watcher.recv().await, ["!done", ".tag=L"]);

    writer.call(&["/ip/hotspot/user/add", "=name=u3"]).await;
    assert!(
        watcher.silent_for(Duration::from_millis(100)).await,
        "nothing after cancel"
    );
    watcher.send(&["/cancel", "=tag=L", ".tag=D"]).await;
    assert_eq!(watcher.recv().await[..2], ["!trap", ".tag=D"]);
    assert_eq!(watcher.recv().await, ["!done", ".tag=D"]);
    router.stop().await;
}

#[tokio::test]
async fn listen_applies_queries_and_proplist_and_settings_menus_stream_too() {
    let router = router().await;
    let mut watcher = Client::logged_in(router.addr()).await;
    watcher
        .send(&[
            "/ppp/active/listen",
            "?service=pppoe",
            "=.proplist=name",
            ".tag=a",
        ])
        .await;
    watcher.send(&["/ppp/aaa/listen", ".tag=b"]).await;
    // A listen answers nothing; a reply to a later command shows it is registered.
    watcher.call(&["/system/identity/print"]).await;
    router.add_row("/ppp/active", &[("name", "l2tp-user"), ("service", "l2tp")]);
    let id = router.add_row("/ppp/active", &[("name", "alice"), ("service", "pppoe")]);
    assert_eq!(watcher.recv().await, ["!re", ".tag=a", "=name=alice"]);
    router.remove_row("/ppp/active", &id);
    assert_eq!(
        watcher.recv().await,
        ["!re", ".tag=a", &format!("=.id={id}"), "=.dead=yes"]
    );
    router.set_settings("/ppp/aaa", &[("use-radius", "yes")]);
    let aaa = watcher.recv().await;
    assert_eq!(aaa[..2], ["!re", ".tag=b"]);
    assert_eq!(attrs(&aaa)["use-radius"], "yes");

    // A bare /cancel ends every listen.
    watcher.send(&["/cancel"]).await;
    let mut replies = Vec::new();
    for _ in 0..5 {
        replies.push(watcher.recv().await);
    }
    assert_eq!(
        words(&replies),
        [
            vec!["!trap", ".tag=a", "=category=2", "=message=interrupted"],
            vec!["!trap", ".tag=b", "=category=2", "=message=interrupted"],
            vec!["!done"],
            vec!["!done", ".tag=a"],
            vec!["!done", ".tag=b"],
        ]
    );
    router.stop().await;
}

#[tokio::test]
async fn print_queries_and_empty() {
    let router = router().await;
    for (name, limit, comment) in [
        ("a", "100", Some("x")),
        ("b", "200", None),
        ("c", "300", None),
    ] {
        let mut attrs = vec![("name", name), ("limit-bytes-in", limit)];
        if let Some(comment) = comment {
            attrs.push(("comment", comment));
        }
        router.add_row("/ip/hotspot/user", &attrs);
    }
    let mut c = Client::logged_in(router.addr()).await;
    let mut names = async |query: &[&str]| -> Vec<String> {
        let mut cmd = vec!["/ip/hotspot/user/print", "=.proplist=name"];
        cmd.extend_from_slice(query);
        c.call(&cmd)
            .await
            .iter()
            .filter(|s| s[0] == "!re")
            .map(|s| attrs(s)["name"].clone())
            .collect()
    };
    assert_eq!(names(&["?name=b"]).await, ["b"]);
    assert_eq!(names(&["?=name=b"]).await, ["b"], "librouteros's spelling");
    assert_eq!(names(&["?name=a", "?name=c", "?#|"]).await, ["a", "c"]);
    assert_eq!(names(&["?name=a", "?#!"]).await, ["b", "c"]);
    assert_eq!(names(&["?<limit-bytes-in=250"]).await, ["a", "b"]);
    assert_eq!(names(&["?>limit-bytes-in=100"]).await, ["b", "c"]);
    assert_eq!(
        names(&["?>limit-bytes-in=100", "?<limit-bytes-in=300", "?#&"]).await,
        ["b"]
    );
    assert_eq!(names(&["?comment"]).await, ["a"]);
    assert_eq!(names(&["?-comment"]).await, ["b", "c"]);
    assert_eq!(names(&["?.id=*2"]).await, ["b"]);
    assert_eq!(
        names(&["?name=a", "?name=b", "?#|.!&"]).await,
        Vec::<String>::new()
    );

    let reply = c.call(&["/ip/hotspot/user/print", "?name=nobody"]).await;
    assert_eq!(words(&reply), [["!empty"], ["!done"]]);
    let reply = c
        .call(&["/ip/hotspot/user/print", "=count-only=", "?-comment"])
        .await;
    assert_eq!(words(&reply), [["!done", "=ret=2"]]);
    let reply = c.call(&["/ppp/secret/print"]).await;
    assert_eq!(words(&reply), [["!empty"], ["!done"]]);
    let reply = c.call(&["/ip/hotspot/user/print", "?#z"]).await;
    assert_eq!(reply[0][0], "!trap");
    router.stop().await;
}

#[tokio::test]
async fn unknown_commands_and_quit() {
    let router = router().await;
    let mut c = Client::logged_in(router.addr()).await;
    let reply = c.call(&["/ip/nothing/print"]).await;
    assert_eq!(
        words(&reply),
        [
            vec!["!trap", "=message=no such command or directory (nothing)"],
            vec!["!done"]
        ]
    );
    let reply = c.call(&["/ip/hotspot/user/frobnicate"]).await;
    assert_eq!(
        reply[0],
        [
            "!trap",
            "=message=no such command or directory (frobnicate)"
        ]
    );
    // Empty sentences are ignored, not answered.
    c.send_raw(&[0]).await;
    let reply = c.call(&["/quit"]).await;
    assert_eq!(words(&reply), [["!fatal", "session terminated on request"]]);
    assert!(c.closed().await);
    assert_eq!(
        router.commands(),
        [
            vec!["/ip/nothing/print"],
            vec!["/ip/hotspot/user/frobnicate"],
            vec!["/quit"]
        ]
    );
    router.stop().await;
}

#[tokio::test]
async fn a_control_byte_closes_the_connection() {
    let router = router().await;
    let mut c = Client::logged_in(router.addr()).await;
    c.send_raw(&[0xF8]).await;
    assert!(c.closed().await);
    eventually("the connection is gone", || router.connections() == 0).await;
    router.stop().await;
}

#[tokio::test]
async fn connections_are_counted_and_stop_closes_them_for_a_restart() {
    let router = router().await;
    let addr = router.addr();
    let mut a = Client::logged_in(addr).await;
    let b = Client::logged_in(addr).await;
    assert_eq!(router.connections(), 2);
    drop(b);
    eventually("the closed client is no longer counted", || {
        router.connections() == 1
    })
    .await;
    router.stop().await;
    assert!(a.closed().await, "stop closes open connections");

    // The same port again, as after a reboot: a fresh router with default tables.
    let router = FakeRouter::start_on(addr, FakeRouterConfig::default())
        .await
        .expect("rebind the same port");
    assert_eq!(router.addr(), addr);
    let mut c = Client::logged_in(addr).await;
    let reply = c.call(&["/ip/hotspot/user/print"]).await;
    assert_eq!(words(&reply), [["!empty"], ["!done"]]);
    router.stop().await;
}

#[tokio::test]
async fn the_binary_prints_its_address_and_serves() {
    use tokio::io::AsyncBufReadExt;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-routeros"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--user",
            "api",
            "--password",
            "pw",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn fake-routeros");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        common::PATIENCE,
        tokio::io::BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("the address in time")
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    let mut c = Client::connect(addr).await;
    let reply = c.call(&["/login", "=name=api", "=password=pw"]).await;
    assert_eq!(words(&reply), [["!done"]]);
    child.kill().await.unwrap();
}
