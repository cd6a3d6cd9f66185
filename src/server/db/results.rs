//! Result storage: a batch of agents' results written exactly once per check × agent in one
//! statement, finishing the checks whose last awaited answer it held.

use std::collections::HashSet;

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement};

use super::checks::result;
use netcheck_proto::result::CheckResult;

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
                    "value_ms": headline_ms(r),
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

/// A result's headline figure, kept in a column of its own so that series and `/metrics`
/// never read whole results: ping's average round trip, TCP's connect time, HTTP's total,
/// else the probe's duration (none for a result without data).
pub fn headline_ms(r: &CheckResult) -> Option<f64> {
    use netcheck_proto::result::ResultData;
    match r.data.as_ref()? {
        ResultData::Ping(p) => p.rtt_ms.as_ref().map(|rtt| rtt.avg),
        ResultData::Tcp(t) => t.connect_ms,
        ResultData::Http(h) => h.timings_ms.total,
        _ => Some(r.duration_ms),
    }
}

const STORE_RESULTS_SQL: &str = "\
WITH v AS (
    SELECT DISTINCT ON (check_id, agent_id) * FROM jsonb_to_recordset($1)
        AS x(ord int, check_id uuid, agent_id uuid, status text, error jsonb,
             started_at timestamptz, duration_ms float8, data jsonb, value_ms float8)
    ORDER BY check_id, agent_id, ord
), upd AS (
    UPDATE check_results r SET status = v.status, error = v.error, started_at = v.started_at,
        duration_ms = v.duration_ms, data = v.data, value_ms = v.value_ms, received_at = now()
    FROM v
    WHERE r.check_id = v.check_id AND r.agent_id = v.agent_id AND r.status = 'pending'
    RETURNING r.*
), fin AS (
    UPDATE checks c SET pending = c.pending - d.n, failing = c.failing + d.bad,
        status = CASE WHEN c.pending - d.n <= 0 THEN 'finished' ELSE c.status END,
        finished_at = CASE WHEN c.pending - d.n <= 0 THEN now() ELSE c.finished_at END
    FROM (SELECT check_id, count(*)::int AS n,
                 (count(*) FILTER (WHERE status <> 'ok'))::int AS bad
          FROM upd GROUP BY check_id) d
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
