//! `webhook_outbox` as the API shows it: each notification's delivery, its attempts and fate.

use sea_orm::{ConnectionTrait, DbErr, Statement};
use uuid::Uuid;

use netcheck_proto::api::monitors::Delivery;

/// The newest `limit` deliveries of `monitor`'s notifications, newest first.
pub async fn latest(
    db: &impl ConnectionTrait,
    monitor: Uuid,
    limit: i64,
) -> Result<Vec<Delivery>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT id, url, channel, event, created_at, attempts, last_status, last_error,
                    CASE WHEN delivered_at IS NULL AND gave_up_at IS NULL THEN next_attempt_at END AS next_attempt_at,
                    delivered_at, gave_up_at
             FROM webhook_outbox WHERE monitor_id = $1 ORDER BY id DESC LIMIT $2",
            [monitor.into(), limit.into()],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(Delivery {
            id: r.try_get("", "id")?,
            channel: r
                .try_get::<Option<serde_json::Value>>("", "channel")?
                .as_ref()
                .and_then(|c| c.as_object())
                .and_then(|o| o.keys().next().cloned())
                .unwrap_or_else(|| "webhook".into()),
            url: r.try_get("", "url")?,
            event: r.try_get("", "event")?,
            created_at: r.try_get("", "created_at")?,
            attempts: r.try_get("", "attempts")?,
            last_status: r.try_get("", "last_status")?,
            last_error: r.try_get("", "last_error")?,
            next_attempt_at: r.try_get("", "next_attempt_at")?,
            delivered_at: r.try_get("", "delivered_at")?,
            gave_up_at: r.try_get("", "gave_up_at")?,
        });
    }
    Ok(out)
}
