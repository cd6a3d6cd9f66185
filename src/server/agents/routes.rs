//! `/api/v1/agents`: administrators create, list, inspect, rename, rotate and delete agents.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{ExprTrait, Func};
use sea_orm::{ActiveValue::Set, QueryOrder, SqlErr, TransactionTrait};

use super::{new_token, seen_map, Column, Entity};
use crate::server::auth::{AdminUser, AuthUser, SessionAdmin};
use crate::server::broker::ManagementError;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Json;
use crate::server::AppState;
use netcheck_proto::api::agents::{Agent, AgentToken, CreateAgent, CreatedAgent, UpdateAgent};
use netcheck_proto::api::ErrorBody;
use netcheck_proto::api::ErrorCode;
use netcheck_proto::api::FixedLocation;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/agents")
            .route("", web::get().to(list))
            .route("", web::post().to(create))
            .route("/{id}", web::get().to(get))
            .route("/{id}", web::patch().to(update))
            .route("/{id}", web::delete().to(delete))
            .route("/{id}/token", web::post().to(rotate_token)),
    );
}

/// Checks a hand-set place and normalises its country code to upper case.
fn validate_location(mut l: FixedLocation) -> ApiResult<FixedLocation> {
    let bad =
        |field: &str, msg: &str| Err(ApiError::invalid_field(&format!("location.{field}"), msg));
    if l.country_code.len() != 2 || !l.country_code.chars().all(|c| c.is_ascii_alphabetic()) {
        return bad(
            "country_code",
            "country_code is an ISO 3166 alpha-2 code, e.g. DE",
        );
    }
    l.country_code = l.country_code.to_ascii_uppercase();
    if isocountry::CountryCode::for_alpha2(&l.country_code).is_err() {
        return bad("country_code", "not an ISO 3166 country code");
    }
    for (field, v) in [("city", &l.city), ("network", &l.network)] {
        if v.as_ref().is_some_and(|v| {
            v.trim().is_empty() || v.chars().count() > 128 || v.chars().any(char::is_control)
        }) {
            return bad(field, "must be 1-128 printable characters");
        }
    }
    match (l.lat, l.lon) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return bad("lat", "lat must be between -90 and 90");
            }
            if !(-180.0..=180.0).contains(&lon) {
                return bad("lon", "lon must be between -180 and 180");
            }
        }
        (None, None) => {}
        (None, Some(_)) => return bad("lat", "give lat and lon together"),
        (Some(_), None) => return bad("lon", "give lat and lon together"),
    }
    if l.asn == Some(0) {
        return bad("asn", "asn must be a positive number");
    }
    Ok(l)
}

fn validate_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(ApiError::invalid_field(
            "name",
            "name must be 1-64 characters of letters, digits, '.', '_' or '-'",
        ));
    }
    Ok(())
}

fn validate_region(region: &Option<String>) -> ApiResult<()> {
    if let Some(r) = region {
        if r.trim().is_empty() || r.chars().count() > 64 || r.chars().any(char::is_control) {
            return Err(ApiError::invalid_field(
                "region",
                "region must be 1-64 printable characters",
            ));
        }
    }
    Ok(())
}

fn validate_labels(labels: &[String]) -> ApiResult<()> {
    if labels.len() > 32 {
        return Err(ApiError::invalid_field("labels", "at most 32 labels"));
    }
    for l in labels {
        let ok = !l.is_empty()
            && l.len() <= 64
            && l.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '=' | '/')
            });
        if !ok {
            return Err(ApiError::invalid_field(
                "labels",
                format!("label '{l}' must be 1-64 characters of letters, digits and . _ - : = /"),
            ));
        }
    }
    Ok(())
}

fn name_taken(name: &str) -> ApiError {
    ApiError::conflict(
        ErrorCode::NameTaken,
        format!("an agent named '{name}' already exists"),
    )
    .with_details(serde_json::json!({ "field": "name" }))
}

pub(crate) fn broker_error(err: ManagementError) -> ApiError {
    tracing::error!(error = %err, "broker provisioning failed");
    crate::server::metrics::dependency_error("broker");
    ApiError::unavailable("broker").with_details(serde_json::json!({
        "dependency": "broker",
        "reason": "the RabbitMQ management API did not complete the change; nothing was changed",
    }))
}

async fn view(state: &AppState, m: super::Model) -> Agent {
    let seen = seen_map(state).await.get(&m.id).copied();
    super::view(m, seen, state.settings.agents.heartbeat_interval_secs)
}

async fn find(state: &AppState, id: Uuid) -> ApiResult<super::Model> {
    Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))
}

#[utoipa::path(operation_id = "list_agents", get, path = "/api/v1/agents", tag = "agents",
    description = "Any signed-in user may list agents (to choose where a check runs); `hostname` and `public_ip` are shown to administrators only.",
    responses((status = 200, body = [Agent])), security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    // Everyone may see which agents exist (to pick where a check runs); host facts are for
    // administrators.
    let admin = user.0.is_admin();
    let models = Entity::find()
        .order_by_asc(Column::Name)
        .all(&state.db)
        .await?;
    let seen = seen_map(&state).await;
    let interval = state.settings.agents.heartbeat_interval_secs;
    let agents: Vec<Agent> = models
        .into_iter()
        .map(|m| {
            let s = seen.get(&m.id).copied();
            let mut a = super::view(m, s, interval);
            if !admin {
                a.hostname = None;
                a.public_ip = None;
                a.version = None;
                a.capabilities = Vec::new();
            }
            a
        })
        .collect();
    Ok(HttpResponse::Ok().json(agents))
}

#[utoipa::path(operation_id = "create_agent", post, path = "/api/v1/agents", tag = "agents", request_body = CreateAgent,
    responses((status = 201, body = CreatedAgent), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id))]
pub async fn create(
    state: web::Data<AppState>,
    admin: SessionAdmin,
    body: Json<CreateAgent>,
) -> ApiResult<HttpResponse> {
    let CreateAgent {
        name,
        region,
        labels,
    } = body.0;
    let (model, token) = create_agent(&state, &name, region, labels).await?;
    tracing::info!(agent_id = %model.id, name = %model.name, "agent created");
    let agent = view(&state, model).await;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/agents/{}", agent.id)))
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedAgent { agent, token }))
}

/// Creates the row and the broker user/queue together: either both exist afterwards or neither.
pub async fn create_agent(
    state: &AppState,
    name: &str,
    region: Option<String>,
    labels: Vec<String>,
) -> ApiResult<(super::Model, String)> {
    validate_name(name)?;
    validate_region(&region)?;
    validate_labels(&labels)?;
    let id = Uuid::now_v7();
    let token = new_token();
    let txn = state.db.begin().await?;
    let model = super::ActiveModel {
        id: Set(id),
        name: Set(name.to_string()),
        region: Set(region),
        labels: Set(serde_json::json!(labels)),
        token_id: Set(token.id),
        token_hash: Set(token.hash),
        broker_user: Set(crate::server::broker::agent_user(id)),
        created_at: Set(Utc::now()),
        registered_at: Set(None),
        last_seen_at: Set(None),
        version: Set(None),
        hostname: Set(None),
        public_ip: Set(None),
        capabilities: Set(serde_json::json!([])),
        country_code: Set(None),
        city: Set(None),
        lat: Set(None),
        lon: Set(None),
        asn: Set(None),
        network: Set(None),
        fixed_location: Set(None),
    }
    .insert(&txn)
    .await
    .map_err(|err| match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => name_taken(name),
        _ => err.into(),
    })?;
    if let Err(err) = state.provisioner.provision_agent(id).await {
        txn.rollback().await.ok();
        // Best effort: remove whatever part of the broker side was created.
        if let Err(e) = state.provisioner.revoke_agent(id).await {
            tracing::warn!(agent_id = %id, error = %e, "could not clean up after failed provisioning");
        }
        return Err(broker_error(err));
    }
    txn.commit().await?;
    state.directory.invalidate();
    Ok((model, token.token))
}

#[utoipa::path(operation_id = "get_agent", get, path = "/api/v1/agents/{id}", tag = "agents",
    responses((status = 200, body = Agent), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let m = find(&state, *id).await?;
    Ok(HttpResponse::Ok().json(view(&state, m).await))
}

#[utoipa::path(operation_id = "update_agent", patch, path = "/api/v1/agents/{id}", tag = "agents", request_body = UpdateAgent,
    responses((status = 200, body = Agent), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<Uuid>,
    body: Json<UpdateAgent>,
) -> ApiResult<HttpResponse> {
    let UpdateAgent {
        name,
        region,
        labels,
        location,
    } = body.0;
    let location = match location {
        Some(Some(l)) => Some(Some(validate_location(l)?)),
        other => other,
    };
    let current = find(&state, *id).await?;
    let mut model: super::ActiveModel = current.into();
    if let Some(name) = &name {
        validate_name(name)?;
        model.name = Set(name.clone());
    }
    if region.is_some() {
        validate_region(&region)?;
        model.region = Set(region);
    }
    if let Some(labels) = labels {
        validate_labels(&labels)?;
        model.labels = Set(serde_json::json!(labels));
    }
    if let Some(location) = location {
        model.fixed_location = Set(location.map(|l| serde_json::json!(l)));
    }
    let m = model
        .update(&state.db)
        .await
        .map_err(|err| match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => name_taken(name.as_deref().unwrap_or("")),
            _ => err.into(),
        })?;
    state.directory.invalidate();
    Ok(HttpResponse::Ok().json(view(&state, m).await))
}

#[utoipa::path(operation_id = "delete_agent", delete, path = "/api/v1/agents/{id}", tag = "agents",
    responses((status = 204, description = "Deleted; its token, broker user, queue and connections are gone"),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id, agent_id = %*id))]
pub async fn delete(
    state: web::Data<AppState>,
    admin: AdminUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let agent = find(&state, *id).await?;
    // Broker first: the moment this returns, the agent can neither read nor publish.
    state
        .provisioner
        .revoke_agent(agent.id)
        .await
        .map_err(broker_error)?;
    Entity::delete_by_id(agent.id).exec(&state.db).await?;
    state.directory.invalidate();
    super::forget(&state, agent.id).await;
    tracing::info!(name = %agent.name, "agent deleted");
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(operation_id = "rotate_agent_token", post, path = "/api/v1/agents/{id}/token", tag = "agents",
    responses((status = 200, body = AgentToken, description = "New token; the old one and the live session end"),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id, agent_id = %*id))]
pub async fn rotate_token(
    state: web::Data<AppState>,
    admin: SessionAdmin,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let agent = find(&state, *id).await?;
    let token = rotate(&state, agent).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(AgentToken { token }))
}

/// Replaces the agent's token and ends its live broker session.
pub async fn rotate(state: &AppState, agent: super::Model) -> ApiResult<String> {
    let token = new_token();
    let id = agent.id;
    let mut model: super::ActiveModel = agent.into();
    model.token_id = Set(token.id);
    model.token_hash = Set(token.hash);
    model.update(&state.db).await?;
    state
        .provisioner
        .end_sessions(id)
        .await
        .map_err(broker_error)?;
    tracing::info!(agent_id = %id, "agent token rotated");
    Ok(token.token)
}

/// Single-host mode: makes sure an agent called `name` exists and returns a fresh token for it.
pub async fn local_agent_token(state: &AppState, name: &str) -> ApiResult<String> {
    let existing = Entity::find()
        .filter(Expr::expr(Func::lower(Expr::col(Column::Name))).eq(name.to_lowercase()))
        .one(&state.db)
        .await?;
    match existing {
        Some(agent) => {
            // Re-provisioning is idempotent and repairs a broker that lost its state.
            state
                .provisioner
                .provision_agent(agent.id)
                .await
                .map_err(broker_error)?;
            rotate(state, agent).await
        }
        None => Ok(
            create_agent(state, name, Some("local".into()), vec!["local".into()])
                .await?
                .1,
        ),
    }
}
