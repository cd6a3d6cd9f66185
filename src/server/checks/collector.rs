//! A result's whole way into the database: consume the results queue, authenticate each result
//! by the broker-verified `user_id`, store results in batches (one SQL statement for everything
//! that arrived together, exactly once per check × agent), ack each only after its batch is
//! committed, and publish the live events.

use std::collections::HashSet;
use std::time::Duration;

use amqprs::channel::{BasicAckArguments, BasicNackArguments};
use sea_orm::entity::prelude::*;
use tokio::sync::mpsc::{self, UnboundedSender};

use sea_orm::{ConnectionTrait, FromQueryResult, Statement};

use super::events;
use super::model::result;
use crate::proto::check::{CheckResult, ResultData, ResultStatus};
use crate::server::broker::link::Delivery;
use crate::server::AppState;

/// Largest result message accepted (a real one is a few KB; the broker itself refuses
/// anything over 256 KiB, this is the server's own line for a broker without that limit).
pub const MAX_RESULT_BYTES: usize = 128 * 1024;

/// Most results stored in one statement. Results that arrive while a batch is being stored
/// form the next one; a lone result is stored at once.
pub const MAX_BATCH: usize = 512;

type State = actix_web::web::Data<AppState>;

/// The agent a broker user name belongs to (`netcheck-agent-<uuid>`).
fn agent_of(user: &str) -> Option<Uuid> {
    Uuid::parse_str(user.strip_prefix("netcheck-agent-")?).ok()
}

/// Connections the collector needs: one for the batch in flight, one to tell a refused
/// batch from a database that is down.
pub const DB_CONNECTIONS: u32 = 2;

/// Starts the collector; deliveries sent to the returned channel are stored in batches, one
/// batch at a time. That is group commit: the five answers to one check usually arrive in
/// different batches, and batches in flight together would wait for each other's commits on
/// the same `checks` rows (one at a time measured 2.3× the throughput; docs/benchmarks.md).
pub fn spawn(state: State) -> UnboundedSender<Delivery> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut incoming = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut incoming, MAX_BATCH).await > 0 {
            let mut deliveries = Vec::with_capacity(incoming.len());
            let mut results = Vec::with_capacity(incoming.len());
            for d in incoming.drain(..) {
                if let Some(r) = accept(&state, &d).await {
                    deliveries.push(d);
                    results.push(r);
                }
            }
            store(&state, deliveries, results).await;
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

/// Gives each hop of a trace its network (ASN) and place, from the server's tables: agents
/// do not carry those databases. Reserved addresses (private routers) stay without.
pub async fn locate_hops(geoip: &crate::server::lookup::GeoIp, data: &mut ResultData) {
    use crate::proto::check::HopPlace;
    let place = |g: &crate::proto::api::lookup::Geo| HopPlace {
        country_code: g.country_code.clone(),
        city: g.city.clone(),
        lat: Some(g.lat),
        lon: Some(g.lon),
    };
    match data {
        ResultData::Traceroute(r) => {
            for h in &mut r.hops {
                if let Some(g) = locate(geoip, h.address.as_deref()).await {
                    (h.asn, h.network, h.geo) = (g.asn, g.network.clone(), Some(place(&g)));
                }
            }
        }
        ResultData::Mtr(r) => {
            for h in &mut r.hops {
                if let Some(g) = locate(geoip, h.address.as_deref()).await {
                    (h.asn, h.network, h.geo) = (g.asn, g.network.clone(), Some(place(&g)));
                }
            }
        }
        _ => {}
    }
}

async fn locate(
    geoip: &crate::server::lookup::GeoIp,
    address: Option<&str>,
) -> Option<crate::proto::api::lookup::Geo> {
    geoip.locate(address?.parse().ok()?).await
}

/// Stores a batch and settles every delivery in it.
async fn store(state: &AppState, deliveries: Vec<Delivery>, mut results: Vec<CheckResult>) {
    if results.is_empty() {
        return;
    }
    for r in &mut results {
        if let Some(data) = r.data.as_mut() {
            locate_hops(&state.geoip, data).await;
        }
    }
    let started = std::time::Instant::now();
    let err = match store_results(&state.results_db, &results).await {
        Ok(batch) => {
            state
                .metrics
                .result_batch_seconds
                .observe(started.elapsed().as_secs_f64());
            state
                .metrics
                .result_batch_size
                .observe(results.len() as f64);
            return settle(state, &deliveries, &results, batch).await;
        }
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
    ack_through(deliveries).await;
    for (r, outcome) in results.iter().zip(batch.outcomes) {
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
