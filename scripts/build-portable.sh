#!/usr/bin/env bash
# Portable Linux release build: a glibc binary that runs on any Linux with
# glibc 2.17 or newer (CentOS 7, Amazon Linux 2, every current runner image),
# linked with zig's libc stubs through cargo-zigbuild, then checked with
# check-glibc.sh. The musl builds (build-static.sh) stay as well.
#   scripts/build-portable.sh [ARCH=x86_64] [GLIBC=2.17]
# ziglang and cargo-zigbuild come from PyPI; without them on PATH the script
# installs both into a venv (FLIGHTDECK_ZIG_VENV, default target/zig-venv).
# CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-x86_64}"
glibc="${2:-2.17}"
target="$arch-unknown-linux-gnu"
if ! command -v cargo-zigbuild >/dev/null || ! { command -v zig >/dev/null || python3 -c 'import ziglang' 2>/dev/null; }; then
  venv="${FLIGHTDECK_ZIG_VENV:-target/zig-venv}"
  [ -x "$venv/bin/cargo-zigbuild" ] || {
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check ziglang cargo-zigbuild
  }
  case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
  export PATH="$venv/bin:$PATH"
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
cargo zigbuild --release --locked --target "$target.$glibc"
bin="${CARGO_TARGET_DIR:-target}/$target/release/flightdeck"
scripts/check-glibc.sh "$bin" "$glibc"
"$bin" --version
