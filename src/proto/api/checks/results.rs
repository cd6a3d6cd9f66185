//! A check as stored, with each agent's result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::CheckStatus;
use crate::proto::api::agents::Location;
use crate::proto::check::{CheckType, ProbeError, ResultStatus};

/// The agent a result came from, as it was when the check was created.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResultAgent {
    pub id: Uuid,
    pub name: String,
    pub region: Option<String>,
    pub location: Option<Location>,
}

/// One agent's result. The fields of the check type's result (`PingResult`, `TcpResult`,
/// `HttpResult`, `DnsResult`, `TracerouteResult` or `MtrResult`) are merged into this object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckResultView {
    pub agent: ResultAgent,
    pub status: ResultStatus,
    pub error: Option<ProbeError>,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<f64>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub data: serde_json::Map<String, Value>,
}

impl CheckResultView {
    /// The check type's own result fields, read as that type's result (`TcpResult`, …).
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_value(Value::Object(self.data.clone()))
    }
}

/// A check with its results.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub check_type: CheckType,
    pub target: String,
    #[schema(value_type = crate::proto::check::CheckOptions)]
    pub options: Value,
    pub status: CheckStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The monitor whose run this is, if any.
    pub monitor_id: Option<Uuid>,
    pub results: Vec<CheckResultView>,
}
