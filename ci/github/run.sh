#!/usr/bin/env bash
# The action's main step. Composite actions get no INPUT_* variables, so
# action.yml passes inputs as FD_* (see ../flightdeck-step.sh). Credentials
# from inputs are exported only when given, so ASC_* set by the workflow stay.
set -euo pipefail
mask() { # one add-mask per line, so multi-line secrets are masked whole
  while IFS= read -r line; do
    if [ "${#line}" -ge 8 ]; then printf '::add-mask::%s\n' "$line"; fi
  done <<< "$1"
}
if [ -n "${FD_IN_API_PRIVATE_KEY:-}" ]; then mask "$FD_IN_API_PRIVATE_KEY"; export ASC_PRIVATE_KEY="$FD_IN_API_PRIVATE_KEY"; fi
if [ -n "${FD_IN_API_KEY_PATH:-}" ]; then export ASC_PRIVATE_KEY_PATH="$FD_IN_API_KEY_PATH"; fi
if [ -n "${FD_IN_API_KEY_ID:-}" ]; then export ASC_KEY_ID="$FD_IN_API_KEY_ID"; fi
if [ -z "${FD_IN_API_ISSUER_ID:-}" ]; then FD_IN_API_ISSUER_ID="${FD_IN_ISSUER_ID:-}"; fi # Apple-Actions' name
if [ -n "${FD_IN_API_ISSUER_ID:-}" ]; then export ASC_ISSUER_ID="$FD_IN_API_ISSUER_ID"; fi
if [ -n "${FD_IN_RELAY_TOKEN:-}" ]; then mask "$FD_IN_RELAY_TOKEN"; export FLIGHTDECK_RELAY_TOKEN="$FD_IN_RELAY_TOKEN"; fi
unset FD_IN_RELAY_TOKEN FD_IN_API_PRIVATE_KEY FD_IN_API_KEY_PATH FD_IN_API_KEY_ID FD_IN_API_ISSUER_ID FD_IN_ISSUER_ID
exec "$(dirname "$0")/../flightdeck-step.sh"
