//! The agent-facing endpoints: registration (fresh broker credentials each time) and heartbeats.
//! Both authenticate with the agent token in `Authorization: Bearer`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::ActiveValue::Set;

use super::routes::broker_error;
use crate::server::broker::{agent_queue, agent_user, RESULTS_EXCHANGE};
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Json;
use crate::server::AppState;
use netcheck_proto::agent::{
    AmqpCredentials, BrokerAddress, Heartbeat, HeartbeatConfig, RegisterRequest, RegisterResponse,
};
use netcheck_proto::api::ErrorBody;
use netcheck_proto::api::ErrorCode;
use netcheck_proto::PROTOCOL_VERSION;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/agent")
            .route("/register", web::post().to(register))
            .route("/heartbeat", web::post().to(heartbeat)),
    );
}

/// The agent behind a request, authenticated by its token.
pub struct AgentAuth(pub super::Model);

impl FromRequest for AgentAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = crate::server::auth::bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("AppState missing"))?;
            let token = token.ok_or_else(|| {
                ApiError::unauthorized(
                    ErrorCode::InvalidAgentToken,
                    "agent token is invalid or revoked",
                )
            })?;
            Ok(AgentAuth(super::authenticate(&state.db, &token).await?))
        })
    }
}

fn heartbeat_url(state: &AppState, req: &HttpRequest) -> String {
    let base = crate::server::extract::public_base(&state.settings, req);
    format!("{base}/api/v1/agent/heartbeat")
}

#[utoipa::path(operation_id = "agent_register", post, path = "/api/v1/agent/register", tag = "agent protocol", request_body = RegisterRequest,
    responses((status = 200, body = RegisterResponse), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(agent_id = %agent.0.id))]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    agent: AgentAuth,
    body: Json<RegisterRequest>,
) -> ApiResult<HttpResponse> {
    let agent = agent.0;
    let body = body.0;
    if body.hostname.is_empty() || body.hostname.len() > 255 {
        return Err(ApiError::invalid_field(
            "hostname",
            "hostname must be 1-255 characters",
        ));
    }
    if body.version.is_empty() || body.version.len() > 64 {
        return Err(ApiError::invalid_field(
            "version",
            "version must be 1-64 characters",
        ));
    }
    if let Some(v) = body.protocol_version {
        if v > PROTOCOL_VERSION {
            tracing::warn!(
                agent_protocol = v,
                server_protocol = PROTOCOL_VERSION,
                "agent speaks a newer protocol"
            );
        }
    }
    let password = state
        .provisioner
        .issue_credentials(agent.id)
        .await
        .map_err(broker_error)?;
    // A rotation or deletion that committed while the credentials were issued must win: look
    // at the token again, and if it changed, take the credentials back. (One that commits
    // after this look ends the broker session itself, after these credentials were set.)
    let still_valid = super::Entity::find_by_id(agent.id)
        .one(&state.db)
        .await?
        .is_some_and(|now| now.token_id == agent.token_id && now.token_hash == agent.token_hash);
    if !still_valid {
        let _ = state.provisioner.end_sessions(agent.id).await;
        tracing::warn!("token rotated or agent deleted during registration; credentials withdrawn");
        return Err(super::invalid_token());
    }
    let public_ip = crate::server::extract::client_ip(&req, &state.settings.http);
    let now = Utc::now();
    let id = agent.id;
    let mut model: super::ActiveModel = agent.into();
    model.registered_at = Set(Some(now));
    model.hostname = Set(Some(body.hostname.clone()));
    model.version = Set(Some(body.version.clone()));
    model.capabilities = Set(serde_json::json!(body.capabilities));
    let ip: Option<std::net::IpAddr> = public_ip.as_deref().and_then(|ip| ip.parse().ok());
    let (geo, network) = match ip {
        Some(ip) => (state.geoip.locate(ip).await, state.geoip.network(ip).await),
        None => (None, None),
    };
    model.country_code = Set(geo.as_ref().and_then(|g| g.country_code.clone()));
    model.city = Set(geo.as_ref().and_then(|g| g.city.clone()));
    model.lat = Set(geo.as_ref().map(|g| g.lat));
    model.lon = Set(geo.as_ref().map(|g| g.lon));
    model.asn = Set(network.as_ref().map(|n| n.asn as i64));
    model.network = Set(network.map(|n| n.name));
    model.public_ip = Set(public_ip);
    model.update(&state.db).await?;
    super::touch(&state, id).await?;
    state.directory.invalidate();
    tracing::info!(hostname = %body.hostname, version = %body.version, "agent registered");
    let amqp = &state.settings.amqp;
    // Agents take the nodes in turn in the order they were created (ids are time-ordered), so
    // a fleet is spread evenly however few agents it has, and an agent keeps its node.
    let rank = super::Entity::find()
        .filter(super::Column::Id.lt(id))
        .count(&state.db)
        .await?;
    let urls = broker_urls_for(rank, amqp);
    let first = urls
        .first()
        .and_then(|u| BrokerAddress::parse(u))
        .ok_or_else(|| ApiError::internal("no broker address for agents (amqp.public_urls)"))?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(RegisterResponse {
            agent_id: id,
            amqp: AmqpCredentials {
                url: urls.first().cloned(),
                urls,
                host: first.host,
                port: first.port,
                vhost: amqp.vhost.clone(),
                username: agent_user(id),
                password,
                tls: first.tls,
                queue: agent_queue(id),
                results_exchange: RESULTS_EXCHANGE.to_string(),
                results_per_message: state.settings.agents.results_per_message,
            },
            heartbeat: HeartbeatConfig {
                url: heartbeat_url(&state, &req),
                interval_secs: state.settings.agents.heartbeat_interval_secs,
            },
            protocol_version: PROTOCOL_VERSION,
            policy: netcheck_proto::agent::TargetPolicy {
                allowed_networks: state
                    .settings
                    .checks
                    .allowed_networks
                    .iter()
                    .map(|n| n.to_string())
                    .collect(),
                self_addresses: ip.map(|ip| ip.to_string()).into_iter().collect(),
            },
        }))
}

#[utoipa::path(operation_id = "agent_heartbeat", post, path = "/api/v1/agent/heartbeat", tag = "agent protocol", request_body = Heartbeat,
    responses((status = 204), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn heartbeat(
    state: web::Data<AppState>,
    agent: AgentAuth,
    body: Json<Heartbeat>,
) -> ApiResult<HttpResponse> {
    if body.0.agent_id != agent.0.id {
        return Err(ApiError::invalid_field(
            "agent_id",
            "agent_id does not match the token",
        ));
    }
    let was_online = netcheck_proto::api::agents::AgentStatus::of(
        agent.0.registered_at,
        agent.0.last_seen_at,
        state.settings.agents.heartbeat_interval_secs,
        Utc::now(),
    ) == netcheck_proto::api::agents::AgentStatus::Online;
    super::touch(&state, agent.0.id).await?;
    if !was_online {
        // Back online: checks created from now on include it.
        state.directory.invalidate();
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The broker addresses for the `rank`-th agent, with the vhost, rotated by its rank so that a
/// fleet spreads over a cluster's nodes (each agent still tries all of them).
fn broker_urls_for(rank: u64, amqp: &crate::config::AmqpSettings) -> Vec<String> {
    // Validated when the settings were loaded.
    let mut urls: Vec<String> = amqp
        .agent_urls()
        .unwrap_or_default()
        .into_iter()
        .map(|mut u| {
            u.set_path(&amqp.vhost.replace('%', "%25").replace('/', "%2F"));
            u.to_string()
        })
        .collect();
    if !urls.is_empty() {
        let turn = (rank % urls.len() as u64) as usize;
        urls.rotate_left(turn);
    }
    urls
}
