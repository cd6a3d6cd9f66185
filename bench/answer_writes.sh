#!/usr/bin/env bash
# How PostgreSQL stores answers: one check's statements replayed with pgbench (the check and
# its five pending rows in one statement; the answers in two batches, each updating the result
# rows and the check row as the collector's statement does), first on the schema as migrated,
# then with the partial index `check_results_not_ok_idx (status <> 'ok')` that the schema had
# before `m20261207_000016`. Prints checks per second and how many row updates were HOT
# (in place, no index insertions). Alternates the two twice; ROUNDS, SECONDS to change.
# Needs the debug binary (`cargo build`) for the schema and pgbench (postgresql-contrib).
set -euo pipefail
cd "$(dirname "$0")/.."
psql() { command psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
now_db="nc_bench_answers_now_$$"
old_db="nc_bench_answers_old_$$"
script=$(mktemp)
trap 'rm -f "$script"; for d in $now_db $old_db; do psql -c "DROP DATABASE IF EXISTS $d WITH (FORCE)"; done' EXIT
for db in $now_db $old_db; do
  psql -c "CREATE DATABASE $db"
  NETCHECK__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db" ./target/debug/netcheck migrate >/dev/null 2>&1
  psql -d "$db" -c "INSERT INTO users (id, username, password_hash, role)
                    VALUES ('00000000-0000-0000-0000-000000000001', 'bench', 'x', 'user')"
done
psql -d "$old_db" -c "CREATE INDEX check_results_not_ok_idx ON check_results (check_id) WHERE status <> 'ok'"
# Five agents; three answer in the first batch, two in the second.
first="'00000000-0000-0000-0000-00000000000a','00000000-0000-0000-0000-00000000000b','00000000-0000-0000-0000-00000000000c'"
second="'00000000-0000-0000-0000-00000000000d','00000000-0000-0000-0000-00000000000e'"
agents="$first,$second"
answer() { # $1: agents answering, $2: how many
  cat <<SQL
WITH u AS (UPDATE check_results SET status = 'ok', started_at = now(), duration_ms = 0.3, value_ms = 0.3, data = '{"connect_ms": 0.31, "resolved_ip": "127.0.0.1", "address": "127.0.0.1:80"}', received_at = now() WHERE check_id = ':cid'::uuid AND agent_id IN ($1) AND status = 'pending' RETURNING status) UPDATE checks c SET pending = c.pending - $2, failing = c.failing + (SELECT count(*) FROM u WHERE status <> 'ok'), status = CASE WHEN c.pending - $2 <= 0 THEN 'finished' ELSE c.status END, finished_at = CASE WHEN c.pending - $2 <= 0 THEN now() ELSE c.finished_at END WHERE c.id = ':cid'::uuid AND c.status = 'in_progress';
SQL
}
{
  echo "SELECT gen_random_uuid() AS cid \\gset"
  echo "WITH c AS (INSERT INTO checks (id, user_id, type, target, options, status, created_at, deadline_at, pending) VALUES (':cid'::uuid, '00000000-0000-0000-0000-000000000001', 'tcp', '127.0.0.' || (random() * 250)::int || ':' || (random() * 60000)::int, '{\"port\": 80, \"timeout_ms\": 2000}', 'in_progress', now(), now() + interval '10 s', 5) RETURNING id) INSERT INTO check_results (check_id, agent_id, agent_name, agent_region, status) SELECT c.id, a::uuid, 'agent-' || right(a, 1), 'eu', 'pending' FROM c, unnest(ARRAY[$agents]) a;"
  answer "$first" 3
  answer "$second" 2
} > "$script"
for round in $(seq "${ROUNDS:-2}"); do
  for db in $now_db $old_db; do
    tps=$(PGOPTIONS="-c synchronous_commit=off" pgbench -h 127.0.0.1 -U postgres -n -c 4 -j 2 \
          -T "${SECONDS_EACH:-20}" -f "$script" "$db" | awk '/^tps/ {printf "%.0f", $3}')
    hot=$(psql -d "$db" -c "SELECT round(100.0 * n_tup_hot_upd / greatest(n_tup_upd, 1))
                            FROM pg_stat_user_tables WHERE relname = 'check_results'")
    size=$(psql -d "$db" -c "SELECT pg_indexes_size('check_results') / greatest(count(*), 1) FROM check_results")
    echo "round $round ${db%_$$}: $tps checks/s, answers HOT ${hot} %, results' index bytes per row $size"
  done
done
