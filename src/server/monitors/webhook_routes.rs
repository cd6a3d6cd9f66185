//! A monitor's webhooks: a new signing secret, a test event, and the delivery log.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, Statement, TransactionTrait};

use super::{load_visible, new_secret, webhooks, ActiveModel};
use crate::proto::api::monitors::{
    Delivery, TestQuery, WebhookEvent, WebhookMonitor, WebhookSecret,
};
use crate::server::auth::AuthUser;
use crate::server::error::{ApiError, ApiResult, ErrorBody};
use crate::server::AppState;

#[utoipa::path(operation_id = "rotate_monitor_secret", post, path = "/api/v1/monitors/{id}/secret", tag = "monitors",
    description = "A new webhook signing key; deliveries from now on are signed with it.",
    responses((status = 200, body = WebhookSecret), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let m = load_visible(&state, &user.0, *id).await?;
    let secret = new_secret();
    let mut a: ActiveModel = m.into();
    a.webhook_secret = Set(secret.clone());
    a.update(&state.db).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(WebhookSecret {
            webhook_secret: secret,
        }))
}

/// Test events one monitor may send a minute.
const TESTS_PER_MINUTE: i64 = 5;

#[utoipa::path(operation_id = "test_monitor_webhooks", post, path = "/api/v1/monitors/{id}/test", tag = "monitors",
    description = "Queues a `test` event to every notification channel of the monitor, or to the one `channel` names (each gets its provider's message); watch it under `deliveries`.",
    params(TestQuery),
    responses((status = 202, body = [Delivery]), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "more than 5 tests of this monitor in a minute")),
    security(("bearer" = [])))]
pub async fn test_event(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    q: web::Query<TestQuery>,
) -> ApiResult<HttpResponse> {
    let m = load_visible(&state, &user.0, *id).await?;
    // Each test is a request to every receiver: a few a minute per monitor.
    let key = crate::server::redis_keys::webhook_tests(&state.settings.redis.key_prefix, m.id);
    let mut conn = state.redis.get().await?;
    let (n, ttl) = crate::server::window::add(&mut conn, &key, 1, 60).await?;
    if n > TESTS_PER_MINUTE {
        return Err(ApiError::rate_limited(ttl.max(1) as u64));
    }
    let mut channels = m.notify_list();
    if channels.is_empty() {
        return Err(ApiError::invalid_field(
            "notify",
            "the monitor has no notification channels",
        ));
    }
    if let Some(i) = q.channel {
        if i >= channels.len() {
            return Err(ApiError::invalid_field(
                "channel",
                format!(
                    "the monitor has {} channels (0 to {})",
                    channels.len(),
                    channels.len() - 1
                ),
            ));
        }
        channels = vec![channels.swap_remove(i)];
    }
    let event = WebhookEvent {
        event: "test".into(),
        monitor: WebhookMonitor {
            id: m.id,
            name: m.name.clone(),
            check_type: m.check_type,
            target: m.target.clone(),
        },
        incident_id: None,
        failing_agents: Vec::new(),
        agents_total: None,
        check_id: m.last_check_id,
        at: Utc::now(),
    };
    let txn = state.db.begin().await?;
    webhooks::enqueue(&txn, m.id, &channels, &event).await?;
    txn.commit().await?;
    let queued = delivery_rows(&state, m.id, channels.len() as i64).await?;
    Ok(HttpResponse::Accepted().json(queued))
}

async fn delivery_rows(state: &AppState, monitor: Uuid, limit: i64) -> ApiResult<Vec<Delivery>> {
    let rows = state
        .db
        .query_all_raw(Statement::from_sql_and_values(
            state.db.get_database_backend(),
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

#[utoipa::path(operation_id = "monitor_deliveries", get, path = "/api/v1/monitors/{id}/deliveries", tag = "monitors",
    description = "Webhook deliveries, newest first (at most 100): attempts, last status, next retry.",
    responses((status = 200, body = [Delivery]), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn deliveries(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let m = load_visible(&state, &user.0, *id).await?;
    Ok(HttpResponse::Ok().json(delivery_rows(&state, m.id, 100).await?))
}
