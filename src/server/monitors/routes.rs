//! `/api/v1/monitors`: create, list (paged, filtered), read, change, pause/resume, delete.
//! What a monitor left behind is served by `outcomes` (incidents, series) and its webhooks by
//! `webhook_routes` (secret rotation, test events, delivery status).

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, PaginatorTrait, QueryOrder, QuerySelect};

use super::outcomes::{incidents, series};
use super::validate::{
    validate_alert, validate_check, validate_interval, validate_name, validate_notify,
};
use super::webhook_routes::{deliveries, rotate_secret, test_event};
use super::{load_visible, new_secret};
use crate::server::auth::AuthUser;
use crate::server::db::monitor_stats;
use crate::server::db::monitors::{ActiveModel, Column, Entity, Model};
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Json;
use crate::server::AppState;
use netcheck_proto::api::monitors::{
    CreateMonitor, CreatedMonitor, Monitor, MonitorPage, MonitorQuery, MonitorState, UpdateMonitor,
};
use netcheck_proto::api::ErrorBody;

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
#[utoipa::path(operation_id = "create_monitor", post, path = "/api/v1/monitors", tag = "monitors", request_body = CreateMonitor,
    responses((status = 201, body = CreatedMonitor), (status = 409, body = ErrorBody, description = "`too_many_monitors`: the user holds `monitors.max_per_user` already; `over_budget`: the user's monitors would run more probes a minute than `checks.rate_limit_per_minute`"), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
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
    if !user.0.is_admin()
        && Entity::find()
            .filter(Column::UserId.eq(user.0.id))
            .count(&state.db)
            .await?
            >= cap
    {
        return Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            netcheck_proto::api::ErrorCode::TooManyMonitors,
            format!("You have {cap} monitors, the most allowed; delete one first."),
        ));
    }
    super::budget::ensure_within(&state, &user.0, None, &b.selection, interval, b.paused).await?;
    let secret = new_secret();
    let now = Utc::now();
    let m = ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.0.id),
        name: Set(name),
        check_type: Set(b.check.spec.check_type().into()),
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
        delayed_since: Set(None),
        // The first run right away; later ones keep this phase.
        next_run_at: Set(now),
        created_at: Set(now),
    }
    .insert(&state.db)
    .await?;
    state.monitor_costs.forget(m.user_id);
    tracing::info!(monitor_id = %m.id, "monitor created");
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/monitors/{}", m.id)))
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedMonitor {
            monitor: m.view()?,
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
    if let Some(owner) = user.0.listing_owner() {
        query = query.filter(Column::UserId.eq(owner));
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
    let mut stats = monitor_stats::load(&state.db, &ids, Utc::now()).await?;
    let windows = in_windows(&state, &rows).await?;
    Ok(HttpResponse::Ok().json(MonitorPage {
        monitors: rows
            .iter()
            .map(|m| {
                Ok(Monitor {
                    stats: stats.remove(&m.id),
                    state: shown_state(m, &windows),
                    ..m.view()?
                })
            })
            .collect::<Result<_, sea_orm::DbErr>>()?,
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
    let stats = monitor_stats::load(&state.db, &[m.id], Utc::now()).await?;
    let windows = in_windows(&state, std::slice::from_ref(&m)).await?;
    Ok(HttpResponse::Ok().json(Monitor {
        stats: stats.into_values().next(),
        state: shown_state(&m, &windows),
        ..m.view()?
    }))
}

/// Which of `rows` are in a maintenance window now.
async fn in_windows(
    state: &AppState,
    rows: &[Model],
) -> ApiResult<std::collections::HashSet<Uuid>> {
    let (ids, owners) =
        crate::server::maintenance::ids_and_owners(rows.iter().map(|m| (m.id, m.user_id)));
    Ok(crate::server::maintenance::under_maintenance(&state.db, &ids, &owners, Utc::now()).await?)
}

/// The state as of now: `maintenance` from the moment a window starts (the stored state
/// follows at the next judged run), and no verdict yet once it is over.
fn shown_state(m: &Model, windows: &std::collections::HashSet<Uuid>) -> MonitorState {
    let stored = MonitorState::parse(&m.state);
    match stored {
        MonitorState::Paused => stored,
        _ if windows.contains(&m.id) => MonitorState::Maintenance,
        MonitorState::Maintenance => MonitorState::Pending,
        _ => stored,
    }
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
    let view = current.view()?;
    let mut m: ActiveModel = current.clone().into();
    if let Some(name) = &b.name {
        m.name = Set(validate_name(name)?);
    }
    if b.all_agents && !b.selection.is_everyone() {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            netcheck_proto::api::ErrorCode::InvalidSelection,
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
        m.check_type = Set(check.spec.check_type().into());
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
    // The budget as it will be: the new selection, interval and pause state.
    let selection: netcheck_proto::api::AgentSelection = match &m.selection {
        sea_orm::ActiveValue::Set(v) | sea_orm::ActiveValue::Unchanged(v) => {
            serde_json::from_value(v.clone()).unwrap_or_default()
        }
        sea_orm::ActiveValue::NotSet => view.selection.clone(),
    };
    let interval = match &m.interval_secs {
        sea_orm::ActiveValue::Set(v) | sea_orm::ActiveValue::Unchanged(v) => *v as u32,
        sea_orm::ActiveValue::NotSet => current.interval_secs as u32,
    };
    let paused = b.paused.unwrap_or(current.paused);
    super::budget::ensure_within(
        &state,
        &user.0,
        Some(current.id),
        &selection,
        interval,
        paused,
    )
    .await?;
    let saved = m.update(&state.db).await?;
    state.monitor_costs.forget(saved.user_id);
    Ok(HttpResponse::Ok().json(saved.view()?))
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
    state.monitor_costs.forget(m.user_id);
    Ok(HttpResponse::NoContent().finish())
}
