//! Choosing agents among many (issue: choose agents by place, network and label).
//!
//! The real server with five real agent processes, then 995 more agent rows kept online by
//! simulated heartbeats (the same PostgreSQL and Redis writes a heartbeat makes, each agent
//! every `heartbeat_interval_secs`). Measures:
//! 1. POST /api/v1/checks → 202, sequentially, for the same selections with 5 agents in the
//!    table and with 1 000 (p50/p90/p99; the agent cache is re-read every `agents.cache_ms`
//!    while the heartbeats run, as in production);
//! 2. the selection itself, in process: building the index of the table (once per cache
//!    refresh) and choosing (per check), for 1 000 and 10 000 agents.
//!
//! Run: `cargo bench --bench selection` (env BENCH_N: POSTs per selection, default 400).

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{env_or, pct, Bench};
use netcheck::server::agents::{member, Model};
use netcheck::server::selection::{choose, Fleet};
use netcheck_proto::api::agents::{AgentStatus, UpdateAgent};
use netcheck_proto::api::checks::CreateCheck;
use netcheck_proto::api::{AgentSelection, FixedLocation};
use netcheck_proto::check::CheckType;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use uuid::Uuid;

const COUNTRIES: [&str; 30] = [
    "DE", "US", "FR", "GB", "NL", "SE", "PL", "IT", "ES", "BR", "AR", "CA", "MX", "JP", "KR", "SG",
    "IN", "AU", "NZ", "ZA", "NG", "KE", "EG", "TR", "UA", "FI", "NO", "CH", "AT", "CZ",
];

/// A plausible place for fake agent `i`: skewed towards the first countries, three cities and
/// five networks per country.
fn place(i: usize) -> (String, String, u32) {
    let c = (i * i + 7 * i) % COUNTRIES.len() % (1 + i % COUNTRIES.len());
    let country = COUNTRIES[c].to_string();
    let city = format!("{country}-city-{}", i % 3);
    let asn = 64_512 + (c * 5 + i % 5) as u32;
    (country, city, asn)
}

/// The first two pick the five live agents in both phases (same work after the 202, so the
/// comparison is fair); the others pick among all 1 000 in the second phase.
fn selections() -> Vec<(&'static str, Value)> {
    vec![
        (
            "label live x5",
            json!({"locations": [{"label": "live", "limit": 5}]}),
        ),
        (
            "5 by name",
            json!({"agents": ["bench-0", "bench-1", "bench-2", "bench-3", "bench-4"]}),
        ),
        ("limit 5", json!({"limit": 5})),
        (
            "DE x2 + US x2",
            json!({"locations": [{"country": "DE", "limit": 2}, {"country": "US", "limit": 2}]}),
        ),
        (
            "label edge x3",
            json!({"locations": [{"label": "edge", "limit": 3}]}),
        ),
    ]
}

async fn post_latency(bench: &Bench, body: &CreateCheck, n: usize) -> Vec<f64> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        bench.create_check(body).await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times
}

/// Inserts `n` registered agent rows with places and labels; their ids.
async fn insert_fleet(bench: &Bench, n: usize) -> Vec<Uuid> {
    let rows: Vec<Value> = (0..n)
        .map(|i| {
            let (country, city, asn) = place(i);
            let id = Uuid::now_v7();
            json!({
                "id": id, "name": format!("fleet-{i}"),
                "labels": if i % 4 == 0 { json!(["edge"]) } else { json!(["core"]) },
                "token_id": format!("bench{i}"), "broker_user": format!("agent-{id}"),
                "fixed_location": {"country_code": country, "city": city, "asn": asn},
            })
        })
        .collect();
    let db = &bench.db;
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO agents (id, name, labels, token_id, token_hash, broker_user, created_at,
                             registered_at, last_seen_at, capabilities, fixed_location)
         SELECT id, name, labels, token_id, '\\x00'::bytea, broker_user, now(), now(), now(),
                '[\"tcp\"]'::jsonb, fixed_location
         FROM jsonb_to_recordset($1) AS x(id uuid, name text, labels jsonb, token_id text,
                                           broker_user text, fixed_location jsonb)",
        [Value::Array(rows.clone()).into()],
    ))
    .await
    .unwrap();
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

const HEARTBEAT_SECS: u64 = 10;

/// Keeps the fake agents online with heartbeat-shaped writes: every 100 ms, a hundredth of
/// them (each agent every [`HEARTBEAT_SECS`]), one UPDATE and one ZADD each.
fn simulate_heartbeats(bench: &Bench, ids: Vec<Uuid>) -> tokio::task::JoinHandle<()> {
    let db = bench.db.clone();
    let redis = bench.state().redis.clone();
    let key = format!(
        "{}:agents:last_seen",
        bench.state().settings.redis.key_prefix
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let slots = (HEARTBEAT_SECS * 10) as usize;
        for slot in (0..slots).cycle() {
            tick.tick().await;
            for id in ids.iter().skip(slot).step_by(slots) {
                let _ = db
                    .execute_raw(Statement::from_sql_and_values(
                        db.get_database_backend(),
                        "UPDATE agents SET last_seen_at = now() WHERE id = $1",
                        [(*id).into()],
                    ))
                    .await;
                if let Ok(mut conn) = redis.get().await {
                    let _: Result<(), _> = deadpool_redis::redis::cmd("ZADD")
                        .arg(&key)
                        .arg(Utc::now().timestamp_millis())
                        .arg(id.to_string())
                        .query_async(&mut conn)
                        .await;
                }
            }
        }
    })
}

/// Microseconds per call of `f`, over enough calls to take about 300 ms.
fn per_call_us(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    let mut n = 0u32;
    while t.elapsed() < Duration::from_millis(300) {
        f();
        n += 1;
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// The cost of indexing `models` and of each selection against them, printed as a table row.
fn selection_cost(label: &str, models: Vec<Model>) {
    let index = || Fleet::new(Utc::now(), models.iter().map(member));
    let index_us = per_call_us(|| {
        std::hint::black_box(index());
    });
    let fleet = index();
    print!("  {label:<14} index {index_us:>8.1} us");
    let mut seed = 0u64;
    for (name, sel) in selections().into_iter().chain([
        ("every agent", json!({})),
        ("limit 500", json!({"limit": 500})),
    ]) {
        let sel: AgentSelection = serde_json::from_value(sel).unwrap();
        let us = per_call_us(|| {
            seed += 1;
            let c = choose(&fleet, &sel, None, HEARTBEAT_SECS, seed).unwrap();
            std::hint::black_box(c);
        });
        print!(" | {name} {us:.1} us");
    }
    println!();
}

#[tokio::main]
async fn main() {
    let n = env_or("BENCH_N", 400) as usize;
    // The default heartbeat interval: 1 000 agents make 100 heartbeats a second.
    let bench = Bench::start_with(&["127.0.0.0/8"], |s| {
        s.agents.heartbeat_interval_secs = HEARTBEAT_SECS
    })
    .await;
    let _agents = bench.spawn_agents(5).await;
    // The five real agents, in five countries; two carry the `edge` label.
    let live = bench.api.agents().await.unwrap();
    for (i, a) in live.iter().enumerate() {
        let (country, city, asn) = place(i);
        let labels = if i < 2 {
            ["edge", "live"]
        } else {
            ["core", "live"]
        };
        let body = UpdateAgent {
            labels: Some(labels.map(String::from).to_vec()),
            location: Some(Some(FixedLocation {
                country_code: if i == 1 { "US".into() } else { country },
                city: Some(city.to_string()),
                lat: None,
                lon: None,
                asn: Some(asn),
                network: None,
            })),
            ..Default::default()
        };
        bench.api.update_agent(a.id, &body).await.unwrap();
    }
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let _ = target.accept().await;
        }
    });
    let check = |sel: &Value| CreateCheck {
        selection: serde_json::from_value(sel.clone()).unwrap(),
        ..CreateCheck::from_options(
            CheckType::Tcp,
            "127.0.0.1",
            json!({"port": port, "timeout_ms": 1000}),
        )
        .unwrap()
    };

    let mut before = Vec::new();
    for (name, sel) in selections() {
        post_latency(&bench, &check(&sel), 100).await; // warm-up
        before.push((name, post_latency(&bench, &check(&sel), n).await));
    }
    let ids = insert_fleet(&bench, 995).await;
    let heartbeats = simulate_heartbeats(&bench, ids);
    bench.state().directory.invalidate();
    // Let the table settle (statistics, the first heartbeats) before measuring.
    bench.db.execute_unprepared("ANALYZE agents").await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let online = bench.api.agents().await.unwrap();
    let online = online
        .iter()
        .filter(|a| a.status == AgentStatus::Online)
        .count();
    println!("POST /api/v1/checks -> 202, {n} sequential per selection (ms):");
    println!(
        "  {:<16} {:>26} | {:>26} | p50 delta",
        "selection",
        "5 agents p50/p90/p99",
        format!("{online} online p50/p90/p99")
    );
    for (name, sel) in selections() {
        post_latency(&bench, &check(&sel), 100).await; // warm-up
        let after = post_latency(&bench, &check(&sel), n).await;
        let b = &before.iter().find(|(x, _)| *x == name).unwrap().1;
        println!(
            "  {name:<16} {:>8.2} {:>8.2} {:>8.2} | {:>8.2} {:>8.2} {:>8.2} | {:+.2}",
            pct(b, 0.5),
            pct(b, 0.9),
            pct(b, 0.99),
            pct(&after, 0.5),
            pct(&after, 0.9),
            pct(&after, 0.99),
            pct(&after, 0.5) - pct(b, 0.5)
        );
    }
    heartbeats.abort();

    println!("selection in process (index: once per cache refresh; choose: per check):");
    let rows = bench.state().directory.reload(&bench.db).await.unwrap();
    selection_cost("1 000 agents", rows.agents.as_ref().clone());
    let mut template = rows.agents.as_ref().clone();
    // The live agents first, so the copies' first five are they.
    template.sort_by_key(|m| !m.name.starts_with("bench-"));
    let big: Vec<Model> = (0..10_000)
        .map(|i| {
            let mut m = template[i % template.len()].clone();
            m.id = Uuid::now_v7();
            // The five live agents keep their names (the by-name selection finds them).
            if i >= 5 {
                m.name = format!("big-{i}");
            }
            m.last_seen_at = Some(Utc::now());
            m.registered_at = Some(Utc::now());
            let (country, city, asn) = place(i);
            m.fixed_location = Some(json!({"country_code": country, "city": city, "asn": asn}));
            m
        })
        .collect();
    selection_cost("10 000 agents", big);
    bench.finish().await;
}
