//! What a monitor's runs left behind, read for its pages: incidents (`monitor_incidents`) and
//! per-agent series of its runs (`checks` joined with `check_results`).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement};
use uuid::Uuid;

use super::stored::StoredResultStatus;
use netcheck_proto::api::monitors::{AgentSeries, Incident, SeriesAgent, SeriesPoint};
use netcheck_proto::result::ResultStatus;

/// The newest `limit` incidents of `monitor`, newest first.
pub async fn incidents(
    db: &impl ConnectionTrait,
    monitor: Uuid,
    limit: i64,
) -> Result<Vec<Incident>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT id, started_at, resolved_at, failing_agents, first_check_id FROM monitor_incidents
             WHERE monitor_id = $1 ORDER BY started_at DESC LIMIT $2",
            [monitor.into(), limit.into()],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(Incident {
            id: r.try_get("", "id")?,
            started_at: r.try_get("", "started_at")?,
            resolved_at: r.try_get("", "resolved_at")?,
            failing_agents: serde_json::from_value(
                r.try_get::<serde_json::Value>("", "failing_agents")?,
            )
            .unwrap_or_default(),
            first_check_id: r.try_get("", "first_check_id")?,
        });
    }
    Ok(out)
}

/// Each agent's answers to `monitor`'s runs created in `[since, until)`, by agent name.
///
/// At most `points` points per agent: beyond that, consecutive runs are averaged in equal
/// groups (a group's status is its worst run's), so a long window of a frequent monitor is
/// one indexed scan returning numbers, never its results' data.
pub async fn series(
    db: &impl ConnectionTrait,
    monitor: Uuid,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    points: i64,
) -> Result<Vec<AgentSeries>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT min(created_at) AS created_at, agent_id, min(agent_name) AS agent_name,
                        (array_agg(status ORDER BY status = 'ok'))[1] AS status,
                        avg(value_ms) AS value_ms
                 FROM (
                   SELECT c.created_at, r.agent_id, r.agent_name, r.status, r.value_ms,
                          (row_number() OVER (PARTITION BY r.agent_id ORDER BY c.id) - 1) * $4
                            / count(*) OVER (PARTITION BY r.agent_id) AS grp
                   FROM checks c JOIN check_results r ON r.check_id = c.id
                   WHERE c.monitor_id = $1 AND c.created_at >= $2 AND c.created_at < $3
                     AND r.status <> 'pending'
                 ) runs
                 GROUP BY agent_id, grp
                 ORDER BY created_at",
            [monitor.into(), since.into(), until.into(), points.into()],
        ))
        .await?;
    let mut by_agent: Vec<AgentSeries> = Vec::new();
    for r in rows {
        let agent_id: Uuid = r.try_get("", "agent_id")?;
        let point = SeriesPoint {
            at: r.try_get("", "created_at")?,
            status: r.try_get::<StoredResultStatus>("", "status")?.into(),
            value_ms: r.try_get("", "value_ms")?,
        };
        match by_agent.iter_mut().find(|s| s.agent.id == agent_id) {
            Some(s) => s.points.push(point),
            None => by_agent.push(AgentSeries {
                agent: SeriesAgent {
                    id: agent_id,
                    name: r.try_get("", "agent_name")?,
                },
                points: vec![point],
            }),
        }
    }
    by_agent.sort_by(|a, b| a.agent.name.cmp(&b.agent.name));
    Ok(by_agent)
}

/// One row of a judged monitor's last run: the monitor, and one agent's answer (none when the
/// run has no results yet).
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    pub monitor: Uuid,
    pub name: String,
    pub up: bool,
    pub answer: Option<LastAnswer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastAnswer {
    pub agent: String,
    pub status: ResultStatus,
    /// The result's headline time.
    pub value_ms: Option<f64>,
}

/// The last judged run of every monitor that is up or down, by monitor and agent name. A row
/// that cannot be read is left out (and logged) rather than emptying every family of
/// `/metrics` for the sake of one monitor.
pub async fn last_runs(db: &impl ConnectionTrait) -> Result<Vec<LastRun>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT m.id, m.name, m.state, r.agent_name, r.status, r.value_ms
             FROM monitors m
             LEFT JOIN check_results r ON r.check_id = m.last_evaluated_check_id
             WHERE m.state IN ('up', 'down')
             ORDER BY m.id, r.agent_name",
        ))
        .await?;
    let read = |r: &sea_orm::QueryResult| -> Result<LastRun, DbErr> {
        let agent: Option<String> = r.try_get("", "agent_name")?;
        let status: Option<StoredResultStatus> = r.try_get("", "status")?;
        Ok(LastRun {
            monitor: r.try_get("", "id")?,
            name: r.try_get("", "name")?,
            up: r.try_get::<String>("", "state")? == "up",
            answer: match (agent, status) {
                (Some(agent), Some(status)) => Some(LastAnswer {
                    agent,
                    status: status.into(),
                    value_ms: r.try_get("", "value_ms")?,
                }),
                _ => None,
            },
        })
    };
    Ok(rows
        .iter()
        .filter_map(|r| {
            read(r)
                .inspect_err(|e| tracing::warn!(error = %e, "a monitor's last run is unreadable; left out of /metrics"))
                .ok()
        })
        .collect())
}
