//! A check as stored, with each agent's result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::CheckStatus;
use crate::api::agents::Location;
use crate::check::CheckSpec;
use crate::result::{ProbeError, ResultData, ResultKind, ResultStatus};

/// The agent a result came from, as it was when the check was created.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResultAgent {
    pub id: Uuid,
    pub name: String,
    pub region: Option<String>,
    pub location: Option<Location>,
}

/// One agent's result. Once the agent answered with data, the check type's result (`type`
/// and the fields of `PingResult`, `TcpResult`, `HttpResult`, `DnsResult`,
/// `TracerouteResult` or `MtrResult`) is merged into this object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckResultView {
    pub agent: ResultAgent,
    pub status: ResultStatus,
    pub error: Option<ProbeError>,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<f64>,
    #[serde(flatten)]
    #[schema(schema_with = maybe_result_data)]
    pub data: Option<ResultData>,
}

/// A result's own fields, merged into it: one of `ResultData`, or none yet (no `type`).
pub(crate) fn maybe_result_data() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    use utoipa::openapi::Ref;
    OneOfBuilder::new()
        .item(Ref::from_schema_name("ResultData"))
        .item(
            ObjectBuilder::new()
                .description(Some(
                    "No data: the agent has not answered, or answered without",
                ))
                .property("type", ObjectBuilder::new().schema_type(Type::Null)),
        )
        .build()
        .into()
}

impl CheckResultView {
    /// The check type's own result (`TcpResult`, …), if the agent sent one of that type.
    pub fn data_as<T: ResultKind>(&self) -> Option<&T> {
        self.data.as_ref()?.get()
    }
}

/// A check with its results.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckView {
    pub id: Uuid,
    /// `type` and its `options`.
    #[serde(flatten)]
    pub spec: CheckSpec,
    pub target: String,
    pub status: CheckStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The monitor whose run this is, if any.
    pub monitor_id: Option<Uuid>,
    pub results: Vec<CheckResultView>,
}
