//! The result pipeline's guarantees: exactly-once storage under redelivery, only results the
//! broker vouches for, and agents that vanish mid-check marked `timeout`.

use std::time::Duration;

use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicPublishArguments, ConfirmSelectArguments,
};
use amqprs::BasicProperties;
use netcheck_proto::api::agents::AgentStatus;
use netcheck_proto::api::checks::{
    CheckStatus, CheckView, CreateCheck, HistoryQuery, OutcomeFilter,
};
use netcheck_proto::check::CheckType;
use netcheck_proto::result::{PingResult, ResultStatus, TcpResult};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::amqp;
use crate::helpers::*;
use crate::rig::{check, data, error_code_of, only, rig_with, Rig};

/// A TCP check of an address no agent here reaches, run by `agents` (results are forged).
pub fn tcp_by(agents: &[Uuid]) -> CreateCheck {
    check(CheckType::Tcp, "93.184.216.34", json!({"port": 80})).agents(agents)
}

pub fn result_for(check_id: &str, agent_id: &str, rtt: f64) -> Value {
    json!({
        "protocol_version": 1, "check_id": check_id, "agent_id": agent_id, "status": "ok", "error": null,
        "started_at": "2026-01-01T00:00:00Z", "duration_ms": rtt,
        "data": {"type": "tcp", "resolved_address": "127.0.0.1", "port": 80, "connected": true, "connect_ms": rtt}
    })
}

#[tokio::test]
async fn redelivered_and_unvouched_results_are_stored_once_or_dropped() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("manual").await;
    let agent_id = agent.id.to_string();
    let reg: Value = app.register(&token).await.json().await.unwrap();
    let user = reg["amqp"]["username"].as_str().unwrap().to_string();
    let (conn, _) = amqp::connect_as(&reg).await.unwrap();
    let (ch, _) = amqp::channel(&conn).await;
    let (_, mut requests) = ch
        .basic_consume_rx(
            BasicConsumeArguments::new(reg["amqp"]["queue"].as_str().unwrap(), "")
                .manual_ack(true)
                .finish(),
        )
        .await
        .unwrap();
    let admin = app.admin_token().await;
    let created = app.api_as(&admin).create_check(&tcp_by(&[agent.id])).await;
    let check_id = created.unwrap().id.to_string();

    // The request reaches the agent's queue, with an expiry.
    let msg = tokio::time::timeout(Duration::from_secs(10), requests.recv())
        .await
        .unwrap()
        .unwrap();
    let props = msg.basic_properties.unwrap();
    assert!(props.expiration().is_some(), "requests carry a TTL");
    let req: Value = serde_json::from_slice(&msg.content.unwrap()).unwrap();
    assert_eq!(req["check_id"], check_id.as_str());
    assert_eq!(req["agents"], json!([agent_id]));
    assert!(req["expires_at"].is_string());
    ch.basic_ack(BasicAckArguments::new(
        msg.deliver.unwrap().delivery_tag(),
        false,
    ))
    .await
    .unwrap();

    ch.confirm_select(ConfirmSelectArguments::default())
        .await
        .unwrap();
    let publish = |body: Value, user_id: Option<&str>| {
        let mut props = BasicProperties::default();
        props.with_persistence(true);
        if let Some(u) = user_id {
            props.with_user_id(u);
        }
        let ch = ch.clone();
        async move {
            ch.basic_publish(
                props.finish(),
                serde_json::to_vec(&body).unwrap(),
                BasicPublishArguments::new("netcheck.results", ""),
            )
            .await
            .unwrap()
        }
    };
    let m = &app.state.metrics;
    // Unvouched: no user_id; claims another agent; a check it was not asked; not JSON.
    publish(result_for(&check_id, &agent_id, 1.0), None).await;
    eventually(
        "unauthenticated counted",
        Duration::from_secs(10),
        || async { (m.dropped("unauthenticated") == 1).then_some(()) },
    )
    .await;
    publish(
        result_for(&check_id, "00000000-0000-0000-0000-000000000001", 1.0),
        Some(&user),
    )
    .await;
    eventually("forged counted", Duration::from_secs(10), || async {
        (m.dropped("forged") == 1).then_some(())
    })
    .await;
    publish(
        result_for(&uuid::Uuid::now_v7().to_string(), &agent_id, 1.0),
        Some(&user),
    )
    .await;
    eventually("not asked counted", Duration::from_secs(10), || async {
        (m.dropped("not_asked") == 1).then_some(())
    })
    .await;
    {
        let mut props = BasicProperties::default();
        ch.basic_publish(
            props.with_user_id(&user).finish(),
            b"{not json".to_vec(),
            BasicPublishArguments::new("netcheck.results", ""),
        )
        .await
        .unwrap();
    }
    eventually("malformed counted", Duration::from_secs(10), || async {
        (m.dropped("malformed") == 1).then_some(())
    })
    .await;
    // Well-formed JSON that PostgreSQL cannot hold (a NUL in a string): dropped and counted,
    // not requeued forever, and it does not hold up the results around it.
    let mut poison = result_for(&check_id, &agent_id, 1.0);
    poison["status"] = json!("failed");
    poison["error"] = json!({"code": "refused", "message": "nul \u{0} inside"});
    publish(poison, Some(&user)).await;
    eventually("unstorable counted", Duration::from_secs(10), || async {
        (m.dropped("unstorable") == 1).then_some(())
    })
    .await;

    // The real result, delivered three times (as after a crash before the ack).
    for _ in 0..3 {
        publish(result_for(&check_id, &agent_id, 1.5), Some(&user)).await;
    }
    eventually("duplicates counted", Duration::from_secs(10), || async {
        (m.results_duplicate.get() == 2).then_some(())
    })
    .await;
    assert_eq!(m.results_stored.get(), 1);
    let check = app.check(&admin, check_id.parse().unwrap()).await;
    assert_eq!(check.status, CheckStatus::Finished);
    let r = only(&check);
    assert_eq!(data::<TcpResult>(r).connect_ms, Some(1.5));
    assert_eq!(r.status, ResultStatus::Ok);

    // A user_id that is not the connection's own is refused by the broker itself.
    let reason = amqp::refused_publish(&conn, "netcheck-agent-someone-else", b"{}".to_vec()).await;
    assert!(reason.contains("PRECONDITION_FAILED"), "{reason}");
    conn.close().await.ok();
}

#[tokio::test]
async fn an_agent_killed_mid_check_is_marked_timeout_and_others_are_intact() {
    let rig: Rig = rig_with(&[], |s| s.checks.grace_ms = 1000).await;
    let (b, token_b) = rig.app.create_agent("probe-2").await;
    let mut proc_b = rig.app.spawn_agent(&token_b);
    eventually("second agent online", Duration::from_secs(20), || async {
        (rig.app.agent(b.id).await.status == AgentStatus::Online).then_some(())
    })
    .await;

    let ping = check(
        CheckType::Ping,
        "127.0.0.1",
        json!({"count": 4, "interval_ms": 300}),
    );
    let created = rig.api.create_check(&ping).await.unwrap();
    assert_eq!(created.agents, 2);
    proc_b.0.kill().unwrap();
    let streamed = rig.events(created.id).await;
    assert_eq!(
        streamed.len(),
        2,
        "both results streamed, the timeout included"
    );
    let check = rig.app.check(&rig.token, created.id).await;
    let alive = by_agent(&check, rig.agent_id);
    assert_eq!(alive.status, ResultStatus::Ok);
    assert_eq!(data::<PingResult>(alive).received, 4);
    let dead = by_agent(&check, b.id);
    assert_eq!(dead.status, ResultStatus::Timeout);
    assert_eq!(error_code_of(dead), Some("agent_timeout"));
    // The history counts the timeout as a failure.
    assert_eq!(outcome(&rig, OutcomeFilter::Failed).await, [created.id]);
    assert!(outcome(&rig, OutcomeFilter::Ok).await.is_empty());
}

/// The checks the history finds with this outcome.
async fn outcome(rig: &Rig, status: OutcomeFilter) -> Vec<Uuid> {
    let query = HistoryQuery {
        status: Some(status),
        ..HistoryQuery::default()
    };
    let page = rig.api.history(&query).await.unwrap();
    page.checks.iter().map(|c| c.id).collect()
}

/// The result of one agent.
fn by_agent(check: &CheckView, id: Uuid) -> &netcheck_proto::api::checks::CheckResultView {
    let found = check.results.iter().find(|r| r.agent.id == id);
    found.unwrap_or_else(|| panic!("no result of {id}: {check:?}"))
}

#[tokio::test]
async fn an_offline_agent_never_runs_a_stale_check() {
    let rig: Rig = rig_with(&[], |s| s.checks.grace_ms = 500).await;
    let (b, token_b) = rig.app.create_agent("sleeper").await;
    // Registered once (so its queue and user exist), then silent: offline.
    let reg: Value = rig.app.register(&token_b).await.json().await.unwrap();
    eventually("agent offline", Duration::from_secs(20), || async {
        (rig.app.agent(b.id).await.status == AgentStatus::Offline).then_some(())
    })
    .await;
    let ping = check(
        CheckType::Ping,
        "127.0.0.1",
        json!({"count": 1, "timeout_ms": 200}),
    );
    let (c, _) = rig.run(ping.clone().agents([rig.agent_id, b.id])).await;
    assert_eq!(by_agent(&c, b.id).status, ResultStatus::Offline);
    assert_eq!(by_agent(&c, rig.agent_id).status, ResultStatus::Ok);
    // Not asked, the offline agent is an answer that is not ok: the history says failed.
    assert_eq!(outcome(&rig, OutcomeFilter::Failed).await, [c.id]);
    assert!(outcome(&rig, OutcomeFilter::Ok).await.is_empty());
    // Fan-out to every agent: the offline agent's queue gets the request too, but it expires.
    let (c, _) = rig.run(ping).await;
    assert_eq!(c.results.len(), 1, "only online agents take part");
    // The request's TTL is the check's deadline: its grace (500 ms) and the ping's 200 ms.
    let past = c.created_at + chrono::Duration::milliseconds(800);
    tokio::time::sleep((past - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    let (conn, _) = amqp::connect_as(&reg).await.unwrap();
    let (ch, _) = amqp::channel(&conn).await;
    let got = ch
        .basic_get(amqprs::channel::BasicGetArguments::new(
            reg["amqp"]["queue"].as_str().unwrap(),
        ))
        .await
        .unwrap();
    assert!(
        got.is_none(),
        "the expired request was dropped by the broker, so the agent never runs it"
    );
    conn.close().await.ok();
}

#[tokio::test]
async fn an_oversized_result_is_dropped_and_counted() {
    let app = spawn_app().await;
    let (_, token) = app.create_agent("big").await;
    let reg: Value = app.register(&token).await.json().await.unwrap();
    let (conn, _) = amqp::connect_as(&reg).await.unwrap();
    let user = reg["amqp"]["username"].as_str().unwrap();
    // Over the broker's limit (256 KiB): refused by RabbitMQ, the server never sees it.
    let reason = amqp::refused_publish(&conn, user, vec![b'x'; 2 << 20]).await;
    assert!(reason.contains("PRECONDITION_FAILED"), "{reason}");
    // Under the broker's limit but over the server's own (128 KiB): dropped unparsed.
    let (ch, _) = amqp::channel(&conn).await;
    ch.confirm_select(ConfirmSelectArguments::default())
        .await
        .unwrap();
    let mut props = BasicProperties::default();
    let huge = vec![b'x'; 200 * 1024];
    ch.basic_publish(
        props.with_user_id(user).finish(),
        huge,
        BasicPublishArguments::new("netcheck.results", ""),
    )
    .await
    .unwrap();
    let m = &app.state.metrics;
    eventually(
        "oversized result dropped",
        Duration::from_secs(10),
        || async { (m.dropped("malformed") == 1).then_some(()) },
    )
    .await;
    // The server is unharmed.
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    conn.close().await.ok();
}

#[tokio::test]
async fn a_batch_of_results_is_stored_once_each_and_finishes_its_check() {
    use netcheck::server::db::results::{store_results, Stored};
    use netcheck_proto::result::CheckResult;

    let app = spawn_app().await;
    let (a, token_a) = app.create_agent("batch-a").await;
    let (b, token_b) = app.create_agent("batch-b").await;
    // Registered agents count as online, so the check waits for their results.
    for token in [token_a, token_b] {
        assert!(app.register(&token).await.status().is_success());
    }
    let admin = app.admin_token().await;
    let created = app
        .api_as(&admin)
        .create_check(&tcp_by(&[a.id, b.id]))
        .await;
    let check_id = created.unwrap().id;
    let check = check_id.to_string();
    let (a, b) = (&a.id.to_string(), &b.id.to_string());
    let result = |check: &str, agent: &str, ms: f64| -> CheckResult {
        serde_json::from_value(result_for(check, agent, ms)).unwrap()
    };
    let other = uuid::Uuid::now_v7().to_string();
    let batch = vec![
        result(&check, a, 1.0),
        result(&check, a, 2.0),
        result(&other, a, 3.0),
        result(&check, b, 4.0),
    ];
    let stored = store_results(&app.state.db, &batch).await.unwrap();
    assert!(matches!(&stored.outcomes[0], Stored::New(row) if row.duration_ms == Some(1.0)));
    assert_eq!(
        stored.outcomes[1],
        Stored::Duplicate,
        "second copy in one batch"
    );
    assert_eq!(stored.outcomes[2], Stored::NotAsked);
    assert!(matches!(&stored.outcomes[3], Stored::New(row) if row.status == ResultStatus::Ok));
    assert_eq!(stored.finished, vec![check_id]);

    let again = store_results(&app.state.db, &batch[3..]).await.unwrap();
    assert_eq!(again.outcomes, vec![Stored::Duplicate]);
    assert!(again.finished.is_empty(), "a check finishes once");
    let view = app.check(&admin, check_id).await;
    assert_eq!(view.status, CheckStatus::Finished);
    let mut ms: Vec<f64> = view
        .results
        .iter()
        .map(|r| r.duration_ms.unwrap())
        .collect();
    ms.sort_by(f64::total_cmp);
    assert_eq!(
        ms,
        vec![1.0, 4.0],
        "the first copy won, nothing else changed"
    );
}

#[tokio::test]
async fn a_backlog_of_overdue_checks_is_drained_in_bounded_sweeps_each_finished_once() {
    use netcheck::server::checks::SWEEP_BATCH;
    use sea_orm::{ConnectionTrait, Statement};

    let app = spawn_app().await;
    let backlog = 2 * SWEEP_BATCH + 137;
    // As after an outage: checks long past their deadline, each still waiting for two agents.
    app.state
        .db
        .execute_unprepared(&format!(
            "WITH c AS (
                INSERT INTO checks (id, user_id, type, target, options, status,
                                    created_at, deadline_at, pending)
                SELECT gen_random_uuid(), (SELECT id FROM users LIMIT 1), 'tcp', '192.0.2.1',
                       '{{}}', 'in_progress', now() - interval '2 minutes',
                       now() - interval '1 minute', 2
                FROM generate_series(1, {backlog}) RETURNING id)
             INSERT INTO check_results (check_id, agent_id, agent_name, status)
             SELECT c.id, gen_random_uuid(), 'gone', 'pending' FROM c, generate_series(1, 2)"
        ))
        .await
        .unwrap();
    let m = &app.state.metrics;
    eventually("backlog drained", Duration::from_secs(30), || async {
        (m.checks_finished.get() >= backlog as u64).then_some(())
    })
    .await;
    assert_eq!(
        m.checks_finished.get(),
        backlog as u64,
        "each finished once"
    );
    assert_eq!(m.results_timed_out.get(), 2 * backlog as u64);
    let row = app
        .state
        .db
        .query_one_raw(Statement::from_string(
            app.state.db.get_database_backend(),
            "SELECT (SELECT count(*) FROM checks WHERE status <> 'finished' OR pending <> 0) AS open,
                    (SELECT count(*) FROM check_results WHERE status <> 'timeout') AS other",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "open").unwrap(), 0);
    assert_eq!(row.try_get::<i64>("", "other").unwrap(), 0);
}
