//! Checks: creation and fan-out to agents, exactly-once storage of results, finishing at
//! "all answered" or deadline, and the live event stream.

pub mod collector;
pub mod events;
pub mod model;
pub mod routes;
pub mod validate;

use std::collections::HashSet;
use std::time::Duration;

use amqprs::BasicProperties;
use chrono::Utc;
use deadpool_redis::redis;
use sea_orm::entity::prelude::*;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseTransaction, Statement, TransactionTrait,
};
use tokio_util::sync::CancellationToken;

use super::agents::{self, seen_map, Agent, AgentStatus};
use super::broker::{agent_queue, CHECKS_EXCHANGE};
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::proto::check::{CheckRequest, CheckResult, ResultStatus};
use crate::proto::PROTOCOL_VERSION;
use model::{check, result};

/// Largest number of agents one check may name.
pub const MAX_AGENTS_PER_CHECK: usize = 500;

/// Takes `cost` from the user's per-minute budget (fails open when Redis is down).
async fn take_quota(state: &AppState, user_id: Uuid, cost: u64) -> ApiResult<()> {
    let limit = state.settings.checks.rate_limit_per_minute as u64;
    let key = format!("{}:quota:checks:{user_id}", state.settings.redis.key_prefix);
    let Ok(mut conn) = state.redis.get().await else {
        tracing::warn!("check rate limiter unavailable (redis); allowing");
        return Ok(());
    };
    let r: Result<(u64, i64), _> = redis::pipe()
        .incr(&key, cost)
        .cmd("EXPIRE")
        .arg(&key)
        .arg(60)
        .arg("NX")
        .ignore()
        .ttl(&key)
        .query_async(&mut conn)
        .await;
    match r {
        Ok((used, ttl)) if used > limit => {
            // Give the budget back: the check is not created.
            let _: Result<(), _> = redis::cmd("DECRBY")
                .arg(&key)
                .arg(cost)
                .query_async(&mut conn)
                .await;
            Err(ApiError::rate_limited(ttl.max(1) as u64))
        }
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "check rate limiter unavailable (redis); allowing");
            Ok(())
        }
    }
}

/// Creates a check, stores one pending row per agent and publishes the request.
/// Returns the check id, the number of agents asked, and whether any of them was online
/// (when none was, the check is finished at once with every result `offline`).
pub async fn create(
    state: &AppState,
    user_id: Uuid,
    body: validate::CreateCheck,
) -> ApiResult<(Uuid, usize, bool)> {
    let policy = state.policy.clone();
    let (target, spec) = validate::spec(&body, &policy)?;

    let interval = state.settings.agents.heartbeat_interval_secs;
    let seen = seen_map(state).await;
    let models = match &body.agents {
        Some(ids) => {
            let unique: HashSet<Uuid> = ids.iter().copied().collect();
            if unique.is_empty() || unique.len() > MAX_AGENTS_PER_CHECK {
                return Err(ApiError::invalid_field(
                    "agents",
                    format!("name 1 to {MAX_AGENTS_PER_CHECK} agents, or leave it out for all"),
                ));
            }
            let found = agents::Entity::find()
                .filter(agents::Column::Id.is_in(unique.iter().copied()))
                .all(&state.db)
                .await?;
            if found.len() != unique.len() {
                let known: HashSet<Uuid> = found.iter().map(|a| a.id).collect();
                let missing: Vec<String> =
                    unique.difference(&known).map(|u| u.to_string()).collect();
                return Err(ApiError::invalid_field(
                    "agents",
                    format!("unknown agent(s): {}", missing.join(", ")),
                ));
            }
            found
        }
        None => agents::Entity::find().all(&state.db).await?,
    };
    let views: Vec<(agents::Model, Agent)> = models
        .into_iter()
        .map(|m| {
            let v = Agent::from_model(m.clone(), seen.get(&m.id).copied(), interval);
            (m, v)
        })
        .collect();
    let (online, offline): (Vec<_>, Vec<_>) = views
        .into_iter()
        .partition(|(_, v)| v.status == AgentStatus::Online);
    // Without an explicit list only online agents take part.
    let offline = if body.agents.is_some() {
        offline
    } else {
        Vec::new()
    };
    if online.is_empty() && offline.is_empty() {
        return Err(ApiError::conflict(
            "no_agents_online",
            "no agent is online to run this check",
        ));
    }
    take_quota(state, user_id, (online.len() + offline.len()) as u64).await?;

    let now = Utc::now();
    let grace = state.settings.checks.grace_ms;
    let deadline = now + chrono::Duration::milliseconds((spec.budget_ms() + grace) as i64);
    let expires_at = now + chrono::Duration::milliseconds(grace as i64);
    let id = Uuid::now_v7();
    let txn = state.db.begin().await?;
    check::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        check_type: Set(spec.check_type().as_str().into()),
        target: Set(target.clone()),
        options: Set(serde_json::to_value(&spec).expect("spec serialises")["options"].clone()),
        status: Set(if online.is_empty() {
            "finished"
        } else {
            "in_progress"
        }
        .into()),
        created_at: Set(now),
        deadline_at: Set(deadline),
        finished_at: Set(online.is_empty().then_some(now)),
    }
    .insert(&txn)
    .await?;
    let rows: Vec<result::ActiveModel> = online
        .iter()
        .map(|a| (a, ResultStatus::Pending))
        .chain(offline.iter().map(|a| (a, ResultStatus::Offline)))
        .map(|((m, v), status)| result::ActiveModel {
            check_id: Set(id),
            agent_id: Set(m.id),
            agent_name: Set(m.name.clone()),
            agent_region: Set(m.region.clone()),
            agent_location: Set(v.location.as_ref().map(|l| serde_json::to_value(l).expect("location serialises"))),
            status: Set(status.as_str().into()),
            error: Set((status == ResultStatus::Offline).then(|| {
                serde_json::json!({ "code": "agent_offline", "message": "the agent was offline when the check was created" })
            })),
            started_at: Set(None),
            duration_ms: Set(None),
            data: Set(None),
            received_at: Set(None),
        })
        .collect();
    result::Entity::insert_many(rows).exec(&txn).await?;
    txn.commit().await?;

    if !online.is_empty() {
        let request = CheckRequest {
            protocol_version: PROTOCOL_VERSION,
            check_id: id,
            target,
            spec,
            expires_at,
            agents: online.iter().map(|(m, _)| m.id).collect(),
            allowed_networks: state
                .settings
                .checks
                .allowed_networks
                .iter()
                .map(|n| n.to_string())
                .collect(),
        };
        if let Err(err) = publish(state, &request, body.agents.is_none()).await {
            // Nothing was sent: take the check back so no one waits for it.
            check::Entity::delete_by_id(id).exec(&state.db).await.ok();
            return Err(err);
        }
    }
    state.metrics.checks_created.inc();
    tracing::info!(check_id = %id, agents = online.len(), "check created");
    Ok((id, online.len() + offline.len(), !online.is_empty()))
}

/// Sends the request: once through the fanout exchange when every online agent runs it,
/// otherwise to each chosen agent's queue. The broker drops it when it expires.
async fn publish(state: &AppState, request: &CheckRequest, fanout: bool) -> ApiResult<()> {
    let body = serde_json::to_vec(request).expect("request serialises");
    let ttl_ms = (request.expires_at - Utc::now()).num_milliseconds().max(1);
    let props = || {
        BasicProperties::default()
            .with_persistence(true)
            .with_content_type("application/json")
            .with_message_id(&request.check_id.to_string())
            .with_expiration(&ttl_ms.to_string())
            .finish()
    };
    let unavailable = |e: crate::amqp::PublishError| {
        tracing::error!(error = %e, "could not publish check request");
        ApiError::unavailable("broker")
    };
    if fanout {
        state
            .broker
            .publish(props(), body, CHECKS_EXCHANGE, "")
            .await
            .map_err(unavailable)?;
    } else {
        for agent in &request.agents {
            state
                .broker
                .publish(props(), body.clone(), "", &agent_queue(*agent))
                .await
                .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// What became of an incoming result.
#[derive(Debug, PartialEq)]
pub enum Stored {
    /// Stored; `finished` when it was the last one missing.
    New {
        finished: bool,
        row: Box<result::Model>,
    },
    /// This agent's result was already stored (a redelivery).
    Duplicate,
    /// The agent was not asked to run this check.
    NotAsked,
}

async fn lock_check(txn: &DatabaseTransaction, id: Uuid) -> Result<Option<String>, DbErr> {
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "SELECT status FROM checks WHERE id = $1 FOR UPDATE",
            [id.into()],
        ))
        .await?;
    row.map(|r| r.try_get::<String>("", "status")).transpose()
}

/// Stores an agent's result exactly once, in one transaction with finishing the check.
pub async fn store_result(db: &DatabaseConnection, r: &CheckResult) -> Result<Stored, DbErr> {
    let txn = db.begin().await?;
    // Serialise results of one check, so exactly one of them sees "nothing pending".
    if lock_check(&txn, r.check_id).await?.is_none() {
        txn.rollback().await?;
        return Ok(Stored::NotAsked);
    }
    let mut updated = result::Entity::update_many()
        .col_expr(result::Column::Status, Expr::value(r.status.as_str()))
        .col_expr(
            result::Column::Error,
            Expr::value(
                r.error
                    .as_ref()
                    .map(|e| serde_json::to_value(e).expect("error serialises")),
            ),
        )
        .col_expr(result::Column::StartedAt, Expr::value(r.started_at))
        .col_expr(result::Column::DurationMs, Expr::value(r.duration_ms))
        .col_expr(
            result::Column::Data,
            Expr::value(
                r.data
                    .as_ref()
                    .map(|d| serde_json::to_value(d).expect("data serialises")),
            ),
        )
        .col_expr(result::Column::ReceivedAt, Expr::value(Utc::now()))
        .filter(result::Column::CheckId.eq(r.check_id))
        .filter(result::Column::AgentId.eq(r.agent_id))
        .filter(result::Column::Status.eq("pending"))
        .exec_with_returning(&txn)
        .await?;
    let Some(row) = updated.pop() else {
        let exists = result::Entity::find_by_id((r.check_id, r.agent_id))
            .one(&txn)
            .await?
            .is_some();
        txn.rollback().await?;
        return Ok(if exists {
            Stored::Duplicate
        } else {
            Stored::NotAsked
        });
    };
    let finished = txn
        .execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "UPDATE checks SET status = 'finished', finished_at = now() \
             WHERE id = $1 AND status = 'in_progress' \
             AND NOT EXISTS (SELECT 1 FROM check_results WHERE check_id = $1 AND status = 'pending')",
            [r.check_id.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    txn.commit().await?;
    Ok(Stored::New {
        finished,
        row: Box::new(row),
    })
}

/// Finishes checks past their deadline, marking agents that never answered `timeout`.
/// Safe with several server instances (rows are claimed with SKIP LOCKED).
pub async fn finish_due(state: &AppState) -> Result<usize, DbErr> {
    let txn = state.db.begin().await?;
    let backend = txn.get_database_backend();
    let due = txn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT id FROM checks WHERE status = 'in_progress' AND deadline_at < now() \
             ORDER BY deadline_at LIMIT 200 FOR UPDATE SKIP LOCKED",
        ))
        .await?;
    let ids: Vec<Uuid> = due
        .iter()
        .filter_map(|r| r.try_get::<Uuid>("", "id").ok())
        .collect();
    if ids.is_empty() {
        txn.rollback().await?;
        return Ok(0);
    }
    let timeout_error = serde_json::json!({ "code": "agent_timeout", "message": "the agent did not answer in time" });
    let timed_out = result::Entity::update_many()
        .col_expr(result::Column::Status, Expr::value("timeout"))
        .col_expr(result::Column::Error, Expr::value(timeout_error))
        .filter(result::Column::CheckId.is_in(ids.clone()))
        .filter(result::Column::Status.eq("pending"))
        .exec_with_returning(&txn)
        .await?;
    check::Entity::update_many()
        .col_expr(check::Column::Status, Expr::value("finished"))
        .col_expr(check::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(check::Column::Id.is_in(ids.clone()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    for row in timed_out {
        state.metrics.results_timed_out.inc();
        events::publish_result(state, row).await;
    }
    for id in &ids {
        state.metrics.checks_finished.inc();
        events::publish_finished(state, *id).await;
    }
    Ok(ids.len())
}

/// Runs [`finish_due`] twice a second until `shutdown`.
pub fn spawn_sweeper(state: actix_web::web::Data<AppState>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = finish_due(&state).await {
                tracing::warn!(error = %e, "finishing due checks failed");
            }
        }
    });
}

/// Loads a check the user may see (their own, or any for admins); 404 otherwise.
pub async fn load_visible(
    state: &AppState,
    user: &super::users::Model,
    id: Uuid,
) -> ApiResult<check::Model> {
    let c = check::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("check"))?;
    if c.user_id != user.id && user.role != super::users::Role::Admin {
        return Err(ApiError::not_found("check"));
    }
    Ok(c)
}
