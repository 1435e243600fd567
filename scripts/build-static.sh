#!/usr/bin/env bash
# Release build for one target. Linux targets are static musl binaries, and
# the script proves it: `ldd` must report no dynamic dependencies.
#   scripts/build-static.sh [TARGET]   (default x86_64-unknown-linux-musl)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-x86_64-unknown-linux-musl}"
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
case "$target" in
  *-linux-musl)
    if ! command -v musl-gcc >/dev/null; then
      if command -v apt-get >/dev/null; then sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get update -qq && $sudo apt-get install -y -qq musl-tools; fi
    fi ;;
esac
cargo build --release --locked --target "$target"
bin="target/$target/release/flightdeck"
case "$target" in
  *-linux-*)
    out="$(ldd "$bin" 2>&1 || true)"
    echo "ldd $bin: $out"
    if ! printf '%s' "$out" | grep -Eq 'statically linked|not a dynamic executable'; then
      echo "error: $bin is dynamically linked" >&2
      exit 1
    fi ;;
esac
"$bin" --version
