//! End-to-end check pipeline benchmark (issue: checks end to end).
//!
//! Starts the real server (in this process) against the local PostgreSQL, Redis and RabbitMQ,
//! five real `netcheck agent` processes and a TCP target on loopback, then measures:
//! 1. latency: POST /api/v1/checks → `finished` event, sequentially, for TCP checks to the
//!    local port (p50/p90/p99, and the overhead above the probe's own connect time);
//! 2. throughput: checks created at fixed offered rates for a fixed time; what was accepted,
//!    refused at the door (503 `overloaded`), answered, `agent_busy` and `timeout`.
//!
//! Run: `cargo bench --bench e2e` (env BENCH_LATENCY_N, BENCH_RATES e.g. `500,1000,2000`,
//! BENCH_SECONDS).

mod common;

use std::time::{Duration, Instant};

use common::{count, cpu_secs, cpu_secs_of, env_or, rss_kib, sh, Bench};
use netcheck::client::api::Api;
use netcheck_proto::api::checks::CreateCheck;
use netcheck_proto::api::ErrorCode;
use netcheck_proto::check::CheckType;
use serde_json::json;

/// What became of one POST.
#[derive(Clone, Copy, PartialEq)]
enum Fired {
    Accepted,
    /// 503 `overloaded`: refused at the door, past capacity; `true` when the server's own
    /// pipeline was judged behind, `false` when the chosen agents were.
    Overloaded(bool),
    Refused,
}

/// Creates a check in a task of its own.
fn fire(api: &Api, body: &CreateCheck) -> tokio::task::JoinHandle<Fired> {
    let (api, body) = (api.clone(), body.clone());
    tokio::spawn(async move {
        match api.create_check(&body).await {
            Ok(_) => Fired::Accepted,
            Err(e) if e.code() == Some(ErrorCode::Overloaded) => {
                Fired::Overloaded(e.detail("scope") == Some("server"))
            }
            Err(e) => {
                eprintln!("refused: {e}");
                Fired::Refused
            }
        }
    })
}

/// The server's `/metrics` now, as a lookup of a series (its name and labels, then a space)
/// to its value.
async fn metrics(bench: &Bench) -> impl Fn(&str) -> f64 {
    let text = bench
        .http
        .get(format!("{}/metrics", bench.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    move |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(f64::NAN)
    }
}

/// Results received from agents and the messages that carried them, so far.
async fn result_messages(bench: &Bench) -> (f64, f64) {
    let m = metrics(bench).await;
    (
        m("netcheck_result_message_size_sum "),
        m("netcheck_result_message_size_count "),
    )
}

/// Offers `rate` checks a second for `seconds`, waits until every accepted one finished, and
/// prints what became of them: accepted, refused at the door, answered, `agent_busy`,
/// `timeout`.
async fn offered_rate(
    bench: &Bench,
    db: &sea_orm::DatabaseConnection,
    body: &CreateCheck,
    rate: u64,
    seconds: u64,
    agents: &[u32],
) {
    let since = chrono::Utc::now();
    // Who spends the machine's CPU on the run: the broker, the agents, and this process (the
    // server and the load generator).
    let cpu_now = || {
        [
            cpu_secs_of("beam.smp"),
            agents.iter().map(|p| cpu_secs(*p)).sum::<f64>(),
            cpu_secs(std::process::id()),
            cpu_secs_of("postgres"),
        ]
    };
    let cpu_before = cpu_now();
    let messages_before = result_messages(bench).await;
    let phase = format!(
        "check_id IN (SELECT id FROM checks WHERE created_at >= '{}')",
        since.to_rfc3339()
    );
    let n = (rate * seconds) as usize;
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..n {
        tick.tick().await;
        handles.push(fire(&bench.api, body));
    }
    let outcomes: Vec<Fired> = futures_util::future::join_all(handles)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let of = |f: Fired| outcomes.iter().filter(|o| **o == f).count();
    let (accepted, server_behind, agents_behind, refused) = (
        of(Fired::Accepted),
        of(Fired::Overloaded(true)),
        of(Fired::Overloaded(false)),
        of(Fired::Refused),
    );
    let overloaded = server_behind + agents_behind;
    let offered_for = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(
        db,
        &format!(
            "SELECT count(*) AS n FROM checks WHERE status = 'in_progress' AND created_at >= '{}'",
            since.to_rfc3339()
        ),
    )
    .await
        > 0
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_done = start.elapsed();
    let cpu_after = cpu_now();
    let messages_after = result_messages(bench).await;
    let rows = |cond: &str| {
        let sql = format!("SELECT count(*) AS n FROM check_results WHERE {phase} AND {cond}");
        async move { count(db, &sql).await }
    };
    let answered = rows("status IN ('ok','failed')").await;
    let ok = rows("status = 'ok'").await;
    let busy = rows("error->>'code' = 'agent_busy'").await;
    // Taken by the agent after its start-by time (the rest were not asked: agent behind).
    let busy_late =
        rows("error->>'code' = 'agent_busy' AND error->>'message' LIKE 'the agent took%'").await;
    let timed_out = rows("status = 'timeout'").await;
    let asked = rows("status <> 'offline'").await;
    let pending = rows("status = 'pending'").await;
    let dup = count(db, &format!("SELECT count(*) AS n FROM (SELECT check_id, agent_id FROM check_results WHERE {phase} GROUP BY 1, 2 HAVING count(*) > 1) d")).await;
    println!(
        "throughput: offered {rate} checks/s for {seconds} s ({n} checks in {:.1} s): accepted {accepted}, refused overloaded {overloaded} (server behind {server_behind}, agents behind {agents_behind}), refused otherwise {refused}",
        offered_for.as_secs_f64()
    );
    println!(
        "  all finished after {:.1} s: {:.0} accepted checks/s; answers asked {asked}: ok {ok}, answered {answered} ({:.2} %), agent_busy {busy} ({busy_late} taken late), timeout {timed_out}, pending {pending}, duplicate rows {dup}",
        all_done.as_secs_f64(),
        accepted as f64 / all_done.as_secs_f64(),
        answered as f64 * 100.0 / asked.max(1) as f64,
    );
    println!(
        "  ok answers stored per second over the run: {:.0} ({:.0} checks x {AGENTS} agents)",
        ok as f64 / all_done.as_secs_f64(),
        ok as f64 / all_done.as_secs_f64() / AGENTS as f64
    );
    let spent: Vec<f64> = cpu_after
        .iter()
        .zip(cpu_before)
        .map(|(a, b)| a - b)
        .collect();
    let ms_per_check = |cpu: f64| cpu / accepted.max(1) as f64 * 1e3;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "  CPU per accepted check: broker {:.2} ms, agents {:.2} ms, server + load generator {:.2} ms, PostgreSQL {:.2} ms ({:.0} % of the machine's {cores} cores over the run)",
        ms_per_check(spent[0]),
        ms_per_check(spent[1]),
        ms_per_check(spent[2]),
        ms_per_check(spent[3]),
        spent.iter().sum::<f64>() / all_done.as_secs_f64() / cores as f64 * 100.0
    );
    let (results, messages) = (
        messages_after.0 - messages_before.0,
        messages_after.1 - messages_before.1,
    );
    println!(
        "  results from agents {results:.0} in {messages:.0} messages: {:.2} a message",
        results / messages
    );
    // Let the queues drain and the pressure window forget before the next rate.
    tokio::time::sleep(Duration::from_secs(3)).await;
}

fn tcp(port: u16) -> CreateCheck {
    CreateCheck::from_options(
        CheckType::Tcp,
        "127.0.0.1",
        json!({"port": port, "timeout_ms": 2000}),
    )
    .unwrap()
}

const AGENTS: usize = 5;

#[tokio::main]
async fn main() {
    let latency_n = env_or("BENCH_LATENCY_N", 300) as usize;
    // Offered rates, checks a second (comma-separated).
    let rates: Vec<u64> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "500,1000,2000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let seconds = env_or("BENCH_SECONDS", 10);

    let bench = Bench::start(&["127.0.0.0/8", "10.213.250.0/30"]).await;
    let children = bench.spawn_agents(AGENTS).await;
    let base = bench.base.clone();
    let api = bench.api.clone();
    // Read twice: 3 s after start (as earlier sessions did), and once the agents have been
    // idle long enough to give start-up's memory back (they look every 5 s).
    for (wait, what) in [(3, "3 s after start"), (5, "8 s after start, settled")] {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let fresh: Vec<u64> = children.iter().map(|c| rss_kib(c.id())).collect();
        println!(
            "agent RSS idle, registered and connected, {what}: min {} KiB, max {} KiB",
            fresh.iter().min().unwrap(),
            fresh.iter().max().unwrap()
        );
    }
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
    println!("  total    {}", common::p50_p90_p99(&total));
    println!(
        "  overhead {} (minus the slowest probe's own time)",
        common::p50_p90_p99(&overhead)
    );

    // 2. Throughput at offered rates (below, at and past capacity).
    let db = bench.db.clone();
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    for rate in rates {
        offered_rate(&bench, &db, &body, rate, seconds, &pids).await;
    }
    let m = metrics(&bench).await;
    let metric = |name: &str| m(name);
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
        (
            "http",
            CreateCheck::from_options(CheckType::Http, healthz.clone(), serde_json::Value::Null)
                .unwrap(),
        ),
        (
            "icmp",
            CreateCheck::from_options(
                CheckType::Ping,
                "127.0.0.1",
                json!({"count": 1, "timeout_ms": 2000}),
            )
            .unwrap(),
        ),
    ] {
        let before: Vec<f64> = children.iter().map(|c| cpu_secs(c.id())).collect();
        let broker_before = cpu_secs_of("beam.smp");
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
            .filter(|r| matches!(r, Ok(Fired::Accepted)))
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
        let used: Vec<f64> = children
            .iter()
            .zip(&before)
            .map(|(c, b)| cpu_secs(c.id()) - b)
            .collect();
        let broker = cpu_secs_of("beam.smp") - broker_before;
        let cpu: f64 = used.iter().sum();
        let probes = ok * AGENTS;
        println!("agent capacity {kind}: {probes} probes in {cpu:.2} agent CPU-seconds = {:.0} probes per CPU-second", probes as f64 / cpu.max(0.01));
        println!(
            "  broker: {broker:.2} CPU-seconds, {:.0} µs per probe",
            broker / probes.max(1) as f64 * 1e6
        );
        // Builds compared side by side (BENCH_AGENT_BIN with several): each agent ran `ok`.
        let bins: std::collections::BTreeSet<&str> = children.iter().map(|c| c.bin()).collect();
        if bins.len() > 1 {
            for bin in bins {
                let (n, cpu) = children
                    .iter()
                    .zip(&used)
                    .filter(|(c, _)| c.bin() == bin)
                    .fold((0, 0.0), |(n, sum), (_, u)| (n + 1, sum + u));
                println!(
                    "  {bin}: {n} agents, {:.0} probes per CPU-second",
                    (ok * n) as f64 / cpu.max(0.01)
                );
            }
        }
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
    let body = CreateCheck::from_options(
        CheckType::Ping,
        "10.213.250.2",
        json!({"count": 1, "timeout_ms": 5000}),
    )
    .unwrap()
    .agents([first]);
    let fired = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..1000 {
        handles.push(fire(&api, &body));
    }
    let mut created = 0;
    for h in handles {
        if h.await.unwrap() == Fired::Accepted {
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
    // Back near idle once the burst is over? (An agent gives freed memory back when it has
    // been idle for a few seconds after work.)
    tokio::time::sleep(Duration::from_secs(12)).await;
    println!("agent RSS 12 s after the ping burst: {} KiB", rss_kib(pid));
    sh(&format!("ip netns del {ns}; ip link del ncbh 2>/dev/null"));
    drop(children);
    bench.finish().await;
}
