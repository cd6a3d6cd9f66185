//! Monitor scheduling with real server instances: exactly one run per due tick across
//! instances, one catch-up after downtime, no runs while paused, and a restart mid-interval that
//! keeps every monitor's time.

use std::time::Duration;

use netcheck_proto::api::monitors::{CreateMonitor, MonitorState, UpdateMonitor};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::*;
use crate::monitors::{monitor, monitor_rig, tcp_monitor};

#[tokio::test]
async fn exactly_one_run_per_due_tick_across_instances_and_one_catch_up() {
    let rig = monitor_rig().await;
    let shared = rig.app.settings.clone();
    let _second = spawn_app_with(|s| *s = shared).await;
    let body = tcp_monitor("twins", json!({"port": 9, "timeout_ms": 200}));
    let id = rig.api.create_monitor(&body).await.unwrap().monitor.id;
    let runs = || async {
        let row = rig
            .app
            .state
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SELECT count(*) AS n FROM checks WHERE monitor_id = '{id}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };
    for expected in 1..=4 {
        if expected > 1 {
            // Down for five hours: one catch-up run, not five.
            rig.app
                .state
                .db
                .execute_unprepared(&format!(
                "UPDATE monitors SET next_run_at = now() - interval '5 hours' WHERE id = '{id}'"
            ))
                .await
                .unwrap();
        }
        eventually("the run", Duration::from_secs(20), || async {
            let next = monitor(&rig, id).await.next_run_at;
            (next > chrono::Utc::now() && runs().await == expected).then_some(())
        })
        .await;
        // Two instances tick every second; give both a few ticks to (not) run it again.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(runs().await, expected, "exactly one run per due tick");
        let next = monitor(&rig, id).await.next_run_at;
        assert!(
            next <= chrono::Utc::now() + chrono::Duration::hours(1),
            "within one interval: {next}"
        );
    }
}

#[tokio::test]
async fn a_paused_monitor_does_not_run() {
    let rig = monitor_rig().await;
    let body = CreateMonitor {
        interval_secs: Some(10),
        paused: true,
        ..tcp_monitor("resting", json!({"port": 9}))
    };
    let created = rig.api.create_monitor(&body).await.unwrap();
    let id = created.monitor.id;
    assert_eq!(created.monitor.state, MonitorState::Paused);
    // Due for an hour, yet paused: rounds of the runner leave it alone.
    rig.app
        .state
        .db
        .execute_unprepared(&format!(
            "UPDATE monitors SET next_run_at = now() - interval '1 hour' WHERE id = '{id}'"
        ))
        .await
        .unwrap();
    for _ in 0..3 {
        netcheck::server::monitors::runner::start_due(&rig.app.state)
            .await
            .unwrap();
    }
    let m = monitor(&rig, id).await;
    assert!(
        m.last_check_id.is_none() && m.last_run_at.is_none(),
        "{m:?}"
    );
    // Resumed, it runs at once.
    let resume = UpdateMonitor {
        paused: Some(false),
        ..Default::default()
    };
    rig.api.update_monitor(id, &resume).await.unwrap();
    eventually("a run after resuming", Duration::from_secs(20), || async {
        monitor(&rig, id).await.last_check_id
    })
    .await;
}

#[tokio::test]
async fn a_server_restarted_mid_interval_resumes_on_time_without_a_burst() {
    let rig = monitor_rig().await;
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = CreateMonitor {
            interval_secs: Some(10),
            ..tcp_monitor(&format!("steady-{i}"), json!({"port": port}))
        };
        ids.push(rig.api.create_monitor(&body).await.unwrap().monitor.id);
    }
    let run_times = |id: uuid::Uuid| {
        let db = rig.app.state.db.clone();
        async move {
            db.query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SELECT created_at FROM checks WHERE monitor_id = '{id}' ORDER BY id"),
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| {
                r.try_get::<chrono::DateTime<chrono::Utc>>("", "created_at")
                    .unwrap()
            })
            .collect::<Vec<_>>()
        }
    };
    // Each ran once at creation; its next run is ten seconds on.
    let mut due = Vec::new();
    for &id in &ids {
        let m = eventually("the first run", Duration::from_secs(20), || async {
            let m = monitor(&rig, id).await;
            m.last_check_id.is_some().then_some(m)
        })
        .await;
        due.push(m.next_run_at);
    }
    // The first instance stops its background work mid-interval; a new one takes over.
    rig.app.state.shutdown.cancel();
    let shared = rig.app.settings.clone();
    let _next = spawn_app_with(|s| *s = shared).await;
    for (&id, due) in ids.iter().zip(&due) {
        let runs = eventually("the second run", Duration::from_secs(25), || async {
            let runs = run_times(id).await;
            (runs.len() >= 2).then_some(runs)
        })
        .await;
        let late = (runs[1] - *due).num_milliseconds();
        assert!(
            (0..2_500).contains(&late),
            "the second run keeps its time: {late} ms after due"
        );
    }
    // No catch-up burst: one run each since the restart, until the next interval.
    for &id in &ids {
        assert_eq!(run_times(id).await.len(), 2, "{id}");
    }
}
