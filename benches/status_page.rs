//! Public status pages (issue: status pages): BENCH_MONITORS monitors in the database
//! (default 10 000), each with 90 days of daily roll-ups and a day of hourly ones; a public
//! page lists 50 of them in 5 groups, with incidents. Reports the page's JSON latency
//! (p50/p95 over sequential loads, each a fresh render), 1 000 concurrent anonymous readers
//! revalidating with `If-None-Match` (304s, p50/p95/max, requests a second), and the time
//! headless Chromium takes to show all 50 monitors (when /usr/bin/chromium is there).
//!
//! Run: `cargo bench --bench status_page`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{env_or, pct, Bench};
use netcheck_proto::api::monitors::{CreateStatusPage, StatusGroup, StatusGroupMonitor};
use sea_orm::{ConnectionTrait, Statement};
use uuid::Uuid;

#[tokio::main]
async fn main() {
    let monitors = env_or("BENCH_MONITORS", 10_000) as i64;
    let readers = env_or("BENCH_READERS", 1_000) as usize;
    let bench = Bench::start(&["127.0.0.0/8"]).await;
    let user = bench.api.me().await.unwrap().id;
    let t = Instant::now();
    bench
        .db
        .execute_unprepared(&format!(
            "INSERT INTO monitors (id, user_id, name, check_type, target, options, selection,
                 interval_secs, min_failing_agents, for_runs, notify, webhook_secret, paused,
                 state, next_run_at, created_at)
             SELECT gen_random_uuid(), '{user}', 'bench-' || g, 'tcp', '127.0.0.1', '{{\"port\": 1}}',
                    '{{}}', 60, 1, 2, '[]', 'x', true, CASE WHEN g % 7 = 0 THEN 'down' ELSE 'up' END,
                    now() + interval '1 day', now()
             FROM generate_series(1, {monitors}) g;
             INSERT INTO monitor_days (monitor_id, day, runs, failing_runs)
             SELECT m.id, (now() AT TIME ZONE 'UTC')::date - k, 1440, (k * 7 + length(m.name)) % 5
             FROM monitors m, generate_series(0, 89) k;
             INSERT INTO monitor_hours (monitor_id, hour, runs, failing_runs, value_sum, value_n)
             SELECT m.id, date_trunc('hour', now()) - k * interval '1 hour', 60, k % 2, 600, 60
             FROM monitors m, generate_series(0, 23) k;"
        ))
        .await
        .unwrap();
    let ids: Vec<Uuid> = bench
        .db
        .query_all_raw(Statement::from_string(
            bench.db.get_database_backend(),
            "SELECT id FROM monitors ORDER BY name LIMIT 50",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("", "id").unwrap())
        .collect();
    // Three incidents a month on each monitor of the page.
    for id in &ids {
        bench
            .db
            .execute_unprepared(&format!(
                "INSERT INTO monitor_incidents (id, monitor_id, started_at, resolved_at, failing_agents, first_check_id)
                 SELECT gen_random_uuid(), '{id}', now() - k * interval '10 days',
                        now() - k * interval '10 days' + interval '7 minutes',
                        '[{{\"id\": \"{id}\", \"name\": \"a\", \"country_code\": \"DE\", \"city\": \"Frankfurt\", \"error_code\": \"refused\"}}]',
                        gen_random_uuid()
                 FROM generate_series(1, 9) k"
            ))
            .await
            .unwrap();
    }
    bench.db.execute_unprepared("ANALYZE").await.unwrap();
    println!(
        "{monitors} monitors × 90 days seeded in {:.1} s; the page shows 50 in 5 groups",
        t.elapsed().as_secs_f64()
    );
    let groups = ids
        .chunks(10)
        .enumerate()
        .map(|(i, chunk)| StatusGroup {
            name: format!("Group {i}"),
            monitors: chunk
                .iter()
                .map(|id| StatusGroupMonitor {
                    id: *id,
                    display_name: None,
                })
                .collect(),
        })
        .collect();
    bench
        .api
        .create_status_page(&CreateStatusPage {
            slug: "bench".into(),
            title: "Bench status".into(),
            description: None,
            public: true,
            show_targets: false,
            groups,
        })
        .await
        .unwrap();
    let url = bench.url("/api/v1/status/bench");

    // Fresh renders: each load after the instance's short render cache expired is what one
    // reader sees at worst; measured by rendering directly (the route's own function).
    let state = bench.state();
    let page = netcheck::server::status::public::find_public(&state.db, "bench")
        .await
        .unwrap()
        .unwrap();
    let mut renders = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let (p, _) =
            netcheck::server::status::public::assemble(&state.db, &page, chrono::Utc::now())
                .await
                .unwrap();
        let body = serde_json::to_vec(&p).unwrap();
        renders.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(body.len() > 10_000);
    }
    renders.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "render of the page (50 monitors × 90 days, fresh): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        pct(&renders, 0.5),
        pct(&renders, 0.95),
        renders.last().unwrap()
    );
    // Over HTTP, as a browser without a cached copy gets it.
    let mut loads = Vec::new();
    let mut size = 0;
    for _ in 0..200 {
        let t = Instant::now();
        let resp = bench.http.get(&url).send().await.unwrap();
        assert!(resp.status().is_success());
        size = resp.bytes().await.unwrap().len();
        loads.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    loads.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "GET /api/v1/status/bench ({size} bytes): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        pct(&loads, 0.5),
        pct(&loads, 0.95),
        loads.last().unwrap()
    );

    // A thousand readers at once, each revalidating its copy five times.
    let etag = bench.http.get(&url).send().await.unwrap().headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(readers)
        .build()
        .unwrap();
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let not_modified = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..readers)
        .map(|_| {
            let (client, url, etag) = (client.clone(), url.clone(), etag.clone());
            let (latencies, not_modified) = (latencies.clone(), not_modified.clone());
            tokio::spawn(async move {
                for _ in 0..5 {
                    let t = Instant::now();
                    let resp = client
                        .get(&url)
                        .header("If-None-Match", &etag)
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await
                        .unwrap();
                    if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
                        not_modified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let _ = resp.bytes().await;
                    latencies
                        .lock()
                        .unwrap()
                        .push(t.elapsed().as_secs_f64() * 1000.0);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let wall = t0.elapsed().as_secs_f64();
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{readers} concurrent readers × 5 revalidations: {} of {} answered 304, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms, {:.0} requests/s",
        not_modified.load(std::sync::atomic::Ordering::Relaxed),
        l.len(),
        pct(&l, 0.5),
        pct(&l, 0.95),
        l.last().unwrap(),
        l.len() as f64 / wall
    );

    common::page_load(
        &bench.base,
        "/status/bench",
        "ul.status-list li:nth-child(10) [data-testid=bar]:nth-child(90)",
    );
    bench.finish().await;
}
