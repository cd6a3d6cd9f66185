//! `webhook_outbox`: each notification's delivery, its attempts and fate — as the API shows
//! them, and as the delivery loop writes, claims and records them.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement};
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

/// Writes one delivery of `event` (its serialised `body`) to `destination`; `channel` is the
/// channel itself, NULL for a webhook (whose destination is its URL, as rows written before
/// channels existed).
pub async fn enqueue(
    db: &impl ConnectionTrait,
    monitor: Uuid,
    destination: &str,
    channel: Option<serde_json::Value>,
    event: &str,
    body: &str,
) -> Result<(), DbErr> {
    super::execute(
        db,
        "INSERT INTO webhook_outbox (monitor_id, url, channel, event, body, created_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, now(), now())",
        [
            monitor.into(),
            destination.into(),
            channel.into(),
            event.into(),
            body.into(),
        ],
    )
    .await?;
    Ok(())
}

/// A delivery claimed for an attempt, with its monitor's signing secret and owner.
#[derive(Debug, FromQueryResult)]
pub struct ClaimedRow {
    pub id: i64,
    pub url: String,
    pub channel: Option<serde_json::Value>,
    pub body: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub secret: String,
    pub owner: Uuid,
}

/// Claims up to `round` due deliveries for `lease_secs`: the oldest undelivered one of each
/// monitor and URL only (so events arrive in order), at most `per_owner` per monitor owner,
/// none of the owners in `busy`.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    busy: &[Uuid],
    per_owner: i64,
    round: i64,
    lease_secs: f64,
) -> Result<Vec<ClaimedRow>, DbErr> {
    ClaimedRow::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "WITH due AS (
               SELECT o.id, row_number() OVER (PARTITION BY m.user_id ORDER BY o.id) AS nth
               FROM webhook_outbox o JOIN monitors m ON m.id = o.monitor_id
               WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL
                 AND o.next_attempt_at <= now() AND m.user_id <> ALL($4)
                 AND NOT EXISTS (SELECT 1 FROM webhook_outbox p
                                 WHERE p.monitor_id = o.monitor_id AND p.url = o.url
                                   AND p.id < o.id
                                   AND p.delivered_at IS NULL AND p.gave_up_at IS NULL)
             ), picked AS (SELECT id FROM due WHERE nth <= $1 ORDER BY id LIMIT $2)
             UPDATE webhook_outbox o
                SET next_attempt_at = now() + make_interval(secs => $3)
               FROM monitors m
              WHERE o.id IN (SELECT id FROM picked) AND m.id = o.monitor_id
                -- Claimed by another round meanwhile: its lease moved this past now.
                AND o.next_attempt_at <= now()
             RETURNING o.id, o.url, o.channel, o.body, o.attempts, o.created_at,
                       m.webhook_secret AS secret, m.user_id AS owner",
        [
            per_owner.into(),
            round.into(),
            lease_secs.into(),
            busy.to_vec().into(),
        ],
    ))
    .all(db)
    .await
}

/// Records a successful attempt (`status`: the HTTP or SMTP code).
pub async fn delivered(
    db: &impl ConnectionTrait,
    id: i64,
    status: Option<i32>,
) -> Result<(), DbErr> {
    super::execute(
        db,
        "UPDATE webhook_outbox SET attempts = attempts + 1, last_status = $2,
             last_error = NULL, delivered_at = now() WHERE id = $1",
        [id.into(), status.into()],
    )
    .await?;
    Ok(())
}

/// Records a failed attempt: tried again in `retry_secs`, or never again if `give_up`.
pub async fn failed(
    db: &impl ConnectionTrait,
    id: i64,
    status: Option<i32>,
    error: Option<String>,
    retry_secs: f64,
    give_up: bool,
) -> Result<(), DbErr> {
    super::execute(
        db,
        "UPDATE webhook_outbox SET attempts = attempts + 1, last_status = $2, last_error = $3,
             next_attempt_at = now() + make_interval(secs => $4),
             gave_up_at = CASE WHEN $5 THEN now() END
         WHERE id = $1",
        [
            id.into(),
            status.into(),
            error.into(),
            retry_secs.into(),
            give_up.into(),
        ],
    )
    .await?;
    Ok(())
}
