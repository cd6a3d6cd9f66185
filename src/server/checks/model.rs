//! The `checks` and `check_results` tables and the API's view of them.

use crate::proto::api::checks::{CheckResultView, CheckView, ResultAgent};
use crate::proto::check::{CheckType, ResultStatus};

pub mod check {
    use sea_orm::entity::prelude::*;

    use crate::proto::api::checks::CheckStatus;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "checks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        #[sea_orm(column_name = "type")]
        pub check_type: String,
        pub target: String,
        pub options: Json,
        pub status: CheckStatus,
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
        pub status: String,
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
        let mut data = match m.data {
            Some(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        data.remove("type");
        Self {
            agent: ResultAgent {
                id: m.agent_id,
                name: m.agent_name,
                region: m.agent_region,
                location: m
                    .agent_location
                    .and_then(|l| serde_json::from_value(l).ok()),
            },
            // The column only ever holds a `ResultStatus`; an unknown word would be a bug.
            status: m.status.parse().unwrap_or(ResultStatus::Failed),
            error: m.error.and_then(|e| serde_json::from_value(e).ok()),
            started_at: m.started_at,
            duration_ms: m.duration_ms,
            data,
        }
    }
}

impl CheckView {
    pub fn new(c: check::Model, mut results: Vec<result::Model>) -> Self {
        results.sort_by(|a, b| a.agent_name.cmp(&b.agent_name));
        Self {
            id: c.id,
            // The column's constraint admits only check types.
            check_type: c.check_type.parse().unwrap_or(CheckType::Ping),
            target: c.target,
            options: c.options,
            status: c.status,
            created_at: c.created_at,
            finished_at: c.finished_at,
            monitor_id: c.monitor_id,
            results: results.into_iter().map(Into::into).collect(),
        }
    }
}
