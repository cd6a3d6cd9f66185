//! History search over a large store (issue: results that judge, travel and can be found).
//!
//! Fills a fresh database with BENCH_CHECKS checks (default 1 000 000) of one user, three
//! results each, spread over 30 days, four types, 5 000 targets, 20 agents, ~10 % failing and
//! 2 % run by monitors; then asks the real server for filtered history pages (limit 20, as the
//! UI does) and reports p50/p95 per filter. Also times one pruning batch (`checks.
//! retention_days`).
//!
//! Run: `cargo bench --bench history` (env BENCH_CHECKS, BENCH_N requests per filter, 200).

mod common;

use std::time::Instant;

use common::{env_or, pct, Bench};
use netcheck_proto::api::checks::{HistoryQuery, OutcomeFilter};
use netcheck_proto::check::CheckType;
use sea_orm::{ConnectionTrait, Statement};

#[tokio::main]
async fn main() {
    let checks = env_or("BENCH_CHECKS", 1_000_000) as i64;
    let n = env_or("BENCH_N", 200) as usize;
    let bench = Bench::start_with(&["127.0.0.0/8"], |s| s.checks.retention_days = 20).await;
    let user = bench.api.me().await.unwrap().id;
    let db = &bench.db;

    let t = Instant::now();
    // Ids are UUIDv7 built from the creation time (so they sort by time, as real ones do).
    let fill = format!(
        "
CREATE TEMP TABLE bench_agents AS
  SELECT gen_random_uuid() AS id, 'agent-' || g AS name, g FROM generate_series(0, 19) g;
CREATE TEMP TABLE bench_ids AS
  SELECT g, at, (lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0') || '7'
                 || lpad(to_hex(g % 4096), 3, '0') || '8' || lpad(to_hex(g), 15, '0'))::uuid AS id
  FROM (SELECT g, now() - (g::double precision / {checks} * interval '30 days') AS at
        FROM generate_series(1, {checks}) g) x;
INSERT INTO monitors (id, user_id, name, check_type, target, options, selection, interval_secs,
                      min_failing_agents, for_runs, notify, webhook_secret, paused, state,
                      next_run_at, created_at)
SELECT ('00000000-0000-7000-8000-0000000000' || lpad(k::text, 2, '0'))::uuid, '{user}', 'bench ' || k,
       'tcp', 'host', '{{}}', '{{}}', 60, 1, 1, '[]', 'x', true, 'paused', now(), now()
FROM generate_series(0, 6) k;
INSERT INTO checks (id, user_id, type, target, options, status, created_at, deadline_at, finished_at, pending, monitor_id, failing)
SELECT id, '{user}',
       (ARRAY['ping', 'tcp', 'http', 'dns'])[1 + g % 4],
       CASE WHEN g % 4 = 2 THEN 'https://host-' || (g % 5000) || '.example.com/' ELSE 'host-' || (g % 5000) || '.example.com' END,
       CASE WHEN g % 4 = 1 THEN '{{\"port\": 443}}' ELSE '{{}}' END::jsonb, 'finished', at, at, at, 0,
       CASE WHEN g % 50 = 0 THEN ('00000000-0000-7000-8000-0000000000' || lpad((g % 7)::text, 2, '0'))::uuid END,
       CASE WHEN g % 10 = 0 THEN 1 ELSE 0 END
FROM bench_ids;
INSERT INTO check_results (check_id, agent_id, agent_name, status)
SELECT b.id, a.id, a.name, CASE WHEN b.g % 10 = 0 AND k = 0 THEN 'failed' ELSE 'ok' END
FROM bench_ids b
CROSS JOIN generate_series(0, 2) k
JOIN bench_agents a ON a.g = (b.g % 7 + k * 7) % 20;
ANALYZE checks; ANALYZE check_results;"
    );
    db.execute_unprepared(&fill).await.unwrap();
    let rows = |sql: &str| {
        let sql = sql.to_string();
        async move {
            db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap()
        }
    };
    println!(
        "filled {} checks, {} results in {:.0} s",
        rows("SELECT count(*) AS n FROM checks").await,
        rows("SELECT count(*) AS n FROM check_results").await,
        t.elapsed().as_secs_f64()
    );
    let agent = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT agent_id::text AS id FROM check_results LIMIT 1".to_string(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "id")
        .unwrap();
    let week_ago = chrono::Utc::now() - chrono::Duration::days(7);
    let q = || HistoryQuery {
        limit: Some(20),
        ..Default::default()
    };
    let filters = [
        ("none", q()),
        (
            "type",
            HistoryQuery {
                check_type: Some(CheckType::Dns),
                ..q()
            },
        ),
        (
            "target (common)",
            HistoryQuery {
                target: Some("example.com".into()),
                ..q()
            },
        ),
        (
            "target (rare)",
            HistoryQuery {
                target: Some("host-4321.".into()),
                ..q()
            },
        ),
        (
            "status=failed",
            HistoryQuery {
                status: Some(OutcomeFilter::Failed),
                ..q()
            },
        ),
        (
            "status=ok",
            HistoryQuery {
                status: Some(OutcomeFilter::Ok),
                ..q()
            },
        ),
        (
            "agent",
            HistoryQuery {
                agent: Some(agent.clone()),
                ..q()
            },
        ),
        (
            "monitor",
            HistoryQuery {
                monitor: Some("00000000-0000-7000-8000-000000000003".parse().unwrap()),
                ..q()
            },
        ),
        (
            "since 7 days",
            HistoryQuery {
                since: Some(week_ago),
                ..q()
            },
        ),
        (
            "type+status+since",
            HistoryQuery {
                check_type: Some(CheckType::Http),
                status: Some(OutcomeFilter::Failed),
                since: Some(week_ago),
                ..q()
            },
        ),
        (
            // No DNS check of the fill fails: the page has to look at every one of them.
            "type=dns+status=failed (none)",
            HistoryQuery {
                check_type: Some(CheckType::Dns),
                status: Some(OutcomeFilter::Failed),
                ..q()
            },
        ),
        (
            "target+agent",
            HistoryQuery {
                target: Some("host-12".into()),
                agent: Some(agent.clone()),
                ..q()
            },
        ),
    ];
    println!("GET /api/v1/checks?limit=20&… over {checks} checks, {n} requests each (ms):");
    for (name, query) in filters {
        let mut times = Vec::with_capacity(n);
        let mut found = 0;
        // A filter that has to search takes seconds a request: 10 s of them say enough.
        let budget = Instant::now() + std::time::Duration::from_secs(10);
        for _ in 0..n {
            if Instant::now() > budget {
                break;
            }
            let t = Instant::now();
            let page = bench.api.history(&query).await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            found = page.checks.len();
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "  {name:<20} p50 {:>7.2}  p95 {:>7.2}  max {:>7.2}  ({found} on the page, {} requests)",
            pct(&times, 0.5),
            pct(&times, 0.95),
            times.last().unwrap(),
            times.len()
        );
    }
    // One pruning batch, as the retention task runs it (checks older than 20 days here).
    let t = Instant::now();
    let pruned = netcheck::server::checks::prune_old(bench.state())
        .await
        .unwrap();
    println!(
        "one pruning batch: {pruned} checks (with their results) in {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    bench.finish().await;
}
