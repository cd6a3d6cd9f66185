//! Maintenance windows: a failing monitor in a window opens no incident and sends nothing,
//! its state and its status page read `maintenance`; after the window, alerts resume.

use std::time::Duration;

use chrono::Utc;
use netcheck_proto::api::monitors::{
    AlertRule, CreateMaintenance, CreateMonitor, MonitorState, Notify, StatusState,
};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;
use crate::monitors::{call, due_now, monitor, monitor_rig, tcp_monitor};
use crate::status_pages::{page_of, public};
use crate::webhook_receiver::receiver;

#[tokio::test]
async fn a_maintenance_window_silences_a_failing_monitor_until_it_ends() {
    let rig = monitor_rig().await;
    let (hook, received) = receiver(0).await;
    let closed = unused_port();
    let body = CreateMonitor {
        alert: Some(AlertRule {
            min_failing_agents: 1,
            for_runs: 1,
        }),
        notify: vec![Notify::Webhook(hook)],
        paused: true,
        ..tcp_monitor("db", json!({"port": closed, "timeout_ms": 500}))
    };
    let id = rig.api.create_monitor(&body).await.unwrap().monitor.id;
    let page = rig
        .api
        .create_status_page(&page_of("maint", &[(id, Some("Database"))]))
        .await
        .unwrap();
    let now = Utc::now();
    let window = rig
        .api
        .create_maintenance(&CreateMaintenance {
            monitors: vec![id],
            starts_at: Some(now - chrono::Duration::minutes(1)),
            ends_at: Some(now + chrono::Duration::hours(1)),
            note: "Database upgrade".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(window.active);
    assert_eq!(window.monitors, vec![id]);
    assert_eq!(monitor(&rig, id).await.state, MonitorState::Paused);
    rig.api
        .update_monitor(
            id,
            &netcheck_proto::api::monitors::UpdateMonitor {
                paused: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Two failing runs inside the window: judged, but no incident and nothing sent.
    for _ in 0..2 {
        let before = monitor(&rig, id).await.last_check_id;
        due_now(&rig, id).await;
        eventually("run judged in maintenance", Duration::from_secs(20), || async {
            let m = monitor(&rig, id).await;
            let judged = rig
                .app
                .state
                .db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DatabaseBackend::Postgres,
                    format!("SELECT last_evaluated_check_id IS NOT DISTINCT FROM last_check_id AS done FROM monitors WHERE id = '{id}'"),
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<bool>("", "done")
                .unwrap();
            (m.last_check_id != before && judged).then_some(m)
        })
        .await;
    }
    let m = monitor(&rig, id).await;
    assert_eq!(m.state, MonitorState::Maintenance);
    assert!(rig.api.monitor_incidents(id).await.unwrap().is_empty());
    let (view, _, _) = public(&rig.app, "maint").await;
    assert_eq!(view.state, StatusState::Maintenance);
    assert_eq!(view.groups[0].monitors[0].state, StatusState::Maintenance);
    assert_eq!(view.maintenance.len(), 1);
    assert_eq!(view.maintenance[0].note, "Database upgrade");
    assert_eq!(view.maintenance[0].monitors, ["Database"]);
    // A weekly window on the page shows as upcoming or current, for every monitor on it.
    let weekly = call(
        &rig,
        reqwest::Method::POST,
        "/api/v1/maintenance",
        Some(json!({"status_page": page.id, "weekly": {"day": "sunday", "start": "23:00", "duration_minutes": 120}, "note": "weekly"})),
    )
    .await;
    assert_eq!(weekly.status(), StatusCode::CREATED);
    let weekly: serde_json::Value = weekly.json().await.unwrap();
    assert_eq!(weekly["monitors"], json!([id]));
    assert_eq!(weekly["schedule"]["weekly"]["start"], "23:00");
    for (body, field) in [
        (
            json!({"monitors": [id], "weekly": {"day": "sunday", "start": "25:00", "duration_minutes": 5}}),
            "weekly.start",
        ),
        (
            json!({"monitors": [id], "starts_at": now, "ends_at": now - chrono::Duration::hours(1)}),
            "ends_at",
        ),
        (
            json!({"monitors": [], "starts_at": now, "ends_at": now}),
            "monitors",
        ),
        (json!({"monitors": [id]}), "starts_at"),
    ] {
        let resp = call(
            &rig,
            reqwest::Method::POST,
            "/api/v1/maintenance",
            Some(body),
        )
        .await;
        let (_, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
    }
    let ids: Vec<Uuid> = rig
        .api
        .maintenance_windows()
        .await
        .unwrap()
        .iter()
        .map(|w| w.id)
        .collect();
    assert!(ids.contains(&window.id) && ids.len() == 2);
    assert!(
        received.lock().unwrap().is_empty(),
        "nothing sent during the window"
    );

    // The window ends: the next failing run alerts.
    rig.api.delete_maintenance(window.id).await.unwrap();
    let weekly_id: Uuid = serde_json::from_value(weekly["id"].clone()).unwrap();
    if weekly["active"] == json!(true) {
        rig.api.delete_maintenance(weekly_id).await.unwrap();
    }
    due_now(&rig, id).await;
    eventually("down after the window", Duration::from_secs(20), || async {
        (monitor(&rig, id).await.state == MonitorState::Down).then_some(())
    })
    .await;
    assert_eq!(rig.api.monitor_incidents(id).await.unwrap().len(), 1);
    eventually("alert delivered", Duration::from_secs(20), || async {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|(_, body)| body.contains("\"event\":\"down\""))
            .then_some(())
    })
    .await;
}
