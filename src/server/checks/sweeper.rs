//! Finishing checks at their deadline: agents that never answered are marked `timeout`, but
//! never while results cannot arrive (a broker outage).

use std::time::Duration;

use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use tokio_util::sync::CancellationToken;

use super::events;
use super::model::result;
use crate::server::AppState;

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
