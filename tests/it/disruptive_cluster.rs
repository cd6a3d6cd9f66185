//! netcheck on a three-node RabbitMQ cluster (`scripts/cluster.sh`) with quorum queues: nodes
//! are SIGKILLed under load and nothing accepted is lost, duplicated or turned into a timeout.
//! The tests share the cluster's nodes, so they run in the serial part of the suite.

use std::collections::HashMap;
use std::io::BufRead;
use std::time::{Duration, Instant};

use netcheck::config::{QueueType, Settings};
use netcheck_proto::api::ErrorCode;
use netcheck_proto::check::CheckType;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::helpers::*;
use crate::rig::check;

const NODES: [char; 3] = ['a', 'b', 'c'];

fn amqp_port(node: char) -> u16 {
    5681 + (node as u16 - 'a' as u16)
}

fn node_of_port(port: u16) -> char {
    (b'a' + (port - 5681) as u8) as char
}

fn cluster(args: &[&str]) {
    let out =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster.sh"))
            .args(args)
            .output()
            .expect("run scripts/cluster.sh");
    assert!(
        out.status.success(),
        "cluster.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "cluster.sh prints nothing but errors"
    );
}

async fn cluster_async(args: &'static [&'static str]) {
    tokio::task::spawn_blocking(move || cluster(args))
        .await
        .unwrap();
}

/// GET on the management API of the first cluster node that answers.
async fn cluster_api(path: &str) -> Option<Value> {
    for node in NODES {
        let resp = new_client()
            .get(format!(
                "http://127.0.0.1:{}/api/{path}",
                10_000 + amqp_port(node)
            ))
            .basic_auth("guest", Some("guest"))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if let Ok(resp) = resp {
            if resp.status().is_success() {
                return resp.json().await.ok();
            }
        }
    }
    None
}

/// Points the server at the cluster: AMQP through `order`, management through every node.
fn on_cluster(s: &mut Settings, order: &[char]) {
    s.amqp.urls = order
        .iter()
        .map(|n| format!("amqp://guest:guest@127.0.0.1:{}", amqp_port(*n)).into())
        .collect();
    s.amqp.management_urls = order
        .iter()
        .map(|n| format!("http://guest:guest@127.0.0.1:{}", 10_000 + amqp_port(*n)).into())
        .collect();
    s.amqp.queue_type = QueueType::Quorum;
    s.checks.rate_limit_per_minute = 10_000_000;
    s.checks.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
}

/// An agent binary whose JSON log lines arrive on a channel (read on a thread of its own, so
/// the pipe never fills).
struct LoggedAgent {
    _process: Process,
    lines: mpsc::UnboundedReceiver<Value>,
    /// "registered" lines read so far.
    registrations: usize,
}

impl LoggedAgent {
    fn spawn(app: &TestApp, token: &str, extra: &[&str]) -> Self {
        let mut process = app.spawn_agent_with(token, extra);
        let stderr = process.0.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        Self {
            _process: process,
            lines,
            registrations: 0,
        }
    }

    /// Waits for the next "consuming check requests" line and returns its broker node.
    async fn next_node(&mut self, within: Duration) -> char {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) if v["message"] == "consuming check requests" => {
                    let node = v["node"].as_str().expect("node field");
                    let port: u16 = node.rsplit(':').next().unwrap().parse().unwrap();
                    return node_of_port(port);
                }
                Ok(Some(v)) => {
                    self.registrations += usize::from(v["message"] == "registered");
                    seen.push(v);
                }
                Ok(None) => panic!("the agent exited: {seen:#?}"),
                Err(_) => panic!("the agent did not consume again within {within:?}: {seen:#?}"),
            }
        }
    }
}

async fn database(app: &TestApp) -> DatabaseConnection {
    use secrecy::ExposeSecret;
    Database::connect(app.settings.database.url.expose_secret())
        .await
        .unwrap()
}

/// Result rows per status of the given checks, and how many rows each check has.
async fn outcomes(db: &DatabaseConnection, ids: &[Uuid]) -> (HashMap<String, i64>, Vec<i64>) {
    let list = ids
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT status, count(*) AS n FROM check_results WHERE check_id IN ({list}) GROUP BY status"),
        ))
        .await
        .unwrap();
    let by_status = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "status").unwrap(),
                r.try_get::<i64>("", "n").unwrap(),
            )
        })
        .collect();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT count(*) AS n FROM check_results WHERE check_id IN ({list}) GROUP BY check_id"),
        ))
        .await
        .unwrap();
    let per_check = rows
        .iter()
        .map(|r| r.try_get::<i64>("", "n").unwrap())
        .collect();
    (by_status, per_check)
}

/// Waits until none of the checks has a pending result.
async fn all_answered(db: &DatabaseConnection, ids: &[Uuid], within: Duration) {
    eventually("every result stored", within, || async {
        let (by_status, _) = outcomes(db, ids).await;
        (!by_status.contains_key("pending")).then_some(())
    })
    .await;
}

/// A TCP target that accepts every connection.
fn tcp_target() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    port
}

async fn results_leader(vhost: &str) -> char {
    eventually(
        "the results queue's leader",
        Duration::from_secs(20),
        || async {
            let q = cluster_api(&format!("queues/{vhost}/netcheck.results.quorum")).await?;
            let leader = q["leader"].as_str()?;
            NODES
                .into_iter()
                .find(|n| leader == format!("netcheck-{n}@localhost"))
        },
    )
    .await
}

async fn agents_online(app: &TestApp, n: usize) {
    eventually("agents online", Duration::from_secs(30), || async {
        let list = app.admin().await.agents().await.ok()?;
        (list
            .iter()
            .filter(|a| a.status == netcheck_proto::api::agents::AgentStatus::Online)
            .count()
            >= n)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disruptive_cluster_results_leader_killed_under_load_loses_nothing() {
    const LOAD: usize = 400;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("netcheck=warn")
        .try_init();
    cluster_async(&["up"]).await;
    // A check in flight when a node dies needs slack for the failover (up to 5 s) and one
    // resend; the default 3 s of grace is less than that, so such a check may rightly end
    // `timeout`. With room for it, nothing may.
    // Answers delayed by the failover wait seconds; admission control (which refuses work
    // when answers queue longer than `max_queueing_ms`) is given the same slack.
    // And heartbeats: with two servers, five agents and three broker nodes busy on two cores,
    // a heartbeat can wait seconds for its answer, and at the suite's 1 s interval (offline
    // after 3 s) agents would be judged offline for that, not for the failover, which is
    // timed on its own below (5 s). The product's default interval is 10 s.
    let slack = |s: &mut netcheck::config::Settings| {
        s.checks.grace_ms = 10_000;
        s.checks.max_queueing_ms = 9_000;
        s.agents.heartbeat_interval_secs = 5;
    };
    let first = spawn_app_with(|s| {
        on_cluster(s, &['a', 'b', 'c']);
        slack(s);
    })
    .await;
    let vhost = first.settings.amqp.vhost.clone();
    let leader = results_leader(&vhost).await;
    // The second instance starts on the leader's node, so a server must fail over too.
    let mut order: Vec<char> = NODES.to_vec();
    order.rotate_left(leader as usize - 'a' as usize);
    let shared = first.settings.clone();
    let second = spawn_app_with(|s| {
        on_cluster(s, &order);
        s.database.url = shared.database.url.clone();
        s.amqp.vhost = shared.amqp.vhost.clone();
        s.redis.key_prefix = shared.redis.key_prefix.clone();
        slack(s);
    })
    .await;
    assert_eq!(
        second.state.broker.node().unwrap(),
        format!("127.0.0.1:{}", amqp_port(leader))
    );

    let mut agents = Vec::new();
    for i in 0..5 {
        let (_, token) = first.create_agent(&format!("cluster-{i}")).await;
        agents.push(LoggedAgent::spawn(&first, &token, &[]));
    }
    let mut nodes = Vec::new();
    for agent in &mut agents {
        nodes.push(agent.next_node(Duration::from_secs(30)).await);
    }
    agents_online(&first, 5).await;
    let mut spread = nodes.clone();
    spread.sort();
    spread.dedup();
    assert!(
        spread.len() >= 2,
        "registration spreads agents over the nodes: {nodes:?}"
    );

    // 50 checks a second (250 answers) for 8 s, alternating between the instances; the leader
    // dies at 3 s. (Twice that is about all this machine does with debug builds, and then the
    // database pool, not the failover, decides what is refused.)
    let port = tcp_target();
    let body = check(
        CheckType::Tcp,
        "127.0.0.1",
        json!({"port": port, "timeout_ms": 5000}),
    );
    let apis = [first.admin().await, second.admin().await];
    let (tx, mut created) = mpsc::unbounded_channel();
    let load = {
        let body = body.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for i in 0..LOAD {
                tick.tick().await;
                let (api, body, tx) = (apis[i % 2].clone(), body.clone(), tx.clone());
                tokio::spawn(async move {
                    let t = Instant::now();
                    let r = api.create_check(&body).await.map(|c| c.id);
                    if let Err(e) = &r {
                        eprintln!("{i} {} refused after {:?}: {e}", i % 2, t.elapsed());
                    }
                    let _ = tx.send(r);
                });
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = Instant::now();
    cluster_async(match leader {
        'a' => &["kill", "a"],
        'b' => &["kill", "b"],
        _ => &["kill", "c"],
    })
    .await;
    let dead = format!("127.0.0.1:{}", amqp_port(leader));
    // Servers and agents on the dead node are back on another within 5 s.
    eventually(
        "the second server on another node",
        Duration::from_secs(5),
        || async { second.state.broker.node().filter(|n| *n != dead) },
    )
    .await;
    for (agent, node) in agents.iter_mut().zip(&nodes) {
        if *node == leader {
            let now = agent
                .next_node(Duration::from_secs(5).saturating_sub(killed_at.elapsed()))
                .await;
            assert_ne!(now, leader);
        }
    }
    load.await.unwrap();

    let (mut accepted, mut refused) = (Vec::new(), 0);
    while accepted.len() + refused < LOAD {
        match created.recv().await.unwrap() {
            Ok(id) => accepted.push(id),
            Err(e) => {
                assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{e}");
                assert_eq!(e.code(), Some(ErrorCode::BrokerUnavailable), "{e}");
                refused += 1;
            }
        }
    }
    assert!(
        accepted.len() >= LOAD * 3 / 4,
        "accepted {} of {LOAD}",
        accepted.len()
    );
    let db = database(&first).await;
    all_answered(&db, &accepted, Duration::from_secs(60)).await;
    let (by_status, per_check) = outcomes(&db, &accepted).await;
    assert_eq!(
        by_status.get("ok").copied(),
        Some(5 * accepted.len() as i64),
        "{by_status:?} (refused {refused})"
    );
    assert_eq!(per_check.len(), accepted.len());
    assert!(per_check.iter().all(|n| *n == 5), "each result stored once");

    // The killed node rejoins; what was stored stays as it was and new checks run.
    cluster_async(&["up"]).await;
    let members = cluster_api("nodes").await.unwrap();
    assert_eq!(
        members
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["running"] == true)
            .count(),
        3
    );
    let again = first.admin().await.create_check(&body).await.unwrap().id;
    all_answered(&db, &[again], Duration::from_secs(20)).await;
    let (after, per_check) = outcomes(&db, &accepted).await;
    assert_eq!(after, by_status, "nothing duplicated after the rejoin");
    assert!(per_check.iter().all(|n| *n == 5));
    cleanup(&vhost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disruptive_cluster_agents_node_killed_with_checks_queued_they_are_answered() {
    cluster_async(&["up"]).await;
    let app = spawn_app_with(|s| {
        on_cluster(s, &['a', 'b', 'c']);
        // Five probes in a row plus the failover: more than the default 3 s of slack.
        s.checks.grace_ms = 10_000;
        s.checks.max_queueing_ms = 9_000;
    })
    .await;
    let (agent, token) = app.create_agent("queued").await;
    // One probe at a time, so the later checks wait in the agent's queue.
    let mut logged = LoggedAgent::spawn(&app, &token, &["--concurrency", "1"]);
    let node = logged.next_node(Duration::from_secs(30)).await;
    agents_online(&app, 1).await;
    let mut body = check(
        CheckType::Ping,
        "127.0.0.1",
        json!({"count": 4, "interval_ms": 250}),
    );
    body.selection.agents = Some(vec![agent.id.to_string()]);
    let api = app.admin().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(api.create_check(&body).await.unwrap().id);
    }
    let killed_at = Instant::now();
    cluster(&["kill", &node.to_string()]);
    let now = logged.next_node(Duration::from_secs(5)).await;
    assert_ne!(now, node);
    eprintln!(
        "agent back on {now} {:?} after the kill of {node}",
        killed_at.elapsed()
    );
    // Its credentials are the cluster's: losing a node must not cost a registration (several
    // management API calls on the server, just when a node has gone).
    assert_eq!(
        logged.registrations, 1,
        "the agent registered again after its node was killed"
    );
    let db = database(&app).await;
    all_answered(&db, &ids, Duration::from_secs(40)).await;
    let (by_status, per_check) = outcomes(&db, &ids).await;
    assert_eq!(by_status.get("ok").copied(), Some(5), "{by_status:?}");
    assert!(per_check.iter().all(|n| *n == 1));
    cleanup(&app.settings.amqp.vhost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disruptive_cluster_deleting_an_agent_closes_its_connection_on_another_node() {
    cluster_async(&["up"]).await;
    // The server talks to node a only; agents are sent to node c.
    let app = spawn_app_with(|s| {
        on_cluster(s, &['a']);
        s.amqp.public_urls = vec![format!("amqp://127.0.0.1:{}", amqp_port('c'))];
    })
    .await;
    let (agent, token) = app.create_agent("far-away").await;
    let reg: Value = app.register(&token).await.json().await.unwrap();
    assert_eq!(
        reg["amqp"]["urls"],
        json!([format!("amqp://127.0.0.1:5683/{}", app.settings.amqp.vhost)])
    );
    assert_eq!(reg["amqp"]["url"], reg["amqp"]["urls"][0]);
    assert_eq!(reg["amqp"]["port"], 5683);
    let (_conn, mut closed) = crate::amqp::connect_as(&reg).await.unwrap();
    let resp = app
        .client
        .delete(app.url(&format!("/api/v1/agents/{}", agent.id)))
        .bearer_auth(app.admin_token().await)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let answered = Instant::now();
    let (at, reason) = tokio::time::timeout(Duration::from_secs(1), closed.recv())
        .await
        .expect("the connection on node c closes within 1 s of the 204")
        .unwrap();
    eprintln!(
        "closed {:?} after the 204: {reason}",
        at.saturating_duration_since(answered)
    );
    cleanup(&app.settings.amqp.vhost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disruptive_cluster_without_a_majority_checks_are_refused_then_resume() {
    cluster_async(&["up"]).await;
    let app = spawn_app_with(|s| on_cluster(s, &['a', 'b', 'c'])).await;
    let (_, token) = app.create_agent("majority").await;
    let mut logged = LoggedAgent::spawn(&app, &token, &[]);
    logged.next_node(Duration::from_secs(30)).await;
    agents_online(&app, 1).await;
    let body = check(CheckType::Tcp, "127.0.0.1", json!({"port": tcp_target()}));
    let api = app.admin().await;
    api.create_check(&body).await.unwrap();

    cluster_async(&["kill", "b"]).await;
    cluster_async(&["kill", "c"]).await;
    let db = database(&app).await;
    let before: i64 = count_checks(&db).await;
    // The server is on node a (or moves there); a publish then finds no quorum.
    let err = eventually("a refusal", Duration::from_secs(30), || async {
        api.create_check(&body).await.err()
    })
    .await;
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{err}");
    assert_eq!(err.code(), Some(ErrorCode::BrokerUnavailable), "{err}");
    assert_eq!(
        count_checks(&db).await,
        before,
        "a refused check leaves nothing behind"
    );

    cluster_async(&["start", "b"]).await;
    let id = eventually("checks accepted again", Duration::from_secs(30), || async {
        api.create_check(&body).await.ok().map(|c| c.id)
    })
    .await;
    all_answered(&db, &[id], Duration::from_secs(30)).await;
    let (by_status, _) = outcomes(&db, &[id]).await;
    assert_eq!(by_status.get("ok").copied(), Some(1), "{by_status:?}");
    cluster_async(&["up"]).await;
    cleanup(&app.settings.amqp.vhost).await;
}

async fn count_checks(db: &DatabaseConnection) -> i64 {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT count(*) AS n FROM checks",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "n")
    .unwrap()
}

/// Removes the test's vhost from the cluster (its queues are replicated on every node).
async fn cleanup(vhost: &str) {
    let _ = new_client()
        .delete(format!("http://127.0.0.1:15681/api/vhosts/{vhost}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
}
