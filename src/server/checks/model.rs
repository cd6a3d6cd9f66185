//! The `checks` and `check_results` tables and the API's view of them.

use crate::server::db::stored::StoredCheckType;
use netcheck_proto::api::checks::{CheckResultView, CheckView, ResultAgent};
use netcheck_proto::check::CheckSpec;

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
        /// The result's headline figure ([`crate::server::checks::store::headline_ms`]),
        /// written with the result so series and alerts never work it out again.
        pub value_ms: Option<f64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl From<result::Model> for CheckResultView {
    fn from(m: result::Model) -> Self {
        // Rows hold what agents sent, read by the same types; one that does not read (an
        // answer of a newer agent this server does not know) shows without its data.
        let data = m.data.and_then(|d| serde_json::from_value(d).ok());
        Self {
            agent: ResultAgent {
                id: m.agent_id,
                name: m.agent_name,
                region: m.agent_region,
                location: m
                    .agent_location
                    .and_then(|l| serde_json::from_value(l).ok()),
            },
            status: m.status.into(),
            error: m.error.and_then(|e| serde_json::from_value(e).ok()),
            started_at: m.started_at,
            duration_ms: m.duration_ms,
            data,
        }
    }
}

/// A stored check's or monitor's spec. Rows are written from typed options, so this fails
/// only for one a newer server wrote with options this one does not know (after a
/// rollback): an error, not a guess at what it meant.
pub fn stored_spec(
    check_type: StoredCheckType,
    options: &serde_json::Value,
) -> Result<CheckSpec, sea_orm::DbErr> {
    CheckSpec::from_parts(check_type.into(), options)
        .map_err(|e| sea_orm::DbErr::Type(format!("stored {}: {}", e.field, e.message)))
}

/// The API's view of a stored check and its results (sorted by agent name).
pub fn check_view(
    c: check::Model,
    mut results: Vec<result::Model>,
) -> Result<CheckView, sea_orm::DbErr> {
    results.sort_by(|a, b| a.agent_name.cmp(&b.agent_name));
    Ok(CheckView {
        id: c.id,
        spec: stored_spec(c.check_type, &c.options)?,
        target: c.target,
        status: c.status.into(),
        created_at: c.created_at,
        finished_at: c.finished_at,
        monitor_id: c.monitor_id,
        results: results.into_iter().map(Into::into).collect(),
    })
}
