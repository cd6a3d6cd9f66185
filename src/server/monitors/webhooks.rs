//! The notification outbox (webhooks and every other channel, see `server::notify`): events
//! are written to an outbox in the same transaction as the state change, and a delivery loop
//! POSTs them, signed with the monitor's secret, in order per monitor and URL,
//! retrying with backoff for 24 hours. Deliveries run concurrently: a round claims due rows
//! with a lease (their next attempt moved past the attempt's timeout, so no other round or
//! instance takes them meanwhile) and sends each in a task of its own, no transaction held
//! across the network; at most a few per monitor owner are in flight per instance, so one
//! user's slow receivers never hold back another user's alerts.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{DatabaseTransaction, DbErr};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::server::db::deliveries as outbox;
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
        outbox::enqueue(
            txn,
            monitor_id,
            &channel.destination(),
            stored,
            &event.event,
            &body,
        )
        .await?;
    }
    Ok(channels.len())
}

/// Claims up to [`ROUND`] due deliveries (the oldest undelivered one of each monitor and URL
/// only, so events arrive in order; at most [`PER_OWNER`] per owner, none of an owner who has
/// that many in flight here) and sends each in a task of its own; returns how many.
pub async fn deliver_due(state: &actix_web::web::Data<AppState>) -> Result<usize, DbErr> {
    // Owners at their cap are left out.
    let busy = state.webhook_flights.busy();
    let rows = outbox::claim_due(&state.db, &busy, PER_OWNER as i64, ROUND, LEASE_SECS).await?;
    let claimed = rows.len();
    for mut row in rows {
        let channel = match row.channel.take() {
            None => Notify::Webhook(row.url.clone()),
            Some(v) => match serde_json::from_value(v) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(delivery = row.id, error = %e, "unreadable channel in the outbox");
                    continue;
                }
            },
        };
        let owner = row.owner;
        state.webhook_flights.add(owner, 1);
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = attempt(&state, row, channel).await {
                tracing::warn!(error = %e, "could not record a webhook attempt; its lease will expire");
            }
            state.webhook_flights.add(owner, -1);
        });
    }
    Ok(claimed)
}

/// Sends one claimed delivery to its (read) channel and records the outcome.
async fn attempt(state: &AppState, d: outbox::ClaimedRow, channel: Notify) -> Result<(), DbErr> {
    let outcome = crate::server::notify::deliver(state, &channel, &d.body, &d.secret).await;
    let email = matches!(channel, Notify::Email(_));
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
        return outbox::delivered(&state.db, d.id, status).await;
    }
    let first = state.settings.notify.retry_first_ms as f64 / 1000.0;
    let backoff = (first * f64::from(1u32 << d.attempts.clamp(0, 12))).min(MAX_BACKOFF_SECS);
    let give_up = (Utc::now() - d.created_at).to_std().unwrap_or_default() >= GIVE_UP_AFTER;
    tracing::warn!(delivery = d.id, channel = channel.kind(), attempts = d.attempts + 1, error = ?error, give_up, "notification delivery failed");
    outbox::failed(&state.db, d.id, status, error, backoff, give_up).await
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
