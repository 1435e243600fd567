#!/usr/bin/env bash
# Bitrise step: inputs arrive as variables named like their keys.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export FLIGHTDECK_VERSION="${flightdeck_version:-latest}"
FD_BIN="$("$here/../install.sh")"
export FD_BIN
if [ -n "${api_private_key:-}" ]; then export ASC_PRIVATE_KEY="$api_private_key"; fi
if [ -n "${api_key_id:-}" ]; then export ASC_KEY_ID="$api_key_id"; fi
if [ -n "${api_issuer_id:-}" ]; then export ASC_ISSUER_ID="$api_issuer_id"; fi
if [ -n "${api_key_path:-}" ]; then
  case "$api_key_path" in
    http://*|https://*|file://*)
      key_file="$(mktemp)"
      curl -fsSL -o "$key_file" "$api_key_path"
      export ASC_PRIVATE_KEY_PATH="$key_file" ;;
    *) export ASC_PRIVATE_KEY_PATH="$api_key_path" ;;
  esac
fi
export FD_PIPELINE="${pipeline:-}"
if [ -n "${pkg_path:-}" ]; then export FD_APP_PATH="$pkg_path"; else export FD_APP_PATH="${ipa_path:-}"; fi
export FD_BUNDLE_ID="${bundle_id:-}" FD_APP_ID="${app_id:-}" FD_WAIT="${wait:-true}" FD_TIMEOUT="${timeout:-}"
export FD_GROUPS="${groups:-}" FD_WHATS_NEW="${whats_new:-}" FD_SUBMIT_FOR_REVIEW="${submit_for_review:-false}"
export FD_WEBHOOK_RELAY="${webhook_relay:-}"
if [ -n "${webhook_relay_token:-}" ]; then export FLIGHTDECK_RELAY_TOKEN="$webhook_relay_token"; fi
export FD_SKIP_IF_EXISTS="${skip_if_exists:-false}" FD_ARGS="--ci bitrise ${additional_args:-}"
status=0
"$here/../flightdeck-step.sh" || status=$?
feedback_dir="${feedback_dir:-feedback}"
if [ -d "$feedback_dir" ] && [ -n "${BITRISE_DEPLOY_DIR:-}" ]; then
  tar -czf "$BITRISE_DEPLOY_DIR/flightdeck-feedback.tar.gz" -C "$(dirname "$feedback_dir")" "$(basename "$feedback_dir")"
fi
exit "$status"
