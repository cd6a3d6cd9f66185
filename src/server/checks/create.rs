//! Creating a check: validate the request, choose the agents, insert the check with a pending
//! row per agent, and publish the request to the broker.

use amqprs::BasicProperties;
use chrono::Utc;
use deadpool_redis::redis;
use sea_orm::entity::prelude::*;

use sea_orm::QuerySelect;

use super::validate;
use crate::server::agents;
use crate::server::broker::{agent_queue, CHECKS_EXCHANGE};
use crate::server::db::checks::{self, check, result};
use crate::server::db::users;
use crate::server::error::{ApiError, ApiResult, OverloadScope};
use crate::server::selection;
use crate::server::AppState;
use netcheck_proto::api::agents::Agent;
use netcheck_proto::api::checks::CheckStatus;
use netcheck_proto::api::AgentSelection;
use netcheck_proto::api::ErrorCode;
use netcheck_proto::check::{CheckRequest, CheckSpec};
use netcheck_proto::result::{ProbeError, ProbeErrorCode, ResultStatus};
use netcheck_proto::PROTOCOL_VERSION;

/// Takes `cost` from the user's per-minute budget, less what their monitors take (fails open
/// when Redis is down).
pub async fn take_quota(state: &AppState, user: &users::Model, cost: u64) -> ApiResult<()> {
    let user_id = user.id;
    let standing = if user.is_admin() {
        0
    } else {
        state.monitor_costs.of(state, user_id).await?
    };
    let limit = (state.settings.checks.rate_limit_per_minute as u64).saturating_sub(standing);
    let key = crate::server::redis_keys::check_quota(&state.settings.redis.key_prefix, user_id);
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
    _admitted: Admitted,
    user: &users::Model,
    body: netcheck_proto::api::checks::CreateCheck,
    monitor: Option<Uuid>,
) -> ApiResult<(Uuid, usize, bool)> {
    crate::server::extract::refuse_unknown(&body.unknown)?;
    let target = validate::check(&body.target, &body.spec, &state.policy)?;
    let spec = body.spec;
    let selection = &body.selection;
    let id = Uuid::now_v7();
    let Picked {
        online,
        offline,
        unable,
    } = pick(state, user, selection, &spec, id).await?;
    let (online, busy) = admit_agents(state, online)?;
    // Monitor runs are scheduled, not bursts: their standing cost is taken from the budget
    // when they are made (`monitors::budget`), so they do not spend the window themselves.
    if monitor.is_none() {
        take_quota(
            state,
            user,
            (online.len() + busy.len() + offline.len() + unable.len()) as u64,
        )
        .await?;
    }

    let now = Utc::now();
    let grace = state.settings.checks.grace_ms;
    let deadline = now + chrono::Duration::milliseconds((spec.budget_ms() + grace) as i64);
    let expires_at = now + chrono::Duration::milliseconds(grace as i64);
    // The errors of agents not asked, built only when some agent gets one: on the hot path
    // every chosen agent is online.
    let error_for =
        |agents: &[Agent], error: &dyn Fn() -> ProbeError| (!agents.is_empty()).then(error);
    let unsupported = error_for(&unable, &|| {
        ProbeError::new(
            ProbeErrorCode::Unsupported,
            format!(
                "this agent cannot run a {} {} (it needs raw sockets: root or CAP_NET_RAW, and a current agent)",
                spec.trace_protocol().map(|p| p.as_str()).unwrap_or(""),
                spec.check_type().as_str(),
            ),
        )
    });
    let offline_error = error_for(&offline, &|| {
        ProbeError::new(
            ProbeErrorCode::AgentOffline,
            "the agent was offline when the check was created",
        )
    });
    let busy_error = error_for(&busy, &|| {
        ProbeError::new(
            ProbeErrorCode::AgentBusy,
            "the agent was past its capacity (its answers were waiting in queues), so it was not asked",
        )
    });
    let rows: Vec<checks::NewResult> = online
        .iter()
        .map(|a| (a, ResultStatus::Pending, None))
        .chain(
            busy.iter()
                .map(|a| (a, ResultStatus::Failed, busy_error.as_ref())),
        )
        .chain(
            offline
                .iter()
                .map(|a| (a, ResultStatus::Offline, offline_error.as_ref())),
        )
        .chain(
            unable
                .iter()
                .map(|a| (a, ResultStatus::Failed, unsupported.as_ref())),
        )
        .map(|(a, status, error)| checks::NewResult {
            agent_id: a.id,
            agent_name: &a.name,
            agent_region: a.region.as_deref(),
            agent_location: a.location.as_ref(),
            status,
            error,
        })
        .collect();
    checks::insert(
        &state.db,
        checks::NewCheck {
            id,
            user_id: user.id,
            check_type: spec.check_type(),
            target: target.clone(),
            options: spec.options_json().map_err(ApiError::internal)?,
            status: if online.is_empty() {
                CheckStatus::Finished
            } else {
                CheckStatus::InProgress
            },
            created_at: now,
            deadline_at: deadline,
            finished_at: online.is_empty().then_some(now),
            pending: online.len() as i32,
            monitor_id: monitor,
            results: rows,
        },
    )
    .await?;

    let everyone = selection.is_everyone() && unable.is_empty() && busy.is_empty();
    if !online.is_empty() {
        let request = CheckRequest {
            protocol_version: PROTOCOL_VERSION,
            check_id: id,
            target,
            spec,
            expires_at,
            agents: online.iter().map(|a| a.id).collect(),
        };
        if let Err(err) = publish(state, &request, everyone).await {
            // Nothing was sent: take the check back so no one waits for it.
            check::Entity::delete_by_id(id).exec(&state.db).await.ok();
            return Err(err);
        }
    }
    state.metrics.checks_created.inc();
    tracing::info!(check_id = %id, agents = online.len(), "check created");
    Ok((
        id,
        online.len() + busy.len() + offline.len() + unable.len(),
        !online.is_empty(),
    ))
}

/// The server's pipeline had room when a check was asked for: [`create`] takes one, so every
/// caller is judged once, first (past capacity, refusing costs the least when it comes first).
/// The verdict is a few milliseconds old when the check is created (the user lookup and the
/// body come between); it reads a 250–500 ms window, so that does not change it.
pub struct Admitted(());

/// Refuses new work while the server's own pipeline is past capacity.
pub fn admit(state: &AppState) -> ApiResult<Admitted> {
    match state.pressure.server_behind() {
        Some(behind) => Err(overloaded(
            state,
            OverloadScope::Server,
            "the server is",
            behind,
        )),
        None => Ok(Admitted(())),
    }
}

/// Refuses a check past the server's capacity before the user is looked up or the body
/// parsed, so that a refusal costs no database query. The body is still read (and dropped,
/// up to `http.max_body_bytes`): HTTP/1.1 needs a server that answers early to read the body
/// or close the connection, and a close races the client's next request on it.
pub async fn admit_request(
    state: &AppState,
    payload: &mut actix_web::dev::Payload,
) -> ApiResult<Admitted> {
    let refusal = match admit(state) {
        Ok(admitted) => return Ok(admitted),
        Err(refusal) => refusal,
    };
    let mut left = state.settings.http.max_body_bytes;
    use futures_util::StreamExt;
    while let Some(Ok(chunk)) = payload.next().await {
        left = left.saturating_sub(chunk.len());
        if left == 0 {
            break;
        }
    }
    Err(refusal)
}

/// A refusal at the door, counted.
fn overloaded(
    state: &AppState,
    scope: OverloadScope,
    what: &str,
    behind: std::time::Duration,
) -> ApiError {
    state.metrics.checks_overloaded.inc();
    tracing::debug!(
        behind_ms = behind.as_millis() as u64,
        "{what} past capacity: check refused"
    );
    ApiError::overloaded(scope, what, behind)
}

/// Admission control (`pressure`) per agent (the server's own pipeline was judged first, by
/// [`admit`]): refuses the check when most chosen online agents are behind; agents that are
/// behind while most are not answer `agent_busy` at once. Returns the agents to ask and the
/// busy ones.
fn admit_agents(state: &AppState, online: Vec<Agent>) -> ApiResult<(Vec<Agent>, Vec<Agent>)> {
    if online.is_empty() {
        return Ok((online, Vec::new()));
    }
    let mut worst = None;
    let (ready, busy): (Vec<Agent>, Vec<Agent>) =
        online
            .into_iter()
            .partition(|a| match state.pressure.agent_behind(a.id) {
                Some(behind) => {
                    worst = worst.max(Some(behind));
                    false
                }
                None => true,
            });
    // When most of the chosen agents are behind, the check would mostly be `agent_busy`
    // answers: refuse it whole and say when to come back. A few behind in a larger choice
    // answer `agent_busy`, and the others run the check.
    match worst {
        Some(behind) if busy.len() * 2 > busy.len() + ready.len() => Err(overloaded(
            state,
            OverloadScope::Agents,
            match (busy.len(), ready.len()) {
                (1, 0) => "the chosen agent is",
                (_, 0) => "every chosen agent is",
                _ => "most chosen agents are",
            },
            behind,
        )),
        _ => {
            state.metrics.agents_busy.inc_by(busy.len() as u64);
            Ok((ready, busy))
        }
    }
}

/// The agents a check goes to: online ones that can run it, named ones that are offline, and
/// online ones that cannot run this probe (they answer `unsupported` at once).
pub struct Picked {
    pub online: Vec<Agent>,
    pub offline: Vec<Agent>,
    pub unable: Vec<Agent>,
}

/// Chooses the agents for a check of `spec` (`id` rotates the pick among equally good ones).
pub async fn pick(
    state: &AppState,
    user: &users::Model,
    selection: &AgentSelection,
    spec: &CheckSpec,
    id: Uuid,
) -> ApiResult<Picked> {
    selection::validate(selection)?;
    let earlier = match selection.same_agents_as {
        Some(id) => Some(earlier_agents(state, user, id).await?),
        None => None,
    };
    // Without a broker session nothing can be asked or answered: say so before choosing
    // agents (whose heartbeats stop while their own sessions are down).
    if !state
        .broker
        .wait_connected(std::time::Duration::from_secs(2))
        .await
    {
        return Err(ApiError::broker_unavailable());
    }

    // The id's random bits rotate the pick among equally good agents from check to check.
    let seed = id.as_u128() as u64;
    let interval = state.settings.agents.heartbeat_interval_secs;
    let asked_at = Utc::now();
    let mut snapshot = state.directory.agents(&state.db).await?;
    let mut outcome = selection::choose(
        &snapshot.fleet,
        selection,
        earlier.as_deref(),
        interval,
        seed,
    );
    // The cached table may be up to `agents.cache_ms` old: before refusing the check, or
    // leaving out an agent it names, read the table again.
    if selection::worth_rereading(&outcome, snapshot.read_at(), asked_at) {
        snapshot = state.directory.reload(&state.db).await?;
        outcome = selection::choose(
            &snapshot.fleet,
            selection,
            earlier.as_deref(),
            interval,
            seed,
        );
    }
    let chosen = outcome.map_err(selection::Refusal::into_error)?;
    let view = |i: &usize| {
        let m = snapshot.agents[*i].clone();
        agents::view_as_of(m, None, interval, snapshot.read_at())
    };
    let online: Vec<Agent> = chosen.online.iter().map(view).collect();
    let offline: Vec<Agent> = chosen.offline.iter().map(view).collect();
    // Agents that cannot run this probe (a trace without raw sockets, an older agent) answer
    // at once with a reason instead of being asked.
    let needs = spec.required_capability();
    let (online, unable): (Vec<Agent>, Vec<Agent>) = online
        .into_iter()
        .partition(|a| needs.is_none_or(|c| a.capabilities.contains(&c)));
    Ok(Picked {
        online,
        offline,
        unable,
    })
}

/// The agents that ran a check the user may see (for `same_agents_as`).
async fn earlier_agents(state: &AppState, user: &users::Model, id: Uuid) -> ApiResult<Vec<Uuid>> {
    let not_found =
        || ApiError::invalid_field("same_agents_as", format!("no check {id} that you can see"));
    let c = super::load_visible(state, user, id).await.map_err(|e| {
        if e.code() == ErrorCode::NotFound {
            not_found()
        } else {
            e
        }
    })?;
    Ok(result::Entity::find()
        .select_only()
        .column(result::Column::AgentId)
        .filter(result::Column::CheckId.eq(c.id))
        .into_tuple()
        .all(&state.db)
        .await?)
}

/// Sends the request: once through the fanout exchange when every online agent runs it,
/// otherwise to each chosen agent's queue. The broker drops it at the check's deadline; an
/// agent that takes it after its start-by time (`expires_at`) answers `agent_busy` at once,
/// so a request that waited too long is an answer, not a `timeout`.
pub async fn publish(state: &AppState, request: &CheckRequest, fanout: bool) -> ApiResult<()> {
    let body = serde_json::to_vec(request).expect("request serialises");
    let ttl_ms = (request.expires_at - Utc::now()).num_milliseconds().max(1)
        + request.spec.budget_ms() as i64;
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
        ApiError::broker_unavailable()
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
