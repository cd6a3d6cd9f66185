//! Agent probe capacity at saturation (issue: proof under faults, load and bad input).
//!
//! One real agent process and a real server that stores every result. The checks and their
//! pending result rows are written straight into the database and their requests published
//! straight to the agent's queue, as fast as the broker takes them: the API's own rate (the
//! e2e bench's figure) is not what this measures, the agent is. The agent takes requests as
//! it can (prefetch = its concurrency), probes, publishes each result with a publisher
//! confirm and acks the request — its whole pipeline. Reported per probe type: probes per
//! second of wall time and per CPU-second of the agent.
//!
//! The peer, blackbox_exporter, is saturated the same way by `bench/blackbox.sh` (wrk on its
//! `/probe` endpoint) against the same kind of loopback targets.
//!
//! Run: `cargo bench --bench capacity` (env BENCH_PROBES, default 9 000 per type; at most
//! 10 000, the agent queue's length limit).

mod common;

use std::time::{Duration, Instant};

use amqprs::channel::BasicPublishArguments;
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;
use common::{count, cpu_secs, env_or, rss_kib, Bench};
use netcheck::policy::Policy;
use netcheck::server::broker::agent_queue;
use netcheck::server::checks::validate;
use netcheck_proto::api::checks::CreateCheck;
use netcheck_proto::check::{CheckRequest, CheckType};
use netcheck_proto::PROTOCOL_VERSION;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use uuid::Uuid;

/// Writes `ids` as in-progress checks, each waiting for one answer from `agent`.
async fn insert_checks(
    bench: &Bench,
    ids: &[Uuid],
    user: Uuid,
    agent: (Uuid, &str),
    request: &CheckRequest,
) {
    let spec = serde_json::to_value(&request.spec).unwrap();
    let ids = json!(ids);
    let db = &bench.db;
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO checks (id, user_id, type, target, options, status, created_at, deadline_at, pending)
         SELECT id::uuid, $2, $3, $4, $5, 'in_progress', now(), now() + interval '10 minutes', 1
         FROM jsonb_array_elements_text($1) AS id",
        [
            ids.clone().into(),
            user.into(),
            request.spec.check_type().as_str().into(),
            request.target.clone().into(),
            spec["options"].clone().into(),
        ],
    ))
    .await
    .unwrap();
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO check_results (check_id, agent_id, agent_name, status)
         SELECT id::uuid, $2, $3, 'pending' FROM jsonb_array_elements_text($1) AS id",
        [ids.into(), agent.0.into(), agent.1.into()],
    ))
    .await
    .unwrap();
}

#[tokio::main]
async fn main() {
    // At most the agent queue's length limit (10 000): beyond it the broker drops the oldest.
    let n = (env_or("BENCH_PROBES", 9_000) as usize)
        .min(netcheck::server::broker::AGENT_QUEUE_MAX_LENGTH as usize);
    let allowed = "127.0.0.0/8";
    let bench = Bench::start(&[allowed]).await;
    let children = bench.spawn_agents(1).await;
    let pid = children[0].id();
    let agents = bench.api.agents().await.unwrap();
    let (agent_id, agent_name) = (agents[0].id, agents[0].name.clone());
    let user_id = bench.api.me().await.unwrap().id;

    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let _ = target.accept().await;
        }
    });

    let mut open = OpenConnectionArguments::new("127.0.0.1", 5672, "guest", "guest");
    open.virtual_host(&bench.vhost);
    let conn = Connection::open(&open).await.unwrap();
    let channel = conn.open_channel(None).await.unwrap();
    let queue = agent_queue(agent_id);
    let policy = Policy::new(vec![allowed.parse().unwrap()]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "agent RSS idle: {} KiB; {n} probes per type, published as fast as the broker takes them",
        rss_kib(pid)
    );

    for (kind, body) in [
        (
            "tcp",
            CreateCheck::from_options(
                CheckType::Tcp,
                "127.0.0.1",
                json!({"port": port, "timeout_ms": 2000}),
            )
            .unwrap(),
        ),
        (
            "http",
            CreateCheck::from_options(
                CheckType::Http,
                bench.url("/healthz"),
                serde_json::Value::Null,
            )
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
        let create = body;
        let target = validate::check(&create.target, &create.spec, &policy).unwrap();
        let spec = create.spec;
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
        let template = CheckRequest {
            protocol_version: PROTOCOL_VERSION,
            check_id: ids[0],
            target,
            spec,
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
            agents: vec![agent_id],
        };
        insert_checks(&bench, &ids, user_id, (agent_id, &agent_name), &template).await;
        let since = format!(
            "SELECT count(*) AS n FROM check_results WHERE check_id >= '{}' AND status IN ('ok', 'failed')",
            ids[0]
        );
        let cpu_before = cpu_secs(pid);
        let started = Instant::now();
        let mut peak_rss = 0;
        for (i, id) in ids.iter().enumerate() {
            let request = CheckRequest {
                check_id: *id,
                ..template.clone()
            };
            channel
                .basic_publish(
                    BasicProperties::default()
                        .with_content_type("application/json")
                        .finish(),
                    serde_json::to_vec(&request).unwrap(),
                    BasicPublishArguments::new("", &queue),
                )
                .await
                .unwrap();
            if i % 500 == 0 {
                peak_rss = peak_rss.max(rss_kib(pid));
            }
        }
        let until = Instant::now() + Duration::from_secs(300);
        let mut stored = 0;
        while Instant::now() < until {
            stored = count(&bench.db, &since).await;
            peak_rss = peak_rss.max(rss_kib(pid));
            if stored >= n as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_secs(pid) - cpu_before;
        let failed = count(
            &bench.db,
            &since.replace("IN ('ok', 'failed')", "= 'failed'"),
        )
        .await;
        let why = bench
            .db
            .query_all_raw(Statement::from_string(
                bench.db.get_database_backend(),
                format!(
                    "SELECT coalesce(error->>'code', '?') AS code, count(*) AS n FROM check_results \
                     WHERE check_id >= '{}' AND status = 'failed' GROUP BY 1",
                    ids[0]
                ),
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let code: String = r.try_get("", "code").unwrap();
                let n: i64 = r.try_get("", "n").unwrap();
                format!("{code} x{n}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "capacity {kind}: {stored} of {n} probes stored ({failed} failed{}) in {wall:.1} s = {:.0}/s; \
             {cpu:.2} agent CPU-seconds = {:.0} probes per CPU-second; agent RSS peak {peak_rss} KiB",
            if why.is_empty() { String::new() } else { format!(": {why}") },
            stored as f64 / wall,
            stored as f64 / cpu.max(0.01)
        );
    }
    conn.close().await.ok();
    drop(children);
    bench.finish().await;
}
