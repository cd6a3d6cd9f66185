//! The latency floor of the check pipeline (issue 33): the I/O a check cannot do without, with
//! the libraries and statements netcheck uses, and nothing else — no HTTP, authentication,
//! validation, agent choice, probe, Redis or event stream.
//!
//! One round, sequentially, `BENCH_LATENCY_N` times (default 300):
//! 1. the check and its five pending result rows are inserted (`db::checks::insert`, one
//!    statement, as the server does);
//! 2. the request is published with a publisher confirm to a fanout exchange bound to five
//!    queues (non-persistent, as the server sends requests);
//! 3. five "agents" (a broker connection each, as five processes would have) take it and
//!    publish a result, persistent and confirmed, then ack the request (as agents do);
//! 4. a collector takes the results and stores what has arrived in one statement
//!    (`db::results::store_results`) until the check is finished.
//!
//! The figures are set beside `cargo bench --bench e2e`'s overhead (the same round through
//! the real server and agents, less the probe's own time) in `docs/benchmarks.md`.
//!
//! Run: `cargo bench --bench floor` (env BENCH_LATENCY_N).

mod common;

use std::time::{Duration, Instant};

use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicQosArguments, ExchangeDeclareArguments,
    QueueBindArguments, QueueDeclareArguments,
};
use amqprs::connection::Connection;
use amqprs::BasicProperties;
use chrono::Utc;
use common::{env_or, pct, Bench};
use netcheck::amqp::{Sink, Watch};
use netcheck::server::db::{checks, results};
use netcheck_proto::api::checks::CheckStatus;
use netcheck_proto::check::{CheckRequest, CheckSpec, CheckType};
use netcheck_proto::result::{CheckResult, ResultData, ResultStatus, TcpResult};
use netcheck_proto::PROTOCOL_VERSION;
use sea_orm::{ConnectionTrait, Statement};
use tokio::sync::mpsc;
use uuid::Uuid;

const AGENTS: usize = 5;
const EXCHANGE: &str = "floor.checks";
const RESULTS: &str = "floor.results";
const CONFIRM: Duration = Duration::from_secs(5);

async fn connect(bench: &Bench) -> Connection {
    let settings = &bench.state().settings.amqp;
    let mut args = netcheck::amqp::open_arguments(settings.server_urls()[0], None).unwrap();
    args.virtual_host(&bench.vhost);
    let conn = Connection::open(&args).await.unwrap();
    let (watch, _closed) = Watch::new();
    conn.register_callback(watch).await.unwrap();
    conn
}

/// One agent: takes requests from its queue, answers each with a confirmed, persistent
/// result, then acks the request.
async fn agent(bench: &Bench, agent_id: Uuid) {
    let conn = connect(bench).await;
    let queue = format!("floor.agent.{agent_id}");
    let ch = conn.open_channel(None).await.unwrap();
    ch.queue_declare(QueueDeclareArguments::durable_client_named(&queue))
        .await
        .unwrap();
    ch.queue_bind(QueueBindArguments::new(&queue, EXCHANGE, ""))
        .await
        .unwrap();
    ch.basic_qos(BasicQosArguments::new(0, 256, false))
        .await
        .unwrap();
    let (_, mut rx) = ch
        .basic_consume_rx(BasicConsumeArguments::new(&queue, ""))
        .await
        .unwrap();
    let sink = Sink::new(conn.clone());
    tokio::spawn(async move {
        let _conn = conn;
        while let Some(msg) = rx.recv().await {
            let (Some(deliver), Some(body)) = (msg.deliver, msg.content) else {
                continue;
            };
            let request: CheckRequest = serde_json::from_slice(&body).unwrap();
            let result = CheckResult {
                protocol_version: PROTOCOL_VERSION,
                check_id: request.check_id,
                agent_id,
                status: ResultStatus::Ok,
                error: None,
                started_at: Utc::now(),
                duration_ms: 0.1,
                data: Some(ResultData::Tcp(TcpResult {
                    resolved_address: Some("127.0.0.1".into()),
                    port: 9,
                    connected: true,
                    connect_ms: Some(0.1),
                    assertions: Vec::new(),
                })),
            };
            let props = BasicProperties::default()
                .with_persistence(true)
                .with_content_type("application/json")
                .finish();
            sink.publish(
                props,
                serde_json::to_vec(&result).unwrap(),
                "",
                RESULTS,
                CONFIRM,
            )
            .await
            .unwrap();
            ch.basic_ack(BasicAckArguments::new(deliver.delivery_tag(), false))
                .await
                .unwrap();
        }
    });
}

/// The collector: stores what has arrived in one statement; sends each finished check's id.
async fn collector(bench: &Bench, finished: mpsc::UnboundedSender<Uuid>) {
    let conn = connect(bench).await;
    let ch = conn.open_channel(None).await.unwrap();
    ch.queue_declare(QueueDeclareArguments::durable_client_named(RESULTS))
        .await
        .unwrap();
    ch.basic_qos(BasicQosArguments::new(0, 512, false))
        .await
        .unwrap();
    let (_, mut rx) = ch
        .basic_consume_rx(BasicConsumeArguments::new(RESULTS, ""))
        .await
        .unwrap();
    let db = bench.db.clone();
    tokio::spawn(async move {
        let _conn = conn;
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let mut last_tag = 0;
            let mut parsed = Vec::with_capacity(batch.len());
            for msg in batch {
                if let (Some(deliver), Some(body)) = (msg.deliver, msg.content) {
                    last_tag = last_tag.max(deliver.delivery_tag());
                    parsed.push(serde_json::from_slice::<CheckResult>(&body).unwrap());
                }
            }
            let stored = results::store_results(&db, &parsed).await.unwrap();
            ch.basic_ack(BasicAckArguments::new(last_tag, true))
                .await
                .unwrap();
            for id in stored.finished {
                let _ = finished.send(id);
            }
        }
    });
}

#[tokio::main]
async fn main() {
    let n = env_or("BENCH_LATENCY_N", 300) as usize;
    let bench = Bench::start(&["127.0.0.0/8"]).await;
    let user_id: Uuid = bench
        .db
        .query_one_raw(Statement::from_string(
            bench.db.get_database_backend(),
            "SELECT id FROM users LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "id")
        .unwrap();

    let publisher_conn = connect(&bench).await;
    let ch = publisher_conn.open_channel(None).await.unwrap();
    ch.exchange_declare(ExchangeDeclareArguments::new(EXCHANGE, "fanout"))
        .await
        .unwrap();
    let agents: Vec<Uuid> = (0..AGENTS).map(|_| Uuid::now_v7()).collect();
    let names: Vec<String> = agents.iter().map(Uuid::to_string).collect();
    for id in &agents {
        agent(&bench, *id).await;
    }
    let (tx, mut finished) = mpsc::unbounded_channel();
    collector(&bench, tx).await;
    let sink = Sink::new(publisher_conn.clone());
    let spec = CheckSpec::from_parts(CheckType::Tcp, &serde_json::json!({"port": 9})).unwrap();

    let (mut total, mut insert) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        let id = Uuid::now_v7();
        let now = Utc::now();
        let rows = agents
            .iter()
            .zip(&names)
            .map(|(a, name)| checks::NewResult {
                agent_id: *a,
                agent_name: name,
                agent_region: None,
                agent_location: None,
                status: ResultStatus::Pending,
                error: None,
            })
            .collect();
        checks::insert(
            &bench.db,
            checks::NewCheck {
                id,
                user_id,
                check_type: CheckType::Tcp,
                target: "127.0.0.1".into(),
                options: spec.options_json().unwrap(),
                status: CheckStatus::InProgress,
                created_at: now,
                deadline_at: now + chrono::Duration::seconds(60),
                finished_at: None,
                pending: AGENTS as i32,
                monitor_id: None,
                results: rows,
            },
        )
        .await
        .unwrap();
        insert.push(t.elapsed().as_secs_f64() * 1000.0);
        let request = CheckRequest {
            protocol_version: PROTOCOL_VERSION,
            check_id: id,
            target: "127.0.0.1".into(),
            spec: spec.clone(),
            expires_at: now + chrono::Duration::seconds(5),
            agents: agents.clone(),
        };
        let props = BasicProperties::default()
            .with_persistence(false)
            .with_content_type("application/json")
            .with_expiration("10000")
            .finish();
        sink.publish(
            props,
            serde_json::to_vec(&request).unwrap(),
            EXCHANGE,
            "",
            CONFIRM,
        )
        .await
        .unwrap();
        let done = tokio::time::timeout(Duration::from_secs(10), finished.recv())
            .await
            .expect("the check finishes")
            .unwrap();
        assert_eq!(done, id, "checks finish in order, one at a time");
        total.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    total.sort_by(f64::total_cmp);
    insert.sort_by(f64::total_cmp);
    println!(
        "floor ({n} sequential rounds x {AGENTS} agents): insert -> confirmed publish -> \
         {AGENTS} confirmed results -> stored and finished:"
    );
    println!("  total  {}", common::p50_p90_p99(&total));
    println!(
        "  of which the insert: p50 {:.2} ms  p99 {:.2} ms",
        pct(&insert, 0.5),
        pct(&insert, 0.99)
    );
    bench.finish().await;
}
