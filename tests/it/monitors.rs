//! Monitors through the HTTP API with a real agent: runs, the alert rule, incidents, signed
//! webhooks delivered in order with retries, series, metrics, pause/resume, ownership, and
//! exactly one run per due tick across server instances.

use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::rig::{rig_with, Rig};
use crate::webhook_receiver::{receiver, signed};

pub(crate) async fn monitor_rig() -> Rig {
    rig_with(&[], |s| {
        s.notify.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        s.notify.retry_first_ms = 300;
    })
    .await
}

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

/// Makes the monitor due now (instead of waiting its interval).
pub(crate) async fn due_now(rig: &Rig, id: &str) {
    rig.app
        .state
        .db
        .execute_unprepared(&format!(
            "UPDATE monitors SET next_run_at = now() WHERE id = '{id}'"
        ))
        .await
        .unwrap();
}

pub(crate) async fn monitor(rig: &Rig, id: &str) -> Value {
    rig.app
        .get_json(&rig.token, &format!("/api/v1/monitors/{id}"))
        .await
}

#[tokio::test]
async fn a_monitor_alerts_when_agents_agree_and_webhooks_arrive_signed_and_in_order() {
    let rig = monitor_rig().await;
    let (hook, received) = receiver(2).await;
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let resp = call(&rig, reqwest::Method::POST, "/api/v1/monitors", Some(json!({
        "name": "shop \"tcp\"", "check": {"type": "tcp", "target": "127.0.0.1", "options": {"port": closed, "timeout_ms": 500}},
        "interval_secs": 3600, "alert": {"min_failing_agents": 1, "for_runs": 2}, "notify": [{"webhook": hook}],
    }))).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    let secret = created["webhook_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    let id = created["monitor"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["monitor"]["state"], "pending");
    assert_eq!(
        created["monitor"]["alert"],
        json!({"min_failing_agents": 1, "for_runs": 2})
    );

    // First failing run: still pending (the rule wants two in a row).
    let first = eventually("first run judged", Duration::from_secs(20), || async {
        let m = monitor(&rig, &id).await;
        let runs = rig
            .app
            .get_json(&rig.token, &format!("/api/v1/checks?monitor={id}"))
            .await;
        let done = runs["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "finished");
        (done && m["last_check_id"].is_string()).then_some(m)
    })
    .await;
    let first_check = first["last_check_id"].as_str().unwrap().to_string();
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
    assert_eq!(monitor(&rig, &id).await["state"], "pending");

    due_now(&rig, &id).await;
    let down = eventually(
        "down after two failing runs",
        Duration::from_secs(20),
        || async {
            let m = monitor(&rig, &id).await;
            (m["state"] == "down").then_some(m)
        },
    )
    .await;
    let second_check = down["last_check_id"].as_str().unwrap().to_string();
    assert_ne!(first_check, second_check);
    let incidents = rig
        .app
        .get_json(&rig.token, &format!("/api/v1/monitors/{id}/incidents"))
        .await;
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    let incident = &incidents[0];
    assert!(incident["resolved_at"].is_null());
    assert_eq!(incident["first_check_id"], second_check.as_str());
    assert_eq!(incident["failing_agents"][0]["name"], "probe-1");
    assert_eq!(incident["failing_agents"][0]["error_code"], "refused");
    let runs = rig
        .app
        .get_json(&rig.token, &format!("/api/v1/checks?monitor={id}"))
        .await;
    assert_eq!(
        runs["checks"].as_array().unwrap().len(),
        2,
        "each run is an ordinary check"
    );
    assert_eq!(runs["checks"][0]["monitor_id"], id.as_str());

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
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["event"], "down");
    assert_eq!(
        event["monitor"],
        json!({"id": id, "name": "shop \"tcp\"", "type": "tcp", "target": "127.0.0.1"})
    );
    assert_eq!(event["incident_id"], incident["id"]);
    assert_eq!(event["check_id"], second_check.as_str());
    assert_eq!(event["failing_agents"][0]["id"], rig.agent_id.as_str());
    assert_eq!(event["failing_agents"][0]["error_code"], "refused");
    // The receiver has the body before the server records the answer: wait for the record.
    let deliveries = eventually("the delivery recorded", Duration::from_secs(10), || async {
        let d = rig
            .app
            .get_json(&rig.token, &format!("/api/v1/monitors/{id}/deliveries"))
            .await;
        d[0]["delivered_at"].is_string().then_some(d)
    })
    .await;
    assert_eq!(deliveries[0]["event"], "down");
    assert_eq!(deliveries[0]["attempts"], 3, "{deliveries}");
    assert_eq!(deliveries[0]["last_status"], 200);
    assert!(deliveries[0]["delivered_at"].is_string());

    // Metrics for Alertmanager.
    let metrics = rig
        .app
        .client
        .get(rig.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "netcheck_monitor_up{{id=\"{id}\",monitor=\"shop \\\"tcp\\\"\"}} 0"
        )),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("netcheck_monitor_agent_success{{id=\"{id}\",monitor=\"shop \\\"tcp\\\"\",agent=\"probe-1\"}} 0")));
    assert!(metrics.trim_end().ends_with("# EOF"));

    // Fixed: one good run brings it up, resolves the incident and says so, after `down`.
    let resp = call(
        &rig,
        reqwest::Method::PATCH,
        &format!("/api/v1/monitors/{id}"),
        Some(json!({
            "check": {"type": "tcp", "target": "127.0.0.1", "options": {"port": open_port}},
        })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    due_now(&rig, &id).await;
    eventually("up again", Duration::from_secs(20), || async {
        (monitor(&rig, &id).await["state"] == "up").then_some(())
    })
    .await;
    let incidents = rig
        .app
        .get_json(&rig.token, &format!("/api/v1/monitors/{id}/incidents"))
        .await;
    assert!(incidents[0]["resolved_at"].is_string());
    let events = eventually("up delivered", Duration::from_secs(20), || async {
        let got = received.lock().unwrap().clone();
        (got.len() >= 2).then_some(got)
    })
    .await;
    let kinds: Vec<String> = events
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, ["down", "up"], "in order, each once");
    let metrics = rig
        .app
        .client
        .get(rig.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(&format!(
        "netcheck_monitor_up{{id=\"{id}\",monitor=\"shop \\\"tcp\\\"\"}} 1"
    )));
    assert!(metrics.contains("netcheck_monitor_duration_seconds{"));

    // Series: one point per run for the agent.
    let series = rig
        .app
        .get_json(&rig.token, &format!("/api/v1/monitors/{id}/series"))
        .await;
    assert_eq!(series[0]["agent"]["name"], "probe-1");
    let statuses: Vec<&str> = series[0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "failed", "ok"]);
    assert!(series[0]["points"][2]["value_ms"].as_f64().unwrap() > 0.0);

    // The list's roll-up: three runs this hour, two of them failing.
    let listed = rig
        .app
        .get_json(&rig.token, "/api/v1/monitors?q=shop")
        .await;
    let stats = &listed["monitors"][0]["stats"];
    let uptime = stats["uptime_24h"].as_f64().unwrap();
    assert!((uptime - 100.0 / 3.0).abs() < 0.01, "{stats}");
    assert_eq!(stats["uptime_7d"], stats["uptime_24h"]);
    let hours = stats["hours"].as_array().unwrap();
    let runs: u64 = hours.iter().map(|h| h["runs"].as_u64().unwrap()).sum();
    let failing: u64 = hours
        .iter()
        .map(|h| h["failing_runs"].as_u64().unwrap())
        .sum();
    assert_eq!((runs, failing), (3, 2), "{stats}");
    assert!(
        hours.iter().any(|h| h["value_ms"].as_f64() > Some(0.0)),
        "{stats}"
    );
    assert_eq!(monitor(&rig, &id).await["stats"], *stats);

    // A test event, signed with a rotated secret.
    let rotated: Value = call(
        &rig,
        reqwest::Method::POST,
        &format!("/api/v1/monitors/{id}/secret"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let new_secret = rotated["webhook_secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    let resp = call(
        &rig,
        reqwest::Method::POST,
        &format!("/api/v1/monitors/{id}/test"),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let (sig, body) = eventually("test delivered", Duration::from_secs(20), || async {
        received.lock().unwrap().get(2).cloned()
    })
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["event"],
        "test"
    );
    assert_eq!(sig, signed(&new_secret, &body));
    assert_eq!(received.lock().unwrap().len(), 3, "every event once");

    // Pause and resume.
    let paused: Value = call(
        &rig,
        reqwest::Method::PATCH,
        &format!("/api/v1/monitors/{id}"),
        Some(json!({"paused": true})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (paused["paused"].as_bool(), paused["state"].as_str()),
        (Some(true), Some("paused"))
    );
    let resumed: Value = call(
        &rig,
        reqwest::Method::PATCH,
        &format!("/api/v1/monitors/{id}"),
        Some(json!({"paused": false})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(resumed["state"], "pending");

    // Owners only (admins see all).
    let eve = rig.app.user_token("eve").await;
    let resp = rig
        .app
        .client
        .get(rig.app.url(&format!("/api/v1/monitors/{id}")))
        .bearer_auth(&eve)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let mine = rig.app.get_json(&eve, "/api/v1/monitors").await;
    assert_eq!(mine["total"], 0);
    let all = rig
        .app
        .get_json(&rig.token, "/api/v1/monitors?q=SHOP")
        .await;
    assert_eq!(all["total"], 1, "a name substring, any letter case");
    assert_eq!(all["monitors"][0]["id"], id.as_str());
    let none = rig
        .app
        .get_json(&rig.token, "/api/v1/monitors?state=down")
        .await;
    assert_eq!(none["total"], 0);
    let resp = call(
        &rig,
        reqwest::Method::DELETE,
        &format!("/api/v1/monitors/{id}"),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let history = rig.app.check(&rig.token, &first_check).await;
    assert!(history["monitor_id"].is_null(), "runs stay in the history");
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
        let list = rig.app.get_json(&rig.token, "/api/v1/agents").await;
        list.as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "probe-2" && a["status"] == "online")
            .then_some(())
    })
    .await;
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let resp = call(&rig, reqwest::Method::POST, "/api/v1/monitors", Some(json!({
        "name": "two must agree", "check": {"type": "tcp", "target": "127.0.0.1", "options": {"port": port, "timeout_ms": 500}},
        "agents": ["probe-1", "probe-2"], "interval_secs": 3600, "alert": {"min_failing_agents": 2, "for_runs": 1},
    }))).await;
    let id = resp.json::<Value>().await.unwrap()["monitor"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let judged = eventually("first run judged", Duration::from_secs(20), || async {
        let m = monitor(&rig, &id).await;
        (m["state"] != "pending").then_some(m)
    })
    .await;
    assert_eq!(
        judged["state"], "up",
        "one failing agent of two is below the rule"
    );
    let run = rig
        .app
        .check(&rig.token, judged["last_check_id"].as_str().unwrap())
        .await;
    let codes: Vec<&str> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"]["code"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(codes, ["ok", "target_refused"], "{run}");
    // Both fail: down.
    drop(open);
    due_now(&rig, &id).await;
    eventually("down when both fail", Duration::from_secs(20), || async {
        (monitor(&rig, &id).await["state"] == "down").then_some(())
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
    let resp = call(
        &rig,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"name": "renamed"})),
    )
    .await;
    let kept: Value = resp.json().await.unwrap();
    assert_eq!(
        kept["agents"],
        json!(["probe-1", "probe-2"]),
        "left out: kept"
    );
    let resp = call(
        &rig,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"all_agents": true})),
    )
    .await;
    let everyone: Value = resp.json().await.unwrap();
    assert!(everyone.get("agents").is_none(), "{everyone}");
    assert_eq!(everyone["name"], "renamed");
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
    let eve = rig.app.user_token("eve").await;
    let post = |path: &'static str, body: Value| {
        let req = rig
            .app
            .client
            .post(rig.app.url(path))
            .bearer_auth(&eve)
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    // Eve spends her one agent run a minute on a check of her own…
    let resp = post(
        "/api/v1/checks",
        json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": 9}}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = post(
        "/api/v1/checks",
        json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": 9}}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // …and her monitor still runs.
    let body = |name: &str| json!({"name": name, "check": {"type": "tcp", "target": "127.0.0.1", "options": {"port": 9}}, "interval_secs": 3600});
    let resp = post("/api/v1/monitors", body("first")).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.unwrap()["monitor"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    eventually(
        "the monitor's first run",
        Duration::from_secs(20),
        || async {
            let m = rig
                .app
                .get_json(&eve, &format!("/api/v1/monitors/{id}"))
                .await;
            m["last_check_id"].is_string().then_some(())
        },
    )
    .await;
    let (code, body) = error_code(
        post("/api/v1/monitors", body("second")).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(code, "too_many_monitors", "{body}");
    // Administrators are not capped.
    let resp = call(&rig, reqwest::Method::POST, "/api/v1/monitors", Some(json!({"name": "admin's", "check": {"type": "tcp", "target": "127.0.0.1", "options": {"port": 9}}, "interval_secs": 3600}))).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}
