//! A monitor's webhooks: a new signing secret, a test event, and the delivery log.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, TransactionTrait};

use super::{load_visible, new_secret, webhooks};
use crate::server::auth::AuthUser;
use crate::server::db::deliveries as outbox;
use crate::server::db::monitors::ActiveModel;
use crate::server::error::{ApiError, ApiResult};
use crate::server::AppState;
use netcheck_proto::api::monitors::{
    Delivery, TestQuery, WebhookEvent, WebhookMonitor, WebhookSecret,
};
use netcheck_proto::api::ErrorBody;

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
            check_type: m.check_type.into(),
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
    let queued = outbox::latest(&state.db, m.id, channels.len() as i64).await?;
    Ok(HttpResponse::Accepted().json(queued))
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
    Ok(HttpResponse::Ok().json(outbox::latest(&state.db, m.id, 100).await?))
}
