#!/usr/bin/env python3
"""Writes a MikroBill image (agent or controller) as a docker-archive tar: one platform, ONE
uncompressed layer, no container engine needed. RouterOS v7 loads the agent's with
`/container/add file=...`; `docker load` / `podman load` take either.

usage: image.py --kind agent|controller --binary PATH --arch arm64|amd64 --out FILE
                [--tag NAME:VERSION] [--ca-bundle PATH]

The layer holds the static binary, its data directory and a minimal /etc. The agent runs
`mikrobill-agent run` as root (RouterOS containers), configured by environment
(MIKROBILL_ENROLL_TOKEN, MIKROBILL_RADIUS_CLIENT_ADDRESS, MIKROBILL_RADIUS_SECRET; or
MIKROBILL_AGENT_CONFIG pointing at a mounted TOML file), state in /var/lib/mikrobill-agent.
The controller runs `mikrobill-controller serve` as uid 10001 with the environment of
packaging/Containerfile.controller, state in /var/lib/mikrobill, and the CA bundle given by
--ca-bundle (Debian's /etc/ssl/certs/ca-certificates.crt) for payment gateways and webhooks.
Mount a volume on the data directory so state survives updates.
"""
import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import time

ARCHES = {"arm64": ("arm64", "v8"), "amd64": ("amd64", None)}
UID = 10001

# What differs between the two images.
KINDS = {
    "agent": {
        "binary": "mikrobill-agent",
        "data_dir": "/var/lib/mikrobill-agent",
        "owner": 0,
        "cmd": ["run"],
        "env": ["MIKROBILL_AGENT_DATA_DIR=/var/lib/mikrobill-agent", "MIKROBILL_LOG_FORMAT=text"],
        "ports": {},
        "user": None,
        # Docker and Podman run it; RouterOS ignores it.
        "healthcheck": ["CMD", "/usr/bin/mikrobill-agent", "health"],
    },
    "controller": {
        "binary": "mikrobill-controller",
        "data_dir": "/var/lib/mikrobill",
        "owner": UID,
        "cmd": ["serve"],
        "env": [
            "MIKROBILL_DATA_DIR=/var/lib/mikrobill",
            "MIKROBILL_API_LISTEN=0.0.0.0:8080",
            "MIKROBILL_EDGE_LISTEN=0.0.0.0:4433",
            "MIKROBILL_METRICS_LISTEN=0.0.0.0:9464",
            "MIKROBILL_LOG_FORMAT=json",
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        ],
        "ports": {"8080/tcp": {}, "4433/udp": {}, "9464/tcp": {}},
        "user": str(UID),
        "healthcheck": None,
    },
}


def add_dir(tar, path, mode=0o755, mtime=0, owner=0):
    info = tarfile.TarInfo(path)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = owner
    tar.addfile(info)


def add_file(tar, path, data, mode=0o644, mtime=0):
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mode = mode
    info.mtime = mtime
    tar.addfile(info, io.BytesIO(data))


def layer(kind: dict, binary: bytes, ca_bundle, mtime: int) -> bytes:
    buf = io.BytesIO()
    # USTAR keeps the layer readable by the simplest tar implementations (RouterOS's included).
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        dirs = ["etc", "etc/mikrobill", "usr", "usr/bin", "var", "var/lib", "tmp"]
        if ca_bundle is not None:
            dirs += ["etc/ssl", "etc/ssl/certs"]
        for d in dirs:
            add_dir(tar, d, 0o1777 if d == "tmp" else 0o755, mtime)
        add_dir(tar, kind["data_dir"].lstrip("/"), 0o700, mtime, kind["owner"])
        passwd = b"root:x:0:0:root:/root:/sbin/nologin\n"
        group = b"root:x:0:\n"
        if kind["owner"]:
            passwd += f"mikrobill:x:{UID}:{UID}::{kind['data_dir']}:/sbin/nologin\n".encode()
            group += f"mikrobill:x:{UID}:\n".encode()
        add_file(tar, "etc/passwd", passwd, mtime=mtime)
        add_file(tar, "etc/group", group, mtime=mtime)
        add_file(tar, "etc/nsswitch.conf", b"hosts: files dns\n", mtime=mtime)
        if ca_bundle is not None:
            add_file(tar, "etc/ssl/certs/ca-certificates.crt", ca_bundle, mtime=mtime)
        add_file(tar, f"usr/bin/{kind['binary']}", binary, 0o755, mtime)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", default="agent", choices=sorted(KINDS))
    ap.add_argument("--binary", required=True, help="the static binary for the target architecture")
    ap.add_argument("--arch", required=True, choices=sorted(ARCHES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--tag", help="image name and tag [default: mikrobill-<kind>:latest]")
    ap.add_argument("--ca-bundle", help="PEM CA bundle for outgoing TLS (controller)")
    args = ap.parse_args()
    kind = KINDS[args.kind]
    tag = args.tag or f"mikrobill-{args.kind}:latest"

    with open(args.binary, "rb") as f:
        binary = f.read()
    ca_bundle = None
    if args.ca_bundle:
        with open(args.ca_bundle, "rb") as f:
            ca_bundle = f.read()
    # Reproducible: the same binary (or SOURCE_DATE_EPOCH) yields the same image.
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", int(os.stat(args.binary).st_mtime)))
    layer_tar = layer(kind, binary, ca_bundle, mtime)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    arch, variant = ARCHES[args.arch]
    config = {
        "architecture": arch,
        "os": "linux",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime)),
        "config": {
            "Entrypoint": [f"/usr/bin/{kind['binary']}"],
            "Cmd": kind["cmd"],
            "Env": ["PATH=/usr/bin"] + kind["env"],
            "WorkingDir": "/",
            "Volumes": {kind["data_dir"]: {}},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": f"packaging/image.py --kind {args.kind}"}],
    }
    if kind["user"]:
        config["config"]["User"] = kind["user"]
    if kind["ports"]:
        config["config"]["ExposedPorts"] = kind["ports"]
    if kind["healthcheck"]:
        # Durations in nanoseconds, as the image config spells them.
        config["config"]["Healthcheck"] = {
            "Test": kind["healthcheck"],
            "Interval": 10 * 10**9,
            "Timeout": 5 * 10**9,
            "StartPeriod": 10 * 10**9,
            "Retries": 3,
        }
    if variant:
        config["variant"] = variant
    config_json = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_json).hexdigest() + ".json"
    layer_dir = diff_id.split(":")[1]
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [f"{layer_dir}/layer.tar"]}]
    repo, _, version = tag.partition(":")
    repositories = {repo: {version or "latest": layer_dir}}

    with tarfile.open(args.out, mode="w", format=tarfile.USTAR_FORMAT) as out:
        add_file(out, config_name, config_json, mtime=mtime)
        add_dir(out, layer_dir, mtime=mtime)
        add_file(out, f"{layer_dir}/layer.tar", layer_tar, mtime=mtime)
        add_file(out, f"{layer_dir}/VERSION", b"1.0", mtime=mtime)
        add_file(out, f"{layer_dir}/json", json.dumps({"id": layer_dir}).encode(), mtime=mtime)
        add_file(out, "manifest.json", json.dumps(manifest).encode(), mtime=mtime)
        add_file(out, "repositories", json.dumps(repositories).encode(), mtime=mtime)
    print(f"{args.out}: {tag} for {arch}, {len(binary)} byte binary, layer {diff_id}", file=sys.stderr)


if __name__ == "__main__":
    main()
