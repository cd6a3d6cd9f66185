//! Monitors through the HTTP API with a real agent: runs, the alert rule, incidents, signed
//! webhooks delivered in order with retries, series, metrics, pause/resume, ownership, and
//! exactly one run per due tick across server instances.

use std::time::Duration;

use netcheck_proto::api::agents::AgentStatus;
use netcheck_proto::api::checks::{CheckStatus, HistoryQuery};
use netcheck_proto::api::monitors::{
    AlertRule, CreateMonitor, Monitor, MonitorCheck, MonitorQuery, MonitorState, Notify,
    UpdateMonitor, WebhookEvent,
};
use netcheck_proto::api::ErrorCode;
use netcheck_proto::check::{CheckSpec, CheckType};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;
use crate::rig::{error_code_of, rig_with, Rig};
use crate::webhook_receiver::{receiver, signed};

pub(crate) async fn monitor_rig() -> Rig {
    rig_with(&[], |s| {
        s.notify.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        s.notify.retry_first_ms = 300;
        s.metrics.token = Some(SCRAPE_TOKEN.to_string().into());
    })
    .await
}

/// The scraper's token (`metrics.token`) the monitor rig is set up with.
const SCRAPE_TOKEN: &str = "scrape-secret-for-tests";

pub(crate) async fn call(
    rig: &Rig,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let req = rig
        .app
        .client
        .request(method, rig.app.url(path))
        .bearer_auth(&rig.token);
    match body {
        Some(b) => req.json(&b),
        None => req,
    }
    .send()
    .await
    .unwrap()
}

/// A monitor of a TCP port on loopback, every hour, with the default rule.
pub(crate) fn tcp_monitor(name: &str, options: Value) -> CreateMonitor {
    CreateMonitor {
        name: name.into(),
        check: MonitorCheck::new(
            CheckSpec::from_parts(CheckType::Tcp, &options).unwrap(),
            "127.0.0.1",
        ),
        selection: Default::default(),
        interval_secs: Some(3600),
        alert: None,
        notify: Vec::new(),
        paused: false,
        unknown: Default::default(),
    }
}

/// Makes the monitor due now (instead of waiting its interval).
pub(crate) async fn due_now(rig: &Rig, id: Uuid) {
    rig.app
        .state
        .db
        .execute_unprepared(&format!(
            "UPDATE monitors SET next_run_at = now() WHERE id = '{id}'"
        ))
        .await
        .unwrap();
}

pub(crate) async fn monitor(rig: &Rig, id: Uuid) -> Monitor {
    rig.api.monitor(id).await.unwrap()
}

/// The runs of a monitor, newest first.
async fn runs_of(rig: &Rig, id: Uuid) -> Vec<netcheck_proto::api::checks::CheckSummary> {
    let query = HistoryQuery {
        monitor: Some(id),
        ..Default::default()
    };
    rig.api.history(&query).await.unwrap().checks
}

/// The `/metrics` page as the scraper holding the token sees it.
async fn metrics_page(rig: &Rig) -> String {
    let resp = rig
        .app
        .client
        .get(rig.app.url("/metrics"))
        .bearer_auth(SCRAPE_TOKEN)
        .send()
        .await;
    let page = resp.unwrap().text().await.unwrap();
    // Anyone else sees the server's own figures, never users' monitors.
    let anonymous = rig.app.client.get(rig.app.url("/metrics")).send().await;
    let other = anonymous.unwrap().text().await.unwrap();
    assert!(!other.contains("netcheck_monitor_"), "{other}");
    page
}

#[tokio::test]
async fn a_monitor_alerts_when_agents_agree_and_webhooks_arrive_signed_and_in_order() {
    let rig = monitor_rig().await;
    let (hook, received) = receiver(2).await;
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed = unused_port();
    let rule = AlertRule {
        min_failing_agents: 1,
        for_runs: 2,
    };
    let body = CreateMonitor {
        alert: Some(rule),
        notify: vec![Notify::Webhook(hook.clone())],
        ..tcp_monitor("shop \"tcp\"", json!({"port": closed, "timeout_ms": 500}))
    };
    let created = rig.api.create_monitor(&body).await.unwrap();
    let secret = created.webhook_secret;
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    let id = created.monitor.id;
    assert_eq!(created.monitor.state, MonitorState::Pending);
    assert_eq!(created.monitor.alert, rule);

    // First failing run: still pending (the rule wants two in a row).
    let first = eventually("first run judged", Duration::from_secs(20), || async {
        let m = monitor(&rig, id).await;
        let runs = runs_of(&rig, id).await;
        let done = runs.iter().any(|c| c.status == CheckStatus::Finished);
        (done && m.last_check_id.is_some()).then_some(m)
    })
    .await;
    let first_check = first.last_check_id.unwrap();
    // The run is judged within a second of finishing.
    eventually("first run judged", Duration::from_secs(10), || async {
        let row = rig
            .app
            .state
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SELECT failing_runs FROM monitors WHERE id = '{id}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        (row.try_get::<i32>("", "failing_runs").unwrap() == 1).then_some(())
    })
    .await;
    assert_eq!(monitor(&rig, id).await.state, MonitorState::Pending);

    due_now(&rig, id).await;
    let down = eventually(
        "down after two failing runs",
        Duration::from_secs(20),
        || async {
            let m = monitor(&rig, id).await;
            (m.state == MonitorState::Down).then_some(m)
        },
    )
    .await;
    let second_check = down.last_check_id.unwrap();
    assert_ne!(first_check, second_check);
    let incidents = rig.api.monitor_incidents(id).await.unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = &incidents[0];
    assert_eq!(incident.resolved_at, None);
    assert_eq!(incident.first_check_id, second_check);
    assert_eq!(incident.failing_agents[0].name, "probe-1");
    assert_eq!(
        incident.failing_agents[0].error_code.as_deref(),
        Some("refused")
    );
    let runs = runs_of(&rig, id).await;
    assert_eq!(runs.len(), 2, "each run is an ordinary check");
    assert_eq!(runs[0].monitor_id, Some(id));

    // The webhook answered 500 twice: the event is retried, then arrives signed.
    let (sig, body) = eventually("down delivered", Duration::from_secs(30), || async {
        received.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(
        sig,
        signed(&secret, &body),
        "X-Netcheck-Signature is the HMAC of the body"
    );
    // The webhook's wire shape (what a receiver parses) is checked field by field.
    let wire: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        wire["monitor"],
        json!({"id": id, "name": "shop \"tcp\"", "type": "tcp", "target": "127.0.0.1"})
    );
    let event: WebhookEvent = serde_json::from_str(&body).unwrap();
    assert_eq!(event.event, "down");
    assert_eq!(event.incident_id, Some(incident.id));
    assert_eq!(event.check_id, Some(second_check));
    assert_eq!(event.failing_agents[0].id, rig.agent_id);
    assert_eq!(
        event.failing_agents[0].error_code.as_deref(),
        Some("refused")
    );
    // The receiver has the body before the server records the answer: wait for the record.
    let deliveries = eventually("the delivery recorded", Duration::from_secs(10), || async {
        let d = rig.api.monitor_deliveries(id).await.unwrap();
        d.first()?.delivered_at.is_some().then_some(d)
    })
    .await;
    assert_eq!(deliveries[0].event, "down");
    assert_eq!(deliveries[0].attempts, 3, "{deliveries:?}");
    assert_eq!(deliveries[0].last_status, Some(200));

    // Metrics for Alertmanager.
    let metrics = metrics_page(&rig).await;
    assert!(
        metrics.contains(&format!(
            "netcheck_monitor_up{{id=\"{id}\",monitor=\"shop \\\"tcp\\\"\"}} 0"
        )),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("netcheck_monitor_agent_success{{id=\"{id}\",monitor=\"shop \\\"tcp\\\"\",agent=\"probe-1\"}} 0")));
    assert!(metrics.trim_end().ends_with("# EOF"));

    // Fixed: one good run brings it up, resolves the incident and says so, after `down`.
    let fixed = UpdateMonitor {
        check: Some(tcp_monitor("", json!({"port": open_port})).check),
        ..Default::default()
    };
    rig.api.update_monitor(id, &fixed).await.unwrap();
    due_now(&rig, id).await;
    eventually("up again", Duration::from_secs(20), || async {
        (monitor(&rig, id).await.state == MonitorState::Up).then_some(())
    })
    .await;
    let incidents = rig.api.monitor_incidents(id).await.unwrap();
    assert!(incidents[0].resolved_at.is_some());
    let events = eventually("up delivered", Duration::from_secs(20), || async {
        let got = received.lock().unwrap().clone();
        (got.len() >= 2).then_some(got)
    })
    .await;
    let kinds: Vec<String> = events
        .iter()
        .map(|(_, b)| serde_json::from_str::<WebhookEvent>(b).unwrap().event)
        .collect();
    assert_eq!(kinds, ["down", "up"], "in order, each once");
    let metrics = metrics_page(&rig).await;
    assert!(metrics.contains(&format!(
        "netcheck_monitor_up{{id=\"{id}\",monitor=\"shop \\\"tcp\\\"\"}} 1"
    )));
    assert!(metrics.contains("netcheck_monitor_duration_seconds{"));

    // Series: one point per run for the agent.
    let series = rig
        .api
        .monitor_series(id, &Default::default())
        .await
        .unwrap();
    assert_eq!(series[0].agent.name, "probe-1");
    let statuses: Vec<&str> = series[0].points.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["failed", "failed", "ok"]);
    assert!(series[0].points[2].value_ms.unwrap() > 0.0);

    // The list's roll-up: three runs this hour, two of them failing.
    let shop = MonitorQuery {
        q: Some("shop".into()),
        ..Default::default()
    };
    let listed = rig.api.monitors(&shop).await.unwrap();
    let stats = listed.monitors[0].stats.clone().unwrap();
    let uptime = stats.uptime_24h.unwrap();
    assert!((uptime - 100.0 / 3.0).abs() < 0.01, "{stats:?}");
    assert_eq!(stats.uptime_7d, stats.uptime_24h);
    let runs: u32 = stats.hours.iter().map(|h| h.runs).sum();
    let failing: u32 = stats.hours.iter().map(|h| h.failing_runs).sum();
    assert_eq!((runs, failing), (3, 2), "{stats:?}");
    assert!(
        stats.hours.iter().any(|h| h.value_ms > Some(0.0)),
        "{stats:?}"
    );
    assert_eq!(monitor(&rig, id).await.stats, Some(stats));

    // A test event, signed with a rotated secret.
    let new_secret = rig
        .api
        .rotate_monitor_secret(id)
        .await
        .unwrap()
        .webhook_secret;
    assert_ne!(new_secret, secret);
    rig.api.test_monitor(id).await.unwrap();
    let (sig, body) = eventually("test delivered", Duration::from_secs(20), || async {
        received.lock().unwrap().get(2).cloned()
    })
    .await;
    assert_eq!(
        serde_json::from_str::<WebhookEvent>(&body).unwrap().event,
        "test"
    );
    assert_eq!(sig, signed(&new_secret, &body));
    assert_eq!(received.lock().unwrap().len(), 3, "every event once");

    // Pause and resume.
    let pause = |paused| UpdateMonitor {
        paused: Some(paused),
        ..Default::default()
    };
    let paused = rig.api.update_monitor(id, &pause(true)).await.unwrap();
    assert_eq!((paused.paused, paused.state), (true, MonitorState::Paused));
    let resumed = rig.api.update_monitor(id, &pause(false)).await.unwrap();
    assert_eq!(resumed.state, MonitorState::Pending);

    // Owners only (admins see all).
    let eve = rig.app.api_as(&rig.app.user_token("eve").await);
    refused(eve.monitor(id).await, StatusCode::NOT_FOUND);
    let mine = eve.monitors(&MonitorQuery::default()).await.unwrap();
    assert_eq!(mine.total, 0);
    let shouted = MonitorQuery {
        q: Some("SHOP".into()),
        ..Default::default()
    };
    let all = rig.api.monitors(&shouted).await.unwrap();
    assert_eq!(all.total, 1, "a name substring, any letter case");
    assert_eq!(all.monitors[0].id, id);
    let down_only = MonitorQuery {
        state: Some(MonitorState::Down),
        ..Default::default()
    };
    assert_eq!(rig.api.monitors(&down_only).await.unwrap().total, 0);
    rig.api.delete_monitor(id).await.unwrap();
    let history = rig.app.check(&rig.token, first_check).await;
    assert_eq!(history.monitor_id, None, "runs stay in the history");
}

#[tokio::test]
async fn one_failing_agent_of_two_raises_nothing_when_two_must_agree() {
    let rig = monitor_rig().await;
    // A second agent whose own policy refuses loopback: its results fail (target_refused).
    let (_, token) = rig.app.create_agent("probe-2").await;
    let _second = rig
        .app
        .spawn_agent_with(&token, &["--allowed-networks", "10.0.0.0/8"]);
    eventually("probe-2 online", Duration::from_secs(20), || async {
        let list = rig.api.agents().await.unwrap();
        list.iter()
            .any(|a| a.name == "probe-2" && a.status == AgentStatus::Online)
            .then_some(())
    })
    .await;
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let mut body = CreateMonitor {
        alert: Some(AlertRule {
            min_failing_agents: 2,
            for_runs: 1,
        }),
        ..tcp_monitor("two must agree", json!({"port": port, "timeout_ms": 500}))
    };
    body.selection.agents = Some(vec!["probe-1".into(), "probe-2".into()]);
    let id = rig.api.create_monitor(&body).await.unwrap().monitor.id;
    let judged = eventually("first run judged", Duration::from_secs(20), || async {
        let m = monitor(&rig, id).await;
        (m.state != MonitorState::Pending).then_some(m)
    })
    .await;
    assert_eq!(
        judged.state,
        MonitorState::Up,
        "one failing agent of two is below the rule"
    );
    let run = rig
        .app
        .check(&rig.token, judged.last_check_id.unwrap())
        .await;
    let codes: Vec<&str> = run
        .results
        .iter()
        .map(|r| error_code_of(r).unwrap_or("ok"))
        .collect();
    assert_eq!(codes, ["ok", "target_refused"], "{run:?}");
    // Both fail: down.
    drop(open);
    due_now(&rig, id).await;
    eventually("down when both fail", Duration::from_secs(20), || async {
        (monitor(&rig, id).await.state == MonitorState::Down).then_some(())
    })
    .await;
    // Back to every online agent, which leaving the fields out would not do.
    let path = format!("/api/v1/monitors/{id}");
    let resp = call(
        &rig,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"all_agents": true, "limit": 1})),
    )
    .await;
    let (code, _) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(code, "invalid_selection");
    let rename = UpdateMonitor {
        name: Some("renamed".into()),
        ..Default::default()
    };
    let kept = rig.api.update_monitor(id, &rename).await.unwrap();
    assert_eq!(
        kept.selection.agents,
        Some(vec!["probe-1".into(), "probe-2".into()]),
        "left out: kept"
    );
    let all_agents = UpdateMonitor {
        all_agents: true,
        ..Default::default()
    };
    let everyone = rig.api.update_monitor(id, &all_agents).await.unwrap();
    assert_eq!(everyone.selection.agents, None, "{everyone:?}");
    assert_eq!(everyone.name, "renamed");
}

#[tokio::test]
async fn bad_monitors_get_422_naming_the_field() {
    let rig = monitor_rig().await;
    let base = json!({"name": "m", "check": {"type": "tcp", "target": "127.0.0.1", "options": {"port": 80}}});
    for (patch, field) in [
        (json!({"interval_secs": 5}), "interval_secs"),
        (json!({"interval_secs": 86401}), "interval_secs"),
        (json!({"name": ""}), "name"),
        (
            json!({"alert": {"min_failing_agents": 0}}),
            "alert.min_failing_agents",
        ),
        (json!({"alert": {"for_runs": 101}}), "alert.for_runs"),
        (
            json!({"notify": [{"webhook": "ftp://127.0.0.1/"}]}),
            "notify[0].webhook",
        ),
        (
            json!({"notify": [{"webhook": "http://10.1.2.3/hook"}]}),
            "notify[0].webhook",
        ),
        (
            json!({"same_agents_as": "0190a8a4-0000-7000-8000-000000000000"}),
            "same_agents_as",
        ),
        (
            json!({"locations": [{"country": "DEU"}]}),
            "locations[0].country",
        ),
        (
            json!({"check": {"type": "tcp", "target": "bad host!", "options": {"port": 80}}}),
            "check.target",
        ),
        (
            json!({"check": {"type": "http", "target": "http://127.0.0.1/", "options": {"expect": {"body_regex": "("}}}}),
            "check.options.expect.body_regex",
        ),
        (json!({"colour": "red"}), "colour"),
    ] {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        let resp = call(&rig, reqwest::Method::POST, "/api/v1/monitors", Some(body)).await;
        let (_, err) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(err["error"]["details"]["field"], field, "{patch}: {err}");
    }
    let resp = call(&rig, reqwest::Method::POST, "/api/v1/monitors", Some(json!({"name": "m", "check": {"type": "tcp", "target": "127.0.0.1", "options": {"port": 80}}, "agents": ["nobody"], "locations": [{"country": "DE"}]}))).await;
    let (code, _) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(code, "invalid_selection");
}

#[tokio::test]
async fn monitors_per_user_are_capped_and_their_runs_do_not_spend_the_check_quota() {
    let rig = rig_with(&[], |s| {
        s.monitors.max_per_user = 1;
        s.checks.rate_limit_per_minute = 1;
    })
    .await;
    let eve = rig.app.api_as(&rig.app.user_token("eve").await);
    // Eve spends her one agent run a minute on a check of her own…
    let tcp = crate::rig::check(CheckType::Tcp, "127.0.0.1", json!({"port": 9}));
    eve.create_check(&tcp).await.unwrap();
    refused(eve.create_check(&tcp).await, StatusCode::TOO_MANY_REQUESTS);
    // …and her monitor still runs.
    let body = |name: &str| tcp_monitor(name, json!({"port": 9}));
    let id = eve.create_monitor(&body("first")).await.unwrap().monitor.id;
    eventually(
        "the monitor's first run",
        Duration::from_secs(20),
        || async {
            let m = eve.monitor(id).await.unwrap();
            m.last_check_id.map(drop)
        },
    )
    .await;
    let capped = refused(
        eve.create_monitor(&body("second")).await,
        StatusCode::CONFLICT,
    );
    assert_eq!(capped.code(), Some(ErrorCode::TooManyMonitors), "{capped}");
    // Administrators are not capped.
    rig.api.create_monitor(&body("admin's")).await.unwrap();
}

#[tokio::test]
async fn monitors_share_their_owners_probe_budget() {
    // 12 probes a minute: two monitors every 10 s on the one agent (6 each) fit, a third not.
    let rig = rig_with(&[], |s| s.checks.rate_limit_per_minute = 12).await;
    let eve = rig.app.api_as(&rig.app.user_token("eve").await);
    let every_10s = |name: &str| CreateMonitor {
        interval_secs: Some(10),
        paused: true,
        ..tcp_monitor(name, json!({"port": 9}))
    };
    // Paused monitors cost nothing; resuming one is checked like creating it.
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(
            eve.create_monitor(&every_10s(name))
                .await
                .unwrap()
                .monitor
                .id,
        );
    }
    let resume = netcheck_proto::api::monitors::UpdateMonitor {
        paused: Some(false),
        ..Default::default()
    };
    eve.update_monitor(ids[0], &resume).await.unwrap();
    eve.update_monitor(ids[1], &resume).await.unwrap();
    // Her monitors take the whole budget: no check of her own is left this minute.
    let tcp = crate::rig::check(CheckType::Tcp, "127.0.0.1", json!({"port": 9}));
    refused(eve.create_check(&tcp).await, StatusCode::TOO_MANY_REQUESTS);
    let over = refused(
        eve.update_monitor(ids[2], &resume).await,
        StatusCode::CONFLICT,
    );
    assert_eq!(over.code(), Some(ErrorCode::OverBudget), "{over}");
    let running = CreateMonitor {
        paused: false,
        ..every_10s("d")
    };
    let over = refused(eve.create_monitor(&running).await, StatusCode::CONFLICT);
    assert_eq!(over.code(), Some(ErrorCode::OverBudget), "{over}");
    assert!(over.to_string().contains("6.0 probes a minute"), "{over}");
    // Pausing one frees its share: a monitor every minute (1 a minute) then fits.
    let pause = netcheck_proto::api::monitors::UpdateMonitor {
        paused: Some(true),
        ..Default::default()
    };
    eve.update_monitor(ids[1], &pause).await.unwrap();
    let every_minute = CreateMonitor {
        interval_secs: Some(60),
        ..running
    };
    eve.create_monitor(&every_minute).await.unwrap();
    // 12 - 6 - 1 leaves her five agent runs a minute.
    for _ in 0..5 {
        eve.create_check(&tcp).await.unwrap();
    }
    refused(eve.create_check(&tcp).await, StatusCode::TOO_MANY_REQUESTS);
    // Administrators are not limited.
    let admins = CreateMonitor {
        paused: false,
        ..every_10s("admin's")
    };
    rig.api.create_monitor(&admins).await.unwrap();
}
