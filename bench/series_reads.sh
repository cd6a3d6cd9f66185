#!/usr/bin/env bash
# Bounded reads: a day of one 10 s monitor on one agent (8 640 runs) whose results are 100 KB
# each (hard-to-compress text in `data`, as a server answering 100 KB of headers would give),
# then the monitor-series query before this round (every row with its `data`, parsed by the
# server) and after (one `value_ms` per run, grouped to at most 1 000 points). Prints what
# PostgreSQL read (shared buffers, including TOAST) and the bytes each query hands the server.
# Needs the debug binary (`cargo build`) for the schema; makes and drops its own database.
set -euo pipefail
cd "$(dirname "$0")/.."
db="nc_bench_series_$$"
psql() { command psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
psql -c "CREATE DATABASE $db"
trap 'psql -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
NETCHECK__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db" ./target/debug/netcheck migrate >/dev/null 2>&1
RUNS=${RUNS:-8640} KB=${KB:-100}
psql -d "$db" <<SQL
INSERT INTO users (id, username, password_hash, role, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'bench', 'x', 'user', now(), now());
INSERT INTO monitors (id, user_id, name, check_type, target, options, selection, interval_secs,
                      min_failing_agents, for_runs, notify, webhook_secret, paused, state,
                      failing_runs, next_run_at, created_at)
VALUES ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'big',
        'http', 'https://example.com/', '{}', '{}', 10, 1, 1, '[]', 'x', true, 'paused', 0,
        now(), now());
WITH c AS (
  INSERT INTO checks (id, user_id, type, target, options, status, created_at, deadline_at,
                      pending, monitor_id)
  SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'http',
         'https://example.com/', '{}', 'finished', now() - make_interval(secs => g * 10), now(), 0,
         '00000000-0000-0000-0000-00000000000a'
  FROM generate_series(1, $RUNS) g RETURNING id)
INSERT INTO check_results (check_id, agent_id, agent_name, status, duration_ms, value_ms, data)
SELECT c.id, '00000000-0000-0000-0000-0000000000a1', 'a1', 'ok', 40, 35,
       jsonb_build_object('type', 'http', 'status_code', 200,
         'timings_ms', jsonb_build_object('total', 35),
         'headers', jsonb_build_object('x-big',
           (SELECT string_agg(md5(random()::text || g::text || c.id::text), '')
            FROM generate_series(1, $KB * 1024 / 32) g)))
FROM c;
ANALYZE;
SQL
range="c.monitor_id = '00000000-0000-0000-0000-00000000000a' AND c.created_at >= now() - interval '24 hours' AND c.created_at < now() AND r.status <> 'pending'"
before="SELECT c.created_at, r.agent_id, r.agent_name, r.status, r.duration_ms, r.data
  FROM checks c JOIN check_results r ON r.check_id = c.id WHERE $range ORDER BY c.id"
after="SELECT min(created_at), agent_id, (array_agg(status ORDER BY status = 'ok'))[1], avg(value_ms)
  FROM (SELECT c.created_at, r.agent_id, r.status, r.value_ms,
               (row_number() OVER (PARTITION BY r.agent_id ORDER BY c.id) - 1) * 1000
                 / count(*) OVER (PARTITION BY r.agent_id) AS grp
        FROM checks c JOIN check_results r ON r.check_id = c.id WHERE $range) runs
  GROUP BY agent_id, grp"
blocks() {
  psql -d "$db" -c "SELECT sum(heap_blks_hit + heap_blks_read + coalesce(toast_blks_hit, 0)
    + coalesce(toast_blks_read, 0) + coalesce(idx_blks_hit, 0) + coalesce(idx_blks_read, 0))
    FROM pg_statio_user_tables"
}
report() { # name, query: runs it as the server would (every row fetched), then the figures
  local b0 b1 t0 t1 rows bytes
  b0=$(blocks)
  t0=$(date +%s%N)
  psql -d "$db" -c "$2; SELECT pg_stat_force_next_flush()" >/dev/null
  t1=$(date +%s%N)
  b1=$(blocks)
  rows=$(psql -d "$db" -c "SELECT count(*) FROM ($2) q")
  bytes=$(psql -d "$db" -c "SELECT coalesce(sum(octet_length(q::text)), 0) FROM ($2) q")
  printf '%-7s %6d rows, %9.1f MB handed to the server; %9.1f MB of blocks read (heap, TOAST, index); %8.0f ms\n' \
    "$1" "$rows" "$(echo "$bytes/1000000" | bc -l)" "$(echo "($b1-$b0)*8192/1000000" | bc -l)" \
    "$(echo "($t1-$t0)/1000000" | bc -l)"
}
echo "series of one agent over 24 h: $RUNS runs of ${KB} KB results"
report before "$before"
report after "$after"
