#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: services up, formatting, lints, then every test
# (unit, integration against real PostgreSQL/Redis/RabbitMQ, the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/services.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

# Databases left by earlier runs (each test makes its own).
psql -h 127.0.0.1 -U postgres -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'nc\_test\_%'" \
  | while read -r db; do [ -n "$db" ] && psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done

# Vhosts and agent users left by earlier runs (each test makes its own vhost).
python3 scripts/cleanup-test-broker.py

command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked

echo "== tests (parallel)"
cargo nextest run --locked --no-fail-fast -E 'not test(/disruptive/)'
echo "== tests that restart shared services (serial)"
cargo nextest run --locked --no-fail-fast --test-threads 1 -E 'test(/disruptive/)'

