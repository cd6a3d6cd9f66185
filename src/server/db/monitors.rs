//! The `monitors` table and `monitor_incidents`: the rows, and what the runner takes,
//! updates and opens as it starts and judges runs.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DatabaseTransaction, Statement};

use crate::server::db::stored::StoredCheckType;
use netcheck_proto::api::monitors::MonitorState;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "monitors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub check_type: StoredCheckType,
    pub target: String,
    pub options: Json,
    pub selection: Json,
    pub interval_secs: i32,
    pub min_failing_agents: i32,
    pub for_runs: i32,
    pub notify: Json,
    pub webhook_secret: String,
    pub paused: bool,
    pub state: String,
    pub failing_runs: i32,
    pub last_check_id: Option<Uuid>,
    pub last_evaluated_check_id: Option<Uuid>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub next_run_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delayed_since: Option<DateTime<Utc>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Up to `limit` due monitors, locked for the rest of `txn` (skipping those another instance
/// holds). The lock is NO KEY UPDATE: a new check's foreign key takes KEY SHARE on its
/// monitor's row from another connection, which FOR UPDATE would block.
pub async fn lock_due(txn: &DatabaseTransaction, limit: i64) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "SELECT * FROM monitors WHERE NOT paused AND next_run_at <= now()
             ORDER BY next_run_at LIMIT $1 FOR NO KEY UPDATE SKIP LOCKED",
            [limit.into()],
        ))
        .all(txn)
        .await
}

/// The monitor, locked for the rest of `txn`; `None` when it is gone or another instance
/// holds it.
pub async fn lock(txn: &DatabaseTransaction, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "SELECT * FROM monitors WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED",
            [id.into()],
        ))
        .one(txn)
        .await
}

/// A run held back: due again at `retry`, delayed since `now` unless it already was.
pub async fn delay(
    db: &impl ConnectionTrait,
    id: Uuid,
    retry: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    super::execute(
        db,
        "UPDATE monitors SET next_run_at = $2, delayed_since = COALESCE(delayed_since, $3)
         WHERE id = $1",
        [id.into(), retry.into(), now.into()],
    )
    .await?;
    Ok(())
}

/// A run made at `now` (its check, unless it was refused): next due at `next`.
pub async fn ran(
    db: &impl ConnectionTrait,
    id: Uuid,
    next: DateTime<Utc>,
    now: DateTime<Utc>,
    check: Option<Uuid>,
) -> Result<(), DbErr> {
    super::execute(
        db,
        "UPDATE monitors SET next_run_at = $2, last_run_at = $3,
             last_check_id = COALESCE($4, last_check_id), delayed_since = NULL WHERE id = $1",
        [id.into(), next.into(), now.into(), check.into()],
    )
    .await?;
    Ok(())
}

/// Up to `limit` finished runs no one has judged yet, oldest first, as (monitor, check).
pub async fn unjudged_runs(
    db: &impl ConnectionTrait,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    db.query_all_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        // Only monitors whose latest run is not judged yet look at their runs (through the
        // (monitor_id, id) index); the rest cost one comparison each.
        "SELECT m.id AS monitor_id, c.id AS check_id FROM monitors m
         JOIN LATERAL (SELECT c.id FROM checks c
                       WHERE c.monitor_id = m.id AND c.status = 'finished'
                         AND c.id > COALESCE(m.last_evaluated_check_id, '00000000-0000-0000-0000-000000000000')
                       ORDER BY c.id LIMIT 10) c ON true
         WHERE m.last_check_id IS DISTINCT FROM m.last_evaluated_check_id
         ORDER BY c.id LIMIT $1",
        [limit.into()],
    ))
    .await?
    .iter()
    .map(|row| Ok((row.try_get("", "monitor_id")?, row.try_get("", "check_id")?)))
    .collect()
}

/// Records the judgement of run `check`: the monitor's state and its streak of failing runs.
pub async fn judged(
    db: &impl ConnectionTrait,
    id: Uuid,
    state: MonitorState,
    streak: i32,
    check: Uuid,
) -> Result<(), DbErr> {
    super::execute(
        db,
        "UPDATE monitors SET state = $2, failing_runs = $3, last_evaluated_check_id = $4 WHERE id = $1",
        [id.into(), state.as_str().into(), streak.into(), check.into()],
    )
    .await?;
    Ok(())
}

/// Opens incident `incident` of `monitor`, started by run `check`.
pub async fn open_incident(
    db: &impl ConnectionTrait,
    incident: Uuid,
    monitor: Uuid,
    now: DateTime<Utc>,
    failing_agents: serde_json::Value,
    check: Uuid,
) -> Result<(), DbErr> {
    super::execute(
        db,
        "INSERT INTO monitor_incidents (id, monitor_id, started_at, failing_agents, first_check_id)
         VALUES ($1, $2, $3, $4, $5)",
        [
            incident.into(),
            monitor.into(),
            now.into(),
            failing_agents.into(),
            check.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Resolves the monitor's open incident at `now`; returns its id (none was open: `None`).
pub async fn resolve_incident(
    db: &impl ConnectionTrait,
    monitor: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, DbErr> {
    db.query_one_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE monitor_incidents SET resolved_at = $2
         WHERE monitor_id = $1 AND resolved_at IS NULL RETURNING id",
        [monitor.into(), now.into()],
    ))
    .await?
    .map(|row| row.try_get("", "id"))
    .transpose()
}

/// Whether the monitor has an incident open.
pub async fn has_open_incident(db: &impl ConnectionTrait, monitor: Uuid) -> Result<bool, DbErr> {
    Ok(db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT 1 AS one FROM monitor_incidents WHERE monitor_id = $1 AND resolved_at IS NULL",
            [monitor.into()],
        ))
        .await?
        .is_some())
}
