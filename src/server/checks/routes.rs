//! `/api/v1/checks`: create (202), read, history, and the live event stream.

use actix_web::{web, HttpResponse};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{QueryOrder, QuerySelect};

use crate::server::auth::AuthUser;
use crate::server::db::checks::{check, result};
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Json;
use crate::server::AppState;
use netcheck_proto::api::checks::{
    CheckCreated, CheckPage, CheckStatus, CheckSummary, CheckView, CreateCheck, HistoryQuery,
    OutcomeFilter,
};
use netcheck_proto::api::ErrorBody;
use netcheck_proto::api::ErrorCode;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/checks")
            .route("", web::post().to(create))
            .route("", web::get().to(list))
            .route("/{id}", web::get().to(get))
            .route("/{id}/events", web::get().to(events))
            .route("/{id}/share", web::post().to(super::share::share))
            .route("/{id}/share", web::delete().to(super::share::unshare)),
    );
    cfg.route("/shared/{token}", web::get().to(super::share::shared));
}

#[utoipa::path(operation_id = "create_check", post, path = "/api/v1/checks", tag = "checks", request_body = CreateCheck,
    responses((status = 202, body = CheckCreated, headers(("Location" = String))),
              (status = 409, body = ErrorBody, description = "no agent online"),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody, headers(("Retry-After" = u64))),
              (status = 503, body = ErrorBody, headers(("Retry-After" = u64)),
               description = "`overloaded`: the chosen agents or the server are past capacity (nothing was accepted; retry after `Retry-After` seconds); `broker_unavailable`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id))]
pub async fn create(
    req: actix_web::HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    use actix_web::FromRequest;
    // One after the other (extractors run together): past capacity, nothing else is done.
    let mut payload = payload.into_inner();
    let admitted = super::create::admit_request(&state, &mut payload).await?;
    let user = AuthUser::from_request(&req, &mut payload).await?;
    tracing::Span::current().record("user_id", tracing::field::display(user.0.id));
    let body = Json::<CreateCheck>::from_request(&req, &mut payload).await?;
    let (id, agents, ran) = super::create(&state, admitted, &user.0, body.0, None).await?;
    let status = if ran {
        CheckStatus::InProgress
    } else {
        CheckStatus::Finished
    };
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/api/v1/checks/{id}")))
        .json(CheckCreated { id, status, agents }))
}

#[utoipa::path(operation_id = "get_check", get, path = "/api/v1/checks/{id}", tag = "checks",
    responses((status = 200, body = CheckView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let c = super::load_visible(&state, &user.0, *id).await?;
    let results = result::Entity::find()
        .filter(result::Column::CheckId.eq(c.id))
        .all(&state.db)
        .await?;
    Ok(HttpResponse::Ok().json(super::model::check_view(c, results)?))
}

/// The agent a filter names: an id, or a name of a current agent (any letter case).
async fn agent_filter(state: &AppState, agent: &str) -> ApiResult<Uuid> {
    if let Ok(id) = agent.parse() {
        return Ok(id);
    }
    use crate::server::agents;
    use sea_orm::sea_query::ExprTrait;
    agents::Entity::find()
        .filter(
            sea_orm::sea_query::Expr::expr(sea_orm::sea_query::Func::lower(
                sea_orm::sea_query::Expr::col(agents::Column::Name),
            ))
            .eq(agent.to_lowercase()),
        )
        .one(&state.db)
        .await?
        .map(|a| a.id)
        .ok_or_else(|| ApiError::invalid_field("agent", format!("no agent named '{agent}'")))
}

#[utoipa::path(operation_id = "list_checks", get, path = "/api/v1/checks", tag = "checks", params(HistoryQuery),
    responses((status = 200, body = CheckPage)), security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<HistoryQuery>,
) -> ApiResult<HttpResponse> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "limit must be between 1 and 100",
        ));
    }
    let mut query = check::Entity::find()
        .order_by_desc(check::Column::Id)
        .limit(limit);
    if let Some(owner) = user.0.listing_owner() {
        query = query.filter(check::Column::UserId.eq(owner));
    }
    if let Some(before) = q.before {
        query = query.filter(check::Column::Id.lt(before));
    }
    if let Some(t) = q.check_type {
        query = query.filter(check::Column::CheckType.eq(t.as_str()));
    }
    if let Some(t) = q.target.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        if t.len() > 253 {
            return Err(ApiError::invalid_field(
                "target",
                "target is at most 253 characters",
            ));
        }
        query = query.filter(Expr::cust_with_values(
            "checks.target ILIKE $1",
            [crate::server::extract::contains_pattern(t)],
        ));
    }
    match q.status {
        // `failing` counts the answers that were not `ok` (failed, timeout, offline);
        // `pending` those still awaited.
        Some(OutcomeFilter::Ok) => {
            query = query.filter(Expr::cust("checks.failing = 0 AND checks.pending = 0"))
        }
        Some(OutcomeFilter::Failed) => query = query.filter(Expr::cust("checks.failing > 0")),
        None => {}
    }
    if let Some(agent) = q.agent.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        let id = agent_filter(&state, agent).await?;
        query = query.filter(Expr::cust_with_values(
            "EXISTS (SELECT 1 FROM check_results r WHERE r.check_id = checks.id AND r.agent_id = $1)",
            [id],
        ));
    }
    if let Some(m) = q.monitor {
        query = query.filter(check::Column::MonitorId.eq(m));
    }
    if let Some(since) = q.since {
        query = query.filter(check::Column::CreatedAt.gte(since));
    }
    if let Some(until) = q.until {
        query = query.filter(check::Column::CreatedAt.lt(until));
    }
    let checks = query.all(&state.db).await?;
    let ids: Vec<Uuid> = checks.iter().map(|c| c.id).collect();
    // Counts only: a page of history never loads its results' data.
    let counts: Vec<(Uuid, i64, i64)> = result::Entity::find()
        .select_only()
        .column(result::Column::CheckId)
        .column_as(Expr::cust("count(*)"), "agents")
        .column_as(Expr::cust("count(*) FILTER (WHERE status = 'ok')"), "ok")
        .filter(result::Column::CheckId.is_in(ids))
        .group_by(result::Column::CheckId)
        .into_tuple()
        .all(&state.db)
        .await?;
    let next_before = (checks.len() as u64 == limit)
        .then(|| checks.last().map(|c| c.id))
        .flatten();
    let checks = checks
        .into_iter()
        .map(|c| {
            let (agents, ok) = counts
                .iter()
                .find(|(id, _, _)| *id == c.id)
                .map_or((0, 0), |(_, agents, ok)| (*agents as u64, *ok as u64));
            Ok(CheckSummary {
                agents,
                ok,
                id: c.id,
                spec: super::model::stored_spec(c.check_type, &c.options)?,
                target: c.target,
                status: c.status.into(),
                created_at: c.created_at,
                finished_at: c.finished_at,
                monitor_id: c.monitor_id,
            })
        })
        .collect::<Result<_, sea_orm::DbErr>>()?;
    Ok(HttpResponse::Ok().json(CheckPage {
        checks,
        next_before,
    }))
}

#[utoipa::path(operation_id = "check_events", get, path = "/api/v1/checks/{id}/events", tag = "checks",
    responses((status = 200, content_type = "text/event-stream",
               description = "`result` events (one per agent, data = a result) then `finished`"),
              (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "`too_many_streams`: the user already holds 20 open streams")),
    security(("bearer" = [])))]
pub async fn events(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let c = super::load_visible(&state, &user.0, *id).await?;
    let Some(slot) = state.events.open_stream(user.0.id) else {
        return Err(ApiError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyStreams,
            format!(
                "You have {} live result streams open; close one first.",
                super::events::MAX_STREAMS_PER_USER
            ),
        )
        .retry_after(5));
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(super::events::stream(state.clone(), c.id, tx, slot));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, actix_web::Error>(b), rx))
    });
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Type", "text/event-stream"))
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
