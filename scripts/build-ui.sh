#!/usr/bin/env bash
# Builds the web UI into frontend/dist (embedded into the binary by the next cargo build).
# Checks first that the committed API types match the server's OpenAPI document.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet
./target/debug/netcheck openapi > frontend/src/api/openapi.json
cd frontend
[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error
npx openapi-typescript src/api/openapi.json -o src/api/schema.d.ts >/dev/null
if ! git diff --quiet -- src/api/openapi.json src/api/schema.d.ts; then
  echo "The API changed: frontend/src/api/{openapi.json,schema.d.ts} were regenerated; commit them." >&2
  [ "${CI:-}" = "true" ] && exit 1
fi
npm run --silent build
