//! The `checks` and `check_results` tables: their rows, a new check with its awaited
//! answers, and what the sweeper finishes and prunes. Results are stored by [`super::results`].

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Statement};
use uuid::Uuid;

use netcheck_proto::api::agents::Location;
use netcheck_proto::api::checks::CheckStatus;
use netcheck_proto::check::CheckType;
use netcheck_proto::result::{ProbeError, ResultStatus};

pub mod check {
    use sea_orm::entity::prelude::*;

    use crate::server::db::stored::{StoredCheckStatus, StoredCheckType};

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "checks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        #[sea_orm(column_name = "type")]
        pub check_type: StoredCheckType,
        pub target: String,
        pub options: Json,
        pub status: StoredCheckStatus,
        pub created_at: DateTimeUtc,
        pub deadline_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
        /// Agents whose answer is still awaited.
        pub pending: i32,
        /// The monitor whose run this is.
        pub monitor_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod result {
    use sea_orm::entity::prelude::*;

    use crate::server::db::stored::StoredResultStatus;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "check_results")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub check_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub agent_id: Uuid,
        pub agent_name: String,
        pub agent_region: Option<String>,
        pub agent_location: Option<Json>,
        pub status: StoredResultStatus,
        pub error: Option<Json>,
        pub started_at: Option<DateTimeUtc>,
        pub duration_ms: Option<f64>,
        pub data: Option<Json>,
        pub received_at: Option<DateTimeUtc>,
        /// The result's headline figure ([`crate::server::db::results::headline_ms`]),
        /// written with the result so series and alerts never work it out again.
        pub value_ms: Option<f64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A new check and the result rows it starts with (one per agent chosen, `pending` for those
/// asked, already final for those that could not be).
pub struct NewCheck<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub check_type: CheckType,
    pub target: String,
    pub options: serde_json::Value,
    pub status: CheckStatus,
    pub created_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub pending: i32,
    pub monitor_id: Option<Uuid>,
    pub results: Vec<NewResult<'a>>,
}

/// One agent's result row as a new check starts it; its fields are the columns
/// `INSERT_CHECK_SQL` reads from the JSON it is sent as.
#[derive(serde::Serialize)]
pub struct NewResult<'a> {
    pub agent_id: Uuid,
    pub agent_name: &'a str,
    pub agent_region: Option<&'a str>,
    pub agent_location: Option<&'a Location>,
    pub status: ResultStatus,
    pub error: Option<&'a ProbeError>,
}

/// Inserts the check and its result rows in one statement: atomic without an explicit
/// transaction, and one round trip instead of four.
pub async fn insert(db: &impl ConnectionTrait, c: NewCheck<'_>) -> Result<(), DbErr> {
    let results = serde_json::to_value(&c.results).map_err(|e| DbErr::Custom(e.to_string()))?;
    // Agents not asked (offline, busy, unable) are answers that are not `ok` from the start.
    let failing = c
        .results
        .iter()
        .filter(|r| !matches!(r.status, ResultStatus::Pending | ResultStatus::Ok))
        .count() as i32;
    super::execute(
        db,
        INSERT_CHECK_SQL,
        [
            c.id.into(),
            c.user_id.into(),
            c.check_type.as_str().into(),
            c.target.into(),
            c.options.into(),
            c.status.as_str().into(),
            c.created_at.into(),
            c.deadline_at.into(),
            c.finished_at.into(),
            c.pending.into(),
            results.into(),
            c.monitor_id.into(),
            failing.into(),
        ],
    )
    .await?;
    Ok(())
}

const INSERT_CHECK_SQL: &str = "\
WITH c AS (
    INSERT INTO checks (id, user_id, type, target, options, status, created_at, deadline_at,
                        finished_at, pending, monitor_id, failing)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $13)
)
INSERT INTO check_results (check_id, agent_id, agent_name, agent_region, agent_location,
                           status, error)
SELECT $1, agent_id, agent_name, agent_region, agent_location, status, error
FROM jsonb_to_recordset($11) AS x(agent_id uuid, agent_name text, agent_region text,
                                   agent_location jsonb, status text, error jsonb)";

/// Up to `limit` unfinished checks whose deadline was before `cutoff`, the most overdue first.
pub async fn overdue(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Uuid>, DbErr> {
    super::uuids(
        db,
        "SELECT id FROM checks WHERE status = 'in_progress' AND deadline_at < $1 \
         ORDER BY deadline_at LIMIT $2",
        [cutoff.into(), limit.into()],
        "id",
    )
    .await
}

/// Marks the still pending results of `checks` `timeout` with `error`; returns those rows.
/// Result rows before check rows, as [`super::results::store_results`] takes them, so the two
/// never deadlock.
pub async fn time_out_pending(
    db: &impl ConnectionTrait,
    checks: &[Uuid],
    error: serde_json::Value,
) -> Result<Vec<result::Model>, DbErr> {
    result::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE check_results SET status = 'timeout', error = $1 \
             WHERE check_id = ANY($2) AND status = 'pending' RETURNING *",
            [error.into(), checks.to_vec().into()],
        ))
        .all(db)
        .await
}

/// Finishes those of `checks` still in progress; returns their ids (one finished meanwhile
/// by another instance or the collector is left alone). What was still pending has just been
/// marked `timeout` ([`time_out_pending`], same transaction), so it counts as failing.
pub async fn finish(db: &impl ConnectionTrait, checks: Vec<Uuid>) -> Result<Vec<Uuid>, DbErr> {
    super::uuids(
        db,
        "UPDATE checks SET status = 'finished', finished_at = now(), \
         failing = failing + pending, pending = 0 \
         WHERE id = ANY($1) AND status = 'in_progress' RETURNING id",
        [checks.into()],
        "id",
    )
    .await
}

/// Deletes up to `limit` checks with an id below `below` made before `before` (their results
/// and share links go with them); returns how many. The id range finds them through the
/// primary key; `created_at` keeps ids that are not time-ordered (imported, or made by hand)
/// from being taken for old ones.
pub async fn delete_older(
    db: &impl ConnectionTrait,
    below: Uuid,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, DbErr> {
    super::execute(
        db,
        "DELETE FROM checks WHERE id IN \
         (SELECT id FROM checks WHERE id < $1 AND created_at < $3 ORDER BY id LIMIT $2)",
        [below.into(), limit.into(), before.into()],
    )
    .await
}
