//! Agents: admin API, enrollment with the real agent binary, least privilege on the broker,
//! revocation and rotation.

use std::time::{Duration, Instant};

use amqprs::channel::{
    BasicConsumeArguments, BasicPublishArguments, ConfirmSelectArguments, ExchangeDeclareArguments,
    QueueBindArguments, QueueDeclareArguments, QueueDeleteArguments,
};
use amqprs::BasicProperties;
use netcheck_proto::agent::Capability;
use netcheck_proto::api::agents::{AgentStatus, CreateAgent, UpdateAgent};
use netcheck_proto::api::ErrorCode;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::amqp;
use crate::helpers::*;

#[tokio::test]
async fn admin_creates_lists_updates_and_gets_agents() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("fra-1").await;
    assert_eq!(agent.status, AgentStatus::Pending);
    assert_eq!(agent.region.as_deref(), Some("test"));
    assert_eq!(agent.labels, ["ci"]);
    assert_eq!(agent.last_seen_at, None);
    assert!(token.starts_with("nca_"), "{token}");

    let admin = app.admin().await;
    let list = admin.agents().await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(
        !serde_json::to_string(&list[0])
            .unwrap()
            .contains(&token[20..]),
        "the token is never shown again"
    );

    let change = UpdateAgent {
        region: Some("eu-central".into()),
        labels: Some(vec!["ci".into(), "ipv6".into()]),
        ..Default::default()
    };
    admin.update_agent(agent.id, &change).await.unwrap();
    let got = app.agent(agent.id).await;
    assert_eq!(got.region.as_deref(), Some("eu-central"));
    assert_eq!(got.labels, ["ci", "ipv6"]);

    let named = |name: &str| CreateAgent {
        name: name.into(),
        ..Default::default()
    };
    // Names are unique ignoring case.
    let err = refused(
        admin.create_agent(&named("FRA-1")).await,
        StatusCode::CONFLICT,
    );
    assert_eq!(err.code(), Some(ErrorCode::NameTaken));
    let err = admin.create_agent(&named("has space")).await.err().unwrap();
    assert_eq!(err.code(), Some(ErrorCode::InvalidField));
    assert_eq!(err.field(), Some("name"));

    let user = app.api_as(&app.user_token("eve").await);
    refused(user.create_agent(&named("x")).await, StatusCode::FORBIDDEN);
    // Users may list agents (to choose where checks run), without host facts.
    assert_eq!(app.register(&token).await.status(), StatusCode::OK);
    assert_eq!(
        app.agent(agent.id).await.hostname.as_deref(),
        Some("test-host"),
        "administrators see host facts"
    );
    let seen = user.agents().await.unwrap();
    assert_eq!(seen[0].name, "fra-1");
    assert!(seen[0].hostname.is_none() && seen[0].public_ip.is_none());
    refused(user.delete_agent(agent.id).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn real_agent_enrolls_goes_online_and_heartbeats_update_last_seen() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("enroll").await;
    let id = agent.id;
    let _proc = app.spawn_agent(&token);

    let online = eventually("agent online", Duration::from_secs(20), || async {
        let a = app.agent(id).await;
        (a.status == AgentStatus::Online).then_some(a)
    })
    .await;
    assert_eq!(online.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert!(online.hostname.as_ref().is_some_and(|h| !h.is_empty()));
    assert_eq!(online.public_ip.as_deref(), Some("127.0.0.1"));
    // Running as root, it can trace with every protocol too.
    assert_eq!(
        online.capabilities,
        [
            Capability::Tcp,
            Capability::Http,
            Capability::Dns,
            Capability::Icmp,
            Capability::TraceIcmp,
            Capability::TraceUdp,
            Capability::TraceTcp
        ]
    );
    let first_seen = online.last_seen_at.unwrap();

    // Heartbeats (interval 1 s in tests) move last_seen_at forward.
    eventually("a later heartbeat", Duration::from_secs(10), || async {
        let a = app.agent(id).await;
        (a.last_seen_at.unwrap() > first_seen).then_some(())
    })
    .await;

    // The broker sees exactly one connection of this agent's user.
    let user = format!("netcheck-agent-{}", id.simple());
    eventually("one broker connection", Duration::from_secs(10), || async {
        (broker_connections_of(&user).await == Some(1)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn bad_agent_tokens_get_one_opaque_401() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("tok").await;
    let id = agent.id;
    let (prefix_and_id, secret) = token.rsplit_once('_').unwrap();
    let wrong_secret = format!("{prefix_and_id}_{}x", &secret[..secret.len() - 1]);
    let mut bodies = Vec::new();
    for bad in [
        wrong_secret.as_str(),
        "nca_0123456789abcdef_nope",
        "garbage",
        "nca__",
        "",
    ] {
        let resp = app.register(bad).await;
        let (code, body) = error_code(resp, StatusCode::UNAUTHORIZED).await;
        assert_eq!(code, "invalid_agent_token");
        bodies.push(body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "no detail leaks which part was wrong"
    );

    let resp = app
        .client
        .post(app.url("/api/v1/agent/heartbeat"))
        .bearer_auth(&wrong_secret)
        .json(&json!({"agent_id": id, "uptime_secs": 1, "in_flight": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The right token works.
    assert_eq!(app.register(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn agent_credentials_grant_only_its_own_queue_and_the_results_exchange() {
    let app = spawn_app().await;
    let (_, token_a) = app.create_agent("a").await;
    let (_, token_b) = app.create_agent("b").await;
    let reg_a: Value = app.register(&token_a).await.json().await.unwrap();
    let reg_b: Value = app.register(&token_b).await.json().await.unwrap();
    let (conn, _closed) = amqp::connect_as(&reg_a).await.unwrap();
    let own_queue = reg_a["amqp"]["queue"].as_str().unwrap();
    let other_queue = reg_b["amqp"]["queue"].as_str().unwrap();

    // Allowed: consume its own queue, publish (confirmed) to the results exchange.
    let (ch, _) = amqp::channel(&conn).await;
    ch.basic_consume_rx(BasicConsumeArguments::new(own_queue, ""))
        .await
        .expect("consume own queue");
    ch.confirm_select(ConfirmSelectArguments::default())
        .await
        .unwrap();
    ch.basic_publish(
        BasicProperties::default(),
        b"{}".to_vec(),
        BasicPublishArguments::new("netcheck.results", ""),
    )
    .await
    .unwrap();
    ch.basic_qos(amqprs::channel::BasicQosArguments::new(0, 1, false))
        .await
        .expect("channel still open after allowed publish");

    // Refused, each on a fresh connection (a refusal closes the channel).
    let qos = || amqprs::channel::BasicQosArguments::new(0, 1, false);
    let (conn2, ch, closes) = fresh(&reg_a).await;
    assert!(
        ch.basic_consume_rx(BasicConsumeArguments::new(other_queue, ""))
            .await
            .is_err(),
        "consume other agent's queue"
    );
    assert_refused(&closes).await;
    conn2.close().await.ok();

    for (what, exchange, key) in [
        ("publish to the checks exchange", "netcheck.checks", ""),
        (
            "publish to another queue via the default exchange",
            "",
            other_queue,
        ),
    ] {
        let (conn2, ch, closes) = fresh(&reg_a).await;
        ch.basic_publish(
            BasicProperties::default(),
            b"{}".to_vec(),
            BasicPublishArguments::new(exchange, key),
        )
        .await
        .unwrap();
        // A synchronous call after the publish surfaces the channel.close it caused.
        assert!(ch.basic_qos(qos()).await.is_err(), "{what}");
        assert_refused(&closes).await;
        conn2.close().await.ok();
    }

    let (conn2, ch, closes) = fresh(&reg_a).await;
    assert!(
        ch.queue_declare(QueueDeclareArguments::new("sneaky"))
            .await
            .is_err(),
        "declare a queue"
    );
    assert_refused(&closes).await;
    conn2.close().await.ok();

    let (conn2, ch, closes) = fresh(&reg_a).await;
    assert!(
        ch.queue_delete(QueueDeleteArguments::new(own_queue))
            .await
            .is_err(),
        "delete own queue"
    );
    assert_refused(&closes).await;
    conn2.close().await.ok();

    let (conn2, ch, closes) = fresh(&reg_a).await;
    assert!(
        ch.queue_bind(QueueBindArguments::new(own_queue, "netcheck.results", ""))
            .await
            .is_err(),
        "bind own queue"
    );
    assert_refused(&closes).await;
    conn2.close().await.ok();

    let (conn2, ch, closes) = fresh(&reg_a).await;
    assert!(
        ch.exchange_declare(ExchangeDeclareArguments::new("sneaky", "fanout"))
            .await
            .is_err(),
        "declare an exchange"
    );
    assert_refused(&closes).await;
    conn2.close().await.ok();

    // The management API does not know the agent's user as an operator.
    let resp = reqwest::Client::new()
        .get("http://127.0.0.1:15672/api/overview")
        .basic_auth(
            reg_a["amqp"]["username"].as_str().unwrap(),
            reg_a["amqp"]["password"].as_str(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    conn.close().await.ok();
}

async fn fresh(
    reg: &Value,
) -> (
    amqprs::connection::Connection,
    amqprs::channel::Channel,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let (conn, _) = amqp::connect_as(reg).await.unwrap();
    let (ch, closes) = amqp::channel(&conn).await;
    (conn, ch, closes)
}

/// Waits for the broker's channel.close and checks it says ACCESS_REFUSED.
async fn assert_refused(closes: &std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let reason = eventually(
        "channel.close from the broker",
        Duration::from_secs(5),
        || async { closes.lock().unwrap().first().cloned() },
    )
    .await;
    assert!(
        reason.contains("ACCESS_REFUSED"),
        "expected ACCESS_REFUSED, got {reason}"
    );
}

#[tokio::test]
async fn deleting_an_agent_closes_its_broker_connection_at_once() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("doomed").await;
    let id = agent.id;
    let reg: Value = app.register(&token).await.json().await.unwrap();
    let (_conn, mut closed) = amqp::connect_as(&reg).await.unwrap();

    let admin = app.admin().await;
    let sent = Instant::now();
    admin.delete_agent(id).await.unwrap();
    let answered = Instant::now();
    let (at, reason) = tokio::time::timeout(Duration::from_secs(5), closed.recv())
        .await
        .expect("connection closed")
        .unwrap();
    // The server revokes on the broker before it answers, so the close usually lands first.
    let after_204 = at.saturating_duration_since(answered);
    println!(
        "revocation: DELETE took {:?}; connection closed {:?} after the request was sent, {after_204:?} after the 204 ({reason})",
        answered - sent,
        at - sent
    );
    assert!(after_204 < Duration::from_secs(1), "{after_204:?}");
    assert!(reason.contains("CONNECTION_FORCED"), "{reason}");

    // Token dead, credentials dead, agent gone.
    assert_eq!(
        app.register(&token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = app
        .client
        .post(app.url("/api/v1/agent/heartbeat"))
        .bearer_auth(&token)
        .json(&json!({"agent_id": id, "uptime_secs": 1, "in_flight": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        amqp::connect_as(&reg).await.is_err(),
        "old broker credentials refused"
    );
    let gone = refused(admin.agent(id).await, StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), Some(ErrorCode::NotFound));
}

#[tokio::test]
async fn a_deleted_agent_process_stops_with_exit_code_3() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("stopper").await;
    let mut proc = app.spawn_agent(&token);
    eventually("agent online", Duration::from_secs(20), || async {
        (app.agent(agent.id).await.status == AgentStatus::Online).then_some(())
    })
    .await;
    app.admin().await.delete_agent(agent.id).await.unwrap();
    let status = eventually("agent exit", Duration::from_secs(20), || {
        let s = proc.0.try_wait().unwrap();
        async move { s }
    })
    .await;
    assert_eq!(status.code(), Some(3), "exit code for a revoked token");
}

#[tokio::test]
async fn an_agent_that_cannot_listen_for_metrics_stops_before_registering() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("no-metrics").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut proc = app.spawn_agent_with(&token, &["--metrics-listen", &addr]);
    let status = eventually("agent exit", Duration::from_secs(20), || {
        let s = proc.0.try_wait().unwrap();
        async move { s }
    })
    .await;
    assert!(!status.success(), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut proc.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains(&format!("cannot listen for metrics on {addr}")),
        "{stderr}"
    );
    assert_eq!(app.agent(agent.id).await.status, AgentStatus::Pending);
}

#[tokio::test]
async fn each_registration_ends_the_previous_session_and_rotation_ends_the_token() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("rot").await;
    let first: Value = app.register(&token).await.json().await.unwrap();
    let (_c1, mut closed1) = amqp::connect_as(&first).await.unwrap();
    let second: Value = app.register(&token).await.json().await.unwrap();
    assert_ne!(
        first["amqp"]["password"], second["amqp"]["password"],
        "fresh credentials per registration"
    );
    tokio::time::timeout(Duration::from_secs(5), closed1.recv())
        .await
        .expect("older session closed");
    assert!(
        amqp::connect_as(&first).await.is_err(),
        "older credentials refused"
    );
    let (_c2, mut closed2) = amqp::connect_as(&second).await.unwrap();

    let admin = app.admin().await;
    let new_token = admin.rotate_agent_token(agent.id).await.unwrap().token;
    assert_ne!(new_token, token);
    tokio::time::timeout(Duration::from_secs(5), closed2.recv())
        .await
        .expect("live session closed by rotation");
    assert_eq!(
        app.register(&token).await.status(),
        StatusCode::UNAUTHORIZED,
        "old token refused"
    );
    assert_eq!(
        app.register(&new_token).await.status(),
        StatusCode::OK,
        "new token works"
    );
}

#[tokio::test]
async fn broker_management_down_is_503_and_leaves_no_half_created_agent() {
    let app =
        spawn_app_with(|s| s.amqp.management_url = "http://guest:guest@127.0.0.1:1".into()).await;
    let admin = app.admin_token().await;
    let resp = app
        .client
        .post(app.url("/api/v1/agents"))
        .bearer_auth(&admin)
        .json(&json!({"name": "nope"}))
        .send()
        .await
        .unwrap();
    let (code, body) = error_code(resp, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(code, "dependency_unavailable");
    assert_eq!(body["error"]["details"]["dependency"], "broker");
    let list = app.api_as(&admin).agents().await.unwrap();
    assert!(list.is_empty(), "no agent row left behind: {list:?}");
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn switching_to_quorum_queues_drains_and_removes_the_classic_results_queue() {
    use amqprs::channel::BasicPublishArguments;
    // A server with classic queues stops, leaving a result in its queue.
    let classic = crate::rig::rig().await;
    let vhost = classic.app.settings.amqp.vhost.clone();
    let (agent, agent_token) = classic.app.create_agent("moves-over").await;
    let queue = format!("queues/{vhost}/netcheck.agent.{}", agent.id.simple());
    assert_eq!(broker_api(&queue).await.unwrap()["type"], "classic");
    classic.app.state.shutdown.cancel();
    eventually(
        "the classic server's session gone",
        Duration::from_secs(10),
        || async { (!classic.app.state.broker.is_connected().await).then_some(()) },
    )
    .await;
    let (conn, _) = crate::amqp::connect_server(&classic.app.settings).await;
    let ch = conn.open_channel(None).await.unwrap();
    ch.basic_publish(
        amqprs::BasicProperties::default(),
        b"{}".to_vec(),
        BasicPublishArguments::new("", "netcheck.results"),
    )
    .await
    .unwrap();
    eventually("the result waiting", Duration::from_secs(10), || async {
        let q = broker_api(&format!("queues/{vhost}/netcheck.results")).await?;
        (q["messages"].as_u64()? == 1).then_some(())
    })
    .await;

    // Its successor uses quorum queues: new results go to the quorum queue at once, the
    // classic one is drained and then deleted.
    let shared = classic.app.settings.clone();
    let quorum = spawn_app_with(|s| {
        s.database.url = shared.database.url.clone();
        s.amqp.vhost = shared.amqp.vhost.clone();
        s.redis.key_prefix = shared.redis.key_prefix.clone();
        s.amqp.queue_type = netcheck::config::QueueType::Quorum;
    })
    .await;
    let bindings = broker_api(&format!(
        "exchanges/{vhost}/netcheck.results/bindings/source"
    ))
    .await
    .unwrap();
    let bound: Vec<&str> = bindings
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["destination"].as_str())
        .collect();
    assert_eq!(bound, ["netcheck.results.quorum"]);
    eventually(
        "the classic results queue removed",
        Duration::from_secs(20),
        || async {
            reqwest::Client::new()
                .get(format!(
                    "http://127.0.0.1:15672/api/queues/{vhost}/netcheck.results"
                ))
                .basic_auth("guest", Some("guest"))
                .send()
                .await
                .ok()
                .filter(|r| r.status() == StatusCode::NOT_FOUND)
                .map(|_| ())
        },
    )
    .await;
    assert!(quorum.state.broker.draining().is_none());
    // Deleting the drained queue cancelled a consumer of the session, which went on.
    assert!(matches!(
        quorum.state.broker.receiving(),
        netcheck::server::broker::link::Receiving::Since {
            reconnected: false,
            ..
        }
    ));
    let q = broker_api(&format!("queues/{vhost}/netcheck.results.quorum"))
        .await
        .unwrap();
    assert_eq!(q["type"], "quorum");
    // An agent's queue takes the new type when the agent registers again.
    assert_eq!(quorum.register(&agent_token).await.status(), StatusCode::OK);
    let q = broker_api(&queue).await.unwrap();
    assert_eq!(q["type"], "quorum", "{q}");
    let bindings = broker_api(&format!("{queue}/bindings")).await.unwrap();
    assert!(
        bindings.to_string().contains("netcheck.checks"),
        "bound to the checks exchange again: {bindings}"
    );
}

#[tokio::test]
async fn the_results_queue_can_be_a_quorum_queue() {
    let app = spawn_app_with(|s| s.amqp.queue_type = netcheck::config::QueueType::Quorum).await;
    let vhost = app.settings.amqp.vhost.clone();
    let queue = broker_api(&format!("queues/{vhost}/netcheck.results.quorum"))
        .await
        .expect("queue");
    assert_eq!(queue["type"], "quorum", "{queue}");
    assert_eq!(queue["durable"], true);
}
