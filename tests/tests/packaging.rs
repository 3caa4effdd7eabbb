//! Packaging artefacts are checked by the tools that consume them: systemd's verifier for the
//! units, skopeo and tar for the RouterOS image, a YAML parser for the Kubernetes manifests.

use mikrobill_tests::bin;
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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
            .arg(repo().join("packaging/agent-image.py"))
            .args([
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
