//! Several results in one broker message: the server vets and stores each on its own, and
//! agents send them together only as far as the server said at registration.

use std::time::Duration;

use amqprs::channel::BasicPublishArguments;
use amqprs::BasicProperties;
use netcheck_proto::api::checks::CheckStatus;
use netcheck_proto::check::CheckType;
use netcheck_proto::result::TcpResult;
use serde_json::{json, Value};

use crate::amqp;
use crate::helpers::*;
use crate::pipeline::{result_for, tcp_by};
use crate::rig::{check, data, only, rig_with};

/// Agents publish the results that finish while a message awaits its confirm as one JSON
/// array, once registration said the server takes them: each result in it is vetted and
/// stored on its own, and one that is forged or cannot be stored costs only itself.
#[tokio::test]
async fn results_sent_together_are_each_stored_or_dropped_on_their_own() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("batching").await;
    let agent_id = agent.id.to_string();
    let reg: Value = app.register(&token).await.json().await.unwrap();
    assert_eq!(reg["amqp"]["results_per_message"], 64);
    let user = reg["amqp"]["username"].as_str().unwrap().to_string();
    let (conn, ch) = amqp::publishing_as(&reg).await;
    let admin = app.admin_token().await;
    let mut checks = Vec::new();
    for _ in 0..4 {
        let created = app.api_as(&admin).create_check(&tcp_by(&[agent.id])).await;
        checks.push(created.unwrap().id.to_string());
    }
    let publish = |body: Vec<u8>| {
        let mut props = BasicProperties::default();
        props.with_persistence(true).with_user_id(&user);
        let ch = ch.clone();
        async move {
            ch.basic_publish(
                props.finish(),
                body,
                BasicPublishArguments::new("netcheck.results", ""),
            )
            .await
            .unwrap()
        }
    };
    let m = &app.state.metrics;
    let stored_before = m.results_stored.get();

    // Over the announced 64 in one message: the message is refused whole, nothing stored.
    let too_many: Vec<Value> = (0..65)
        .map(|_| result_for(&checks[0], &agent_id, 1.0))
        .collect();
    publish(serde_json::to_vec(&too_many).unwrap()).await;
    eventually(
        "oversized array counted",
        Duration::from_secs(10),
        || async { (m.dropped("malformed") == 1).then_some(()) },
    )
    .await;

    // Two good results, one claiming another agent, one with a status agents may not send,
    // and one PostgreSQL cannot hold: two stored, three dropped, each for its own reason.
    let mut timeout = result_for(&checks[2], &agent_id, 1.0);
    timeout["status"] = json!("timeout");
    let mut poison = result_for(&checks[3], &agent_id, 1.0);
    poison["status"] = json!("failed");
    poison["error"] = json!({"code": "refused", "message": "nul \u{0} inside"});
    let together = json!([
        result_for(&checks[0], &agent_id, 2.5),
        result_for(&checks[1], "00000000-0000-0000-0000-000000000001", 1.0),
        timeout,
        poison,
        result_for(&checks[1], &agent_id, 3.5),
    ]);
    publish(serde_json::to_vec(&together).unwrap()).await;
    // The poison makes the batch fall back to one result at a time: settled once both good
    // results are stored and the poison is dropped, in whichever order that happens.
    eventually("the batch settled", Duration::from_secs(10), || async {
        (m.dropped("unstorable") == 1 && m.results_stored.get() - stored_before == 2).then_some(())
    })
    .await;
    assert_eq!(m.dropped("forged"), 1);
    assert_eq!(m.dropped("malformed"), 2, "the status agents may not send");
    for (check_id, connect_ms) in [(&checks[0], 2.5), (&checks[1], 3.5)] {
        let check = app.check(&admin, check_id.parse().unwrap()).await;
        assert_eq!(check.status, CheckStatus::Finished);
        assert_eq!(data::<TcpResult>(only(&check)).connect_ms, Some(connect_ms));
    }
    for check_id in &checks[2..] {
        let check = app.check(&admin, check_id.parse().unwrap()).await;
        assert_eq!(check.status, CheckStatus::InProgress);
    }
    // The messages were acked once settled: nothing is left for a redelivery.
    let (vhost, queue) = (&app.settings.amqp.vhost, "netcheck.results");
    eventually("results acked", Duration::from_secs(10), || async {
        (unacked(vhost, queue).await == Some(0)).then_some(())
    })
    .await;
    conn.close().await.ok();
}

/// Results that finish while the agent awaits a confirm reach the server together once it
/// takes several a message, and one by one when it is set to one (as while older server
/// instances share the results queue).
#[tokio::test]
async fn an_agent_sends_results_together_only_as_far_as_the_server_allows() {
    const CHECKS: usize = 30;
    for per_message in [64, 1] {
        let rig = rig_with(&[], |s| {
            s.agents.results_per_message = per_message;
            s.checks.grace_ms = 10_000;
        })
        .await;
        let pid = rig._agent.as_ref().unwrap().0.id().to_string();
        let signal = |sig: &str| {
            let status = std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap();
            assert!(status.success());
        };
        // The agent takes the burst at once: it is stopped while the checks are created.
        signal("-STOP");
        let closed = unused_port();
        let mut ids = Vec::new();
        for _ in 0..CHECKS {
            let body = check(CheckType::Tcp, "127.0.0.1", json!({"port": closed}));
            ids.push(rig.api.create_check(&body).await.unwrap().id);
        }
        signal("-CONT");
        for id in ids {
            rig.events(id).await;
        }
        let text = reqwest::get(rig.app.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
        };
        let results = value("netcheck_result_message_size_sum");
        let messages = value("netcheck_result_message_size_count");
        assert_eq!(results, CHECKS as f64);
        if per_message == 1 {
            assert_eq!(messages, results, "one result a message");
        } else {
            assert!(
                messages < results,
                "{results} results in {messages} messages"
            );
        }
    }
}
