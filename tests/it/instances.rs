//! Several server instances and server restarts: they behave as one server, agent changes
//! reach check creation at once despite each instance's cache, and a server killed between
//! taking a result and committing it loses nothing.

use std::time::Duration;

use netcheck::client::api::Api;
use netcheck_proto::api::agents::{AgentStatus, CreateAgent};
use netcheck_proto::api::checks::{CheckStatus, CheckView};
use netcheck_proto::check::CheckType;
use netcheck_proto::result::{PingResult, ResultStatus};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;
use crate::rig::{check, data, only, rig_with, Rig};

#[tokio::test]
async fn two_server_instances_behave_as_one() {
    let first = crate::rig::rig().await;
    let second = first.app.another_instance().await;
    let token = second.admin_token().await;

    // Created on the first instance, watched live on the second.
    let body = check(
        CheckType::Ping,
        "127.0.0.1",
        json!({"count": 5, "interval_ms": 300}),
    );
    let id = first.api.create_check(&body).await.unwrap().id;
    let started = std::time::Instant::now();
    let watcher = Rig {
        api: second.api_as(&token),
        app: second,
        token,
        agent_id: first.agent_id,
        _agent: None,
    };
    let streamed = watcher.events(id).await;
    assert_eq!(streamed.len(), 1);
    assert_eq!(data::<PingResult>(&streamed[0]).received, 5);
    // The probe takes 1.2 s; the stream's fallback poll runs every 5 s, so an answer this fast
    // came through Redis pub/sub from the instance that stored it.
    assert!(
        started.elapsed() < Duration::from_millis(4800),
        "{:?}",
        started.elapsed()
    );
    let check = watcher.app.check(&watcher.token, id).await;
    assert_eq!(check.results.len(), 1, "stored once");
}

/// The agent ids a check's results name.
fn asked(check: &CheckView) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = check.results.iter().map(|r| r.agent.id).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn agent_changes_reach_check_creation_at_once_despite_the_agent_cache() {
    // A cache that would hide every change for a minute if nothing cleared it.
    let rig: Rig = rig_with(&[], |s| s.agents.cache_ms = 60_000).await;
    let ping = check(CheckType::Ping, "127.0.0.1", json!({"count": 1}));
    let (c, _) = rig.run(ping.clone()).await;
    assert_eq!(asked(&c), vec![rig.agent_id]);

    // Created and registered through this instance: asked by the very next fan-out.
    let (b, token_b) = rig.app.create_agent("newcomer").await;
    let _b = rig.app.spawn_agent_with(&token_b, &[]);
    eventually("newcomer online", Duration::from_secs(20), || async {
        (rig.app.agent(b.id).await.status == AgentStatus::Online).then_some(())
    })
    .await;
    let (c, _) = rig.run(ping.clone()).await;
    let mut both = vec![rig.agent_id, b.id];
    both.sort();
    assert_eq!(asked(&c), both);
    assert!(c.results.iter().all(|r| r.status == ResultStatus::Ok));

    // Deleted: not asked again (a stale copy would send it the check and mark it timeout).
    rig.api.delete_agent(b.id).await.unwrap();
    let (c, _) = rig.run(ping.clone()).await;
    assert_eq!(asked(&c), vec![rig.agent_id]);

    // Created through another instance, which cannot clear this one's cache: a check naming
    // it reads the table again instead of calling it unknown.
    let other = rig.app.another_instance().await;
    let (elsewhere, _) = other.create_agent("elsewhere").await;
    let (c, _) = rig.run(ping.agents([rig.agent_id, elsewhere.id])).await;
    let never_registered = c
        .results
        .iter()
        .find(|r| r.agent.id == elsewhere.id)
        .expect("the other instance's agent is part of the check");
    assert_eq!(never_registered.status, ResultStatus::Offline);
}

/// Runs `netcheck server` as a real process with the settings' database, vhost and prefix.
fn server_process(s: &netcheck::config::Settings, port: u16) -> Process {
    use secrecy::ExposeSecret;
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_netcheck"))
        .arg("server")
        .env("NETCHECK__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("NETCHECK__DATABASE__URL", s.database.url.expose_secret())
        .env("NETCHECK__AMQP__VHOST", &s.amqp.vhost)
        .env("NETCHECK__REDIS__KEY_PREFIX", &s.redis.key_prefix)
        .env("NETCHECK__AUTH__JWT_SECRET", JWT_SECRET)
        .env("NETCHECK__CHECKS__ALLOWED_NETWORKS", "127.0.0.0/8")
        .env("NETCHECK__CHECKS__GRACE_MS", "60000")
        .env("NETCHECK__AGENTS__HEARTBEAT_INTERVAL_SECS", "1")
        .env("NETCHECK_ADMIN_USERNAME", ADMIN_USER)
        .env("NETCHECK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Process(child)
}

#[tokio::test]
async fn a_server_killed_between_delivery_and_commit_loses_nothing() {
    use sea_orm::{ConnectionTrait, Database, Statement, TransactionTrait};
    let settings = test_settings().await;
    let port = unused_port();
    let base = format!("http://127.0.0.1:{port}");
    let api = Api::new(reqwest::Client::new(), &base);
    let ready = || async {
        eventually("server ready", Duration::from_secs(30), || async {
            api.readyz().await.ok().map(drop)
        })
        .await
    };
    let mut server = server_process(&settings, port);
    ready().await;
    // Signs the admin in on whichever server process is up.
    let admin = || async {
        let session = api.login(ADMIN_USER, ADMIN_PASSWORD).await.unwrap();
        api.with_token(session.access_token)
    };
    let admin_api = admin().await;
    let survivor = CreateAgent {
        name: "survivor".into(),
        ..Default::default()
    };
    let created = admin_api.create_agent(&survivor).await.unwrap();
    let agent_id = created.agent.id;
    let _agent = Process(
        std::process::Command::new(env!("CARGO_BIN_EXE_netcheck"))
            .args(["agent", "--server", &base, "--token", &created.token])
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually("agent online", Duration::from_secs(20), || async {
        let a = admin_api.agent(agent_id).await.ok()?;
        (a.status == AgentStatus::Online).then_some(())
    })
    .await;

    let ping = check(
        CheckType::Ping,
        "127.0.0.1",
        json!({"count": 3, "interval_ms": 300}),
    );
    let id = admin_api.create_check(&ping).await.unwrap().id;
    // Hold the check's row lock: the collector receives the result but cannot commit it.
    use secrecy::ExposeSecret;
    let db = Database::connect(settings.database.url.expose_secret())
        .await
        .unwrap();
    let lock = db.begin().await.unwrap();
    lock.execute_raw(Statement::from_string(
        lock.get_database_backend(),
        format!("SELECT 1 FROM checks WHERE id = '{id}' FOR UPDATE"),
    ))
    .await
    .unwrap();
    let vhost = settings.amqp.vhost.clone();
    eventually(
        "result delivered to the server, not yet acked",
        Duration::from_secs(30),
        || async { (unacked(&vhost, "netcheck.results").await == Some(1)).then_some(()) },
    )
    .await;
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    lock.rollback().await.unwrap();

    // A new server process gets the result again from the broker and stores it once.
    let _server = server_process(&settings, port);
    ready().await;
    let admin_api = admin().await;
    let check = eventually(
        "check finished after the restart",
        Duration::from_secs(30),
        || async {
            let c = admin_api.check(id).await.ok()?;
            (c.status == CheckStatus::Finished).then_some(c)
        },
    )
    .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Ok, "{check:?}");
    assert_eq!(data::<PingResult>(r).received, 3);
    let metrics = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The redelivered copy is either stored by the new process or, when the killed process's
    // statement went through once the lock was released (PostgreSQL finishes a statement
    // whose client has gone), recognised as already stored. Never both.
    let stored = metrics.contains("netcheck_results_stored_total 1");
    let duplicate = metrics.contains("netcheck_results_duplicate_total 1");
    assert!(stored != duplicate, "{metrics}");
}
