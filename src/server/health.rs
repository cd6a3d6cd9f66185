//! Operations endpoints: `/healthz` (the process is up), `/readyz` (its dependencies answer)
//! and `/metrics` (Prometheus text format).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use deadpool_redis::redis;

use super::AppState;
use netcheck_proto::api::health::Health;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(operation_id = "healthz", get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        checks: None,
    })
}

async fn probe<F, E>(fut: F) -> String
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(PROBE_TIMEOUT, fut).await {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: timed out".into(),
    }
}

#[utoipa::path(operation_id = "readyz", get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db = probe(state.db.ping());
    let redis = probe(async {
        let mut conn = state.redis.get().await.map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let broker = probe(async {
        state
            .provisioner
            .management()
            .overview()
            .await
            .map_err(|e| e.to_string())?;
        if state.broker.is_connected().await {
            Ok(())
        } else {
            Err("no AMQP session".to_string())
        }
    });
    let (db, redis, broker) = futures_util::join!(db, redis, broker);
    let mut checks = std::collections::BTreeMap::new();
    checks.insert("database".to_string(), db);
    checks.insert("redis".to_string(), redis);
    checks.insert("broker".to_string(), broker);
    let ready = checks.values().all(|v| v == "ok");
    let body = Health {
        status: if ready { "ready" } else { "not_ready" }.into(),
        checks: Some(checks),
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics` (Prometheus text format).
pub async fn metrics(req: actix_web::HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    // Without the database the agent gauges keep their last values.
    let agents = match <super::agents::Entity as sea_orm::EntityTrait>::find()
        .all(&state.db)
        .await
    {
        Ok(models) => Some(agent_counts(&state, models).await),
        Err(_) => None,
    };
    let now = super::metrics::Snapshot {
        agents,
        broker_connected: state.broker.is_connected().await,
        live_streams: state.events.open_streams(),
        live_events_subscribed: state.events.subscribed(),
    };
    // Per-monitor series name users' monitors: only for the scraper holding the token.
    let scraper = state.settings.metrics.token.as_ref().is_some_and(|want| {
        use secrecy::ExposeSecret;
        use subtle::ConstantTimeEq;
        super::auth::bearer(&req)
            .is_some_and(|got| bool::from(got.as_bytes().ct_eq(want.expose_secret().as_bytes())))
    });
    let monitors = if scraper {
        super::monitors::metrics::render(&state).await
    } else {
        String::new()
    };
    match state
        .metrics
        .render(now)
        .map(|body| match body.strip_suffix("# EOF\n") {
            Some(head) => format!("{head}{monitors}# EOF\n"),
            None => body,
        }) {
        Some(body) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(body),
        None => HttpResponse::InternalServerError().finish(),
    }
}

/// Agents online, offline and pending.
async fn agent_counts(state: &AppState, models: Vec<super::agents::Model>) -> [i64; 3] {
    use netcheck_proto::api::agents::AgentStatus;
    let seen = super::agents::seen_map(state).await;
    let interval = state.settings.agents.heartbeat_interval_secs;
    let mut counts = [0i64; 3];
    for a in models {
        let s = seen.get(&a.id).copied();
        counts[match crate::server::agents::view(a, s, interval).status {
            AgentStatus::Online => 0,
            AgentStatus::Offline => 1,
            AgentStatus::Pending => 2,
        }] += 1;
    }
    counts
}
