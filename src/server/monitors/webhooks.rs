//! The notification outbox (webhooks and every other channel, see `server::notify`): events are written to an outbox in the same transaction as the state change, and
//! a delivery loop POSTs them, signed with the monitor's secret, in order per monitor and URL,
//! retrying with backoff for 24 hours. Deliveries run concurrently: a round claims due rows
//! with a lease (their next attempt moved past the attempt's timeout, so no other round or
//! instance takes them meanwhile) and sends each in a task of its own, no transaction held
//! across the network; at most a few per monitor owner are in flight per instance, so one
//! user's slow receivers never hold back another user's alerts.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::server::AppState;
use netcheck_proto::api::monitors::{Notify, WebhookEvent};

/// Retries stop this long after the event was made.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Longest wait between two attempts.
const MAX_BACKOFF_SECS: f64 = 600.0;
/// A claimed delivery is not claimed again for this long (an attempt, and a margin).
const LEASE_SECS: f64 = 15.0;
/// Deliveries of one monitor owner in flight at once on one instance.
const PER_OWNER: usize = 4;
/// Deliveries claimed per round.
const ROUND: i64 = 64;

/// Deliveries in flight on this instance, per monitor owner.
#[derive(Default)]
pub struct Flights(std::sync::Mutex<std::collections::HashMap<Uuid, usize>>);

impl Flights {
    fn busy(&self) -> Vec<Uuid> {
        let f = self.0.lock().expect("flights lock");
        f.iter()
            .filter(|(_, n)| **n >= PER_OWNER)
            .map(|(u, _)| *u)
            .collect()
    }

    fn add(&self, owner: Uuid, delta: isize) {
        let mut f = self.0.lock().expect("flights lock");
        let n = f.entry(owner).or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            f.remove(&owner);
        }
    }
}

/// Writes `event` to the outbox once per channel of the monitor, inside `txn`. A channel's
/// `destination` is its ordering key; the channel itself is kept beside it (NULL for a
/// webhook, whose destination is its URL, as rows written before channels existed).
pub async fn enqueue(
    txn: &DatabaseTransaction,
    monitor_id: Uuid,
    channels: &[Notify],
    event: &WebhookEvent,
) -> Result<usize, DbErr> {
    let body = serde_json::to_string(event).expect("event serialises");
    for channel in channels {
        let stored = match channel {
            Notify::Webhook(_) => None,
            other => Some(serde_json::to_value(other).expect("channel serialises")),
        };
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "INSERT INTO webhook_outbox (monitor_id, url, channel, event, body, created_at, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, now(), now())",
            [
                monitor_id.into(),
                channel.destination().into(),
                stored.into(),
                event.event.clone().into(),
                body.clone().into(),
            ],
        ))
        .await?;
    }
    Ok(channels.len())
}

/// Claims up to [`ROUND`] due deliveries (the oldest undelivered one of each monitor and URL
/// only, so events arrive in order; at most [`PER_OWNER`] per owner, none of an owner who has
/// that many in flight here) and sends each in a task of its own; returns how many.
pub async fn deliver_due(state: &actix_web::web::Data<AppState>) -> Result<usize, DbErr> {
    // Owners at their cap are left out (UUIDs are plain hex, safe to write into the SQL).
    let busy: Vec<String> = state
        .webhook_flights
        .busy()
        .iter()
        .map(|u| format!("'{u}'"))
        .collect();
    let skip = if busy.is_empty() {
        String::new()
    } else {
        format!("AND m.user_id NOT IN ({})", busy.join(","))
    };
    let rows = state
        .db
        .query_all_raw(Statement::from_sql_and_values(
            state.db.get_database_backend(),
            format!(
                "WITH due AS (
                   SELECT o.id, row_number() OVER (PARTITION BY m.user_id ORDER BY o.id) AS nth
                   FROM webhook_outbox o JOIN monitors m ON m.id = o.monitor_id
                   WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL
                     AND o.next_attempt_at <= now() {skip}
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
                 RETURNING o.id, o.url, o.channel, o.body, o.attempts, o.created_at, m.webhook_secret,
                           m.user_id"
            ),
            [(PER_OWNER as i64).into(), ROUND.into(), LEASE_SECS.into()],
        ))
        .await?;
    let claimed = rows.len();
    for row in rows {
        let url: String = row.try_get("", "url")?;
        let channel: Option<serde_json::Value> = row.try_get("", "channel")?;
        let channel = match channel {
            None => Notify::Webhook(url),
            Some(v) => match serde_json::from_value(v) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(delivery = %row.try_get::<i64>("", "id")?, error = %e, "unreadable channel in the outbox");
                    continue;
                }
            },
        };
        let d = Claimed {
            id: row.try_get("", "id")?,
            channel,
            body: row.try_get("", "body")?,
            attempts: row.try_get("", "attempts")?,
            created_at: row.try_get("", "created_at")?,
            secret: row.try_get("", "webhook_secret")?,
            owner: row.try_get("", "user_id")?,
        };
        state.webhook_flights.add(d.owner, 1);
        let state = state.clone();
        tokio::spawn(async move {
            let owner = d.owner;
            if let Err(e) = attempt(&state, d).await {
                tracing::warn!(error = %e, "could not record a webhook attempt; its lease will expire");
            }
            state.webhook_flights.add(owner, -1);
        });
    }
    Ok(claimed)
}

/// A delivery a round claimed.
struct Claimed {
    id: i64,
    channel: Notify,
    body: String,
    attempts: i32,
    created_at: chrono::DateTime<Utc>,
    secret: String,
    owner: Uuid,
}

/// Sends one claimed delivery and records the outcome.
async fn attempt(state: &AppState, d: Claimed) -> Result<(), DbErr> {
    let backend = state.db.get_database_backend();
    let outcome = crate::server::notify::deliver(state, &d.channel, &d.body, &d.secret).await;
    let email = matches!(d.channel, Notify::Email(_));
    let (status, error) = match &outcome {
        // SMTP's 2xx replies say accepted too.
        Ok(code) => (
            Some(*code as i32),
            (!(200..300).contains(code))
                .then(|| format!("{} {code}", if email { "SMTP" } else { "HTTP" })),
        ),
        Err(e) => (None, Some(e.clone())),
    };
    if error.is_none() {
        state
            .db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE webhook_outbox SET attempts = attempts + 1, last_status = $2,
                     last_error = NULL, delivered_at = now() WHERE id = $1",
                [d.id.into(), status.into()],
            ))
            .await?;
        return Ok(());
    }
    let first = state.settings.notify.retry_first_ms as f64 / 1000.0;
    let backoff = (first * f64::from(1u32 << d.attempts.clamp(0, 12))).min(MAX_BACKOFF_SECS);
    let give_up = (Utc::now() - d.created_at).to_std().unwrap_or_default() >= GIVE_UP_AFTER;
    tracing::warn!(delivery = d.id, channel = d.channel.kind(), attempts = d.attempts + 1, error = ?error, give_up, "notification delivery failed");
    state
        .db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE webhook_outbox SET attempts = attempts + 1, last_status = $2, last_error = $3,
                 next_attempt_at = now() + make_interval(secs => $4),
                 gave_up_at = CASE WHEN $5 THEN now() END
             WHERE id = $1",
            [
                d.id.into(),
                status.into(),
                error.into(),
                backoff.into(),
                give_up.into(),
            ],
        ))
        .await?;
    Ok(())
}

/// Runs [`deliver_due`] every second (at once again while it finds work) until `shutdown`.
pub fn spawn_deliverer(state: actix_web::web::Data<AppState>, shutdown: CancellationToken) {
    crate::server::periodic::every(
        Duration::from_secs(1),
        shutdown,
        "webhook delivery round",
        move || {
            let state = state.clone();
            async move { Ok(deliver_due(&state).await? > 0) }
        },
    );
}
