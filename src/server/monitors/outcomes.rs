//! What a monitor left behind: its incidents and per-agent series.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::entity::prelude::*;

use super::load_visible;
use crate::server::auth::AuthUser;
use crate::server::db::monitor_history;
use crate::server::error::{ApiError, ApiResult};
use crate::server::AppState;
use netcheck_proto::api::monitors::{AgentSeries, Incident, SeriesQuery};
use netcheck_proto::api::ErrorBody;

#[utoipa::path(operation_id = "monitor_incidents", get, path = "/api/v1/monitors/{id}/incidents", tag = "monitors",
    description = "Newest first, at most 200.",
    responses((status = 200, body = [Incident]), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn incidents(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let m = load_visible(&state, &user.0, *id).await?;
    let out = monitor_history::incidents(&state.db, m.id, INCIDENTS).await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Most points of one agent's series.
const SERIES_POINTS: i64 = 1000;

/// Most incidents listed.
const INCIDENTS: i64 = 200;

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
    let by_agent = monitor_history::series(&state.db, m.id, since, until, SERIES_POINTS).await?;
    Ok(HttpResponse::Ok().json(by_agent))
}
