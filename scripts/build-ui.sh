#!/usr/bin/env bash
# Builds the web UI into frontend/dist (embedded into the binary by the next cargo build).
# By default it first checks that the committed API types match the server's OpenAPI document,
# which needs a debug build of the crate. `--committed-types` skips that and builds with the
# committed types (what ./scripts/run.sh does, so a first run compiles the crate only once).
# `--check` (what scripts/test.sh runs) fails when the committed types were stale, as CI=true
# does: generated types that do not match the server would let the UI drift from the API.
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
[ "${1:-}" = "--check" ] && check=true
[ "${CI:-}" = "true" ] && check=true
if [ "${1:-}" != "--committed-types" ]; then
  cargo build --locked --quiet
  ./target/debug/netcheck openapi > frontend/src/api/openapi.json
fi
cd frontend
[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error
if [ "${1:-}" != "--committed-types" ]; then
  npx openapi-typescript src/api/openapi.json -o src/api/schema.d.ts >/dev/null
  node scripts/limits.mjs
  if ! git diff --quiet -- src/api/openapi.json src/api/schema.d.ts src/api/limits.json; then
    echo "The API changed: frontend/src/api/{openapi.json,schema.d.ts,limits.json} were regenerated; commit them." >&2
    [ "$check" = true ] && exit 1
  fi
fi
npm run --silent build
