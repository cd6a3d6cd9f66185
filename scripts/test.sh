#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: services up, formatting, lints, then every test
# (unit, integration against real PostgreSQL/Redis/RabbitMQ, the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/services.sh

# Headless Chromium for the browser tests (Debian's; no browser downloads).
command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
# Debian's traceroute and mtr are the references the trace tests compare with.
command -v traceroute >/dev/null 2>&1 && command -v mtr >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq traceroute mtr-tiny >/dev/null; }
# Debian's Prometheus and blackbox_exporter: /probe is scraped by the one and compared with
# the other. Their packages' services are not wanted (the tests start their own).
command -v prometheus >/dev/null 2>&1 && command -v prometheus-blackbox-exporter >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus prometheus-blackbox-exporter >/dev/null; }

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== conventions (file sizes, role boundaries)"
./scripts/check-conventions.sh

echo "== the declared minimum Rust version builds (Cargo.toml rust-version)"
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
[[ "$msrv" =~ ^[0-9]+\.[0-9]+$ ]] && msrv="$msrv.0"
rustup toolchain install "$msrv" --profile minimal >/dev/null 2>&1 || rustup toolchain install "$msrv" --profile minimal
cargo +"$msrv" check --locked --lib --bins --target-dir target/msrv

echo "== dependencies: licences, bans, sources (deny.toml)"
command -v cargo-deny >/dev/null 2>&1 || cargo install cargo-deny --locked
# Errors only: duplicate versions are warnings (deny.toml) and would fill the log.
cargo deny --locked --log-level error check bans licenses sources

echo "== container and service files"
./scripts/validate-deploy.sh

echo "== web UI: API types, type-check, lint, unit tests, build"
./scripts/build-ui.sh --check
(cd frontend && npm run --silent lint && npm run --silent test)

# Databases left by earlier runs (each test makes its own).
psql -h 127.0.0.1 -U postgres -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'nc\_test\_%'" \
  | while read -r db; do [ -n "$db" ] && psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done

# Network namespaces left by an interrupted run (tests remove their own).
for ns in $(ip netns list 2>/dev/null | awk '/^nc-t[0-9]+/ {print $1}'); do ip netns del "$ns" || true; done
rm -rf /tmp/netcheck-netns

# Vhosts and agent users left by earlier runs (each test makes its own vhost).
python3 scripts/cleanup-test-broker.py

command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked
# The SMTP server e-mail notifications are received with in the tests.
python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check aiosmtpd

echo "== tests (parallel)"
cargo nextest run --workspace --locked --no-fail-fast -E 'not test(/disruptive/)'
echo "== browser tests (headless Chromium, real binary and agent)"
(cd frontend && node tests/e2e.mjs)
echo "== bad-input campaign (schemathesis against the OpenAPI document: no 5xx)"
./scripts/fuzz-api.sh
echo "== tests that restart shared services or kill broker nodes (serial)"
# A three-node RabbitMQ cluster beside the machine's broker, removed again afterwards.
./scripts/cluster.sh up
trap './scripts/cluster.sh down' EXIT
cargo nextest run --locked --no-fail-fast --test-threads 1 -E 'test(/disruptive/)'

