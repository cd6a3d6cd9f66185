//! Finishing checks at their deadline: agents that never answered are marked `timeout`, but
//! never while results cannot arrive (a broker outage).

use std::time::Duration;

use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::TransactionTrait;
use tokio_util::sync::CancellationToken;

use super::events;
use crate::server::db::{checks, shares};
use crate::server::periodic::every;
use crate::server::AppState;

/// Most overdue checks one sweep finishes; a sweep that fills it is followed by another at
/// once, so a backlog (after an outage, say) drains in bounded transactions.
pub const SWEEP_BATCH: i64 = 500;

/// Finishes up to [`SWEEP_BATCH`] checks past their deadline, marking agents that never
/// answered `timeout`; returns how many it finished. Result rows are changed before check
/// rows, in the same order as [`crate::server::db::results::store_results`], and no row is
/// locked before that, so a sweep and the collector never deadlock; several server instances
/// may sweep at once (a check another instance or the collector finished meanwhile is left
/// alone).
pub async fn finish_due(state: &AppState) -> Result<usize, DbErr> {
    let Some(cutoff) = sweep_cutoff(state) else {
        return Ok(0);
    };
    let due = checks::overdue(&state.db, cutoff, SWEEP_BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let txn = state.db.begin().await?;
    let timeout_error = serde_json::to_value(netcheck_proto::result::ProbeError::new(
        netcheck_proto::result::ProbeErrorCode::AgentTimeout,
        "the agent did not answer in time",
    ))
    .expect("an error serialises");
    let timed_out = checks::time_out_pending(&txn, &due, timeout_error).await?;
    let ids = checks::finish(&txn, due).await?;
    txn.commit().await?;
    state
        .metrics
        .results_timed_out
        .inc_by(timed_out.len() as u64);
    state.metrics.checks_finished.inc_by(ids.len() as u64);
    events::publish(state, timed_out, &ids).await;
    Ok(ids.len())
}

/// Most checks one pruning statement deletes (their results and share links go with them).
pub const PRUNE_BATCH: i64 = 1_000;

/// The smallest UUIDv7 of the millisecond `at`: every check id made before `at` is lower.
fn first_id_at(at: chrono::DateTime<Utc>) -> Uuid {
    let ms = at.timestamp_millis().max(0) as u64;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70;
    b[8] = 0x80;
    Uuid::from_bytes(b)
}

/// Deletes up to [`PRUNE_BATCH`] checks older than `checks.retention_days` (and expired share
/// links); returns how many checks went. Ids are time-ordered, so the primary key finds them.
pub async fn prune_old(state: &AppState) -> Result<u64, DbErr> {
    let days = state.settings.checks.retention_days;
    if days == 0 {
        return Ok(0);
    }
    let before = Utc::now() - chrono::Duration::days(days as i64);
    let cutoff = first_id_at(before);
    shares::delete_expired(&state.db).await?;
    let done = checks::delete_older(&state.db, cutoff, before, PRUNE_BATCH).await?;
    if done > 0 {
        tracing::info!(deleted = done, "old checks pruned");
    }
    Ok(done)
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
/// `shutdown`, and [`prune_old`] every ten minutes (in batches until nothing is left).
pub fn spawn_sweeper(state: actix_web::web::Data<AppState>, shutdown: CancellationToken) {
    let pruner = state.clone();
    every(
        Duration::from_secs(600),
        shutdown.clone(),
        "pruning old checks",
        move || {
            let state = pruner.clone();
            async move { Ok(prune_old(&state).await? as i64 == PRUNE_BATCH) }
        },
    );
    every(
        Duration::from_millis(500),
        shutdown,
        "finishing due checks",
        move || {
            let state = state.clone();
            async move { Ok(finish_due(&state).await? as i64 == SWEEP_BATCH) }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_id_sorts_between_ids_made_before_and_after() {
        let at = Utc::now();
        let before = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            (at.timestamp_millis() as u64 - 1) / 1000,
            (((at.timestamp_millis() as u64 - 1) % 1000) * 1_000_000) as u32,
        ));
        let after = Uuid::now_v7();
        let cut = first_id_at(at);
        assert!(before < cut, "{before} < {cut}");
        assert!(cut <= after, "{cut} <= {after}");
        assert_eq!(cut.get_version_num(), 7);
    }
}
