#!/usr/bin/env bash
# Runs netcheck on this machine: brings up the services it needs, builds the release binary,
# and starts the server (API on http://127.0.0.1:8080) with one local agent called "local"
# that goes through RabbitMQ like any other agent.
# The first administrator is `admin`; set NETCHECK_ADMIN_PASSWORD to choose its password,
# otherwise a generated one is printed once on first start.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/services.sh
# The UI is built with the API types committed beside it (CI checks they match the server), so
# the crate is compiled once, in release mode.
./scripts/build-ui.sh --committed-types
cargo build --release --locked
exec ./target/release/netcheck server --local-agent local "$@"
