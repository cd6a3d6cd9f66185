//! The `checks` and `check_results` tables and the API's view of them.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a check stands: waiting for answers, or done (every agent answered, or its deadline
/// passed and the silent ones were marked `timeout`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    #[sea_orm(string_value = "in_progress")]
    InProgress,
    #[sea_orm(string_value = "finished")]
    Finished,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::InProgress => "in_progress",
            CheckStatus::Finished => "finished",
        }
    }
}

pub mod check {
    use sea_orm::entity::prelude::*;

    use super::CheckStatus;

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
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The agent a result came from, as it was when the check was created.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResultAgent {
    pub id: Uuid,
    pub name: String,
    pub region: Option<String>,
    pub location: Option<crate::server::agents::Location>,
}

/// One agent's result. The fields of the check type's result (`PingResult`, `TcpResult`,
/// `HttpResult`, `DnsResult`, `TracerouteResult` or `MtrResult`) are merged into this object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckResultView {
    pub agent: ResultAgent,
    /// `ok`, `failed`, `timeout`, `offline` or `pending`.
    pub status: String,
    pub error: Option<crate::proto::check::ProbeError>,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<f64>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub data: serde_json::Map<String, serde_json::Value>,
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
            status: m.status,
            error: m.error.and_then(|e| serde_json::from_value(e).ok()),
            started_at: m.started_at,
            duration_ms: m.duration_ms,
            data,
        }
    }
}

/// A check with its results.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub check_type: String,
    pub target: String,
    #[schema(value_type = crate::proto::check::CheckOptions)]
    pub options: serde_json::Value,
    pub status: CheckStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The monitor whose run this is, if any.
    pub monitor_id: Option<Uuid>,
    pub results: Vec<CheckResultView>,
}

impl CheckView {
    pub fn new(c: check::Model, mut results: Vec<result::Model>) -> Self {
        results.sort_by(|a, b| a.agent_name.cmp(&b.agent_name));
        Self {
            id: c.id,
            check_type: c.check_type,
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

/// A line of the history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckSummary {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub check_type: String,
    pub target: String,
    /// The check's settings (port, count, method, record type, resolver, expectations), so a
    /// line of the history can tell two checks of one target apart.
    #[schema(value_type = crate::proto::check::CheckOptions)]
    pub options: serde_json::Value,
    pub status: CheckStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The monitor whose run this is, if any.
    pub monitor_id: Option<Uuid>,
    /// Agents asked.
    pub agents: u64,
    /// Agents whose probe succeeded.
    pub ok: u64,
}
