#!/usr/bin/env bash
# The CI step shared by the GitHub Action and the Bitrise step: turn FD_*
# inputs into a pipeline (or use the given one) and run flightdeck.
# Values reach flightdeck through ${VAR} interpolation, never through YAML
# quoting, so any character is safe.
#
#   FD_BIN              the flightdeck binary
#   FD_PIPELINE         run this pipeline file as is; else one is built from:
#   FD_APP_PATH         the .ipa / .pkg to upload
#   FD_BUNDLE_ID / FD_APP_ID
#   FD_WAIT (true)      FD_TIMEOUT  FD_POLL_INTERVAL  FD_WEBHOOK_LISTEN  FD_WEBHOOK_REGISTER
#   FD_WEBHOOK_RELAY    wait through this relay (token: FLIGHTDECK_RELAY_TOKEN); wins over LISTEN
#   FD_SKIP_IF_EXISTS   FD_GROUPS (separated by commas, newlines or |)
#   FD_WHATS_NEW  FD_LOCALE (en-US)  FD_SUBMIT_FOR_REVIEW  FD_NOTIFY
#   FD_ARGS             extra arguments for `flightdeck run`
set -euo pipefail

bin="${FD_BIN:?FD_BIN must name the flightdeck binary}"
truthy() { case "$(printf '%s' "${1:-}" | tr '[:upper:]' '[:lower:]')" in true|yes|1|on) return 0 ;; *) return 1 ;; esac; }

if [ -n "${FD_PIPELINE:-}" ]; then
  # shellcheck disable=SC2086
  exec "$bin" run --pipeline "$FD_PIPELINE" ${FD_ARGS:-}
fi
if [ -z "${FD_APP_PATH:-}" ]; then
  printf 'flightdeck: give either a pipeline file or the path of the .ipa/.pkg to upload\n' >&2
  exit 2
fi

spec="$(mktemp "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/flightdeck-step-XXXXXX.yml")"
{
  echo "version: 1"
  if [ -n "${FD_APP_ID:-}" ]; then echo 'app: { id: "${FD_APP_ID}" }'
  elif [ -n "${FD_BUNDLE_ID:-}" ]; then echo 'app: { bundle-id: "${FD_BUNDLE_ID}" }'; fi
  echo "steps:"
  echo '  - upload:'
  echo '      file: "${FD_APP_PATH}"'
  if truthy "${FD_SKIP_IF_EXISTS:-false}"; then echo '      skip-if-exists: true'; fi
  if truthy "${FD_WAIT:-true}" || [ -n "${FD_GROUPS:-}${FD_WHATS_NEW:-}" ] || truthy "${FD_SUBMIT_FOR_REVIEW:-false}"; then
    echo '  - wait:'
    echo '      timeout: "${FD_TIMEOUT:-30m}"'
    if [ -n "${FD_POLL_INTERVAL:-}" ]; then echo '      poll: { interval: "${FD_POLL_INTERVAL}" }'; fi
    if [ -n "${FD_WEBHOOK_RELAY:-}" ]; then
      echo '      webhook: { relay: "${FD_WEBHOOK_RELAY}" }'
    elif [ -n "${FD_WEBHOOK_LISTEN:-}" ]; then
      if [ -n "${FD_WEBHOOK_REGISTER:-}" ]; then
        echo '      webhook: { listen: "${FD_WEBHOOK_LISTEN}", register: "${FD_WEBHOOK_REGISTER}" }'
      else
        echo '      webhook: { listen: "${FD_WEBHOOK_LISTEN}" }'
      fi
    fi
  fi
  if [ -n "${FD_GROUPS:-}${FD_WHATS_NEW:-}" ] || truthy "${FD_SUBMIT_FOR_REVIEW:-false}" || truthy "${FD_NOTIFY:-false}"; then
    echo '  - testflight:'
    if [ -n "${FD_GROUPS:-}" ]; then
      echo '      groups:'
      i=0
      while IFS= read -r group; do
        group="$(printf '%s' "$group" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')"
        [ -n "$group" ] || continue
        i=$((i + 1))
        export "FD_GROUP_$i=$group"
        echo "        - \"\${FD_GROUP_$i}\""
      done < <(printf '%s\n' "$FD_GROUPS" | tr ',|' '\n\n')
    fi
    if [ -n "${FD_WHATS_NEW:-}" ]; then
      echo '      whats-new: "${FD_WHATS_NEW}"'
      echo '      locale: "${FD_LOCALE:-en-US}"'
    fi
    if truthy "${FD_SUBMIT_FOR_REVIEW:-false}"; then echo '      submit-for-review: true'; fi
    if truthy "${FD_NOTIFY:-false}"; then echo '      notify: true'; fi
  fi
} > "$spec"
# shellcheck disable=SC2086
exec "$bin" run --pipeline "$spec" ${FD_ARGS:-}
