//! Tests that stop shared services. They run in a separate, serial pass of the test command
//! (`-E 'test(/disruptive/)'`), never alongside other tests.

use std::process::Command;
use std::time::Duration;

use netcheck_proto::api::agents::AgentStatus;
use netcheck_proto::api::checks::CheckStatus;
use netcheck_proto::api::ErrorCode;
use netcheck_proto::check::CheckType;
use netcheck_proto::result::{PingResult, ResultStatus};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::rig::{check, data, only};

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .status()
        .expect("run rabbitmqctl");
    assert!(status.success(), "rabbitmqctl {args:?}");
}

#[tokio::test]
async fn disruptive_broker_restart_agents_come_back_by_themselves() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    let mut procs = Vec::new();
    for name in ["r1", "r2"] {
        let (agent, token) = app.create_agent(name).await;
        ids.push(agent.id);
        procs.push(app.spawn_agent(&token));
    }
    for &id in &ids {
        eventually("agent online", Duration::from_secs(20), || async {
            (app.agent(id).await.status == AgentStatus::Online).then_some(())
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

    for &id in &ids {
        let user = format!("netcheck-agent-{}", id.simple());
        eventually(
            "agent reconnected to the broker",
            Duration::from_secs(60),
            || async { (broker_connections_of(&user).await == Some(1)).then_some(()) },
        )
        .await;
        eventually("agent online again", Duration::from_secs(20), || async {
            (app.agent(id).await.status == AgentStatus::Online).then_some(())
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

fn pg_ctl(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let status = Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            version.to_str().unwrap(),
            "main",
            action,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctlcluster {action}");
}

fn redis_start() {
    let status = Command::new("redis-server")
        .args([
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn disruptive_broker_restart_mid_check_the_result_lands_once() {
    let rig = crate::rig::rig_with(&[], |s| s.checks.grace_ms = 45_000).await;
    let ping = check(
        CheckType::Ping,
        "127.0.0.1",
        json!({"count": 8, "interval_ms": 500}),
    );
    let id = rig.api.create_check(&ping).await.unwrap().id;
    // Let the agent take the request, then take the broker away while it probes.
    let queue = format!("netcheck.agent.{}", rig.agent_id.simple());
    let vhost = rig.app.settings.amqp.vhost.clone();
    eventually("request delivered", Duration::from_secs(10), || async {
        (unacked(&vhost, &queue).await == Some(1)).then_some(())
    })
    .await;
    rabbitmqctl(&["stop_app"]);
    tokio::time::sleep(Duration::from_secs(3)).await; // the outage itself
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    let streamed = rig.events(id).await;
    assert_eq!(streamed.len(), 1);
    let c = rig.app.check(&rig.token, id).await;
    let r = only(&c);
    assert_eq!(r.status, ResultStatus::Ok, "{c:?}");
    assert_eq!(data::<PingResult>(r).received, 8);
    assert_eq!(rig.app.state.metrics.results_stored.get(), 1);
}

#[tokio::test]
async fn disruptive_postgres_restart_is_503_meanwhile_and_loses_no_result() {
    let rig = crate::rig::rig_with(&[], |s| {
        s.checks.grace_ms = 45_000;
        s.database.connect_timeout_secs = 1;
    })
    .await;
    let ping = check(
        CheckType::Ping,
        "127.0.0.1",
        json!({"count": 6, "interval_ms": 500}),
    );
    let id = rig.api.create_check(&ping).await.unwrap().id;
    pg_ctl("stop");
    let down = rig.api.create_check(&ping).await.unwrap_err();
    let readyz = rig.api.readyz().await.unwrap_err();
    tokio::time::sleep(Duration::from_secs(4)).await; // the probe finishes while the database is away
    pg_ctl("start");
    assert_eq!(
        down.status(),
        Some(StatusCode::SERVICE_UNAVAILABLE),
        "{down}"
    );
    assert_eq!(down.code(), Some(ErrorCode::DependencyUnavailable));
    assert_eq!(readyz.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    // The result waited in the broker and is stored once the database is back.
    let c = eventually(
        "result stored after the restart",
        Duration::from_secs(60),
        || async {
            let c = rig.api.check(id).await.ok()?;
            (c.status == CheckStatus::Finished).then_some(c)
        },
    )
    .await;
    let r = only(&c);
    assert_eq!(r.status, ResultStatus::Ok, "{c:?}");
    assert_eq!(data::<PingResult>(r).received, 6);
    eventually("ready again", Duration::from_secs(30), || async {
        rig.api.readyz().await.ok().map(drop)
    })
    .await;
}

#[tokio::test]
async fn disruptive_redis_down_checks_still_run_and_live_events_resume() {
    let rig = crate::rig::rig().await;
    let out = Command::new("redis-cli")
        .args(["shutdown", "nosave"])
        .output()
        .unwrap();
    let _ = out; // redis-cli reports the dropped connection as an error
    let guard = scopeguard_restart();
    eventually("redis down", Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect("127.0.0.1:6379")
            .await
            .is_err()
            .then_some(())
    })
    .await;
    // Checks run and stream (the stream polls PostgreSQL while Redis is away).
    let port = unused_port();
    let (c, streamed) = rig
        .run(check(CheckType::Tcp, "127.0.0.1", json!({"port": port})))
        .await;
    assert_eq!(c.results.len(), 1);
    assert_eq!(streamed.len(), 1);
    drop(guard);
    eventually("redis up", Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect("127.0.0.1:6379")
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let started = std::time::Instant::now();
    let ping = check(
        CheckType::Ping,
        "127.0.0.1",
        json!({"count": 4, "interval_ms": 300}),
    );
    let (_, streamed) = rig.run(ping).await;
    assert_eq!(streamed.len(), 1);
    assert!(
        started.elapsed() < Duration::from_millis(4800),
        "live again (pub/sub), not the 5 s poll: {:?}",
        started.elapsed()
    );
}

/// Restarts Redis when dropped, even if the test fails.
fn scopeguard_restart() -> impl Drop {
    struct Restart;
    impl Drop for Restart {
        fn drop(&mut self) {
            redis_start();
        }
    }
    Restart
}

/// The scenario with the shipped settings: a 12 s ping from two agents, the broker
/// away for about 10 s in the middle of it. Nothing may be lost, and the API must work again
/// as soon as the broker is back.
#[tokio::test]
async fn disruptive_broker_outage_mid_check_loses_nothing_with_default_settings() {
    let defaults = netcheck::config::Settings::default();
    let rig = crate::rig::rig_with(&[], |s| {
        s.checks.grace_ms = defaults.checks.grace_ms;
        s.checks.outage_grace_ms = defaults.checks.outage_grace_ms;
    })
    .await;
    let (second, token) = rig.app.create_agent("probe-2").await;
    let _second = rig.app.spawn_agent(&token);
    eventually("second agent online", Duration::from_secs(20), || async {
        (rig.app.agent(second.id).await.status == AgentStatus::Online).then_some(())
    })
    .await;
    let ping = check(
        CheckType::Ping,
        "127.0.0.1",
        json!({"count": 12, "interval_ms": 1000}),
    );
    let id = rig.api.create_check(&ping).await.unwrap().id;
    let vhost = rig.app.settings.amqp.vhost.clone();
    for agent in [rig.agent_id, second.id] {
        let queue = format!("netcheck.agent.{}", agent.simple());
        eventually("request delivered", Duration::from_secs(10), || async {
            (unacked(&vhost, &queue).await == Some(1)).then_some(())
        })
        .await;
    }
    let outage = std::time::Instant::now();
    let _restart = broker_started_on_drop();
    rabbitmqctl(&["stop_app"]);
    eventually(
        "server sees the outage",
        Duration::from_secs(10),
        || async { (!rig.app.state.broker.is_connected().await).then_some(()) },
    )
    .await;
    refused(
        rig.api
            .create_check(&check(CheckType::Tcp, "127.0.0.1", json!({"port": 9})))
            .await,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(outage.elapsed())).await;
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    let back = std::time::Instant::now();
    eventually("server session back", Duration::from_secs(10), || async {
        rig.app.state.broker.is_connected().await.then_some(())
    })
    .await;
    let reconnect = back.elapsed();
    eprintln!(
        "outage {:?}; server session back {:?} after the broker",
        back - outage,
        reconnect
    );
    assert!(reconnect < Duration::from_secs(2), "{reconnect:?}");
    // A check created now works.
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = open.local_addr().unwrap().port();
    let tcp = check(CheckType::Tcp, "127.0.0.1", json!({"port": port})).agents([rig.agent_id]);
    rig.api.create_check(&tcp).await.unwrap();

    // Both agents' answers to the ping were held back and are stored, not written off.
    let results = eventually("ping finished", Duration::from_secs(60), || async {
        let c = rig.app.check(&rig.token, id).await;
        (c.status == CheckStatus::Finished).then_some(c.results)
    })
    .await;
    eprintln!(
        "ping stored {:?} after the broker came back",
        back.elapsed()
    );
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
        assert_eq!(data::<PingResult>(r).received, 12, "{r:?}");
    }
    assert_eq!(rig.app.state.metrics.results_timed_out.get(), 0);
}

/// Starts the broker's application when dropped, so a failing test does not leave it stopped.
fn broker_started_on_drop() -> impl Drop {
    struct Start;
    impl Drop for Start {
        fn drop(&mut self) {
            let _ = Command::new("rabbitmqctl").arg("start_app").status();
        }
    }
    Start
}
