//! Both images as an operator runs them: written by `packaging/image.py` from the static musl
//! binaries, loaded into Docker (no registry), started on a private network of their own;
//! the agent container enrolls with a token from the controller container and its link comes
//! up, as `mikrobill-agent status` inside it and the controller's API both say.

use mikrobill_tests::http::{ADMIN_PASSWORD, Api};
use mikrobill_tests::{eventually, repo, run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

/// Everything the test made in Docker, removed however the test ends.
struct Cleanup {
    containers: Vec<String>,
    network: String,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            if std::thread::panicking() {
                let logs = Command::new("docker")
                    .args(["logs", "--tail", "40", c])
                    .output();
                if let Ok(out) = logs {
                    eprintln!(
                        "--- {c} ---\n{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            let _ = Command::new("docker").args(["rm", "-f", "-v", c]).output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
        for i in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

/// The static x86_64 binaries `scripts/test` builds with `packaging/build-static.sh`.
fn static_binary(profile_and_name: &str) -> PathBuf {
    let dir = PathBuf::from(std::env::var("MIKROBILL_X86_64_STATIC_DIR").expect(
        "MIKROBILL_X86_64_STATIC_DIR must name <target>/x86_64-unknown-linux-musl: scripts/test builds the static binaries with packaging/build-static.sh",
    ));
    let path = dir.join(profile_and_name);
    assert!(path.exists(), "{} is missing", path.display());
    path
}

fn image(kind: &str, binary: &Path, tag: &str, out: &Path) {
    let mut cmd = Command::new("python3");
    cmd.arg(repo().join("packaging/image.py"))
        .args(["--kind", kind, "--arch", "amd64", "--tag", tag, "--binary"])
        .arg(binary)
        .arg("--out")
        .arg(out);
    if kind == "controller" {
        cmd.args(["--ca-bundle", "/etc/ssl/certs/ca-certificates.crt"]);
    }
    run(&mut cmd);
    docker(&["load", "-i", out.to_str().unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_images_run_and_the_agent_enrolls() {
    let controller_bin = static_binary("release/mikrobill-controller");
    let agent_bin = static_binary("release-agent/mikrobill-agent");
    let id = format!("{}-{}", std::process::id(), rand::random::<u16>());
    let controller_tag = format!("mikrobill-controller:test-{id}");
    let agent_tag = format!("mikrobill-agent:test-{id}");
    let controller_name = format!("mbc-{id}");
    let agent_name = format!("mba-{id}");
    let network = format!("mbnet-{id}");
    let _cleanup = Cleanup {
        containers: vec![agent_name.clone(), controller_name.clone()],
        network: network.clone(),
        images: vec![controller_tag.clone(), agent_tag.clone()],
    };
    let dir = tempfile::tempdir().unwrap();
    image(
        "controller",
        &controller_bin,
        &controller_tag,
        &dir.path().join("controller.tar"),
    );
    image(
        "agent",
        &agent_bin,
        &agent_tag,
        &dir.path().join("agent.tar"),
    );
    docker(&["network", "create", &network]);

    let advertise = format!("MIKROBILL_EDGE_ADVERTISE={controller_name}:4433");
    let admin = format!("MIKROBILL_ADMIN_PASSWORD={ADMIN_PASSWORD}");
    docker(&[
        "run",
        "-d",
        "--name",
        &controller_name,
        "--network",
        &network,
        "-e",
        &advertise,
        "-e",
        &admin,
        "-p",
        "127.0.0.1::8080",
        &controller_tag,
    ]);
    let port = docker(&["port", &controller_name, "8080/tcp"]);
    let addr: std::net::SocketAddr = port
        .lines()
        .next()
        .expect("published port")
        .trim()
        .parse()
        .expect("host:port");
    eventually(
        Duration::from_secs(60),
        "controller container ready",
        || async {
            mikrobill_tests::controller::http_ok(addr, "/ready")
                .await
                .then_some(())
        },
    )
    .await;
    // The admin CLI works inside the image, as its unprivileged user, on the same data.
    let token = docker(&[
        "exec",
        &controller_name,
        "mikrobill-controller",
        "site",
        "add",
        "menara",
    ]);
    let token = token.trim().to_string();
    assert!(!token.is_empty());

    let enroll = format!("MIKROBILL_ENROLL_TOKEN={token}");
    docker(&[
        "run",
        "-d",
        "--name",
        &agent_name,
        "--network",
        &network,
        "-e",
        &enroll,
        "-e",
        "MIKROBILL_RADIUS_CLIENT_ADDRESS=127.0.0.1",
        "-e",
        "MIKROBILL_RADIUS_SECRET=a-long-radius-secret",
        &agent_tag,
    ]);
    let status = eventually(Duration::from_secs(60), "agent link up", || async {
        let out = Command::new("docker")
            .args(["exec", &agent_name, "mikrobill-agent", "status"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("link up").then_some(text)
    })
    .await;
    assert!(status.contains("site:        menara"), "{status}");
    let health = run(Command::new("docker").args([
        "exec",
        &agent_name,
        "mikrobill-agent",
        "status",
        "--json",
    ]));
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["radius"]["running"], true, "{health}");

    // The image's health check (`mikrobill-agent health`) passes in Docker.
    eventually(
        Duration::from_secs(60),
        "agent container healthy",
        || async {
            let out = Command::new("docker")
                .args([
                    "inspect",
                    "--format",
                    "{{.State.Health.Status}}",
                    &agent_name,
                ])
                .output()
                .unwrap();
            (String::from_utf8_lossy(&out.stdout).trim() == "healthy").then_some(())
        },
    )
    .await;

    let admin = Api::login(addr, "admin", ADMIN_PASSWORD).await;
    let sites = admin.get("/api/v1/sites").await.expect(200);
    let site = sites["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "menara")
        .cloned()
        .expect("site listed");
    assert_eq!(site["online"], true, "{site}");
}
