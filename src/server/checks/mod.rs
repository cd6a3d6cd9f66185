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
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, TransactionTrait};
use tokio_util::sync::CancellationToken;

use super::agents::{self, Agent, AgentStatus};
use super::broker::{agent_queue, CHECKS_EXCHANGE};
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::proto::check::{CheckRequest, CheckResult, ResultStatus};
use crate::proto::PROTOCOL_VERSION;
use crate::server::error::ErrorCode;
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
    let r = crate::server::window::add(&mut conn, &key, cost as i64, 60).await;
    match r {
        Ok((used, ttl)) if used > limit as i64 => {
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
    // Without a broker session nothing can be asked or answered: say so before choosing
    // agents (whose heartbeats stop while their own sessions are down).
    if !state.broker.is_connected().await {
        return Err(ApiError::unavailable("message broker"));
    }

    let wanted: Option<HashSet<Uuid>> = body
        .agents
        .as_ref()
        .map(|ids| ids.iter().copied().collect());
    if let Some(unique) = &wanted {
        if unique.is_empty() || unique.len() > MAX_AGENTS_PER_CHECK {
            return Err(ApiError::invalid_field(
                "agents",
                format!("name 1 to {MAX_AGENTS_PER_CHECK} agents, or leave it out for all"),
            ));
        }
    }
    let interval = state.settings.agents.heartbeat_interval_secs;
    let asked_at = Utc::now();
    let mut chosen = Chosen::from(
        &state.directory.agents(&state.db).await?,
        wanted.as_ref(),
        interval,
    );
    // The cached table may be up to `agents.cache_ms` old: before refusing the check, or
    // leaving out an agent it names, read the table again.
    if !chosen.conclusive(wanted.is_some()) && chosen.read_at < asked_at {
        chosen = Chosen::from(
            &state.directory.reload(&state.db).await?,
            wanted.as_ref(),
            interval,
        );
    }
    if !chosen.missing.is_empty() {
        let missing: Vec<String> = chosen.missing.iter().map(|u| u.to_string()).collect();
        return Err(ApiError::invalid_field(
            "agents",
            format!("unknown agent(s): {}", missing.join(", ")),
        ));
    }
    let online = chosen.online;
    // Without an explicit list only online agents take part.
    let offline = if wanted.is_some() {
        chosen.offline
    } else {
        Vec::new()
    };
    if online.is_empty() && offline.is_empty() {
        return Err(ApiError::conflict(
            ErrorCode::NoAgentsOnline,
            "no agent is online to run this check",
        ));
    }
    take_quota(state, user_id, (online.len() + offline.len()) as u64).await?;

    let now = Utc::now();
    let grace = state.settings.checks.grace_ms;
    let deadline = now + chrono::Duration::milliseconds((spec.budget_ms() + grace) as i64);
    let expires_at = now + chrono::Duration::milliseconds(grace as i64);
    let id = Uuid::now_v7();
    let rows: Vec<serde_json::Value> = online
        .iter()
        .map(|a| (a, ResultStatus::Pending))
        .chain(offline.iter().map(|a| (a, ResultStatus::Offline)))
        .map(|((m, v), status)| {
            serde_json::json!({
                "agent_id": m.id,
                "agent_name": m.name,
                "agent_region": m.region,
                "agent_location": v.location,
                "status": status.as_str(),
                "error": (status == ResultStatus::Offline).then(|| serde_json::json!({
                    "code": "agent_offline",
                    "message": "the agent was offline when the check was created",
                })),
            })
        })
        .collect();
    // The check and its result rows in one statement: atomic without an explicit transaction,
    // and one round trip instead of four.
    state
        .db
        .execute_raw(Statement::from_sql_and_values(
            state.db.get_database_backend(),
            INSERT_CHECK_SQL,
            [
                id.into(),
                user_id.into(),
                spec.check_type().as_str().into(),
                target.clone().into(),
                serde_json::to_value(&spec).expect("spec serialises")["options"]
                    .clone()
                    .into(),
                (if online.is_empty() {
                    model::CheckStatus::Finished
                } else {
                    model::CheckStatus::InProgress
                })
                .as_str()
                .into(),
                now.into(),
                deadline.into(),
                online.is_empty().then_some(now).into(),
                (online.len() as i32).into(),
                serde_json::Value::Array(rows).into(),
            ],
        ))
        .await?;

    if !online.is_empty() {
        let request = CheckRequest {
            protocol_version: PROTOCOL_VERSION,
            check_id: id,
            target,
            spec,
            expires_at,
            agents: online.iter().map(|(m, _)| m.id).collect(),
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

/// The agents a check goes to, by their status when the table was read.
struct Chosen {
    read_at: chrono::DateTime<Utc>,
    online: Vec<(agents::Model, Agent)>,
    offline: Vec<(agents::Model, Agent)>,
    /// Named but not in the table.
    missing: Vec<Uuid>,
}

impl Chosen {
    fn from(
        snapshot: &agents::Snapshot,
        wanted: Option<&HashSet<Uuid>>,
        interval_secs: u64,
    ) -> Self {
        let (mut online, mut offline, mut found) = (Vec::new(), Vec::new(), HashSet::new());
        for m in snapshot.agents.iter() {
            if wanted.is_some_and(|w| !w.contains(&m.id)) {
                continue;
            }
            found.insert(m.id);
            // PostgreSQL's last_seen_at is written on every heartbeat, so the row alone says
            // whether the agent was online when it was read.
            let view = Agent::as_of(m.clone(), None, interval_secs, snapshot.read_at);
            if view.status == AgentStatus::Online {
                online.push((m.clone(), view));
            } else {
                offline.push((m.clone(), view));
            }
        }
        let missing = wanted
            .map(|w| w.difference(&found).copied().collect())
            .unwrap_or_default();
        Self {
            read_at: snapshot.read_at,
            online,
            offline,
            missing,
        }
    }

    /// Whether this read settles who runs the check: every named agent known and online, and
    /// at least one agent online. Otherwise a newer read might change the outcome.
    fn conclusive(&self, named: bool) -> bool {
        self.missing.is_empty() && !self.online.is_empty() && (!named || self.offline.is_empty())
    }
}

const INSERT_CHECK_SQL: &str = "\
WITH c AS (
    INSERT INTO checks (id, user_id, type, target, options, status, created_at, deadline_at,
                        finished_at, pending)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
)
INSERT INTO check_results (check_id, agent_id, agent_name, agent_region, agent_location,
                           status, error)
SELECT $1, agent_id, agent_name, agent_region, agent_location, status, error
FROM jsonb_to_recordset($11) AS x(agent_id uuid, agent_name text, agent_region text,
                                   agent_location jsonb, status text, error jsonb)";

/// Sends the request: once through the fanout exchange when every online agent runs it,
/// otherwise to each chosen agent's queue. The broker drops it when it expires.
async fn publish(state: &AppState, request: &CheckRequest, fanout: bool) -> ApiResult<()> {
    let body = serde_json::to_vec(request).expect("request serialises");
    let ttl_ms = (request.expires_at - Utc::now()).num_milliseconds().max(1);
    // Transient: a request lives for seconds (its TTL), so writing it to disk would only add
    // an fsync to every check. If the broker restarts meanwhile, the agents' answers time out
    // honestly; results, which carry what was measured, are persistent.
    let props = || {
        BasicProperties::default()
            .with_persistence(false)
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
    /// Stored: the row as it is now.
    New(Box<result::Model>),
    /// This agent's result was already stored (a redelivery).
    Duplicate,
    /// The agent was not asked to run this check.
    NotAsked,
}

/// What a batch of results came to: one [`Stored`] per input, in order, and the checks the
/// batch finished (their last missing result was in it).
#[derive(Debug)]
pub struct StoredBatch {
    pub outcomes: Vec<Stored>,
    pub finished: Vec<Uuid>,
}

/// Stores agents' results exactly once and finishes every check whose last awaited answer is
/// among them — in one statement, so one round trip per batch. Only `pending` rows change
/// (an answer already stored, or marked timeout, stays), and `checks.pending` is decremented
/// by what was stored; PostgreSQL re-reads a row another statement changed meanwhile, so
/// concurrent batches and server instances count correctly and exactly one of them sees zero.
/// Of several copies of one answer in a batch the first is stored, the rest are `Duplicate`;
/// an answer for a check × agent that was never asked is `NotAsked`.
pub async fn store_results(
    db: &DatabaseConnection,
    results: &[CheckResult],
) -> Result<StoredBatch, DbErr> {
    if results.is_empty() {
        return Ok(StoredBatch {
            outcomes: Vec::new(),
            finished: Vec::new(),
        });
    }
    let records = serde_json::Value::Array(
        results
            .iter()
            .enumerate()
            .map(|(ord, r)| {
                serde_json::json!({
                    "ord": ord,
                    "check_id": r.check_id,
                    "agent_id": r.agent_id,
                    "status": r.status.as_str(),
                    "error": r.error,
                    "started_at": r.started_at,
                    "duration_ms": r.duration_ms,
                    "data": r.data,
                })
            })
            .collect(),
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            STORE_RESULTS_SQL,
            [records.into()],
        ))
        .await?;
    let mut new = std::collections::HashMap::new();
    let mut finished = Vec::new();
    for row in &rows {
        let kind: String = row.try_get("", "kind")?;
        let check_id: Uuid = row.try_get("", "check_id")?;
        if kind == "stored" {
            let model = result::Model::from_query_result(row, "")?;
            new.insert((check_id, model.agent_id), model);
        } else {
            finished.push(check_id);
        }
    }
    // Only what was not stored needs a second look: a redelivery (Duplicate) or an answer
    // nobody asked for (NotAsked). On the hot path every result is new and this is skipped.
    let unstored: HashSet<(Uuid, Uuid)> = results
        .iter()
        .map(|r| (r.check_id, r.agent_id))
        .filter(|key| !new.contains_key(key))
        .collect();
    let existing = if unstored.is_empty() {
        HashSet::new()
    } else {
        existing_rows(db, &unstored).await?
    };
    let mut taken = HashSet::new();
    let outcomes = results
        .iter()
        .map(|r| {
            let key = (r.check_id, r.agent_id);
            match new.remove(&key) {
                Some(row) => {
                    taken.insert(key);
                    Stored::New(Box::new(row))
                }
                // Stored by an earlier copy in this same batch, or before.
                None if taken.contains(&key) || existing.contains(&key) => Stored::Duplicate,
                None => Stored::NotAsked,
            }
        })
        .collect();
    Ok(StoredBatch { outcomes, finished })
}

const STORE_RESULTS_SQL: &str = "\
WITH v AS (
    SELECT DISTINCT ON (check_id, agent_id) * FROM jsonb_to_recordset($1)
        AS x(ord int, check_id uuid, agent_id uuid, status text, error jsonb,
             started_at timestamptz, duration_ms float8, data jsonb)
    ORDER BY check_id, agent_id, ord
), upd AS (
    UPDATE check_results r SET status = v.status, error = v.error, started_at = v.started_at,
        duration_ms = v.duration_ms, data = v.data, received_at = now()
    FROM v
    WHERE r.check_id = v.check_id AND r.agent_id = v.agent_id AND r.status = 'pending'
    RETURNING r.*
), fin AS (
    UPDATE checks c SET pending = c.pending - d.n,
        status = CASE WHEN c.pending - d.n <= 0 THEN 'finished' ELSE c.status END,
        finished_at = CASE WHEN c.pending - d.n <= 0 THEN now() ELSE c.finished_at END
    FROM (SELECT check_id, count(*)::int AS n FROM upd GROUP BY check_id) d
    WHERE c.id = d.check_id AND c.status = 'in_progress'
    RETURNING c.id, c.status
)
SELECT 'stored' AS kind, check_id, agent_id, agent_name, agent_region, agent_location, status,
       error, started_at, duration_ms, data, received_at FROM upd
UNION ALL
SELECT 'finished', id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM fin WHERE status = 'finished'";

/// Which of these check × agent pairs have a result row (whatever its status).
async fn existing_rows(
    db: &DatabaseConnection,
    keys: &HashSet<(Uuid, Uuid)>,
) -> Result<HashSet<(Uuid, Uuid)>, DbErr> {
    let (checks, agents): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT r.check_id, r.agent_id FROM check_results r \
             JOIN unnest($1::uuid[], $2::uuid[]) AS k(check_id, agent_id) \
             ON r.check_id = k.check_id AND r.agent_id = k.agent_id",
            [checks.into(), agents.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("", "check_id")?, row.try_get("", "agent_id")?)))
        .collect()
}

/// Most overdue checks one sweep finishes; a sweep that fills it is followed by another at
/// once, so a backlog (after an outage, say) drains in bounded transactions.
pub const SWEEP_BATCH: i64 = 500;

/// Finishes up to [`SWEEP_BATCH`] checks past their deadline, marking agents that never
/// answered `timeout`; returns how many it finished. Result rows are changed before check rows,
/// in the same order as [`store_results`], and no row is locked before that, so a sweep and
/// the collector never deadlock; several server instances may sweep at once (a check another
/// instance or the collector finished meanwhile is left alone).
pub async fn finish_due(state: &AppState) -> Result<usize, DbErr> {
    let Some(cutoff) = sweep_cutoff(state) else {
        return Ok(0);
    };
    let backend = state.db.get_database_backend();
    let due: Vec<Uuid> = state
        .db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT id FROM checks WHERE status = 'in_progress' AND deadline_at < $1 \
             ORDER BY deadline_at LIMIT $2",
            [cutoff.into(), SWEEP_BATCH.into()],
        ))
        .await?
        .iter()
        .map(|r| r.try_get::<Uuid>("", "id"))
        .collect::<Result<_, _>>()?;
    if due.is_empty() {
        return Ok(0);
    }
    let txn = state.db.begin().await?;
    let timeout_error = serde_json::json!({ "code": "agent_timeout", "message": "the agent did not answer in time" });
    let timed_out = result::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            backend,
            "UPDATE check_results SET status = 'timeout', error = $1 \
             WHERE check_id = ANY($2) AND status = 'pending' RETURNING *",
            [timeout_error.into(), due.clone().into()],
        ))
        .all(&txn)
        .await?;
    let ids: Vec<Uuid> = txn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE checks SET status = 'finished', finished_at = now(), pending = 0 \
             WHERE id = ANY($1) AND status = 'in_progress' RETURNING id",
            [due.into()],
        ))
        .await?
        .iter()
        .map(|r| r.try_get::<Uuid>("", "id"))
        .collect::<Result<_, _>>()?;
    txn.commit().await?;
    state
        .metrics
        .results_timed_out
        .inc_by(timed_out.len() as u64);
    state.metrics.checks_finished.inc_by(ids.len() as u64);
    events::publish(state, timed_out, &ids).await;
    Ok(ids.len())
}

/// How long a new broker session drains the results queue before anything is timed out.
const DRAIN_MS: u64 = 2_000;

/// Checks due before this instant may be finished with `timeout` for missing answers; `None`
/// while results cannot be received. After a broker outage, answers agents held back arrive
/// once they reconnect, so checks due since the outage began wait `checks.outage_grace_ms`
/// more; checks due before it had their chance.
fn sweep_cutoff(state: &AppState) -> Option<chrono::DateTime<Utc>> {
    use crate::server::broker::link::Receiving;
    match state.broker.receiving() {
        Receiving::No => None,
        Receiving::Since { up_for, .. } if up_for < Duration::from_millis(DRAIN_MS) => None,
        Receiving::Since {
            up_for,
            lost_at,
            reconnected: true,
        } if up_for < Duration::from_millis(state.settings.checks.outage_grace_ms) => {
            Some(lost_at.min(Utc::now()))
        }
        Receiving::Since { .. } => Some(Utc::now()),
    }
}

/// Runs [`finish_due`] twice a second (and again at once while it finds a full batch) until
/// `shutdown`.
pub fn spawn_sweeper(state: actix_web::web::Data<AppState>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            loop {
                match finish_due(&state).await {
                    Ok(n) if n as i64 == SWEEP_BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "finishing due checks failed");
                        break;
                    }
                }
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
