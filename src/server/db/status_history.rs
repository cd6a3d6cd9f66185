//! The reads a public status page is built from, each one indexed scan whatever the history's
//! length: daily roll-ups, the last hours' roll-ups, where the latest judged runs failed, and
//! the incidents of the bars' window.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement};
use uuid::Uuid;

use super::stored::StoredResultStatus;
use netcheck_proto::api::monitors::FailingAgent;
use netcheck_proto::result::ResultStatus;

/// One monitor's runs on one day.
pub struct Day {
    pub monitor: Uuid,
    pub day: NaiveDate,
    pub runs: i64,
    pub failing: i64,
}

/// The daily roll-ups of `monitors` from `first_day` on.
pub async fn days(
    db: &impl ConnectionTrait,
    monitors: &[Uuid],
    first_day: NaiveDate,
) -> Result<Vec<Day>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT monitor_id, day, runs, failing_runs FROM monitor_days
             WHERE monitor_id = ANY($1) AND day >= $2",
            [monitors.to_vec().into(), first_day.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Day {
                monitor: r.try_get("", "monitor_id")?,
                day: r.try_get("", "day")?,
                runs: r.try_get::<i32>("", "runs")?.into(),
                failing: r.try_get::<i32>("", "failing_runs")?.into(),
            })
        })
        .collect()
}

/// Runs and failing runs of each of `monitors` since `since`, from the hourly roll-ups.
pub async fn totals_since(
    db: &impl ConnectionTrait,
    monitors: &[Uuid],
    since: DateTime<Utc>,
) -> Result<Vec<(Uuid, i64, i64)>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT monitor_id, sum(runs)::int8 AS runs, sum(failing_runs)::int8 AS failing
             FROM monitor_hours WHERE monitor_id = ANY($1) AND hour >= $2 GROUP BY monitor_id",
            [monitors.to_vec().into(), since.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get("", "monitor_id")?,
                r.try_get("", "runs")?,
                r.try_get("", "failing")?,
            ))
        })
        .collect()
}

/// One agent's answer to a monitor's run, with where the agent was.
pub struct Answer {
    pub monitor: Uuid,
    pub status: ResultStatus,
    pub location: Option<serde_json::Value>,
}

/// The answers to the runs `checks` (monitors' latest judged runs). An agent past capacity
/// (`agent_busy`) was not asked: it says nothing of a place and is left out.
pub async fn answers(db: &impl ConnectionTrait, checks: Vec<Uuid>) -> Result<Vec<Answer>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT c.monitor_id, r.status, r.agent_location FROM check_results r
             JOIN checks c ON c.id = r.check_id WHERE r.check_id = ANY($1)
               AND (r.error IS NULL OR r.error->>'code' IS DISTINCT FROM 'agent_busy')",
            [checks.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Answer {
                monitor: r.try_get("", "monitor_id")?,
                status: r.try_get::<StoredResultStatus>("", "status")?.into(),
                location: r.try_get("", "agent_location")?,
            })
        })
        .collect()
}

/// An incident as a status page shows it.
pub struct Incident {
    pub id: Uuid,
    pub monitor: Uuid,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub failing_agents: Vec<FailingAgent>,
}

/// The incidents of `monitors` that started from `since` on or are still open, newest first
/// (at most 5 000).
pub async fn incidents(
    db: &impl ConnectionTrait,
    monitors: &[Uuid],
    since: DateTime<Utc>,
) -> Result<Vec<Incident>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT id, monitor_id, started_at, resolved_at, failing_agents FROM monitor_incidents
             WHERE monitor_id = ANY($1) AND (started_at >= $2 OR resolved_at IS NULL)
             ORDER BY started_at DESC LIMIT 5000",
            [monitors.to_vec().into(), since.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Incident {
                id: r.try_get("", "id")?,
                monitor: r.try_get("", "monitor_id")?,
                started_at: r.try_get("", "started_at")?,
                resolved_at: r.try_get("", "resolved_at")?,
                failing_agents: serde_json::from_value(r.try_get("", "failing_agents")?)
                    .unwrap_or_default(),
            })
        })
        .collect()
}
