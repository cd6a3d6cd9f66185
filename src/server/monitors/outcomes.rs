//! What a monitor left behind: its incidents and per-agent series.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, Statement};

use super::load_visible;
use crate::proto::api::monitors::{AgentSeries, Incident, SeriesAgent, SeriesPoint, SeriesQuery};
use crate::server::auth::AuthUser;
use crate::server::error::{ApiError, ApiResult, ErrorBody};
use crate::server::AppState;

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

/// Most points of one agent's series.
const SERIES_POINTS: i64 = 1000;

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
    // At most SERIES_POINTS points per agent: beyond that, consecutive runs are averaged in
    // equal groups (a group's status is its worst run's), so a long window of a frequent
    // monitor is one indexed scan returning numbers, never its results' data.
    let rows = state
        .db
        .query_all_raw(Statement::from_sql_and_values(
            state.db.get_database_backend(),
            "SELECT min(created_at) AS created_at, agent_id, min(agent_name) AS agent_name,
                        (array_agg(status ORDER BY status = 'ok'))[1] AS status,
                        avg(value_ms) AS value_ms
                 FROM (
                   SELECT c.created_at, r.agent_id, r.agent_name, r.status, r.value_ms,
                          (row_number() OVER (PARTITION BY r.agent_id ORDER BY c.id) - 1) * $4
                            / count(*) OVER (PARTITION BY r.agent_id) AS grp
                   FROM checks c JOIN check_results r ON r.check_id = c.id
                   WHERE c.monitor_id = $1 AND c.created_at >= $2 AND c.created_at < $3
                     AND r.status <> 'pending'
                 ) runs
                 GROUP BY agent_id, grp
                 ORDER BY created_at",
            [
                m.id.into(),
                since.into(),
                until.into(),
                SERIES_POINTS.into(),
            ],
        ))
        .await?;
    let mut by_agent: Vec<AgentSeries> = Vec::new();
    for r in rows {
        let agent_id: Uuid = r.try_get("", "agent_id")?;
        let point = SeriesPoint {
            at: r.try_get("", "created_at")?,
            status: r.try_get("", "status")?,
            value_ms: r.try_get("", "value_ms")?,
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
