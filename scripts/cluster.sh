#!/usr/bin/env bash
# A three-node RabbitMQ cluster beside the machine's own broker, for tests and benchmarks of
# netcheck on a replicated broker. The pre-started node (rabbit@localhost, 5672) is left alone.
#
#   scripts/cluster.sh up          start netcheck-a/b/c@localhost (AMQP 5681-5683, management
#                                  15681-15683, guest/guest from loopback) and cluster them
#   scripts/cluster.sh kill a|b|c  SIGKILL that node's Erlang VM
#   scripts/cluster.sh start a|b|c start it again (it rejoins the cluster)
#   scripts/cluster.sh down        stop and remove all three
#
# Idempotent; prints nothing but errors. Runs as root (the nodes run as the rabbitmq user).
set -euo pipefail

base=${NETCHECK_CLUSTER_DIR:-/var/lib/netcheck-cluster}
bin=/usr/lib/rabbitmq/bin
all=(a b c)

die() { echo "cluster.sh: $*" >&2; exit 1; }

index() {
  case $1 in
    a) echo 1 ;; b) echo 2 ;; c) echo 3 ;;
    *) die "unknown node '$1' (a, b or c)" ;;
  esac
}

node_name() { echo "netcheck-$1@localhost"; }

# Runs a RabbitMQ tool as the rabbitmq user with node $1's environment. The machine's
# /etc/rabbitmq/rabbitmq.conf pins its listener to 5672, so each node has its own config file.
as_node() {
  local n=$1 i
  i=$(index "$n")
  shift
  runuser -u rabbitmq -- env \
    HOME=/var/lib/rabbitmq \
    RABBITMQ_NODENAME="$(node_name "$n")" \
    RABBITMQ_DIST_PORT="2568$i" \
    RABBITMQ_MNESIA_BASE="$base/$n/mnesia" \
    RABBITMQ_LOG_BASE="$base/$n/log" \
    RABBITMQ_PID_FILE="$base/$n/pid" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$base/$n/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$base/$n/rabbitmq.conf" \
    "$@"
}

ctl() { local n=$1; shift; as_node "$n" "$bin/rabbitmqctl" -q -n "$(node_name "$n")" "$@"; }

running() { as_node "$1" "$bin/rabbitmq-diagnostics" -q -n "$(node_name "$1")" check_running >/dev/null 2>&1; }

prepare() {
  local n=$1 i
  i=$(index "$n")
  mkdir -p "$base/$n/mnesia" "$base/$n/log"
  cat > "$base/$n/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:568$i
management.tcp.ip = 127.0.0.1
management.tcp.port = 1568$i
loopback_users.guest = true
EOF
  echo '[rabbitmq_management].' > "$base/$n/enabled_plugins"
  chown -R rabbitmq:rabbitmq "$base/$n"
}

# Waits (up to $2 seconds) until node $1 runs.
wait_running() {
  for _ in $(seq "$2"); do
    running "$1" && return 0
    sleep 1
  done
  die "node $(node_name "$1") did not start; see $base/$1/log"
}

start_node() {
  local n=$1
  running "$n" && return 0
  prepare "$n"
  as_node "$n" "$bin/rabbitmq-server" -detached >/dev/null 2>&1 || true
  wait_running "$n" 120
}

# The node names node $1 sees as running members of its cluster.
members() {
  ctl "$1" eval 'io:format("~s~n", [string:join([atom_to_list(N) || N <- rabbit_nodes:all_running()], " ")]).' 2>/dev/null | head -1
}

clustered() {
  local m
  m=$(members a) || return 1
  for n in "${all[@]}"; do
    [[ " $m " == *" $(node_name "$n") "* ]] || return 1
  done
}

up() {
  getent passwd rabbitmq >/dev/null || die "Debian's rabbitmq-server is not installed"
  if clustered 2>/dev/null; then return 0; fi
  for n in "${all[@]}"; do start_node "$n" & done
  wait
  for n in b c; do
    if [[ " $(members a) " != *" $(node_name "$n") "* ]]; then
      # join_cluster logs harmless errors about the node it just stopped: shown on failure only.
      local out
      if ! out=$(ctl "$n" stop_app 2>&1 && ctl "$n" join_cluster "$(node_name a)" 2>&1 \
        && ctl "$n" start_app 2>&1); then
        echo "$out" >&2
        die "node $(node_name "$n") could not join $(node_name a)"
      fi
    fi
  done
  for _ in $(seq 60); do
    clustered && return 0
    sleep 1
  done
  die "the three nodes did not form a cluster"
}

kill_node() {
  local n=$1 pid
  index "$n" >/dev/null
  [[ -f $base/$n/pid ]] || return 0
  pid=$(cat "$base/$n/pid")
  kill -9 "$pid" 2>/dev/null || true
  # Returns once the VM is gone, so its ports are closed.
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "node $(node_name "$n") survived SIGKILL"
}

down() {
  for n in "${all[@]}"; do
    if [[ -d $base/$n ]]; then
      ctl "$n" stop >/dev/null 2>&1 || kill_node "$n"
    fi
  done
  rm -rf "$base"
}

case ${1:-} in
  up) up ;;
  kill) [[ -n ${2:-} ]] || die "usage: cluster.sh kill a|b|c"; kill_node "$2" ;;
  start) [[ -n ${2:-} ]] || die "usage: cluster.sh start a|b|c"; start_node "$2" ;;
  down) down ;;
  *) die "usage: cluster.sh up | kill a|b|c | start a|b|c | down" ;;
esac
