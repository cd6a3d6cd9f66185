//! Monitors at scale (issue: monitors): BENCH_MONITORS monitors (default 10 000) at a 60 s
//! interval, phases spread over the first minute, run by the real server against a loopback
//! TCP target from 5 real agents for BENCH_SECONDS (default 300). Reports the scheduler's lag
//! (run created − due) p50/p99/max, runs missed or doubled per monitor, server CPU and RSS, and
//! the monitors list API p95 with all of them in the table, and the Monitors page's load time
//! in headless Chromium (when /usr/bin/chromium is there).
//!
//! Run: `cargo bench --bench monitors`.

mod common;

use netcheck_proto::api::monitors::{MonitorQuery, MonitorState};
use std::time::{Duration, Instant};

use common::{env_or, pct, Bench};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

#[tokio::main]
async fn main() {
    let monitors = env_or("BENCH_MONITORS", 10_000) as i64;
    let seconds = env_or("BENCH_SECONDS", 300) as i64;
    let bench = Bench::start(&["127.0.0.0/8"]).await;
    let _agents = bench.spawn_agents(5).await;
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let _ = target.accept().await;
        }
    });
    let user = bench.api.me().await.unwrap().id;
    let options = json!({"port": port, "timeout_ms": 1000});
    // Due times spread over the first minute from now (as monitors created over time are).
    let start = chrono::Utc::now() + chrono::Duration::seconds(5);
    bench
        .db
        .execute_unprepared(&format!(
            "INSERT INTO monitors (id, user_id, name, check_type, target, options, selection,
                 interval_secs, min_failing_agents, for_runs, notify, webhook_secret, paused,
                 state, next_run_at, created_at)
             SELECT gen_random_uuid(), '{user}', 'bench-' || g, 'tcp', '127.0.0.1', '{options}',
                    '{{}}', 60, 1, 2, '[]', 'x', false, 'pending',
                    '{start}'::timestamptz + ((g - 1) * 60000 / {monitors}) * interval '1 millisecond', now()
             FROM generate_series(1, {monitors}) g",
            start = start.to_rfc3339()
        ))
        .await
        .unwrap();
    let pid = std::process::id();
    let (cpu0, t0) = (common::cpu_secs(pid), Instant::now());
    println!("{monitors} monitors every 60 s from 5 agents for {seconds} s …");
    tokio::time::sleep(Duration::from_secs(5 + seconds as u64)).await;
    let cpu = common::cpu_secs(pid) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let rss = common::rss_kib(pid);
    // Each monitor's k-th run is due at its first due time + k minutes.
    let lag_rows = bench
        .db
        .query_all_raw(Statement::from_string(
            bench.db.get_database_backend(),
            format!(
                "WITH runs AS (
                   SELECT c.monitor_id, c.created_at,
                          row_number() OVER (PARTITION BY c.monitor_id ORDER BY c.id) - 1 AS k
                   FROM checks c WHERE c.monitor_id IS NOT NULL)
                 SELECT (extract(epoch FROM r.created_at - ('{start}'::timestamptz
                            + (((substr(m.name, 7)::int - 1) * 60000 / {monitors}) * interval '1 millisecond')
                            + r.k * interval '60 seconds')) * 1000)::float8 AS lag_ms
                 FROM runs r JOIN monitors m ON m.id = r.monitor_id",
                start = start.to_rfc3339()
            ),
        ))
        .await
        .unwrap();
    let mut lags: Vec<f64> = lag_rows
        .iter()
        .map(|r| r.try_get::<f64>("", "lag_ms").unwrap())
        .collect();
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let expected_runs = |elapsed: i64| elapsed / 60 + 1;
    let counts = bench
        .db
        .query_all_raw(Statement::from_string(
            bench.db.get_database_backend(),
            format!(
                "SELECT count(c.id) AS n, (substr(m.name, 7)::int - 1) * 60000 / {monitors} AS offset_ms
                 FROM monitors m LEFT JOIN checks c ON c.monitor_id = m.id
                   AND c.created_at < '{end}'::timestamptz
                 GROUP BY m.id, m.name",
                end = (start + chrono::Duration::seconds(seconds)).to_rfc3339()
            ),
        ))
        .await
        .unwrap();
    let (mut missed, mut doubled) = (0i64, 0i64);
    for r in &counts {
        let n: i64 = r.try_get("", "n").unwrap();
        let offset_ms: i32 = r.try_get("", "offset_ms").unwrap();
        // Runs due before the window's end.
        let want = expected_runs((seconds * 1000 - offset_ms as i64 - 1).max(0) / 1000);
        if n < want - 1 {
            missed += want - 1 - n;
        }
        if n > want {
            doubled += n - want;
        }
    }
    let results = common::count(&bench.db, "SELECT count(*) AS n FROM check_results r JOIN checks c ON c.id = r.check_id WHERE c.monitor_id IS NOT NULL AND r.status = 'ok'").await;
    println!(
        "runs: {} (lag p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms); missed {missed}, doubled {doubled}; ok results {results}",
        lags.len(),
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        lags.last().copied().unwrap_or(0.0)
    );
    println!(
        "server process (server + bench client): CPU {:.0} % of one core, RSS {} MiB",
        100.0 * cpu / wall,
        rss / 1024
    );
    let mut times = Vec::new();
    for i in 0..100 {
        let q = MonitorQuery {
            limit: Some(50),
            ..if i % 2 == 0 {
                MonitorQuery::default()
            } else {
                MonitorQuery {
                    q: Some("bench-77".into()),
                    state: Some(MonitorState::Up),
                    ..Default::default()
                }
            }
        };
        let t = Instant::now();
        let page = bench.api.monitors(&q).await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(page.monitors.len() <= 50);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "GET /api/v1/monitors (50 per page, with and without filters) at {monitors}: p50 {:.1} ms, p95 {:.1} ms",
        pct(&times, 0.5),
        pct(&times, 0.95)
    );
    // The Monitors page as a browser shows it (the binary embeds the UI when it was built).
    common::page_load(
        &bench.base,
        "/monitors",
        "table[data-testid=monitors] tbody tr",
    );
    bench.finish().await;
}
