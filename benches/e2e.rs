//! End-to-end check pipeline benchmark (issue: checks end to end).
//!
//! Starts the real server (in this process) against the local PostgreSQL, Redis and RabbitMQ,
//! five real `netcheck agent` processes and a TCP target on loopback, then measures:
//! 1. latency: POST /api/v1/checks → `finished` event, sequentially, for TCP checks to the
//!    local port (p50/p90/p99, and the overhead above the probe's own connect time);
//! 2. throughput: checks created at a fixed offered rate for a fixed time; then every result
//!    must be stored exactly once (nothing lost, nothing timed out).
//!
//! Run: `cargo bench --bench e2e` (env BENCH_LATENCY_N, BENCH_RATE, BENCH_SECONDS).

mod common;

use std::time::{Duration, Instant};

use common::{count, cpu_secs, env_or, pct, rss_kib, sh, Bench};
use netcheck::client::api::Api;
use netcheck::proto::api::checks::CreateCheck;
use netcheck::proto::check::CheckType;
use serde_json::json;

/// Creates a check in a task of its own; whether it was accepted (202).
fn fire(api: &Api, body: &CreateCheck) -> tokio::task::JoinHandle<bool> {
    let (api, body) = (api.clone(), body.clone());
    tokio::spawn(async move { api.create_check(&body).await.is_ok() })
}

fn tcp(port: u16) -> CreateCheck {
    CreateCheck::new(CheckType::Tcp, "127.0.0.1").options(json!({"port": port, "timeout_ms": 2000}))
}

const AGENTS: usize = 5;

#[tokio::main]
async fn main() {
    let latency_n = env_or("BENCH_LATENCY_N", 300) as usize;
    let rate = env_or("BENCH_RATE", 500);
    let seconds = env_or("BENCH_SECONDS", 10);

    let bench = Bench::start(&["127.0.0.0/8", "10.213.250.0/30"]).await;
    let children = bench.spawn_agents(AGENTS).await;
    let base = bench.base.clone();
    let api = bench.api.clone();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fresh: Vec<u64> = children.iter().map(|c| rss_kib(c.id())).collect();
    println!(
        "agent RSS idle, registered and connected: min {} KiB, max {} KiB",
        fresh.iter().min().unwrap(),
        fresh.iter().max().unwrap()
    );
    let port = common::tcp_target().await;
    let body = tcp(port);

    // 1. Latency, one check at a time.
    let mut total = Vec::with_capacity(latency_n);
    let mut overhead = Vec::with_capacity(latency_n);
    for _ in 0..latency_n {
        let t = Instant::now();
        let id = bench.create_check(&body).await;
        let results = bench.until_finished(id).await;
        let elapsed = t.elapsed().as_secs_f64() * 1000.0;
        let probe = results
            .iter()
            .filter_map(|r| r.duration_ms)
            .fold(0.0f64, f64::max);
        total.push(elapsed);
        overhead.push(elapsed - probe);
    }
    total.sort_by(|a, b| a.partial_cmp(b).unwrap());
    overhead.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("latency ({latency_n} sequential TCP checks x {AGENTS} agents), POST -> all {AGENTS} results stored and streamed:");
    println!(
        "  total    p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms",
        pct(&total, 0.5),
        pct(&total, 0.9),
        pct(&total, 0.99)
    );
    println!(
        "  overhead p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms (minus the slowest probe's own time)",
        pct(&overhead, 0.5),
        pct(&overhead, 0.9),
        pct(&overhead, 0.99)
    );

    // 2. Throughput at an offered rate.
    let db = bench.db.clone();
    let before: i64 = count(&db, "SELECT count(*) AS n FROM checks").await;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let n = (rate * seconds) as usize;
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..n {
        tick.tick().await;
        handles.push(fire(&api, &body));
    }
    let mut accepted = 0;
    for h in handles {
        if h.await.unwrap() {
            accepted += 1;
        }
    }
    let offered_for = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut done, mut stored, mut timed_out);
    loop {
        done = count(
            &db,
            "SELECT count(*) AS n FROM checks WHERE status = 'finished'",
        )
        .await
            - before;
        stored = count(
            &db,
            "SELECT count(*) AS n FROM check_results WHERE status IN ('ok','failed')",
        )
        .await;
        timed_out = count(
            &db,
            "SELECT count(*) AS n FROM check_results WHERE status = 'timeout'",
        )
        .await;
        let in_progress = count(
            &db,
            "SELECT count(*) AS n FROM checks WHERE status = 'in_progress'",
        )
        .await;
        if (done >= accepted as i64 && in_progress == 0) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_done = start.elapsed();
    let latency_results = (latency_n * AGENTS) as i64;
    println!("throughput: offered {rate} checks/s for {seconds} s ({n} checks, {accepted} accepted in {:.1} s)", offered_for.as_secs_f64());
    println!(
        "  all finished after {:.1} s: {:.0} checks/s x {AGENTS} agents = {:.0} results/s stored",
        all_done.as_secs_f64(),
        done as f64 / all_done.as_secs_f64(),
        (stored - latency_results) as f64 / all_done.as_secs_f64()
    );
    // Agents that looked offline when a check was created (late heartbeats under load) are not
    // asked, so what was asked is counted from the rows, not assumed to be 5 per check.
    let asked = count(
        &db,
        "SELECT count(*) AS n FROM check_results WHERE status <> 'offline'",
    )
    .await
        - latency_results;
    println!(
        "  answers asked for {asked}: stored {}, marked timeout {timed_out}, unaccounted {}",
        stored - latency_results,
        asked - (stored - latency_results) - timed_out
    );
    let created = count(&db, "SELECT count(*) AS n FROM checks").await - before;
    let pending = count(
        &db,
        "SELECT count(*) AS n FROM check_results WHERE status = 'pending'",
    )
    .await;
    println!("  checks created {created} (the client saw {accepted} answered 202), result rows still pending: {pending}");
    let dup = count(&db, "SELECT count(*) AS n FROM (SELECT check_id, agent_id FROM check_results GROUP BY 1, 2 HAVING count(*) > 1) d").await;
    println!("  duplicate rows: {dup}");
    let metrics = bench
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    let batches = metric("netcheck_result_batch_size_count ");
    println!(
        "  result batches: {batches} (all runs so far), {:.1} results and {:.2} ms each on average",
        metric("netcheck_result_batch_size_sum ") / batches,
        metric("netcheck_result_batch_seconds_sum ") / batches * 1000.0
    );

    // 3. Agent probe capacity: CPU seconds the agents spend per probe, driven through the
    //    whole pipeline (receive, probe, publish with confirm, ack), per check type.
    let healthz = format!("{base}/healthz");
    for (kind, body) in [
        ("tcp", tcp(port)),
        ("http", CreateCheck::new(CheckType::Http, healthz.clone())),
        (
            "icmp",
            CreateCheck::new(CheckType::Ping, "127.0.0.1")
                .options(json!({"count": 1, "timeout_ms": 2000})),
        ),
    ] {
        let before: f64 = children.iter().map(|c| cpu_secs(c.id())).sum();
        let done_before = count(
            &db,
            "SELECT count(*) AS n FROM check_results WHERE status IN ('ok','failed')",
        )
        .await;
        let n = 1500;
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        let mut hs = Vec::with_capacity(n);
        for _ in 0..n {
            tick.tick().await;
            hs.push(fire(&api, &body));
        }
        let ok = futures_util::future::join_all(hs)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(true)))
            .count();
        let want = done_before + (ok * AGENTS) as i64;
        let until = Instant::now() + Duration::from_secs(60);
        while count(
            &db,
            "SELECT count(*) AS n FROM check_results WHERE status IN ('ok','failed')",
        )
        .await
            < want
            && Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let cpu: f64 = children.iter().map(|c| cpu_secs(c.id())).sum::<f64>() - before;
        let probes = ok * AGENTS;
        println!("agent capacity {kind}: {probes} probes in {cpu:.2} agent CPU-seconds = {:.0} probes per CPU-second", probes as f64 / cpu.max(0.01));
    }

    // 4. Agent memory: idle, then with 1 000 probes in flight on one agent (pings to a
    //    namespace that drops ICMP, so each waits for its 5 s timeout).
    let agents = api.agents().await.unwrap();
    let first = agents[0].id;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle: Vec<u64> = children.iter().map(|c| rss_kib(c.id())).collect();
    println!(
        "agent RSS idle after the runs above: min {} KiB, max {} KiB",
        idle.iter().min().unwrap(),
        idle.iter().max().unwrap()
    );
    let ns = "nc-bench";
    sh(&format!("ip netns del {ns} 2>/dev/null; ip link del ncbh 2>/dev/null; ip netns add {ns} && ip link add ncbh type veth peer name ncbp && ip link set ncbp netns {ns} && ip addr add 10.213.250.1/30 dev ncbh && ip link set ncbh up && ip -n {ns} addr add 10.213.250.2/30 dev ncbp && ip -n {ns} link set ncbp up && printf 'table inet t {{\n chain i {{\n  type filter hook input priority 0;\n  icmp type echo-request drop\n }}\n}}\n' | ip netns exec {ns} nft -f -"));
    let body = CreateCheck::new(CheckType::Ping, "10.213.250.2")
        .options(json!({"count": 1, "timeout_ms": 5000}))
        .agents([first]);
    let fired = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..1000 {
        handles.push(fire(&api, &body));
    }
    let mut created = 0;
    for h in handles {
        if h.await.unwrap() {
            created += 1;
        }
    }
    let created_in = fired.elapsed();
    // Agents are listed by name, so `first` is bench-0, the first process started.
    let pid = children[0].id();
    let mut peak = 0;
    while fired.elapsed() < Duration::from_secs(6) {
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "agent RSS with {created} ping probes in flight (checks created in {:.1} s): peak {} KiB",
        created_in.as_secs_f64(),
        peak
    );
    sh(&format!("ip netns del {ns}; ip link del ncbh 2>/dev/null"));
    drop(children);
    bench.finish().await;
}
