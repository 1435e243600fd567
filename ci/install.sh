#!/usr/bin/env bash
# Install flightdeck for this runner: a cached copy, else the prebuilt release
# binary (SHA-256 verified), else a build from source. Prints the binary's path.
#
#   FLIGHTDECK_VERSION        release tag (e.g. v0.1.0) or "latest" (default)
#   FLIGHTDECK_REPO           owner/name of the releases (default flightdeck-dev/flightdeck)
#   FLIGHTDECK_DOWNLOAD_BASE  override the download base URL (file:// works; used by the tests)
#   FLIGHTDECK_CACHE          cache directory (default $RUNNER_TOOL_CACHE or ~/.cache)
#   FLIGHTDECK_BINARY         use this binary as is (skips everything else)
#   FLIGHTDECK_SOURCE         source checkout to build from when no release fits (default: this repo)
#   FLIGHTDECK_NO_SOURCE_FALLBACK=1  fail instead of building from source
set -euo pipefail

log() { printf 'flightdeck install: %s\n' "$*" >&2; }

if [ -n "${FLIGHTDECK_BINARY:-}" ]; then
  [ -x "$FLIGHTDECK_BINARY" ] || { log "FLIGHTDECK_BINARY=$FLIGHTDECK_BINARY is not executable"; exit 2; }
  printf '%s\n' "$FLIGHTDECK_BINARY"
  exit 0
fi

os="${RUNNER_OS:-$(uname -s)}"; arch="${RUNNER_ARCH:-$(uname -m)}"
case "$os/$arch" in
  Linux/X64|Linux/x86_64) target=x86_64-unknown-linux-musl ;;
  Linux/ARM64|Linux/aarch64|Linux/arm64) target=aarch64-unknown-linux-musl ;;
  macOS/ARM64|Darwin/arm64|Darwin/aarch64) target=aarch64-apple-darwin ;;
  macOS/X64|Darwin/x86_64) target=x86_64-apple-darwin ;;
  *) target="" ;;
esac
version="${FLIGHTDECK_VERSION:-latest}"
repo="${FLIGHTDECK_REPO:-flightdeck-dev/flightdeck}"
cache_root="${FLIGHTDECK_CACHE:-${RUNNER_TOOL_CACHE:-$HOME/.cache}}/flightdeck/$version/${target:-source}"
bin="$cache_root/flightdeck"

if [ -x "$bin" ] && [ "$version" != latest ]; then
  log "using cached $bin"
  printf '%s\n' "$bin"
  exit 0
fi
mkdir -p "$cache_root"

download() {
  [ -n "$target" ] || { log "no prebuilt binary for $os/$arch"; return 1; }
  local base
  if [ -n "${FLIGHTDECK_DOWNLOAD_BASE:-}" ]; then base="$FLIGHTDECK_DOWNLOAD_BASE"
  elif [ "$version" = latest ]; then base="https://github.com/$repo/releases/latest/download"
  else base="https://github.com/$repo/releases/download/$version"; fi
  local archive="flightdeck-$target.tar.gz" tmp
  tmp="$(mktemp -d)"
  curl -fsSL --retry 3 -o "$tmp/$archive" "$base/$archive" || { log "download of $archive failed"; return 1; }
  curl -fsSL --retry 3 -o "$tmp/$archive.sha256" "$base/$archive.sha256" || { log "download of $archive.sha256 failed"; return 1; }
  local want got
  want="$(awk '{print $1}' "$tmp/$archive.sha256")"
  if command -v sha256sum >/dev/null; then got="$(sha256sum "$tmp/$archive" | awk '{print $1}')"
  else got="$(shasum -a 256 "$tmp/$archive" | awk '{print $1}')"; fi
  if [ "$want" != "$got" ]; then
    log "checksum mismatch for $archive: expected $want, got $got"
    return 3
  fi
  tar -xzf "$tmp/$archive" -C "$cache_root" flightdeck
  chmod +x "$bin"
  log "installed $archive ($version) into $cache_root"
}

status=0
download || status=$?
if [ "$status" -eq 3 ]; then exit 3; fi
if [ "$status" -ne 0 ]; then
  if [ "${FLIGHTDECK_NO_SOURCE_FALLBACK:-0}" = 1 ]; then log "no usable release and source fallback disabled"; exit 1; fi
  src="${FLIGHTDECK_SOURCE:-$(cd "$(dirname "$0")/.." && pwd)}"
  command -v cargo >/dev/null || { log "no release binary and no cargo to build from source"; exit 1; }
  log "building from source in $src"
  # cargo install reads .cargo/config.toml from the working directory, not from $src: pass its build setting.
  AWS_LC_SYS_NO_JITTER_ENTROPY=1 cargo install --locked --quiet --path "$src" --root "$cache_root/build" >&2
  cp "$cache_root/build/bin/flightdeck" "$bin"
fi
printf '%s\n' "$bin"
