#!/usr/bin/env bash
# The highest glibc symbol version a Linux binary needs, checked against a
# floor: the portable build must run on any Linux with glibc MAX or newer.
#   scripts/check-glibc.sh BINARY [MAX=2.17]
# Prints "BINARY needs GLIBC_x.y (max MAX)"; exits 1 above MAX, 2 on bad use.
# A static binary (no GLIBC_ symbols) passes.
set -euo pipefail
bin="${1:?usage: check-glibc.sh BINARY [MAX=2.17]}"
max="${2:-2.17}"
[ -f "$bin" ] || { echo "error: $bin: no such file" >&2; exit 2; }
if command -v objdump >/dev/null; then
  syms="$(objdump -T "$bin" 2>/dev/null || true)"
elif command -v readelf >/dev/null; then
  syms="$(readelf --dyn-syms --wide "$bin" 2>/dev/null || true)"
else
  echo "error: neither objdump nor readelf is installed (binutils)" >&2
  exit 2
fi
need="$(printf '%s\n' "$syms" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/^GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n -u | tail -n1 || true)"
if [ -z "$need" ]; then
  echo "$bin needs no glibc symbol versions (static or not glibc-linked; max $max)"
  exit 0
fi
echo "$bin needs GLIBC_$need (max $max)"
highest="$(printf '%s\n%s\n' "$need" "$max" | sort -t. -k1,1n -k2,2n -k3,3n | tail -n1)"
if [ "$highest" != "$max" ]; then
  echo "error: $bin needs GLIBC_$need, newer than $max: it will not start on older distributions" >&2
  exit 1
fi
