//! Reads stay bounded however much a monitor has run: its series is at most 1 000 points per
//! agent, read from each result's headline column (`value_ms`, written when the result is
//! stored), never from whole results.

use netcheck_proto::result::ResultStatus;
use sea_orm::{ConnectionTrait, Statement};

use crate::monitors::{monitor_rig, tcp_monitor};

#[tokio::test]
async fn a_long_series_is_grouped_to_a_thousand_points_per_agent() {
    let rig = monitor_rig().await;
    let mut body = tcp_monitor("busy", serde_json::json!({"port": 9}));
    body.paused = true;
    let m = rig.api.create_monitor(&body).await.unwrap().monitor;
    let me = rig.api.me().await.unwrap();
    // 3 000 runs over the last 20 hours, every tenth one failing, each with a padded result.
    rig.app
        .state
        .db
        .execute_raw(Statement::from_sql_and_values(
            rig.app.state.db.get_database_backend(),
            "WITH c AS (
               INSERT INTO checks (id, user_id, type, target, options, status, created_at,
                                   deadline_at, pending, monitor_id)
               SELECT gen_random_uuid(), $1, 'tcp', '127.0.0.1', '{}', 'finished',
                      now() - make_interval(secs => g * 24), now(), 0, $2
               FROM generate_series(1, 3000) g RETURNING id, created_at)
             INSERT INTO check_results (check_id, agent_id, agent_name, status, duration_ms,
                                        value_ms, data)
             SELECT c.id, $3, 'probe-1',
                    CASE WHEN row_number() OVER (ORDER BY c.created_at) % 10 = 0
                         THEN 'failed' ELSE 'ok' END,
                    3.0, 2.5,
                    jsonb_build_object('type', 'tcp', 'connected', true, 'connect_ms', 2.5,
                                       'padding', repeat('x', 2000))
             FROM c",
            [me.id.into(), m.id.into(), rig.agent_id.into()],
        ))
        .await
        .unwrap();
    let series = rig
        .api
        .monitor_series(m.id, &Default::default())
        .await
        .unwrap();
    assert_eq!(series.len(), 1);
    let points = &series[0].points;
    assert!((900..=1000).contains(&points.len()), "{}", points.len());
    // Each point averages its runs' headline figure, and keeps the worst status.
    assert!(points.iter().all(|p| p.value_ms == Some(2.5)), "{points:?}");
    assert!(points.iter().any(|p| p.status == ResultStatus::Failed));
    assert!(
        points.windows(2).all(|w| w[0].at <= w[1].at),
        "oldest first"
    );
}
