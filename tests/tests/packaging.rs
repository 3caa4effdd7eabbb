//! Packaging artefacts are checked by the tools that consume them: systemd's verifier for the
//! units, skopeo and tar for the RouterOS image, a YAML parser for the Kubernetes manifests,
//! promtool for the alert rules; the dashboard's queries name only metrics that exist.

use mikrobill_tests::{bin, repo, run};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn systemd_units_pass_the_verifier_and_are_sandboxed() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = bin("mikrobill-agent").parent().unwrap().to_path_buf();
    let mut units = Vec::new();
    for name in ["mikrobill-controller.service", "mikrobill-agent.service"] {
        let text = std::fs::read_to_string(repo().join("systemd").join(name)).unwrap();
        for directive in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "DynamicUser=yes",
            "StateDirectory=",
            "PrivateTmp=yes",
        ] {
            assert!(text.contains(directive), "{name} lacks {directive}");
        }
        // The verifier checks that ExecStart exists: point it at the binaries just built.
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            text.replace("/usr/bin/", &format!("{}/", bin_dir.display())),
        )
        .unwrap();
        units.push(path);
    }
    let agent = std::fs::read_to_string(repo().join("systemd/mikrobill-agent.service")).unwrap();
    assert!(
        agent.contains("CapabilityBoundingSet=CAP_NET_BIND_SERVICE"),
        "the agent may only bind low ports"
    );
    let controller =
        std::fs::read_to_string(repo().join("systemd/mikrobill-controller.service")).unwrap();
    assert!(
        controller.contains("CapabilityBoundingSet=\n"),
        "the controller needs no capability"
    );
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .expect("systemd-analyze (Debian systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        !stderr.contains("mikrobill"),
        "systemd-analyze complained about our units:\n{stderr}"
    );
}

#[test]
fn agent_image_is_a_docker_archive_with_one_uncompressed_layer() {
    let binary = bin("mikrobill-agent");
    for arch in ["amd64", "arm64"] {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join(format!("agent-{arch}.tar"));
        run(Command::new("python3")
            .arg(repo().join("packaging/image.py"))
            .args([
                "--kind",
                "agent",
                "--binary",
                binary.to_str().unwrap(),
                "--arch",
                arch,
                "--tag",
                "mikrobill-agent:test",
            ])
            .arg("--out")
            .arg(&image));

        let inspect: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", image.display()))))
        .unwrap();
        assert_eq!(inspect["Architecture"], arch);
        assert_eq!(inspect["Os"], "linux");
        assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);

        // Unpacked by hand, as RouterOS does: manifest, config, one plain tar layer.
        let unpacked = dir.path().join("unpacked");
        std::fs::create_dir(&unpacked).unwrap();
        run(Command::new("tar")
            .arg("-xf")
            .arg(&image)
            .arg("-C")
            .arg(&unpacked));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap())
                .unwrap();
        let entry = &manifest[0];
        assert_eq!(entry["RepoTags"][0], "mikrobill-agent:test");
        let layers = entry["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        let layer = std::fs::read(unpacked.join(layers[0].as_str().unwrap())).unwrap();
        assert_eq!(
            &layer[257..262],
            b"ustar",
            "the layer is an uncompressed tar"
        );
        let config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(unpacked.join(entry["Config"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{}", hex::encode(Sha256::digest(&layer)))
        );
        assert_eq!(
            config["config"]["Entrypoint"][0],
            "/usr/bin/mikrobill-agent"
        );
        assert_eq!(config["config"]["Cmd"][0], "run");

        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        run(Command::new("tar")
            .arg("-xf")
            .arg(unpacked.join(layers[0].as_str().unwrap()))
            .arg("-C")
            .arg(&rootfs));
        let inside = rootfs.join("usr/bin/mikrobill-agent");
        assert_eq!(
            std::fs::read(&inside).unwrap(),
            std::fs::read(&binary).unwrap()
        );
        assert_eq!(
            std::fs::metadata(&inside).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(rootfs.join("var/lib/mikrobill-agent").is_dir());
    }
}

#[test]
fn controller_image_runs_unprivileged_with_its_ports_and_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("controller.tar");
    let bundle = dir.path().join("ca.pem");
    std::fs::write(
        &bundle,
        "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    run(Command::new("python3")
        .arg(repo().join("packaging/image.py"))
        .args(["--kind", "controller", "--arch", "amd64", "--binary"])
        .arg(bin("mikrobill-controller"))
        .arg("--ca-bundle")
        .arg(&bundle)
        .arg("--out")
        .arg(&image));
    let inspect: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .arg("inspect")
        .arg("--config")
        .arg(format!("docker-archive:{}", image.display()))))
    .unwrap();
    let config = &inspect["config"];
    assert_eq!(config["User"], "10001");
    assert_eq!(config["Entrypoint"][0], "/usr/bin/mikrobill-controller");
    assert_eq!(config["Cmd"][0], "serve");
    for port in ["8080/tcp", "4433/udp", "9464/tcp"] {
        assert!(
            config["ExposedPorts"].get(port).is_some(),
            "{port} not exposed"
        );
    }
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for want in [
        "MIKROBILL_DATA_DIR=/var/lib/mikrobill",
        "MIKROBILL_API_LISTEN=0.0.0.0:8080",
        "MIKROBILL_EDGE_LISTEN=0.0.0.0:4433",
    ] {
        assert!(env.contains(&want), "{want} missing from {env:?}");
    }
    // The layer: the data directory belongs to the service user alone, the CA bundle is
    // where TLS clients look for it.
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&image)
        .arg("-C")
        .arg(&unpacked));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    let layer = unpacked.join(manifest[0]["Layers"][0].as_str().unwrap());
    let listing = run(Command::new("tar")
        .arg("-tvf")
        .arg(&layer)
        .arg("--numeric-owner"));
    let data_dir = listing
        .lines()
        .find(|l| l.ends_with("var/lib/mikrobill/"))
        .expect("data directory in the layer");
    assert!(data_dir.starts_with("drwx------ 10001/10001"), "{data_dir}");
    assert!(
        listing.contains("etc/ssl/certs/ca-certificates.crt"),
        "{listing}"
    );
    assert!(listing.contains("-rwxr-xr-x 0/0"), "{listing}");
}

#[test]
fn kubernetes_manifests_probe_health_and_take_config_from_the_environment() {
    let path = repo().join("packaging/kubernetes/controller.yaml");
    let json = run(Command::new("python3").args([
        "-c",
        "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        path.to_str().unwrap(),
    ]));
    let docs: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .clone()
    };
    let deploy = find("Deployment", "mikrobill-controller");
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    let env = container["env"].as_array().unwrap();
    let var = |n: &str| {
        env.iter()
            .find(|e| e["name"] == n)
            .unwrap_or_else(|| panic!("no env {n}"))
            .clone()
    };
    assert_eq!(
        var("MIKROBILL_DATABASE_URL")["valueFrom"]["secretKeyRef"]["name"],
        "mikrobill-database"
    );
    assert!(var("MIKROBILL_EDGE_ADVERTISE")["value"].is_string());
    assert!(deploy["spec"]["replicas"].as_u64().unwrap() >= 2);
    let edge = find("Service", "mikrobill-edge");
    assert_eq!(edge["spec"]["ports"][0]["protocol"], "UDP");
    assert_eq!(
        edge["spec"]["sessionAffinity"], "ClientIP",
        "QUIC needs every packet on one replica"
    );

    let containerfile =
        std::fs::read_to_string(repo().join("packaging/Containerfile.controller")).unwrap();
    assert!(containerfile.contains("EXPOSE 8080/tcp 4433/udp"));
    assert!(
        containerfile.contains("USER 10001"),
        "the controller image runs unprivileged"
    );
    assert!(containerfile.contains("ENTRYPOINT [\"/usr/bin/mikrobill-controller\"]"));
}

/// Metric names in `text`: `mikrobill_` followed by lower-case letters and underscores.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("mikrobill_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Every metric name the binaries can export: the agent's declared list, and each
/// `"mikrobill_..."` literal in the controller's sources (the `metrics` macros' names).
fn exported_metric_names() -> std::collections::BTreeSet<String> {
    let mut names: std::collections::BTreeSet<String> =
        mikrobill_agent::status::prometheus::METRIC_NAMES
            .iter()
            .map(|n| n.to_string())
            .collect();
    let mut stack: Vec<PathBuf> = [
        "controller/src",
        "controller-core/src",
        "controller-http/src",
    ]
    .iter()
    .map(|d| repo().join(d))
    .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for quoted in text.split('"').skip(1).step_by(2) {
                    if quoted.starts_with("mikrobill_")
                        && quoted.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    {
                        names.insert(quoted.to_string());
                    }
                }
            }
        }
    }
    names
}

#[test]
fn alert_rules_pass_promtool_and_fire_when_they_should() {
    let dir = repo().join("packaging/monitoring");
    let out = run(Command::new("promtool")
        .args(["check", "rules", "prometheus-rules.yml"])
        .current_dir(&dir));
    assert!(out.contains("SUCCESS"), "{out}");
    // The unit tests feed series and expect exactly the alerts (labels and texts) listed.
    run(Command::new("promtool")
        .args(["test", "rules", "prometheus-rules.test.yml"])
        .current_dir(&dir));
}

#[test]
fn dashboard_and_rules_use_only_metrics_the_binaries_export() {
    let dir = repo().join("packaging/monitoring");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("grafana-dashboard.json")).unwrap())
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut used = String::new();
    for p in panels {
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            used.push_str(t["expr"].as_str().unwrap());
            used.push('\n');
        }
    }
    let rules = std::fs::read_to_string(dir.join("prometheus-rules.yml")).unwrap();
    for expr in rules.lines().filter_map(|l| l.trim().strip_prefix("expr:")) {
        used.push_str(expr);
        used.push('\n');
    }
    let exported = exported_metric_names();
    let used = metric_names(&used);
    assert!(used.len() >= 15, "{used:?}");
    for name in &used {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| exported.contains(*b)))
            .unwrap_or(name);
        assert!(
            exported.contains(base),
            "{name} is used by the dashboard or the rules but no binary exports it"
        );
    }
}
