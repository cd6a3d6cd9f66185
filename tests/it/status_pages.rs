//! Status pages with real agents in three places: the public JSON shows which places see a
//! monitor down and its incident, then the recovery; private pages stay hidden; badges are
//! well-formed SVG; 90 daily bars come from seeded roll-ups.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use netcheck_proto::api::agents::{AgentStatus, UpdateAgent};
use netcheck_proto::api::monitors::{
    AlertRule, CreateMonitor, CreateStatusPage, MonitorCheck, PublicPage, StatusGroup,
    StatusGroupMonitor, StatusState,
};
use netcheck_proto::api::FixedLocation;
use netcheck_proto::check::{CheckSpec, CheckType};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;
use crate::monitors::{call, monitor_rig, tcp_monitor};
use crate::targets::{dns_server, gated_dns_server};

pub(crate) fn page_of(slug: &str, monitors: &[(Uuid, Option<&str>)]) -> CreateStatusPage {
    CreateStatusPage {
        slug: slug.into(),
        title: "Acme status".into(),
        description: Some("Is Acme up?".into()),
        public: true,
        show_targets: false,
        groups: vec![StatusGroup {
            name: "Core".into(),
            monitors: monitors
                .iter()
                .map(|(id, name)| StatusGroupMonitor {
                    id: *id,
                    display_name: name.map(Into::into),
                })
                .collect(),
        }],
    }
}

/// An anonymous reader gets 404 at `path`.
async fn not_found(app: &TestApp, path: &str) {
    let resp = app.client.get(app.url(path)).send().await.unwrap();
    error_code(resp, StatusCode::NOT_FOUND).await;
}

/// The public page as an anonymous reader gets it: its body and ETag.
pub(crate) async fn public(app: &TestApp, slug: &str) -> (PublicPage, String, String) {
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/status/{slug}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("public"));
    let text = resp.text().await.unwrap();
    (serde_json::from_str(&text).unwrap(), etag, text)
}

#[tokio::test]
async fn a_public_page_shows_where_a_monitor_is_down_and_its_recovery() {
    let app = spawn_app_with(|s| {
        s.checks.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        s.checks.grace_ms = 1500;
    })
    .await;
    let admin = app.admin().await;
    // Two agents resolve with a DNS server that is silent until the recovery; one with a
    // working one. A DNS monitor of `example.test` fails in two places, then in none.
    let gate = Arc::new(AtomicBool::new(false));
    let silent = gated_dns_server(gate.clone()).await.to_string();
    let working = dns_server().await.to_string();
    let places = [
        ("fra-agent", "DE", "Frankfurt", &silent),
        ("par-agent", "FR", "Paris", &silent),
        ("waw-agent", "PL", "Warsaw", &working),
    ];
    let mut agents = Vec::new();
    for (name, cc, city, resolver) in places {
        let (agent, token) = app.create_agent(name).await;
        let location = FixedLocation {
            country_code: cc.into(),
            city: Some(city.into()),
            ..Default::default()
        };
        let change = UpdateAgent {
            location: Some(Some(location)),
            ..Default::default()
        };
        admin.update_agent(agent.id, &change).await.unwrap();
        agents.push((
            agent.id,
            app.spawn_agent_with(&token, &["--resolver", resolver]),
        ));
    }
    for (id, _) in &agents {
        eventually("agent online", Duration::from_secs(20), || async {
            (app.agent(*id).await.status == AgentStatus::Online).then_some(())
        })
        .await;
    }
    let dns = admin
        .create_monitor(&CreateMonitor {
            name: "resolver".into(),
            check: MonitorCheck::new(
                CheckSpec::from_parts(CheckType::Dns, &json!({"timeout_ms": 1000})).unwrap(),
                "example.test",
            ),
            selection: Default::default(),
            interval_secs: Some(3600),
            alert: Some(AlertRule {
                min_failing_agents: 2,
                for_runs: 1,
            }),
            notify: Vec::new(),
            paused: false,
            unknown: Default::default(),
        })
        .await
        .unwrap()
        .monitor
        .id;
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let tcp = admin
        .create_monitor(&tcp_monitor("shop", json!({"port": port})))
        .await
        .unwrap()
        .monitor
        .id;
    admin
        .create_status_page(&page_of(
            "acme",
            &[(dns, Some("Name service")), (tcp, None)],
        ))
        .await
        .unwrap();
    let hidden = CreateStatusPage {
        public: false,
        ..page_of("acme-internal", &[(dns, None)])
    };
    admin.create_status_page(&hidden).await.unwrap();
    for path in [
        "acme-internal",
        "no-such-page",
        &format!("acme-internal/badge/{dns}"),
    ] {
        not_found(&app, &format!("/api/v1/status/{path}")).await;
    }

    let page = eventually("down from two places", Duration::from_secs(30), || async {
        let (page, _, _) = public(&app, "acme").await;
        let states: Vec<StatusState> = page.groups[0].monitors.iter().map(|m| m.state).collect();
        (states == [StatusState::Down, StatusState::Up]).then_some(page)
    })
    .await;
    assert_eq!(page.state, StatusState::Degraded);
    let m = &page.groups[0].monitors[0];
    assert_eq!(m.display_name, "Name service");
    assert_eq!(
        m.target, None,
        "targets are shown only when the page says so"
    );
    let seen: Vec<(String, StatusState)> = m
        .places
        .iter()
        .map(|p| (p.city.clone().unwrap(), p.state))
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (city, state) in [
        ("Frankfurt", StatusState::Down),
        ("Paris", StatusState::Down),
        ("Warsaw", StatusState::Up),
    ] {
        assert!(seen.contains(&(city.to_string(), state)), "{seen:?}");
    }
    assert_eq!(page.groups[0].monitors[1].display_name, "shop");
    assert_eq!(m.days.len(), 90);
    assert_eq!(m.days.last().unwrap().date, Utc::now().date_naive());
    assert_eq!(m.days.last().unwrap().incidents, 1);
    assert_eq!(m.uptime.h24, Some(0.0));
    assert_eq!(page.incidents.len(), 1);
    let incident = &page.incidents[0];
    assert_eq!(incident.monitor, "Name service");
    assert_eq!(incident.resolved_at, None);
    let mut cities: Vec<String> = incident
        .places
        .iter()
        .filter_map(|p| p.city.clone())
        .collect();
    cities.sort();
    assert_eq!(cities, ["Frankfurt", "Paris"]);
    let (_, etag, text) = public(&app, "acme").await;
    for secret in [
        "fra-agent",
        "par-agent",
        "waw-agent",
        "example.test",
        "127.0.0.1",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    for (id, _) in &agents {
        assert!(!text.contains(&id.to_string()), "agent id leaked");
    }
    // A reader holding the ETag gets 304 while nothing changed.
    let again = app
        .client
        .get(app.url("/api/v1/status/acme"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // The badge says so, as well-formed SVG.
    let badge = |query: &'static str| {
        let url = app.url(&format!("/api/v1/status/acme/badge/{dns}?{query}"));
        let client = app.client.clone();
        async move {
            let resp = client.get(url).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()["content-type"], "image/svg+xml");
            resp.text().await.unwrap()
        }
    };
    let svg = badge("kind=status").await;
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let title = doc
        .descendants()
        .find(|n| n.has_tag_name("title"))
        .and_then(|n| n.text())
        .unwrap();
    assert_eq!(title, "Name service: down");
    let svg = badge("kind=uptime&window=7d").await;
    roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert!(svg.contains("Name service 7d: 0%"), "{svg}");
    not_found(
        &app,
        &format!("/api/v1/status/acme/badge/{}", Uuid::now_v7()),
    )
    .await;

    // Recovery: the resolver answers again.
    gate.store(true, Ordering::SeqCst);
    due_now_in(&app, dns).await;
    let page = eventually("up again", Duration::from_secs(30), || async {
        let (page, _, _) = public(&app, "acme").await;
        (page.state == StatusState::Up).then_some(page)
    })
    .await;
    let m = &page.groups[0].monitors[0];
    assert!(
        m.places.iter().all(|p| p.state == StatusState::Up),
        "{:?}",
        m.places
    );
    assert_eq!(m.uptime.h24, Some(50.0), "one run down, one up");
    assert!(
        page.incidents[0].resolved_at.is_some(),
        "the incident is history now"
    );
    let (_, new_etag, _) = public(&app, "acme").await;
    assert_ne!(new_etag, etag);
    let svg = badge("").await;
    assert!(svg.contains("Name service: up"), "{svg}");
}

async fn due_now_in(app: &TestApp, id: Uuid) {
    app.state
        .db
        .execute_unprepared(&format!(
            "UPDATE monitors SET next_run_at = now() WHERE id = '{id}'"
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn ninety_daily_bars_come_from_the_roll_ups() {
    let rig = monitor_rig().await;
    let paused = CreateMonitor {
        paused: true,
        ..tcp_monitor("db", json!({"port": 1}))
    };
    let id = rig.api.create_monitor(&paused).await.unwrap().monitor.id;
    // 120 days of history: day k ago had 100 runs and k % 5 failing ones; one incident 3 days ago.
    rig.app
        .state
        .db
        .execute_unprepared(&format!(
            "INSERT INTO monitor_days (monitor_id, day, runs, failing_runs)
             SELECT '{id}', (now() AT TIME ZONE 'UTC')::date - k, 100, k % 5
             FROM generate_series(0, 119) k WHERE k <> 10;
             INSERT INTO monitor_incidents (id, monitor_id, started_at, resolved_at, failing_agents, first_check_id)
             VALUES ('{}', '{id}', now() - interval '3 days', now() - interval '3 days' + interval '5 minutes', '[]', '{}')",
            Uuid::now_v7(),
            Uuid::now_v7()
        ))
        .await
        .unwrap();
    let page = rig
        .api
        .create_status_page(&page_of("bars", &[(id, None)]))
        .await
        .unwrap();
    assert_eq!(page.groups[0].monitors[0].id, id);
    let (view, _, _) = public(&rig.app, "bars").await;
    let m = &view.groups[0].monitors[0];
    assert_eq!(m.days.len(), 90);
    let today = Utc::now().date_naive();
    for (i, day) in m.days.iter().enumerate() {
        let k = 89 - i as i64;
        assert_eq!(day.date, today - chrono::Duration::days(k), "oldest first");
        let expected = (k != 10).then_some(100.0 - (k % 5) as f64);
        assert_eq!(day.uptime, expected, "{k} days ago");
        assert_eq!(day.incidents, u32::from(k == 3), "{k} days ago");
    }
    // 7 days: k = 0..6 fail 0+1+2+3+4+0+1 = 11 of 700 runs.
    assert_eq!(
        m.uptime.d7,
        Some(((700.0 - 11.0) / 700.0 * 10_000.0_f64).round() / 100.0)
    );
    // 89 days with runs (the missing one counts for nothing, not as downtime), 180 failing.
    let d90 = ((8900.0 - 180.0) / 8900.0 * 10_000.0_f64).round() / 100.0;
    assert_eq!(m.uptime.d90, Some(d90));
    assert_eq!(
        m.state,
        StatusState::Unknown,
        "a paused monitor has no verdict"
    );
    assert_eq!(view.incidents.len(), 1);
    assert!(view.incidents[0].resolved_at.is_some());
}

#[tokio::test]
async fn status_pages_belong_to_their_owner_and_check_what_they_list() {
    let rig = monitor_rig().await;
    let mine = rig
        .api
        .create_monitor(&CreateMonitor {
            paused: true,
            ..tcp_monitor("mine", json!({"port": 1}))
        })
        .await
        .unwrap()
        .monitor
        .id;
    let created = rig
        .api
        .create_status_page(&page_of("team-page", &[(mine, None)]))
        .await
        .unwrap();
    let again = call(
        &rig,
        reqwest::Method::POST,
        "/api/v1/status-pages",
        Some(json!({"slug": "team-page", "title": "x"})),
    )
    .await;
    assert_eq!(
        error_code(again, StatusCode::CONFLICT).await.0,
        "slug_taken"
    );
    for (body, field) in [
        (json!({"slug": "No Caps", "title": "x"}), "slug"),
        (json!({"slug": "ok-slug", "title": ""}), "title"),
        (
            json!({"slug": "ok-slug", "title": "x", "groups": [{"name": "g", "monitors": [{"id": Uuid::now_v7()}]}]}),
            "groups[0].monitors[0].id",
        ),
        (
            json!({"slug": "ok-slug", "title": "x", "groups": [{"name": "g", "monitors": [{"id": mine}, {"id": mine}]}]}),
            "groups[0].monitors[1].id",
        ),
    ] {
        let resp = call(
            &rig,
            reqwest::Method::POST,
            "/api/v1/status-pages",
            Some(body),
        )
        .await;
        let (code, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(code, "invalid_field");
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
    }
    // Another user sees none of it and cannot list the admin's monitor on a page.
    let token = rig.app.user_token("bob").await;
    let bob = rig.app.api_as(&token);
    assert!(bob.status_pages().await.unwrap().is_empty());
    refused(bob.status_page(created.id).await, StatusCode::NOT_FOUND);
    let stolen = bob
        .create_status_page(&page_of("bobs", &[(mine, None)]))
        .await;
    refused(stolen, StatusCode::UNPROCESSABLE_ENTITY);
    refused(
        bob.delete_status_page(created.id).await,
        StatusCode::NOT_FOUND,
    );
    // The owner changes and deletes it.
    let changed = rig
        .api
        .update_status_page(
            created.id,
            &netcheck_proto::api::monitors::UpdateStatusPage {
                title: Some("Renamed".into()),
                description: Some(None),
                show_targets: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (changed.title.as_str(), changed.description),
        ("Renamed", None)
    );
    let (view, _, _) = public(&rig.app, "team-page").await;
    assert_eq!(
        view.groups[0].monitors[0].target.as_deref(),
        Some("127.0.0.1")
    );
    rig.api.delete_status_page(created.id).await.unwrap();
    not_found(&rig.app, "/api/v1/status/team-page").await;
}
