#!/usr/bin/env bash
# Builds static (musl) binaries with cargo-zigbuild (zig from the PyPI `ziglang` wheel
# cross-compiles the C in ring and SQLite), then prints their sizes.
#
#   packaging/build-static.sh [--agent-only] [TARGET...]   default: x86_64 and aarch64 musl
#
# Output: <target dir>/<triple>/release-agent/mikrobill-agent (size-tuned profile) and
#         <target dir>/<triple>/release/mikrobill-controller.
set -euo pipefail
cd "$(dirname "$0")/.."
agent_only=no
targets=()
for arg in "$@"; do
  case "$arg" in
    --agent-only) agent_only=yes ;;
    *) targets+=("$arg") ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

python3 -c 'import ziglang' 2>/dev/null || python3 -m pip install --quiet ziglang
command -v cargo-zigbuild >/dev/null 2>&1 || cargo install --locked --quiet cargo-zigbuild
rustup target add "${targets[@]}" >/dev/null 2>&1

target_dir=${CARGO_TARGET_DIR:-target}
binaries=(release-agent/mikrobill-agent)
[ "$agent_only" = yes ] || binaries+=(release/mikrobill-controller)
for t in "${targets[@]}"; do
  cargo zigbuild --locked --target "$t" --profile release-agent -p mikrobill-agent
  [ "$agent_only" = yes ] || cargo zigbuild --locked --target "$t" --release -p mikrobill-controller
done
printf '%-30s %-22s %10s\n' TARGET BINARY BYTES >&2
for t in "${targets[@]}"; do
  for b in "${binaries[@]}"; do
    printf '%-30s %-22s %10s\n' "$t" "$(basename "$b")" "$(stat -c %s "$target_dir/$t/$b")" >&2
  done
done
