//! The fake router checked by an independent client: the PyPI package librouteros, driven
//! by `tests/python/librouteros_check.py`. A missing librouteros fails the test: silently
//! skipping would let the fake drift from what real clients accept.

use std::process::Stdio;

use mikrobill_fake_routeros::{FakeRouter, FakeRouterConfig};

const INSTALL_HINT: &str = "python3 -m pip install librouteros";

#[tokio::test]
async fn librouteros_drives_the_fake_router() {
    let has_module = tokio::process::Command::new("python3")
        .args(["-c", "import librouteros"])
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); install it, then {INSTALL_HINT}"));
    assert!(
        has_module.success(),
        "the python module librouteros is missing: run `{INSTALL_HINT}`"
    );

    let router = FakeRouter::start(FakeRouterConfig {
        username: "mikrobill".into(),
        password: "api-secret".into(),
    })
    .await
    .expect("start the fake router");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/librouteros_check.py"
    );
    let addr = router.addr();
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new("python3")
            .arg(script)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .args(["mikrobill", "api-secret"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the librouteros check finishes within a minute")
    .expect("run the librouteros check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "librouteros check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all checks passed"));
    assert!(router.rows("/ip/hotspot/user").is_empty());
    router.stop().await;
}
