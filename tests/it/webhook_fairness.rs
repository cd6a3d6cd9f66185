//! One user's slow webhook receivers cannot hold back another user's alerts, and test events
//! are rate-limited.

use std::time::{Duration, Instant};

use netcheck_proto::api::monitors::{CreateMonitor, Notify};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;
use crate::monitors::{monitor_rig, tcp_monitor};
use crate::webhook_receiver::receiver;

/// A receiver that accepts every POST and answers only after `hold`.
async fn tarpit(hold: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                tokio::time::sleep(hold).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn paused_with_hook(name: &str, hook: &str) -> CreateMonitor {
    CreateMonitor {
        paused: true,
        notify: vec![Notify::Webhook(hook.into())],
        ..tcp_monitor(name, json!({"port": 9}))
    }
}

/// Queues an event for `monitor` to `url` as a state change would.
async fn queue(app: &TestApp, monitor: Uuid, url: &str) {
    app.state
        .db
        .execute_raw(Statement::from_sql_and_values(
            app.state.db.get_database_backend(),
            "INSERT INTO webhook_outbox (monitor_id, url, event, body, created_at, next_attempt_at)
             VALUES ($1, $2, 'down', '{}', now(), now())",
            [monitor.into(), url.into()],
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn sixty_tarpit_receivers_do_not_delay_another_users_alert() {
    let rig = monitor_rig().await;
    let slow = tarpit(Duration::from_secs(10)).await;
    let eve = rig.app.api_as(&rig.app.user_token("eve").await);
    let bob = rig.app.api_as(&rig.app.user_token("bob").await);
    let eves = eve
        .create_monitor(&paused_with_hook("eve's", &format!("{slow}/0")))
        .await
        .unwrap()
        .monitor
        .id;
    // Sixty receivers that each hold a POST for 10 s.
    for i in 0..60 {
        queue(&rig.app, eves, &format!("{slow}/{i}")).await;
    }
    let (hook, received) = receiver(0).await;
    let bobs = bob
        .create_monitor(&paused_with_hook("bob's", &hook))
        .await
        .unwrap()
        .monitor
        .id;
    // Eve's deliveries are claimed and held by her receivers first.
    eventually(
        "eve's deliveries in flight",
        Duration::from_secs(10),
        || async {
            let row = rig
                .app
                .state
                .db
                .query_one_raw(Statement::from_string(
                    rig.app.state.db.get_database_backend(),
                    "SELECT count(*) AS n FROM webhook_outbox
                 WHERE delivered_at IS NULL AND next_attempt_at > now()",
                ))
                .await
                .unwrap()
                .unwrap();
            (row.try_get::<i64>("", "n").unwrap() >= 4).then_some(())
        },
    )
    .await;
    let queued = Instant::now();
    queue(&rig.app, bobs, &hook).await;
    let took = eventually("bob's alert", Duration::from_secs(30), || async {
        (!received.lock().unwrap().is_empty()).then(|| queued.elapsed())
    })
    .await;
    eprintln!("bob's alert beside 60 tarpits: {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn test_events_are_rate_limited() {
    let rig = monitor_rig().await;
    let (hook, _) = receiver(0).await;
    let id = rig
        .api
        .create_monitor(&paused_with_hook("tested", &hook))
        .await
        .unwrap()
        .monitor
        .id;
    let path = format!("/api/v1/monitors/{id}/test");
    for _ in 0..5 {
        let resp = crate::monitors::call(&rig, reqwest::Method::POST, &path, None).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
    let resp = crate::monitors::call(&rig, reqwest::Method::POST, &path, None).await;
    assert!(resp.headers().contains_key("retry-after"));
    let (code, _) = error_code(resp, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(code, "rate_limited");
}
