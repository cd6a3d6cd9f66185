//! `/api/v1/monitors`: create, list (paged, filtered), read, change, pause/resume, delete;
//! incidents, per-agent series, webhook secret rotation, test events and delivery status.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, PaginatorTrait, QueryOrder, QuerySelect, Statement,
    TransactionTrait,
};

use super::{load_visible, new_secret, webhooks, ActiveModel, Column, Entity};
use crate::proto::api::auth::Role;
use crate::proto::api::checks::CreateCheck;
use crate::proto::api::monitors::{
    AgentSeries, AlertRule, CreateMonitor, CreatedMonitor, Delivery, Incident, Monitor,
    MonitorCheck, MonitorPage, MonitorQuery, MonitorState, Notify, SeriesAgent, SeriesPoint,
    SeriesQuery, UpdateMonitor, WebhookEvent, WebhookMonitor, WebhookSecret,
};
use crate::proto::api::AgentSelection;
use crate::server::auth::AuthUser;
use crate::server::checks::validate;
use crate::server::error::{ApiError, ApiResult, ErrorBody};
use crate::server::extract::Json;
use crate::server::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/monitors")
            .route("", web::post().to(create))
            .route("", web::get().to(list))
            .route("/{id}", web::get().to(get))
            .route("/{id}", web::patch().to(update))
            .route("/{id}", web::delete().to(delete))
            .route("/{id}/incidents", web::get().to(incidents))
            .route("/{id}/series", web::get().to(series))
            .route("/{id}/secret", web::post().to(rotate_secret))
            .route("/{id}/test", web::post().to(test_event))
            .route("/{id}/deliveries", web::get().to(deliveries)),
    );
}

const MAX_WEBHOOKS: usize = 10;

fn validate_name(name: &str) -> ApiResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 128 || n.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "name",
            "name must be 1-128 printable characters",
        ));
    }
    Ok(n.to_string())
}

/// Checks a run's definition as a check would be checked; the normalised target and options.
fn validate_check(
    state: &AppState,
    check: &MonitorCheck,
    selection: &AgentSelection,
) -> ApiResult<(String, serde_json::Value)> {
    if selection.same_agents_as.is_some() {
        return Err(ApiError::invalid_field(
            "same_agents_as",
            "monitors choose their agents with agents, locations or limit",
        ));
    }
    crate::server::checks::choose::validate(selection)?;
    let body = CreateCheck {
        check_type: check.check_type,
        target: check.target.clone(),
        options: check.options.clone(),
        selection: selection.clone(),
        unknown: Default::default(),
    };
    let (target, spec) = validate::spec(&body, &state.policy).map_err(|e| {
        // The same field names, under `check.`.
        let field = e.field().map(|f| format!("check.{f}"));
        match field {
            Some(f) => e.with_details(serde_json::json!({ "field": f })),
            None => e,
        }
    })?;
    let options = serde_json::to_value(&spec).expect("spec serialises")["options"].clone();
    Ok((target, options))
}

fn validate_interval(v: Option<u32>) -> ApiResult<u32> {
    let v = v.unwrap_or(60);
    if !(10..=86_400).contains(&v) {
        return Err(ApiError::invalid_field(
            "interval_secs",
            "interval_secs must be between 10 and 86400",
        ));
    }
    Ok(v)
}

fn validate_alert(a: Option<AlertRule>) -> ApiResult<AlertRule> {
    let a = a.unwrap_or_default();
    if !(1..=500).contains(&a.min_failing_agents) {
        return Err(ApiError::invalid_field(
            "alert.min_failing_agents",
            "alert.min_failing_agents must be between 1 and 500",
        ));
    }
    if !(1..=100).contains(&a.for_runs) {
        return Err(ApiError::invalid_field(
            "alert.for_runs",
            "alert.for_runs must be between 1 and 100",
        ));
    }
    Ok(a)
}

async fn validate_notify(state: &AppState, notify: &[Notify]) -> ApiResult<()> {
    if notify.len() > MAX_WEBHOOKS {
        return Err(ApiError::invalid_field(
            "notify",
            format!("at most {MAX_WEBHOOKS} webhooks"),
        ));
    }
    for (i, n) in notify.iter().enumerate() {
        webhooks::check_url(state, &format!("notify[{i}].webhook"), &n.webhook).await?;
    }
    Ok(())
}

#[utoipa::path(operation_id = "create_monitor", post, path = "/api/v1/monitors", tag = "monitors", request_body = CreateMonitor,
    responses((status = 201, body = CreatedMonitor), (status = 409, body = ErrorBody, description = "`too_many_monitors`: the user holds `monitors.max_per_user` already"), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<CreateMonitor>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    crate::server::extract::refuse_unknown(&b.unknown)?;
    let name = validate_name(&b.name)?;
    let (target, options) = validate_check(&state, &b.check, &b.selection)?;
    let interval = validate_interval(b.interval_secs)?;
    let alert = validate_alert(b.alert)?;
    validate_notify(&state, &b.notify).await?;
    let cap = state.settings.monitors.max_per_user;
    if user.0.role != Role::Admin
        && Entity::find()
            .filter(Column::UserId.eq(user.0.id))
            .count(&state.db)
            .await?
            >= cap
    {
        return Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            crate::proto::api::ErrorCode::TooManyMonitors,
            format!("You have {cap} monitors, the most allowed; delete one first."),
        ));
    }
    let secret = new_secret();
    let now = Utc::now();
    let m = ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.0.id),
        name: Set(name),
        check_type: Set(b.check.check_type.as_str().to_string()),
        target: Set(target),
        options: Set(options),
        selection: Set(serde_json::to_value(&b.selection).expect("selection serialises")),
        interval_secs: Set(interval as i32),
        min_failing_agents: Set(alert.min_failing_agents as i32),
        for_runs: Set(alert.for_runs as i32),
        notify: Set(serde_json::to_value(&b.notify).expect("notify serialises")),
        webhook_secret: Set(secret.clone()),
        paused: Set(b.paused),
        state: Set(if b.paused {
            MonitorState::Paused
        } else {
            MonitorState::Pending
        }
        .as_str()
        .into()),
        failing_runs: Set(0),
        last_check_id: Set(None),
        last_evaluated_check_id: Set(None),
        last_run_at: Set(None),
        // The first run right away; later ones keep this phase.
        next_run_at: Set(now),
        created_at: Set(now),
    }
    .insert(&state.db)
    .await?;
    tracing::info!(monitor_id = %m.id, "monitor created");
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/monitors/{}", m.id)))
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedMonitor {
            monitor: m.view(),
            webhook_secret: secret,
        }))
}

#[utoipa::path(operation_id = "list_monitors", get, path = "/api/v1/monitors", tag = "monitors", params(MonitorQuery),
    description = "Users see their own monitors, administrators all. Ordered by id (creation), paged with `after`.",
    responses((status = 200, body = MonitorPage)), security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<MonitorQuery>,
) -> ApiResult<HttpResponse> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "limit must be between 1 and 200",
        ));
    }
    let mut query = Entity::find();
    if user.0.role != Role::Admin {
        query = query.filter(Column::UserId.eq(user.0.id));
    }
    if let Some(s) = q.state {
        query = query.filter(Column::State.eq(s.as_str()));
    }
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = crate::server::extract::contains_pattern(text);
        query = query.filter(Expr::cust_with_values(
            "(monitors.name ILIKE $1 OR monitors.target ILIKE $1)",
            [pattern],
        ));
    }
    let total = query.clone().count(&state.db).await?;
    if let Some(after) = q.after {
        query = query.filter(Column::Id.gt(after));
    }
    let rows = query
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(&state.db)
        .await?;
    let next_after = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|m| m.id))
        .flatten();
    let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
    let mut stats = super::stats::load(&state.db, &ids, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(MonitorPage {
        monitors: rows
            .iter()
            .map(|m| Monitor {
                stats: stats.remove(&m.id),
                ..m.view()
            })
            .collect(),
        next_after,
        total,
    }))
}

#[utoipa::path(operation_id = "get_monitor", get, path = "/api/v1/monitors/{id}", tag = "monitors",
    responses((status = 200, body = Monitor), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let m = load_visible(&state, &user.0, *id).await?;
    let stats = super::stats::load(&state.db, &[m.id], Utc::now()).await?;
    Ok(HttpResponse::Ok().json(Monitor {
        stats: stats.into_values().next(),
        ..m.view()
    }))
}

#[utoipa::path(operation_id = "update_monitor", patch, path = "/api/v1/monitors/{id}", tag = "monitors", request_body = UpdateMonitor,
    description = "`paused: true` pauses (state `paused`); `paused: false` resumes (state `pending`, a run at once).",
    responses((status = 200, body = Monitor), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    body: Json<UpdateMonitor>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    crate::server::extract::refuse_unknown(&b.unknown)?;
    let current = load_visible(&state, &user.0, *id).await?;
    let view = current.view();
    let mut m: ActiveModel = current.clone().into();
    if let Some(name) = &b.name {
        m.name = Set(validate_name(name)?);
    }
    if b.all_agents && !b.selection.is_everyone() {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            crate::proto::api::ErrorCode::InvalidSelection,
            "all_agents cannot be combined with agents, locations or limit",
        ));
    }
    let new_selection = b.all_agents || !b.selection.is_everyone();
    if b.check.is_some() || new_selection {
        let check = b.check.clone().unwrap_or(view.check.clone());
        let selection = if new_selection {
            b.selection.clone()
        } else {
            view.selection.clone()
        };
        let (target, options) = validate_check(&state, &check, &selection)?;
        m.check_type = Set(check.check_type.as_str().to_string());
        m.target = Set(target);
        m.options = Set(options);
        m.selection = Set(serde_json::to_value(&selection).expect("selection serialises"));
    }
    if b.interval_secs.is_some() {
        m.interval_secs = Set(validate_interval(b.interval_secs)? as i32);
    }
    if b.alert.is_some() {
        let a = validate_alert(b.alert)?;
        m.min_failing_agents = Set(a.min_failing_agents as i32);
        m.for_runs = Set(a.for_runs as i32);
        m.failing_runs = Set(0);
    }
    if let Some(notify) = &b.notify {
        validate_notify(&state, notify).await?;
        m.notify = Set(serde_json::to_value(notify).expect("notify serialises"));
    }
    match b.paused {
        Some(true) if !current.paused => {
            m.paused = Set(true);
            m.state = Set(MonitorState::Paused.as_str().into());
        }
        Some(false) if current.paused => {
            m.paused = Set(false);
            m.state = Set(MonitorState::Pending.as_str().into());
            m.failing_runs = Set(0);
            m.next_run_at = Set(Utc::now());
        }
        _ => {}
    }
    let saved = m.update(&state.db).await?;
    Ok(HttpResponse::Ok().json(saved.view()))
}

#[utoipa::path(operation_id = "delete_monitor", delete, path = "/api/v1/monitors/{id}", tag = "monitors",
    description = "Its incidents and pending webhook deliveries go with it; its runs stay in the history.",
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let m = load_visible(&state, &user.0, *id).await?;
    Entity::delete_by_id(m.id).exec(&state.db).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(operation_id = "monitor_incidents", get, path = "/api/v1/monitors/{id}/incidents", tag = "monitors",
    description = "Newest first, at most 200.",
    responses((status = 200, body = [Incident]), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn incidents(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let m = load_visible(&state, &user.0, *id).await?;
    let rows = state
        .db
        .query_all_raw(Statement::from_sql_and_values(
            state.db.get_database_backend(),
            "SELECT id, started_at, resolved_at, failing_agents, first_check_id FROM monitor_incidents
             WHERE monitor_id = $1 ORDER BY started_at DESC LIMIT 200",
            [m.id.into()],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(Incident {
            id: r.try_get("", "id")?,
            started_at: r.try_get("", "started_at")?,
            resolved_at: r.try_get("", "resolved_at")?,
            failing_agents: serde_json::from_value(
                r.try_get::<serde_json::Value>("", "failing_agents")?,
            )
            .unwrap_or_default(),
            first_check_id: r.try_get("", "first_check_id")?,
        });
    }
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(operation_id = "monitor_series", get, path = "/api/v1/monitors/{id}/series", tag = "monitors", params(SeriesQuery),
    responses((status = 200, body = [AgentSeries]), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn series(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    q: web::Query<SeriesQuery>,
) -> ApiResult<HttpResponse> {
    let m = load_visible(&state, &user.0, *id).await?;
    let until = q.until.unwrap_or_else(Utc::now);
    let since = q.since.unwrap_or(until - chrono::Duration::hours(24));
    if since >= until || until - since > chrono::Duration::days(31) {
        return Err(ApiError::invalid_field(
            "since",
            "since must be before until, at most 31 days apart",
        ));
    }
    let rows = state
        .db
        .query_all_raw(Statement::from_sql_and_values(
            state.db.get_database_backend(),
            "SELECT c.created_at, r.agent_id, r.agent_name, r.status, r.duration_ms, r.data
             FROM checks c JOIN check_results r ON r.check_id = c.id
             WHERE c.monitor_id = $1 AND c.created_at >= $2 AND c.created_at < $3 AND r.status <> 'pending'
             ORDER BY c.id",
            [m.id.into(), since.into(), until.into()],
        ))
        .await?;
    let mut by_agent: Vec<AgentSeries> = Vec::new();
    for r in rows {
        let agent_id: Uuid = r.try_get("", "agent_id")?;
        let data: Option<serde_json::Value> = r.try_get("", "data")?;
        let point = SeriesPoint {
            at: r.try_get("", "created_at")?,
            status: r.try_get("", "status")?,
            value_ms: super::headline_ms(
                &m.check_type,
                r.try_get("", "duration_ms")?,
                data.as_ref(),
            ),
        };
        match by_agent.iter_mut().find(|s| s.agent.id == agent_id) {
            Some(s) => s.points.push(point),
            None => by_agent.push(AgentSeries {
                agent: SeriesAgent {
                    id: agent_id,
                    name: r.try_get("", "agent_name")?,
                },
                points: vec![point],
            }),
        }
    }
    by_agent.sort_by(|a, b| a.agent.name.cmp(&b.agent.name));
    Ok(HttpResponse::Ok().json(by_agent))
}

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

#[utoipa::path(operation_id = "test_monitor_webhooks", post, path = "/api/v1/monitors/{id}/test", tag = "monitors",
    description = "Queues a `test` event to every webhook of the monitor; watch it under `deliveries`.",
    responses((status = 202, body = [Delivery]), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn test_event(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let m = load_visible(&state, &user.0, *id).await?;
    let urls: Vec<String> = m.notify_list().into_iter().map(|n| n.webhook).collect();
    if urls.is_empty() {
        return Err(ApiError::invalid_field(
            "notify",
            "the monitor has no webhooks",
        ));
    }
    let event = WebhookEvent {
        event: "test".into(),
        monitor: WebhookMonitor {
            id: m.id,
            name: m.name.clone(),
            check_type: m.check_type(),
            target: m.target.clone(),
        },
        incident_id: None,
        failing_agents: Vec::new(),
        check_id: m.last_check_id,
        at: Utc::now(),
    };
    let txn = state.db.begin().await?;
    webhooks::enqueue(&txn, m.id, &urls, &event).await?;
    txn.commit().await?;
    let queued = delivery_rows(&state, m.id, urls.len() as i64).await?;
    Ok(HttpResponse::Accepted().json(queued))
}

async fn delivery_rows(state: &AppState, monitor: Uuid, limit: i64) -> ApiResult<Vec<Delivery>> {
    let rows = state
        .db
        .query_all_raw(Statement::from_sql_and_values(
            state.db.get_database_backend(),
            "SELECT id, url, event, created_at, attempts, last_status, last_error,
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
