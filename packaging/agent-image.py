#!/usr/bin/env python3
"""Writes the MikroBill agent image as a docker-archive tar that RouterOS v7 loads with
`/container/add file=...`: one platform, ONE uncompressed layer, no Docker engine needed.

usage: agent-image.py --binary PATH --arch arm64|amd64 --out FILE [--tag mikrobill-agent:VERSION]

The layer holds the (static) agent binary, its data and config directories and a minimal
/etc so name resolution works. The image runs `mikrobill-agent run`, configured by environment
(MIKROBILL_ENROLL_TOKEN, MIKROBILL_RADIUS_CLIENT_ADDRESS, MIKROBILL_RADIUS_SECRET; or
MIKROBILL_AGENT_CONFIG pointing at a mounted TOML file), and keeps its state in
/var/lib/mikrobill-agent: mount a volume there so enrollment and the cache survive updates.
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
DATA_DIR = "/var/lib/mikrobill-agent"


def add_dir(tar, path, mode=0o755, mtime=0):
    info = tarfile.TarInfo(path)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = mtime
    tar.addfile(info)


def add_file(tar, path, data, mode=0o644, mtime=0):
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mode = mode
    info.mtime = mtime
    tar.addfile(info, io.BytesIO(data))


def layer(binary: bytes, mtime: int) -> bytes:
    buf = io.BytesIO()
    # USTAR keeps the layer readable by the simplest tar implementations (RouterOS's included).
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for d in ["etc", "etc/mikrobill", "usr", "usr/bin", "var", "var/lib", "tmp"]:
            add_dir(tar, d, 0o1777 if d == "tmp" else 0o755, mtime)
        add_dir(tar, DATA_DIR.lstrip("/"), 0o700, mtime)
        add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\n", mtime=mtime)
        add_file(tar, "etc/group", b"root:x:0:\n", mtime=mtime)
        add_file(tar, "etc/nsswitch.conf", b"hosts: files dns\n", mtime=mtime)
        add_file(tar, "usr/bin/mikrobill-agent", binary, 0o755, mtime)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True, help="the agent binary for the target architecture")
    ap.add_argument("--arch", required=True, choices=sorted(ARCHES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--tag", default="mikrobill-agent:latest")
    args = ap.parse_args()

    with open(args.binary, "rb") as f:
        binary = f.read()
    # Reproducible: the same binary (or SOURCE_DATE_EPOCH) yields the same image.
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", int(os.stat(args.binary).st_mtime)))
    layer_tar = layer(binary, mtime)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    arch, variant = ARCHES[args.arch]
    config = {
        "architecture": arch,
        "os": "linux",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime)),
        "config": {
            "Entrypoint": ["/usr/bin/mikrobill-agent"],
            "Cmd": ["run"],
            "Env": [
                "PATH=/usr/bin",
                f"MIKROBILL_AGENT_DATA_DIR={DATA_DIR}",
                "MIKROBILL_LOG_FORMAT=text",
            ],
            "WorkingDir": "/",
            "Volumes": {DATA_DIR: {}},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "packaging/agent-image.py"}],
    }
    if variant:
        config["variant"] = variant
    config_json = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_json).hexdigest() + ".json"
    layer_dir = diff_id.split(":")[1]
    manifest = [{"Config": config_name, "RepoTags": [args.tag], "Layers": [f"{layer_dir}/layer.tar"]}]
    repo, _, tag = args.tag.partition(":")
    repositories = {repo: {tag or "latest": layer_dir}}

    with tarfile.open(args.out, mode="w", format=tarfile.USTAR_FORMAT) as out:
        add_file(out, config_name, config_json, mtime=mtime)
        add_dir(out, layer_dir, mtime=mtime)
        add_file(out, f"{layer_dir}/layer.tar", layer_tar, mtime=mtime)
        add_file(out, f"{layer_dir}/VERSION", b"1.0", mtime=mtime)
        add_file(out, f"{layer_dir}/json", json.dumps({"id": layer_dir}).encode(), mtime=mtime)
        add_file(out, "manifest.json", json.dumps(manifest).encode(), mtime=mtime)
        add_file(out, "repositories", json.dumps(repositories).encode(), mtime=mtime)
    print(f"{args.out}: {args.tag} for {arch}, {len(binary)} byte binary, layer {diff_id}", file=sys.stderr)


if __name__ == "__main__":
    main()
