//! Abuse through the broker and the live streams, tried the way an attacker holding an
//! agent's credentials (or a greedy client) would: stream exhaustion, broker floods, forged
//! check requests, registration races and proxy variables.

use std::time::Duration;

use amqprs::channel::BasicPublishArguments;
use amqprs::BasicProperties;
use netcheck::client::api::Api;
use netcheck_proto::api::checks::{CheckEvent, HistoryQuery};
use netcheck_proto::api::ErrorCode;
use netcheck_proto::check::CheckType;
use netcheck_proto::result::ResultStatus;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::amqp;
use crate::helpers::*;
use crate::netns::NetNs;
use crate::rig::{check, error_code_of, only, rig_with};

/// Opens the live stream of check `id`; the response (headers read).
async fn open_stream(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    new_client()
        .get(app.url(&format!("/api/v1/checks/{id}/events")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn one_redis_subscription_feeds_every_stream_and_a_user_holds_at_most_20() {
    // An agent that registers but never consumes: the check stays in progress until its
    // deadline, and every stream then gets `finished` through the one subscription.
    let app = spawn_app_with(|s| {
        s.checks.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        s.checks.grace_ms = 6000;
    })
    .await;
    let (agent, agent_token) = app.create_agent("silent").await;
    assert_eq!(app.register(&agent_token).await.status(), StatusCode::OK);
    let token = app.admin_token().await;
    let body = check(
        CheckType::Tcp,
        "127.0.0.1",
        json!({"port": 9, "timeout_ms": 500}),
    );
    let created = app
        .api_as(&token)
        .create_check(&body.agents([agent.id]))
        .await;
    let check_id = created.unwrap().id;
    let id = check_id.to_string();

    // Each stream on a client of its own, as twenty browser tabs would be.
    let mut streams = Vec::new();
    for _ in 0..20 {
        let tab = Api::new(new_client(), &app.address).with_token(&token);
        streams.push(tab.check_events(check_id).await.unwrap());
    }
    let resp = open_stream(&app, &token, &id).await;
    assert!(resp.headers().get("retry-after").is_some());
    let (code, _) = error_code(resp, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(code, "too_many_streams");
    // Another user is not affected.
    let other = app.api_as(&app.user_token("watcher").await);
    other.history(&HistoryQuery::default()).await.unwrap();

    // No Redis subscription of its own per stream on the check's channel.
    let channel = format!("{}:check-events:{id}", app.settings.redis.key_prefix);
    let out = std::process::Command::new("redis-cli")
        .args(["PUBSUB", "NUMSUB", &channel])
        .output()
        .unwrap();
    let numsub = String::from_utf8_lossy(&out.stdout);
    assert_eq!(numsub.lines().nth(1).map(str::trim), Some("0"), "{numsub}");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("netcheck_live_streams 20"), "{metrics}");
    assert!(
        metrics.contains("netcheck_live_events_subscribed 1"),
        "{metrics}"
    );

    // Every stream gets the result and `finished` when the deadline passes.
    let reads = streams.into_iter().map(|mut events| async move {
        let mut names = Vec::new();
        while let Some(event) = events.next().await.unwrap() {
            match event {
                CheckEvent::Result(_) => names.push("result"),
                CheckEvent::Finished(_) => {
                    names.push("finished");
                    return names;
                }
            }
        }
        names
    });
    let all = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join_all(reads),
    )
    .await
    .expect("every stream finished");
    for names in all {
        assert_eq!(names, ["result", "finished"]);
    }
    // The slots are free again.
    eventually("slots freed", Duration::from_secs(5), || async {
        let resp = open_stream(&app, &token, &id).await;
        (resp.status() == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_broker_bounds_the_results_queue_and_agent_users() {
    let app = spawn_app().await;
    let (_, token) = app.create_agent("bounded").await;
    let reg: Value = app.register(&token).await.json().await.unwrap();
    let user = reg["amqp"]["username"].as_str().unwrap();
    let vhost = &app.settings.amqp.vhost;
    let policies = broker_api(&format!("policies/{vhost}")).await.unwrap();
    let bounds = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "netcheck-results-bounds")
        .expect("results queue policy");
    assert_eq!(bounds["definition"]["overflow"], "reject-publish");
    assert!(bounds["definition"]["max-length"].as_u64().unwrap() > 0);
    let limits = broker_api(&format!("user-limits/{user}")).await.unwrap();
    assert!(
        limits[0]["value"]["max-connections"].as_u64().unwrap() <= 2,
        "{limits}"
    );
    assert!(
        limits[0]["value"]["max-channels"].as_u64().unwrap() <= 2,
        "{limits}"
    );

    // A third connection with the agent's credentials is refused.
    let (c1, _) = amqp::connect_as(&reg).await.unwrap();
    let (c2, _) = amqp::connect_as(&reg).await.unwrap();
    assert!(amqp::connect_as(&reg).await.is_err(), "max-connections");
    // A message over 1 MiB (indeed over 256 KiB) is refused by the broker itself.
    let reason = amqp::refused_publish(&c1, user, vec![b'x'; 2 << 20]).await;
    assert!(reason.contains("PRECONDITION_FAILED"), "{reason}");
    c1.close().await.ok();
    c2.close().await.ok();
}

/// Messages the junk flood publishes (half of them 250 KiB).
const FLOOD: u32 = 3000;

#[tokio::test]
async fn a_flood_of_junk_results_leaves_server_memory_bounded_and_checks_working() {
    let rig = rig_with(&[], |_| {}).await;
    let (_, token) = rig.app.create_agent("flooder").await;
    let reg: Value = rig.app.register(&token).await.json().await.unwrap();
    let user = reg["amqp"]["username"].as_str().unwrap().to_string();
    let (conn, ch) = amqp::publishing_as(&reg).await;
    let m = &rig.app.state.metrics;
    let dropped = || m.dropped("malformed") + m.dropped("too_large");
    let before = rss();
    // Just under the broker's 256 KiB limit, as large as junk can get to the server.
    let junk = vec![b'{'; 250 * 1024];
    let start = std::time::Instant::now();
    for i in 0..FLOOD {
        // The publisher lives in this process too: keep its own send buffer small (a backlog
        // of 512 on the broker still keeps the server's prefetch window full), so the figure
        // is the server's.
        if i % 64 == 0 {
            eventually("the server keeps up", Duration::from_secs(30), || async {
                (dropped() + 512 >= i as u64).then_some(())
            })
            .await;
        }
        let mut props = BasicProperties::default();
        let body = if i % 2 == 0 {
            junk.clone()
        } else {
            format!("{{\"n\":{i}}}").into_bytes()
        };
        if ch
            .basic_publish(
                props.with_user_id(&user).finish(),
                body,
                BasicPublishArguments::new("netcheck.results", ""),
            )
            .await
            .is_err()
        {
            break;
        }
    }
    eventually("the flood is drained", Duration::from_secs(60), || async {
        (dropped() >= FLOOD as u64).then_some(())
    })
    .await;
    let growth = rss().saturating_sub(before);
    eprintln!(
        "junk flood: {FLOOD} messages ({} of 250 KiB) drained in {:?}, server RSS +{} MiB",
        FLOOD / 2,
        start.elapsed(),
        growth >> 20
    );
    // At most the prefetch window (256) of 256 KiB messages is ever held: 64 MiB.
    assert!(growth < 100 << 20, "memory grew by {} MiB", growth >> 20);
    conn.close().await.ok();
    // Everything else still works.
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = open.local_addr().unwrap().port();
    let body = check(CheckType::Tcp, "127.0.0.1", json!({"port": port}));
    let (c, _) = rig.run(body.agents([rig.agent_id])).await;
    assert_eq!(only(&c).status, ResultStatus::Ok, "{c:?}");
}

#[tokio::test]
async fn a_forged_check_request_cannot_widen_the_agents_policy() {
    let rig = rig_with(&[], |s| {
        // Loopback only: the namespaces' network is refused.
        s.checks.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let ns = NetNs::new();
    ns.nft("table inet t {\n counter probes {}\n chain filter_in {\n  type filter hook input priority 0;\n  tcp dport 80 counter name probes\n }\n}\n");
    // The API refuses the target.
    let err = refused(
        rig.api
            .create_check(&check(CheckType::Tcp, &ns.addr, json!({"port": 80})))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(err.code(), Some(ErrorCode::ForbiddenTarget));
    // A request forged on the broker with the policy widened in the message: answered
    // target_refused, and no packet reaches the host.
    let check_id = uuid::Uuid::now_v7();
    let forged = json!({
        "protocol_version": 1, "check_id": check_id, "target": ns.addr, "type": "tcp",
        "options": {"port": 80, "timeout_ms": 1000},
        "expires_at": (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339(),
        "agents": [rig.agent_id], "allowed_networks": ["0.0.0.0/0", "10.0.0.0/8"],
    });
    sqlx_insert_check(&rig, check_id).await;
    let (conn, _) = amqp::connect_server(&rig.app.settings).await;
    let (ch, _) = amqp::channel(&conn).await;
    ch.basic_publish(
        BasicProperties::default(),
        serde_json::to_vec(&forged).unwrap(),
        BasicPublishArguments::new("", &format!("netcheck.agent.{}", rig.agent_id.simple())),
    )
    .await
    .unwrap();
    let result = eventually("the agent's answer", Duration::from_secs(20), || async {
        let c = rig.app.check(&rig.token, check_id).await;
        let r = c.results.into_iter().next()?;
        (r.status != ResultStatus::Pending).then_some(r)
    })
    .await;
    assert_eq!(result.status, ResultStatus::Failed, "{result:?}");
    assert_eq!(error_code_of(&result), Some("target_refused"), "{result:?}");
    let out = ns
        .command("nft")
        .args(["list", "counter", "inet", "t", "probes"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("packets 0"),
        "no packet was sent: {listing}"
    );
    conn.close().await.ok();
}

/// Stores a check (and its pending result) the way the API would, for a request published by
/// hand, so the agent's answer has somewhere to land.
async fn sqlx_insert_check(rig: &crate::rig::Rig, check_id: uuid::Uuid) {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &rig.app.state.db;
    let admin = rig.api.me().await.unwrap();
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO checks (id, user_id, type, target, options, status, created_at, deadline_at, pending) \
         VALUES ($1, $2, 'tcp', 'forged', '{\"port\": 80}', 'in_progress', now(), now() + interval '30 seconds', 1)",
        [check_id.into(), admin.id.into()],
    ))
    .await
    .unwrap();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO check_results (check_id, agent_id, agent_name, status) VALUES ($1, $2, 'probe-1', 'pending')",
        [check_id.into(), rig.agent_id.into()],
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn a_registration_racing_a_rotation_never_keeps_working_credentials() {
    let app = spawn_app().await;
    let (agent, first) = app.create_agent("racer").await;
    let admin = app.admin().await;
    let mut token = first;
    for round in 0..5 {
        let rotate = async {
            tokio::time::sleep(Duration::from_millis(round * 3)).await;
            admin.rotate_agent_token(agent.id).await.unwrap().token
        };
        let (reg, next) = tokio::join!(app.register(&token), rotate);
        if reg.status() == StatusCode::OK {
            let reg: Value = reg.json().await.unwrap();
            // Whatever the interleaving, the old token's credentials do not work once both
            // requests have answered.
            assert!(
                amqp::connect_as(&reg).await.is_err(),
                "round {round}: old token kept access"
            );
        } else {
            // Refused: the token was rotated, or the two provisionings collided on the broker.
            assert!(
                matches!(
                    reg.status(),
                    StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE
                ),
                "{}",
                reg.status()
            );
        }
        token = next;
    }
}

#[tokio::test]
async fn the_management_client_never_goes_through_a_proxy_from_the_environment() {
    // A "proxy" that only counts who connects: credentials sent to it would be lost.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://user:secret@{}", proxy.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((_conn, _)) = proxy.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    // This test runs in a process of its own (nextest), so the variables reach no other test.
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        std::env::set_var(var, &proxy_url);
    }
    std::env::remove_var("no_proxy");
    std::env::remove_var("NO_PROXY");
    let app = spawn_app().await;
    let (agent, _) = app.create_agent("no-proxy").await;
    assert_eq!(
        agent.name, "no-proxy",
        "provisioned through the management API"
    );
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing went to the proxy"
    );
}
