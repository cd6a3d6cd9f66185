#!/usr/bin/env bash
# Makes sure the services netcheck needs are up on this machine, idempotently:
# PostgreSQL, Redis, RabbitMQ with its management plugin and a TLS listener, and the
# `netcheck` database.
# Safe to run any number of times; each step does nothing when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[services] %s\n' "$*" >&2; }

wait_for() { # name, tries, command...
  local name=$1 tries=$2; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  log "$name did not come up"; return 1
}

# Tools the test suite's network rig uses (network namespaces, packet loss rules, openssl).
missing=()
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v ping >/dev/null 2>&1 || missing+=(iputils-ping)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# PostgreSQL
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_for PostgreSQL 30 pg_isready -h 127.0.0.1 -p 5432 -q
fi

# Redis
if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 30 redis-cli -h 127.0.0.1 -p 6379 ping
fi

# RabbitMQ's TLS listener (127.0.0.1:5671) with a CA and server certificate made here, for the
# amqps tests and for trying TLS by hand. The CA is /etc/rabbitmq/netcheck-tls/ca.pem.
tls_dir=/etc/rabbitmq/netcheck-tls
if [ ! -s "$tls_dir/server.pem" ] || ! openssl x509 -checkend 86400 -noout -in "$tls_dir/server.pem" >/dev/null 2>&1; then
  log "making a CA and a broker certificate in $tls_dir"
  mkdir -p "$tls_dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=netcheck test CA" -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$tls_dir/server.key" -out "$tls_dir/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$tls_dir/server.ext"
  openssl x509 -req -in "$tls_dir/server.csr" -CA "$tls_dir/ca.pem" -CAkey "$tls_dir/ca.key" \
    -CAcreateserial -days 825 -extfile "$tls_dir/server.ext" -out "$tls_dir/server.pem" 2>/dev/null
  chgrp rabbitmq "$tls_dir"/server.key 2>/dev/null || true
  chmod 0640 "$tls_dir"/server.key "$tls_dir"/ca.key
  chmod 0644 "$tls_dir"/ca.pem "$tls_dir"/server.pem
  rm -f "$tls_dir/server.csr" "$tls_dir/server.ext"
  tls_changed=1
fi
conf=/etc/rabbitmq/rabbitmq.conf
if ! grep -q '^listeners.ssl.default' "$conf" 2>/dev/null; then
  log "adding a TLS listener on 127.0.0.1:5671 to $conf"
  cat >> "$conf" <<CONF
# Added by netcheck's scripts/services.sh: AMQP over TLS with a locally made CA.
listeners.ssl.default = 127.0.0.1:5671
ssl_options.cacertfile = $tls_dir/ca.pem
ssl_options.certfile = $tls_dir/server.pem
ssl_options.keyfile = $tls_dir/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
  tls_changed=1
fi
# Messages over 256 KiB (the server's own limit for a result; real ones are a few KB) are
# refused by the broker itself, so an agent's credentials cannot push large messages at the
# server.
if ! grep -qx 'max_message_size = 262144' "$conf" 2>/dev/null; then
  log "limiting messages to 256 KiB in $conf"
  sed -i '/^max_message_size/d; /^# Added by netcheck: no message over/d' "$conf"
  printf '# Added by netcheck: no message over 256 KiB.\nmax_message_size = 262144\n' >> "$conf"
  tls_changed=1
fi
# Listeners and limits are read at node start: restart a running broker that lacks them.
if [ -n "${tls_changed:-}" ] && rabbitmq-diagnostics -q check_running >/dev/null 2>&1; then
  log "restarting RabbitMQ for its new settings"
  rabbitmqctl -q stop >/dev/null 2>&1 || true
  for _ in $(seq 60); do rabbitmq-diagnostics -q check_running >/dev/null 2>&1 || break; sleep 1; done
fi

# RabbitMQ
if ! rabbitmq-diagnostics -q check_running >/dev/null 2>&1; then
  log "starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_for RabbitMQ 90 rabbitmq-diagnostics -q check_running
fi
if ! rabbitmq-plugins list -e -m 2>/dev/null | grep -qx rabbitmq_management; then
  log "enabling the RabbitMQ management plugin"
  rabbitmq-plugins enable rabbitmq_management >/dev/null
fi
wait_for "RabbitMQ management API" 60 curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview
wait_for "RabbitMQ TLS listener" 30 openssl s_client -connect 127.0.0.1:5671 -CAfile "$tls_dir/ca.pem" \
  -verify_return_error -brief </dev/null

# The default database of `netcheck server`.
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'netcheck'" | grep -q 1; then
  log "creating database netcheck"
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE netcheck"
fi
./scripts/geoip.sh
log "PostgreSQL, Redis and RabbitMQ (with management API) are ready"
