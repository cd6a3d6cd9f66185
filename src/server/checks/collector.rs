//! A result's way from the broker to the database: consume the results queue, authenticate
//! each result by the broker-verified `user_id`, store results in batches (`store`: one SQL
//! statement for everything that arrived together, exactly once per check × agent), ack each
//! only after its batch is committed, and publish the live events.

use std::ops::Range;
use std::time::Duration;

use amqprs::channel::{BasicAckArguments, BasicNackArguments};
use sea_orm::entity::prelude::*;
use tokio::sync::mpsc::{self, UnboundedSender};

use super::events;
use crate::server::broker::link::Delivery;
use crate::server::db::results::{store_results, Stored, StoredBatch};
use crate::server::AppState;
use netcheck_proto::result::ProbeErrorCode;
use netcheck_proto::result::{CheckResult, ResultStatus};

/// Largest result message accepted (a real one is a few KB; the broker itself refuses
/// anything over 256 KiB, this is the server's own line for a broker without that limit).
pub const MAX_RESULT_BYTES: usize = 128 * 1024;

/// Largest `data` stored for one result: every read of history, series and shares stays
/// bounded whatever an agent (an older one, say) sent.
pub const MAX_STORED_DATA_BYTES: usize = 64 * 1024;

/// Replaces a result whose data is over [`MAX_STORED_DATA_BYTES`] by `failed` /
/// `result_too_large`.
fn cap_stored(r: &mut CheckResult) {
    let Some(size) = r
        .data
        .as_ref()
        .and_then(|d| serde_json::to_vec(d).ok())
        .map(|b| b.len())
        .filter(|n| *n > MAX_STORED_DATA_BYTES)
    else {
        return;
    };
    r.data = None;
    r.status = ResultStatus::Failed;
    r.error = Some(netcheck_proto::result::ProbeError::new(
        ProbeErrorCode::ResultTooLarge,
        format!(
            "the result's data was {size} bytes, over the {} KiB the server stores",
            MAX_STORED_DATA_BYTES / 1024
        ),
    ));
}

/// Results stored in one statement: a batch closes once it holds this many (the message that
/// reaches it may add up to 63 more). Results that arrive while a batch is being stored form
/// the next one; a lone result is stored at once.
pub const MAX_BATCH: usize = 512;

/// Most results an agent may put in one message (a JSON array): what registration announces
/// by default (`agents.results_per_message`) and the most the collector takes. Agents send
/// several only when results finish while a message awaits its confirm, so under load one
/// message stands for many and the broker's work per check shrinks.
pub const RESULTS_PER_MESSAGE: u32 = 64;

type State = actix_web::web::Data<AppState>;

/// Connections the collector needs: one for the batch in flight, one to tell a refused
/// batch from a database that is down.
pub const DB_CONNECTIONS: u32 = 2;

/// Deliveries taken together and the results they carry: `spans[i]` are the results of
/// `deliveries[i]`.
#[derive(Default)]
struct Batch {
    deliveries: Vec<Delivery>,
    spans: Vec<Range<usize>>,
    results: Vec<CheckResult>,
}

/// Starts the collector; deliveries sent to the returned channel are stored in batches, one
/// batch at a time. That is group commit: the five answers to one check usually arrive in
/// different batches, and batches in flight together would wait for each other's commits on
/// the same `checks` rows (one at a time measured 2.3× the throughput; docs/benchmarks.md).
pub fn spawn(state: State) -> UnboundedSender<Delivery> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let mut batch = Batch::default();
            // Waits for the first delivery, then takes what is already there.
            while batch.results.len() < MAX_BATCH {
                let d = if batch.deliveries.is_empty() {
                    match rx.recv().await {
                        Some(d) => d,
                        None => return,
                    }
                } else {
                    match rx.try_recv() {
                        Ok(d) => d,
                        Err(_) => break,
                    }
                };
                let mut results = accept(&state, &d);
                // A `/probe` run's answer goes to the scrape waiting for it, not the database.
                for r in results.extract_if(.., |r| super::unstored::is_unstored(&r.check_id)) {
                    super::unstored::hand_over(&state, &r).await;
                }
                if results.is_empty() {
                    ack(&d).await;
                    continue;
                }
                let from = batch.results.len();
                batch.results.extend(results);
                batch.spans.push(from..batch.results.len());
                batch.deliveries.push(d);
            }
            store(&state, batch).await;
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

/// Acks a settled run of deliveries with one frame per broker session: `multiple` up to the
/// highest tag. Deliveries are handled in the order they arrive, one batch at a time, and
/// every one before this run was acked or requeued already, so that covers exactly this run.
async fn ack_through(deliveries: &[Delivery]) {
    let mut last: Vec<&Delivery> = Vec::new();
    for d in deliveries {
        match last.iter_mut().find(|l| l.session == d.session) {
            Some(l) if d.tag > l.tag => *l = d,
            Some(_) => {}
            None => last.push(d),
        }
    }
    for d in last {
        if let Err(e) = d
            .channel
            .basic_ack(BasicAckArguments::new(d.tag, true))
            .await
        {
            tracing::warn!(error = %e, "could not ack results (they will be redelivered and deduplicated)");
        }
    }
}

async fn requeue(d: &Delivery) {
    let _ = d
        .channel
        .basic_nack(BasicNackArguments::new(d.tag, false, true))
        .await;
}

/// The results a delivery carries that its sender may report: an agent speaking for itself
/// with well-formed results. Whatever is dropped is counted and logged.
fn accept(state: &AppState, d: &Delivery) -> Vec<CheckResult> {
    let drop = |(reason, why): (&'static str, String)| {
        state.metrics.drop_result(reason);
        tracing::warn!(reason, "dropping a result: {why}");
    };
    let (sender, results) = match parse(d) {
        Ok(v) => {
            state.metrics.result_message_size.observe(v.1.len() as f64);
            v
        }
        Err(e) => {
            drop(e);
            return Vec::new();
        }
    };
    results
        .into_iter()
        .filter(|r| match vet(sender, r) {
            Ok(()) => true,
            Err(e) => {
                drop(e);
                false
            }
        })
        .collect()
}

/// The sender and the results of a message: one result, or a JSON array of up to
/// [`RESULTS_PER_MESSAGE`].
fn parse(d: &Delivery) -> Result<(Uuid, Vec<CheckResult>), (&'static str, String)> {
    // RabbitMQ rejects a user_id that is not the publishing connection's user, so this is
    // the sender's identity.
    let sender = d
        .properties
        .user_id()
        .and_then(|u| crate::server::broker::agent_of_user(u))
        .ok_or(("unauthenticated", "no agent user_id".to_string()))?;
    if d.body.len() > MAX_RESULT_BYTES {
        return Err((
            "malformed",
            format!("agent {sender} sent {} bytes", d.body.len()),
        ));
    }
    let malformed = |e: serde_json::Error| ("malformed", format!("agent {sender}: {e}"));
    let results = if d.body.trim_ascii_start().starts_with(b"[") {
        let results: Vec<CheckResult> = serde_json::from_slice(&d.body).map_err(malformed)?;
        if results.len() > RESULTS_PER_MESSAGE as usize {
            return Err((
                "malformed",
                format!(
                    "agent {sender} sent {} results in one message, over {RESULTS_PER_MESSAGE}",
                    results.len()
                ),
            ));
        }
        results
    } else {
        vec![serde_json::from_slice(&d.body).map_err(malformed)?]
    };
    Ok((sender, results))
}

/// Whether `sender` may report `result`.
fn vet(sender: Uuid, result: &CheckResult) -> Result<(), (&'static str, String)> {
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
    Ok(())
}

/// Stores a batch and settles every delivery in it.
async fn store(state: &AppState, mut batch: Batch) {
    if batch.results.is_empty() {
        return;
    }
    for r in &mut batch.results {
        if let Some(data) = r.data.as_mut() {
            state.geoip.locate_hops(data).await;
        }
        cap_stored(r);
    }
    let Batch {
        deliveries,
        spans,
        results,
    } = batch;
    let started = std::time::Instant::now();
    let err = match store_results(&state.results_db, &results).await {
        Ok(stored) => {
            state
                .metrics
                .result_batch_seconds
                .observe(started.elapsed().as_secs_f64());
            state
                .metrics
                .result_batch_size
                .observe(results.len() as f64);
            ack_through(&deliveries).await;
            return record(state, &results, stored).await;
        }
        Err(e) => e,
    };
    if state.results_db.ping().await.is_err() {
        return database_down(&deliveries, &err).await;
    }
    // The database is up but refused the batch, so some result in it cannot be stored (a
    // string PostgreSQL will not hold, say). Store one by one; drop only what is refused.
    for (i, (d, span)) in deliveries.iter().zip(spans).enumerate() {
        for r in &results[span] {
            match store_results(&state.results_db, std::slice::from_ref(r)).await {
                Ok(stored) => record(state, std::slice::from_ref(r), stored).await,
                Err(e) if state.results_db.ping().await.is_err() => {
                    // Any of this delivery's results stored already come back as duplicates.
                    return database_down(&deliveries[i..], &e).await;
                }
                Err(e) => {
                    state.metrics.drop_result("unstorable");
                    tracing::warn!(agent_id = %r.agent_id, check_id = %r.check_id, error = %e, "dropping a result the database refused");
                }
            }
        }
        ack(d).await;
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

/// Counts what stored results came to and publishes their live events.
async fn record(state: &AppState, results: &[CheckResult], batch: StoredBatch) {
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    let mut rows = Vec::new();
    for (r, outcome) in results.iter().zip(batch.outcomes) {
        match outcome {
            Stored::New(row) => {
                state.metrics.results_stored.inc();
                // Check ids are UUIDv7: their timestamp is the creation time.
                if let Some((secs, nanos)) = r.check_id.get_timestamp().map(|t| t.to_unix()) {
                    let created = secs as f64 + nanos as f64 / 1e9;
                    let latency = (now - created).max(0.0);
                    state.metrics.result_latency.observe(latency);
                    // What the answer spent waiting rather than probing.
                    let waited = (latency - r.duration_ms / 1000.0).max(0.0);
                    state.pressure.observe(r.agent_id, waited);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_data(bytes: usize) -> CheckResult {
        serde_json::from_value(serde_json::json!({
            "protocol_version": 1, "check_id": uuid::Uuid::now_v7(), "agent_id": uuid::Uuid::now_v7(),
            "status": "ok", "error": null, "started_at": "2026-01-01T00:00:00Z", "duration_ms": 1.0,
            "data": {"type": "http", "resolved_address": null, "status_code": 200, "http_version": null,
                     "headers": {"x-big": "x".repeat(bytes)}, "body_bytes": null, "timings_ms": {},
                     "tls": null, "redirect_to": null}
        }))
        .unwrap()
    }

    #[test]
    fn stored_data_is_capped() {
        let mut small = with_data(1000);
        cap_stored(&mut small);
        assert_eq!(small.status, ResultStatus::Ok);
        assert!(small.data.is_some());
        let mut big = with_data(MAX_STORED_DATA_BYTES);
        cap_stored(&mut big);
        assert_eq!(big.status, ResultStatus::Failed);
        assert!(big.data.is_none());
        assert_eq!(big.error.unwrap().code, ProbeErrorCode::ResultTooLarge);
    }
}
