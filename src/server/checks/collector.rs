//! Consumes the results queue: authenticates each result by the broker-verified `user_id`,
//! stores results in batches (one transaction for everything that arrived together), acks
//! each only after its batch is committed, and publishes the live events.

use std::time::Duration;

use amqprs::channel::{BasicAckArguments, BasicNackArguments};
use sea_orm::entity::prelude::*;
use std::sync::Arc;

use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::Semaphore;

use super::{events, store_results, Stored, StoredBatch};
use crate::proto::check::{CheckResult, ResultStatus};
use crate::server::broker::link::Delivery;
use crate::server::AppState;

/// Largest result message accepted.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;

/// Most results stored in one transaction. Under load, results that arrive while a batch is
/// being committed form the next one; a lone result is stored at once.
pub const MAX_BATCH: usize = 256;

type State = actix_web::web::Data<AppState>;

/// The agent a broker user name belongs to (`netcheck-agent-<uuid>`).
fn agent_of(user: &str) -> Option<Uuid> {
    Uuid::parse_str(user.strip_prefix("netcheck-agent-")?).ok()
}

/// Batches stored at the same time. A result that arrives while batches are in flight goes
/// straight into a new one (up to this many), so a lone result never waits for another
/// batch's commit. Each batch is one statement that needs no explicit lock (see
/// [`store_results`]), so concurrent batches cannot deadlock.
pub const CONCURRENT_BATCHES: usize = 4;

/// Starts the collector; deliveries sent to the returned channel are stored in batches.
pub fn spawn(state: State) -> UnboundedSender<Delivery> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(CONCURRENT_BATCHES));
        let mut incoming = Vec::with_capacity(MAX_BATCH);
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            if rx.recv_many(&mut incoming, MAX_BATCH).await == 0 {
                return;
            }
            let state = state.clone();
            let batch = std::mem::take(&mut incoming);
            tokio::spawn(async move {
                let mut deliveries = Vec::with_capacity(batch.len());
                let mut results = Vec::with_capacity(batch.len());
                for d in batch {
                    if let Some(r) = accept(&state, &d).await {
                        deliveries.push(d);
                        results.push(r);
                    }
                }
                store(&state, deliveries, results).await;
                drop(slot);
            });
        }
    });
    tx
}

async fn ack(d: &Delivery) {
    if let Err(e) = d
        .channel
        .basic_ack(BasicAckArguments::new(d.tag, false))
        .await
    {
        tracing::warn!(error = %e, "could not ack a result (it will be redelivered and deduplicated)");
    }
}

async fn requeue(d: &Delivery) {
    let _ = d
        .channel
        .basic_nack(BasicNackArguments::new(d.tag, false, true))
        .await;
}

/// The result a delivery carries, when the sender is an agent speaking for itself with a
/// well-formed result; anything else is acked, dropped and counted.
async fn accept(state: &AppState, d: &Delivery) -> Option<CheckResult> {
    let verdict = check(d);
    if let Err((reason, why)) = &verdict {
        state.metrics.drop_result(reason);
        tracing::warn!(reason, "dropping a result: {why}");
        ack(d).await;
    }
    verdict.ok()
}

fn check(d: &Delivery) -> Result<CheckResult, (&'static str, String)> {
    // RabbitMQ rejects a user_id that is not the publishing connection's user, so this is
    // the sender's identity.
    let sender = d
        .properties
        .user_id()
        .and_then(|u| agent_of(u))
        .ok_or(("unauthenticated", "no agent user_id".to_string()))?;
    if d.body.len() > MAX_RESULT_BYTES {
        return Err((
            "malformed",
            format!("agent {sender} sent {} bytes", d.body.len()),
        ));
    }
    let result: CheckResult = serde_json::from_slice(&d.body)
        .map_err(|e| ("malformed", format!("agent {sender}: {e}")))?;
    if result.agent_id != sender {
        return Err((
            "forged",
            format!("agent {sender} claims to be {}", result.agent_id),
        ));
    }
    if !matches!(result.status, ResultStatus::Ok | ResultStatus::Failed) {
        return Err((
            "malformed",
            format!("agent {sender} reported a status agents may not report"),
        ));
    }
    Ok(result)
}

/// Stores a batch and settles every delivery in it.
async fn store(state: &AppState, deliveries: Vec<Delivery>, results: Vec<CheckResult>) {
    if results.is_empty() {
        return;
    }
    let err = match store_results(&state.results_db, &results).await {
        Ok(batch) => return settle(state, &deliveries, &results, batch).await,
        Err(e) => e,
    };
    if state.results_db.ping().await.is_err() {
        return database_down(&deliveries, &err).await;
    }
    // The database is up but refused the batch, so some result in it cannot be stored (a
    // string PostgreSQL will not hold, say). Store one by one; drop only what is refused.
    for (i, (d, r)) in deliveries.iter().zip(&results).enumerate() {
        match store_results(&state.results_db, std::slice::from_ref(r)).await {
            Ok(batch) => {
                settle(
                    state,
                    std::slice::from_ref(d),
                    std::slice::from_ref(r),
                    batch,
                )
                .await
            }
            Err(e) if state.results_db.ping().await.is_err() => {
                return database_down(&deliveries[i..], &e).await;
            }
            Err(e) => {
                state.metrics.drop_result("unstorable");
                tracing::warn!(agent_id = %r.agent_id, check_id = %r.check_id, error = %e, "dropping a result the database refused");
                ack(d).await;
            }
        }
    }
}

/// Not stored: give the results back to the broker after a pause.
async fn database_down(deliveries: &[Delivery], err: &DbErr) {
    tracing::warn!(error = %err, results = deliveries.len(), "could not store results; requeueing");
    crate::server::metrics::dependency_error("database");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for d in deliveries {
        requeue(d).await;
    }
}

async fn settle(
    state: &AppState,
    deliveries: &[Delivery],
    results: &[CheckResult],
    batch: StoredBatch,
) {
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    let mut rows = Vec::new();
    for ((d, r), outcome) in deliveries.iter().zip(results).zip(batch.outcomes) {
        ack(d).await;
        match outcome {
            Stored::New(row) => {
                state.metrics.results_stored.inc();
                // Check ids are UUIDv7: their timestamp is the creation time.
                if let Some((secs, nanos)) = r.check_id.get_timestamp().map(|t| t.to_unix()) {
                    let created = secs as f64 + nanos as f64 / 1e9;
                    state
                        .metrics
                        .result_latency
                        .observe((now - created).max(0.0));
                }
                rows.push(*row);
            }
            Stored::Duplicate => {
                state.metrics.results_duplicate.inc();
            }
            Stored::NotAsked => {
                state.metrics.drop_result("not_asked");
                tracing::warn!(agent_id = %r.agent_id, check_id = %r.check_id, "dropping a result for a check the agent was not asked to run");
            }
        }
    }
    state
        .metrics
        .checks_finished
        .inc_by(batch.finished.len() as u64);
    events::publish(state, rows, &batch.finished).await;
}
