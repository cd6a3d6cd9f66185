//! netcheck on a three-node RabbitMQ cluster with quorum queues beside the machine's single
//! classic node, in one run (issue: broker clusters). For each broker: the E2E overhead of
//! sequential TCP checks on 5 agents (p50/p99), and what is sustained at an offered rate
//! (accepted, stored, timeouts). On the cluster, then: the time from SIGKILL of a node (the one
//! the server and some agents are on) until every agent answers a new check again.
//!
//! Run: `cargo bench --bench cluster` (env BENCH_LATENCY_N, BENCH_RATE, BENCH_SECONDS). Starts
//! the cluster with `scripts/cluster.sh up` and leaves it running.

mod common;

use std::time::{Duration, Instant};

use common::{count, env_or, pct, Bench};
use netcheck::config::{QueueType, Settings};
use netcheck_proto::api::checks::CreateCheck;
use netcheck_proto::check::CheckType;
use serde_json::json;

const AGENTS: usize = 5;

fn cluster(args: &[&str]) {
    let status =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster.sh"))
            .args(args)
            .status()
            .unwrap();
    assert!(status.success(), "cluster.sh {args:?}");
}

fn on_cluster(s: &mut Settings) {
    s.amqp.urls = (1..=3)
        .map(|i| format!("amqp://guest:guest@127.0.0.1:568{i}").into())
        .collect();
    s.amqp.management_urls = (1..=3)
        .map(|i| format!("http://guest:guest@127.0.0.1:1568{i}").into())
        .collect();
    s.amqp.queue_type = QueueType::Quorum;
}

fn tcp(port: u16) -> CreateCheck {
    CreateCheck::from_options(
        CheckType::Tcp,
        "127.0.0.1",
        json!({"port": port, "timeout_ms": 2000}),
    )
    .unwrap()
}

async fn run(label: &str, on_a_cluster: bool, latency_n: usize, rate: u64, seconds: u64) {
    let bench = Bench::start_with(&["127.0.0.0/8"], |s| {
        if on_a_cluster {
            on_cluster(s);
        }
    })
    .await;
    let children = bench.spawn_agents(AGENTS).await;
    let port = common::tcp_target().await;
    let body = tcp(port);

    let mut overhead = Vec::with_capacity(latency_n);
    for _ in 0..latency_n {
        let t = Instant::now();
        let id = bench.create_check(&body).await;
        let results = bench.until_finished(id).await;
        let probe = results
            .iter()
            .filter_map(|r| r.duration_ms)
            .fold(0.0f64, f64::max);
        overhead.push(t.elapsed().as_secs_f64() * 1000.0 - probe);
    }
    overhead.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{label}: E2E overhead of {latency_n} sequential TCP checks x {AGENTS} agents: p50 {:.2} ms  p99 {:.2} ms",
        pct(&overhead, 0.5),
        pct(&overhead, 0.99)
    );

    let db = bench.db.clone();
    let finished_before = count(
        &db,
        "SELECT count(*) AS n FROM checks WHERE status = 'finished'",
    )
    .await;
    let results_before = count(&db, "SELECT count(*) AS n FROM check_results").await;
    let n = (rate * seconds) as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        tick.tick().await;
        let (api, body) = (bench.api.clone(), body.clone());
        handles.push(tokio::spawn(async move {
            api.create_check(&body).await.is_ok()
        }));
    }
    let mut accepted = 0i64;
    for h in handles {
        accepted += h.await.unwrap() as i64;
    }
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let open = count(
            &db,
            "SELECT count(*) AS n FROM checks WHERE status = 'in_progress'",
        )
        .await;
        if open == 0 || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = start.elapsed().as_secs_f64();
    let done = count(
        &db,
        "SELECT count(*) AS n FROM checks WHERE status = 'finished'",
    )
    .await
        - finished_before;
    let stored = count(
        &db,
        "SELECT count(*) AS n FROM check_results WHERE status IN ('ok','failed')",
    )
    .await
        - (results_before);
    let timeouts = count(
        &db,
        "SELECT count(*) AS n FROM check_results WHERE status = 'timeout'",
    )
    .await;
    println!(
        "{label}: offered {rate} checks/s for {seconds} s: {accepted} accepted, all finished after {took:.1} s = {:.0} checks/s sustained ({stored} answers stored, {timeouts} timeouts, {} checks finished)",
        accepted as f64 / took,
        done
    );

    if on_a_cluster {
        // The server connects to node a first; agents are spread over a, b and c.
        let agents = bench.api.agents().await.unwrap();
        let killed = Instant::now();
        cluster(&["kill", "a"]);
        let mut answered = Vec::new();
        for agent in &agents {
            let body = tcp(port).agents([agent.id]);
            let id = loop {
                match bench.api.create_check(&body).await {
                    Ok(c) => break c.id,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            bench.until_finished(id).await;
            answered.push(killed.elapsed().as_secs_f64());
        }
        let server_back = bench.state().broker.node();
        println!(
            "{label}: SIGKILL of node a -> every agent answered a new check again after {:.2} s (server now on {})",
            answered.iter().cloned().fold(0.0, f64::max),
            server_back.unwrap_or_default()
        );
        cluster(&["start", "a"]);
    }
    drop(children);
    let vhost = bench.vhost.clone();
    bench.finish().await;
    let mgmt = if on_a_cluster { 15681 } else { 15672 };
    let _ = reqwest::Client::new()
        .delete(format!("http://127.0.0.1:{mgmt}/api/vhosts/{vhost}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
}

#[tokio::main]
async fn main() {
    let latency_n = env_or("BENCH_LATENCY_N", 300) as usize;
    let rate = env_or("BENCH_RATE", 200);
    let seconds = env_or("BENCH_SECONDS", 10);
    cluster(&["up"]);
    run("single classic node", false, latency_n, rate, seconds).await;
    run("3-node quorum cluster", true, latency_n, rate, seconds).await;
}
