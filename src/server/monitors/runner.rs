//! Running monitors: four times a second, each instance takes the due monitors no other instance is
//! holding (`FOR UPDATE SKIP LOCKED`), starts one run each and moves the next run one interval
//! on (after downtime: one catch-up run, then a random phase so they do not all fire in the same
//! second). Finished runs are judged in order, each once, under the monitor's row lock; a state
//! change writes its incident and its webhook events in the same transaction.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngExt;
use sea_orm::entity::prelude::*;
use sea_orm::TransactionTrait;
use tokio_util::sync::CancellationToken;

use super::webhooks;
use crate::server::db::checks::result;
use crate::server::db::monitor_stats;
use crate::server::db::monitors::{self, Model};
use crate::server::db::users;
use crate::server::maintenance;
use crate::server::AppState;
use netcheck_proto::api::checks::CreateCheck;
use netcheck_proto::api::monitors::{FailingAgent, MonitorState, WebhookEvent, WebhookMonitor};
use netcheck_proto::result::ResultStatus;

/// Most monitors one round starts.
pub const RUN_BATCH: u64 = 50;
/// Most finished runs one judging round takes.
const JUDGE_BATCH: usize = 200;
/// Runs of one round created at the same time.
const RUN_CONCURRENCY: usize = 8;
/// How often an instance looks for due monitors (the most a run waits past its due time when
/// the instance keeps up).
const TICK: Duration = Duration::from_millis(250);

/// When the run after one due at `due` is: an interval later, or — when that is already past
/// (the server was down, and this run is the one catch-up) — a random point in the second half
/// of the next interval. Random, so monitors caught up together do not stay in step; not
/// earlier, so the catch-up is not followed by a regular run moments later.
pub fn next_run(due: DateTime<Utc>, interval_secs: i32, now: DateTime<Utc>) -> DateTime<Utc> {
    let interval = chrono::Duration::seconds(interval_secs.max(1) as i64);
    let next = due + interval;
    if next > now {
        next
    } else {
        let half = interval.num_milliseconds() / 2;
        let phase = half + rand::rng().random_range(0..half.max(1));
        now + chrono::Duration::milliseconds(phase)
    }
}

/// Starts the due monitors (up to [`RUN_BATCH`]); returns how many were started.
pub async fn start_due(state: &AppState) -> Result<usize, DbErr> {
    let txn = state.db.begin().await?;
    let due = monitors::lock_due(&txn, RUN_BATCH as i64).await?;
    let now = Utc::now();
    let owner_ids: Vec<Uuid> = due.iter().map(|m| m.user_id).collect();
    let owners: HashMap<Uuid, users::Model> = users::Entity::find()
        .filter(users::Column::Id.is_in(owner_ids))
        .all(&txn)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    // The runs start while the rows are locked, so no other instance starts them too. A few
    // at a time: each is a database insert and a broker publish, mostly waiting.
    let mut started: Vec<Run> = Vec::with_capacity(due.len());
    for chunk in due.chunks(RUN_CONCURRENCY) {
        let runs: Vec<_> = chunk
            .iter()
            .map(|m| run(state, m, owners.get(&m.user_id)))
            .collect();
        started.extend(futures_util::future::join_all(runs).await);
    }
    for (m, run) in due.iter().zip(started) {
        if let Run::Delayed(retry_secs) = run {
            // Held back, not skipped: the same run is due again once the backlog drained.
            let retry = now + chrono::Duration::seconds(retry_secs as i64);
            monitors::delay(&txn, m.id, retry, now).await?;
            continue;
        }
        let check = match run {
            Run::Started(id) => Some(id),
            _ => None,
        };
        let next = next_run(m.next_run_at, m.interval_secs, now);
        monitors::ran(&txn, m.id, next, now, check).await?;
    }
    txn.commit().await?;
    Ok(due.len())
}

/// What became of a due run.
enum Run {
    Started(Uuid),
    /// Past capacity (`overloaded`): due again in this many seconds.
    Delayed(u64),
    /// Refused for another reason (logged); the next interval tries again.
    NotStarted,
}

/// Creates the monitor's run as its owner would.
async fn run(state: &AppState, m: &Model, owner: Option<&users::Model>) -> Run {
    let Some(owner) = owner else {
        return Run::NotStarted;
    };
    let spec = match m.spec() {
        Ok(spec) => spec,
        Err(e) => {
            tracing::error!(monitor_id = %m.id, error = %e, "monitor cannot run");
            return Run::NotStarted;
        }
    };
    let body = CreateCheck {
        spec,
        target: m.target.clone(),
        selection: serde_json::from_value(m.selection.clone()).unwrap_or_default(),
        unknown: Default::default(),
    };
    let created = match crate::server::checks::admit(state) {
        Ok(admitted) => {
            crate::server::checks::create(state, admitted, owner, body, Some(m.id)).await
        }
        Err(refusal) => Err(refusal),
    };
    match created {
        Ok((id, _, _)) => Run::Started(id),
        Err(e) if e.code() == netcheck_proto::api::ErrorCode::Overloaded => {
            tracing::warn!(monitor_id = %m.id, error = %e.message(), "monitor run delayed");
            Run::Delayed(e.retry_after_secs().unwrap_or(1))
        }
        Err(e) => {
            tracing::warn!(monitor_id = %m.id, code = %e.code(), error = %e.message(), "monitor run not started");
            Run::NotStarted
        }
    }
}

/// The agents that failed a run: `failed` or `timeout` (never `offline`).
fn failing(results: &[result::Model]) -> Vec<FailingAgent> {
    let place = |r: &result::Model, key: &str| {
        r.agent_location
            .as_ref()
            .and_then(|l| l.get(key))
            .and_then(|c| c.as_str())
            .map(str::to_string)
    };
    results
        .iter()
        // An agent past its capacity was not asked: it says nothing about the target.
        .filter(|r| {
            matches!(
                r.status.wire(),
                ResultStatus::Failed | ResultStatus::Timeout
            )
        })
        .filter(|r| {
            r.error
                .as_ref()
                .and_then(|e| e.get("code"))
                .and_then(|c| c.as_str())
                != Some(netcheck_proto::result::ProbeErrorCode::AgentBusy.as_str())
        })
        .map(|r| FailingAgent {
            id: r.agent_id,
            name: r.agent_name.clone(),
            country_code: place(r, "country_code"),
            city: place(r, "city"),
            error_code: r
                .error
                .as_ref()
                .and_then(|e| e.get("code"))
                .and_then(|c| c.as_str())
                .map(str::to_string)
                .or_else(|| Some(r.status.wire().as_str().to_string())),
        })
        .collect()
}

/// What a finished run does to a monitor: its new state and failing streak.
pub fn judge(
    state: MonitorState,
    failing_runs: i32,
    failing_agents: usize,
    min_failing: i32,
    for_runs: i32,
) -> (MonitorState, i32) {
    let failed = failing_agents as i32 >= min_failing;
    let streak = if failed { failing_runs + 1 } else { 0 };
    let next = match state {
        MonitorState::Paused => MonitorState::Paused,
        _ if streak >= for_runs => MonitorState::Down,
        _ if !failed => MonitorState::Up,
        other => other,
    };
    (next, streak)
}

/// Judges the finished runs no one has judged yet, oldest first; returns how many it looked
/// at ([`JUDGE_BATCH`] when more may be waiting).
pub async fn judge_finished(state: &AppState) -> Result<usize, DbErr> {
    let pending = monitors::unjudged_runs(&state.db, JUDGE_BATCH as i64).await?;
    let looked_at = pending.len();
    for (monitor_id, check_id) in pending {
        judge_one(state, monitor_id, check_id).await?;
    }
    Ok(looked_at)
}

/// Judges one run under the monitor's lock; `false` when it was judged already (by another
/// instance) or the monitor is being judged elsewhere right now.
async fn judge_one(state: &AppState, monitor_id: Uuid, check_id: Uuid) -> Result<bool, DbErr> {
    let txn = state.db.begin().await?;
    let Some(m) = monitors::lock(&txn, monitor_id).await? else {
        return Ok(false);
    };
    if m.last_evaluated_check_id
        .is_some_and(|last| last >= check_id)
    {
        return Ok(false);
    }
    let results = result::Entity::find()
        .filter(result::Column::CheckId.eq(check_id))
        .all(&txn)
        .await?;
    let failing = failing(&results);
    let now = Utc::now();
    let in_window = !maintenance::under_maintenance(&txn, &[m.id], &[m.user_id], now)
        .await?
        .is_empty();
    let stored = MonitorState::parse(&m.state);
    // Out of a window, a monitor is judged from where it stood before it: down while the
    // incident it entered with is still open, else afresh.
    let before = if stored == MonitorState::Maintenance && !in_window {
        if monitors::has_open_incident(&txn, m.id).await? {
            MonitorState::Down
        } else {
            MonitorState::Pending
        }
    } else {
        stored
    };
    let (after, streak) = if in_window {
        // Runs go on; nothing is judged, opened or sent.
        (MonitorState::Maintenance, 0)
    } else {
        judge(
            before,
            m.failing_runs,
            failing.len(),
            m.min_failing_agents,
            m.for_runs,
        )
    };
    monitors::judged(&txn, m.id, after, streak, check_id).await?;
    if in_window {
        txn.commit().await?;
        return Ok(true);
    }
    let values: Vec<f64> = results
        .iter()
        .filter(|r| r.status == ResultStatus::Ok)
        .filter_map(|r| r.value_ms)
        .collect();
    let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    let ran_at = run_time(check_id).unwrap_or(now);
    let failed = failing.len() as i32 >= m.min_failing_agents;
    monitor_stats::record_run(&txn, m.id, ran_at, failed, mean).await?;
    let event = |kind: &str, incident: Uuid, agents: Vec<FailingAgent>| WebhookEvent {
        event: kind.to_string(),
        monitor: WebhookMonitor {
            id: m.id,
            name: m.name.clone(),
            check_type: m.check_type.into(),
            target: m.target.clone(),
        },
        incident_id: Some(incident),
        failing_agents: agents,
        agents_total: Some(results.len() as u32),
        check_id: Some(check_id),
        at: now,
    };
    let channels = m.notify_list();
    if after == MonitorState::Down && before != MonitorState::Down {
        let incident = Uuid::now_v7();
        let agents = serde_json::to_value(&failing).expect("agents serialise");
        monitors::open_incident(&txn, incident, m.id, now, agents, check_id).await?;
        webhooks::enqueue(&txn, m.id, &channels, &event("down", incident, failing)).await?;
        tracing::warn!(monitor_id = %m.id, name = %m.name, "monitor down");
    } else if before == MonitorState::Down && after == MonitorState::Up {
        if let Some(incident) = monitors::resolve_incident(&txn, m.id, now).await? {
            webhooks::enqueue(&txn, m.id, &channels, &event("up", incident, Vec::new())).await?;
        }
        tracing::info!(monitor_id = %m.id, name = %m.name, "monitor up");
    }
    txn.commit().await?;
    Ok(true)
}

/// When a run was made, from its time-ordered id.
fn run_time(check_id: Uuid) -> Option<DateTime<Utc>> {
    let (secs, nanos) = check_id.get_timestamp()?.to_unix();
    DateTime::from_timestamp(secs as i64, nanos)
}

/// Starts due monitors every [`TICK`], judges finished runs every second and prunes the hourly
/// and daily roll-ups every ten minutes, until `shutdown`.
pub fn spawn_runner(state: actix_web::web::Data<AppState>, shutdown: CancellationToken) {
    let pruner = state.clone();
    crate::server::periodic::every(
        Duration::from_secs(600),
        shutdown.clone(),
        "pruning monitor roll-ups",
        move || {
            let state = pruner.clone();
            // One statement per table, unbatched: the roll-ups hold a row per monitor and
            // hour (or day), so what falls out of the window in ten minutes is small.
            async move { monitor_stats::prune(&state.db).await.map(|_| false) }
        },
    );
    let starter = state.clone();
    crate::server::periodic::every(TICK, shutdown.clone(), "monitor round", move || {
        let state = starter.clone();
        async move { Ok(start_due(&state).await? as u64 == RUN_BATCH) }
    });
    crate::server::periodic::every(
        Duration::from_secs(1),
        shutdown,
        "monitor judging round",
        move || {
            let state = state.clone();
            async move { Ok(judge_finished(&state).await? == JUDGE_BATCH) }
        },
    );
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Over any sequence of runs: the monitor is down exactly when the last `for_runs` runs
        /// each had at least `min` failing agents, and up after any run below that.
        #[test]
        fn the_state_follows_the_rule(
            runs in prop::collection::vec(0usize..5, 1..40), min in 1i32..4, for_runs in 1i32..5
        ) {
            let (mut state, mut streak) = (MonitorState::Pending, 0);
            for (i, &failing) in runs.iter().enumerate() {
                (state, streak) = judge(state, streak, failing, min, for_runs);
                let start = (i + 1).saturating_sub(for_runs as usize);
                let window = &runs[start..=i];
                let all_failing = window.len() == for_runs as usize
                    && window.iter().all(|&f| f as i32 >= min);
                prop_assert_eq!(state == MonitorState::Down, all_failing, "run {}: {:?}", i, state);
                if (failing as i32) < min {
                    prop_assert_eq!((state, streak), (MonitorState::Up, 0));
                }
            }
        }
    }

    #[test]
    fn down_after_for_runs_failing_runs_and_up_after_one_good_one() {
        use MonitorState::*;
        // min 2 failing agents, 2 runs.
        assert_eq!(
            judge(Pending, 0, 1, 2, 2),
            (Up, 0),
            "one failing agent is below the rule"
        );
        assert_eq!(
            judge(Up, 0, 2, 2, 2),
            (Up, 1),
            "one failing run is not enough"
        );
        assert_eq!(judge(Up, 1, 3, 2, 2), (Down, 2));
        assert_eq!(judge(Down, 2, 2, 2, 2), (Down, 3));
        assert_eq!(
            judge(Down, 3, 0, 2, 2),
            (Up, 0),
            "one run below the rule brings it up"
        );
        assert_eq!(judge(Pending, 0, 2, 2, 2), (Pending, 1), "no verdict yet");
        assert_eq!(judge(Paused, 5, 9, 1, 1), (Paused, 6));
        assert_eq!(judge(Pending, 0, 1, 1, 1), (Down, 1));
    }

    #[test]
    fn the_next_run_keeps_the_phase_or_catches_up_once() {
        let now = Utc::now();
        let due = now - chrono::Duration::seconds(5);
        assert_eq!(next_run(due, 60, now), due + chrono::Duration::seconds(60));
        // Down for an hour: the next run is within one interval from now, not 60 runs behind,
        // and not so soon that the catch-up run is followed by another at once.
        let stale = now - chrono::Duration::hours(1);
        for _ in 0..100 {
            let next = next_run(stale, 60, now);
            assert!(
                next >= now + chrono::Duration::seconds(30)
                    && next < now + chrono::Duration::seconds(60),
                "{next}"
            );
        }
    }

    #[test]
    fn failing_agents_are_those_that_failed_or_timed_out_but_not_those_not_asked() {
        let row = |name: &str, status: ResultStatus, code: Option<&str>| result::Model {
            check_id: Uuid::nil(),
            agent_id: Uuid::new_v4(),
            agent_name: name.into(),
            agent_region: None,
            agent_location: Some(serde_json::json!({"country_code": "DE", "city": "Berlin"})),
            status: status.into(),
            error: code.map(|c| serde_json::json!({"code": c, "message": ""})),
            started_at: None,
            duration_ms: None,
            data: None,
            received_at: None,
            value_ms: None,
        };
        let results = [
            row("ok", ResultStatus::Ok, None),
            row("refused", ResultStatus::Failed, Some("refused")),
            row("silent", ResultStatus::Timeout, Some("agent_timeout")),
            row("offline", ResultStatus::Offline, Some("agent_offline")),
            row("busy", ResultStatus::Failed, Some("agent_busy")),
        ];
        let failing = failing(&results);
        let names: Vec<&str> = failing.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["refused", "silent"]);
        assert_eq!(failing[0].error_code.as_deref(), Some("refused"));
        assert_eq!(failing[0].country_code.as_deref(), Some("DE"));
    }
}
