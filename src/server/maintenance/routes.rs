//! `/api/v1/maintenance`: create, list, read and delete windows (owner or admin).

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder};

use super::page_monitor_ids;
use super::schedule::parse_start;
use crate::server::auth::AuthUser;
use crate::server::db::maintenance::{ActiveModel, Column, Entity, Model};
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Json;
use crate::server::{monitors, status, AppState};
use netcheck_proto::api::monitors::{CreateMaintenance, Maintenance};
use netcheck_proto::api::ErrorBody;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/maintenance")
            .route("", web::post().to(create))
            .route("", web::get().to(list))
            .route("/{id}", web::get().to(get))
            .route("/{id}", web::delete().to(delete)),
    );
}

/// Most monitors one window lists.
const MAX_MONITORS: usize = 500;

#[utoipa::path(operation_id = "create_maintenance", post, path = "/api/v1/maintenance", tag = "maintenance", request_body = CreateMaintenance,
    description = "A window for `monitors` or for every monitor on `status_page`; once (`starts_at`, `ends_at`) or `weekly`. During it runs go on, no incident opens, nothing is sent, and the state reads `maintenance`.",
    responses((status = 201, body = Maintenance), (status = 404, body = ErrorBody, description = "a monitor or the page is not yours"), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<CreateMaintenance>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let now = Utc::now();
    let note = b.note.trim().to_string();
    if note.chars().count() > 500 || note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::invalid_field(
            "note",
            "note is at most 500 printable characters",
        ));
    }
    // Whose window it is: the owner of what it covers (so an administrator's window on a
    // user's monitors shows on that user's pages).
    let (owner, monitor_ids, page, page_monitors) = match (b.monitors.is_empty(), b.status_page) {
        (false, None) => {
            if b.monitors.len() > MAX_MONITORS {
                return Err(ApiError::invalid_field(
                    "monitors",
                    format!("at most {MAX_MONITORS} monitors"),
                ));
            }
            let mut owner = None;
            for id in &b.monitors {
                let m = monitors::load_visible(&state, &user.0, *id).await?;
                if owner.is_some_and(|o| o != m.user_id) {
                    return Err(ApiError::invalid_field(
                        "monitors",
                        "the monitors of one window belong to one user",
                    ));
                }
                owner = Some(m.user_id);
            }
            let mut ids = b.monitors.clone();
            ids.sort();
            ids.dedup();
            (owner.unwrap_or(user.0.id), ids, None, Vec::new())
        }
        (true, Some(page)) => {
            let p = status::load_visible(&state, &user.0, page).await?;
            let on_page = page_monitor_ids(&p.groups);
            (p.user_id, Vec::new(), Some(page), on_page)
        }
        _ => {
            return Err(ApiError::invalid_field(
                "monitors",
                "give either monitors (a list of monitor ids) or status_page",
            ))
        }
    };
    let mut row = ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(owner),
        monitor_ids: Set(monitor_ids),
        status_page_id: Set(page),
        starts_at: Set(None),
        ends_at: Set(None),
        weekly_day: Set(None),
        weekly_minute: Set(None),
        duration_minutes: Set(None),
        note: Set(note),
        created_at: Set(now),
    };
    match (b.starts_at, b.ends_at, b.weekly) {
        (Some(starts), Some(ends), None) => {
            if ends <= starts {
                return Err(ApiError::invalid_field(
                    "ends_at",
                    "ends_at must be after starts_at",
                ));
            }
            if ends <= now {
                return Err(ApiError::invalid_field(
                    "ends_at",
                    "the window is already over",
                ));
            }
            if ends - starts > chrono::Duration::days(366) {
                return Err(ApiError::invalid_field(
                    "ends_at",
                    "a window lasts at most a year",
                ));
            }
            row.starts_at = Set(Some(starts));
            row.ends_at = Set(Some(ends));
        }
        (None, None, Some(w)) => {
            let minute = parse_start(&w.start).ok_or_else(|| {
                ApiError::invalid_field("weekly.start", "start is HH:MM (UTC), e.g. 02:30")
            })?;
            if !(1..=10_080).contains(&w.duration_minutes) {
                return Err(ApiError::invalid_field(
                    "weekly.duration_minutes",
                    "duration_minutes must be between 1 and 10080 (a week)",
                ));
            }
            row.weekly_day = Set(Some(w.day.from_monday() as i16));
            row.weekly_minute = Set(Some(minute as i16));
            row.duration_minutes = Set(Some(w.duration_minutes as i32));
        }
        _ => {
            return Err(ApiError::invalid_field(
                "starts_at",
                "give starts_at and ends_at (one window) or weekly (a window every week)",
            ))
        }
    }
    let saved = row.insert(&state.db).await?;
    Ok(HttpResponse::Created().json(saved.view(&page_monitors, now)))
}

/// The window's view, with its page's monitors as the page is now.
async fn view(state: &AppState, w: &Model) -> ApiResult<Maintenance> {
    let on_page = match w.status_page_id {
        Some(page) => status::Entity::find_by_id(page)
            .one(&state.db)
            .await?
            .map(|p| page_monitor_ids(&p.groups))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(w.view(&on_page, Utc::now()))
}

#[utoipa::path(operation_id = "list_maintenance", get, path = "/api/v1/maintenance", tag = "maintenance",
    description = "Your windows (an administrator's: everyone's), newest first, at most 500.",
    responses((status = 200, body = [Maintenance])), security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let mut q = Entity::find().order_by_desc(Column::Id);
    if let Some(owner) = user.0.listing_owner() {
        q = q.filter(Column::UserId.eq(owner));
    }
    use sea_orm::QuerySelect;
    let rows = q.limit(500).all(&state.db).await?;
    let mut out = Vec::with_capacity(rows.len());
    for w in &rows {
        out.push(view(&state, w).await?);
    }
    Ok(HttpResponse::Ok().json(out))
}

async fn load_visible(state: &AppState, user: &AuthUser, id: Uuid) -> ApiResult<Model> {
    let w = Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("maintenance window"))?;
    if !user.0.may_see(w.user_id) {
        return Err(ApiError::not_found("maintenance window"));
    }
    Ok(w)
}

#[utoipa::path(operation_id = "get_maintenance", get, path = "/api/v1/maintenance/{id}", tag = "maintenance",
    responses((status = 200, body = Maintenance), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let w = load_visible(&state, &user, *id).await?;
    Ok(HttpResponse::Ok().json(view(&state, &w).await?))
}

#[utoipa::path(operation_id = "delete_maintenance", delete, path = "/api/v1/maintenance/{id}", tag = "maintenance",
    description = "Ends the window now (and every later occurrence of a weekly one).",
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let w = load_visible(&state, &user, *id).await?;
    Entity::delete_by_id(w.id).exec(&state.db).await?;
    Ok(HttpResponse::NoContent().finish())
}
