//! Tests that stop shared services. They run in a separate, serial pass of the test command
//! (`-E 'test(/disruptive/)'`), never alongside other tests.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .status()
        .expect("run rabbitmqctl");
    assert!(status.success(), "rabbitmqctl {args:?}");
}

async fn agent_connections(user: &str) -> Option<usize> {
    let conns: Vec<Value> = reqwest::Client::new()
        .get("http://127.0.0.1:15672/api/connections?columns=user")
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(conns.iter().filter(|c| c["user"] == user).count())
}

#[tokio::test]
async fn disruptive_broker_restart_agents_come_back_by_themselves() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    let mut procs = Vec::new();
    for name in ["r1", "r2"] {
        let (agent, token) = app.create_agent(name).await;
        ids.push(agent["id"].as_str().unwrap().to_string());
        procs.push(app.spawn_agent(&token));
    }
    for id in &ids {
        eventually("agent online", Duration::from_secs(20), || async {
            (app.agent(id).await["status"] == "online").then_some(())
        })
        .await;
    }

    rabbitmqctl(&["stop_app"]);
    // Nothing listens on 5672 now: every agent lost its session.
    eventually("broker down", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect("127.0.0.1:5672")
            .await
            .is_err()
            .then_some(())
    })
    .await;
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);

    for id in &ids {
        let user = format!("netcheck-agent-{}", id.replace('-', ""));
        eventually(
            "agent reconnected to the broker",
            Duration::from_secs(60),
            || async { (agent_connections(&user).await == Some(1)).then_some(()) },
        )
        .await;
        eventually("agent online again", Duration::from_secs(20), || async {
            (app.agent(id).await["status"] == "online").then_some(())
        })
        .await;
    }
    for p in &mut procs {
        assert!(
            p.0.try_wait().unwrap().is_none(),
            "agent process still running"
        );
    }
}
