//! Checks: the creation request, the stored check with its results, and the history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::agents::Location;
use super::AgentSelection;
use crate::proto::check::{CheckType, ProbeError, ResultStatus};

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

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateCheck {
    #[serde(rename = "type")]
    pub check_type: CheckType,
    pub target: String,
    /// Options of the type (see API.md); defaults apply to what is left out.
    #[schema(value_type = Option<crate::proto::check::CheckOptions>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
    /// Which agents run it; nothing chosen: every online agent.
    #[serde(flatten)]
    pub selection: AgentSelection,
    /// Fields that belong to neither: refused by [`CreateCheck::refuse_unknown`] (serde's
    /// `deny_unknown_fields` does not combine with `flatten`).
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: BTreeMap<String, Value>,
}

impl CreateCheck {
    /// A check of `target` with the type's default options, run by every online agent.
    pub fn new(check_type: CheckType, target: impl Into<String>) -> Self {
        Self {
            check_type,
            target: target.into(),
            options: None,
            selection: AgentSelection::default(),
            unknown: BTreeMap::new(),
        }
    }

    /// The same check with these options (the type's option object, e.g. `{"port": 443}`).
    pub fn options(mut self, options: Value) -> Self {
        self.options = Some(options);
        self
    }

    /// The same check, run only by these agents (ids or names).
    pub fn agents(mut self, agents: impl IntoIterator<Item = impl ToString>) -> Self {
        self.selection.agents = Some(agents.into_iter().map(|a| a.to_string()).collect());
        self
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckCreated {
    pub id: Uuid,
    /// `in_progress` (or `finished` when every chosen agent was offline).
    pub status: CheckStatus,
    /// Agents asked to run it.
    pub agents: usize,
}

/// `ok`: every agent's result is ok; `failed`: at least one failed, timed out or was offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeFilter {
    Ok,
    Failed,
}

/// The filters of `GET /api/v1/checks` (every one optional; they combine).
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// At most this many (1–100, default 20).
    pub limit: Option<u64>,
    /// Only checks older than this check id (ids are time-ordered).
    pub before: Option<Uuid>,
    /// Only checks of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub check_type: Option<CheckType>,
    /// Only checks whose target contains this text (any letter case).
    pub target: Option<String>,
    /// Only checks that went well everywhere (`ok`) or failed somewhere (`failed`).
    pub status: Option<OutcomeFilter>,
    /// Only checks this agent (id or name) took part in.
    pub agent: Option<String>,
    /// Only runs of this monitor.
    pub monitor: Option<Uuid>,
    /// Only checks created at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only checks created before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckPage {
    pub checks: Vec<CheckSummary>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

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

/// Results are stored with their status as text.
impl std::str::FromStr for ResultStatus {
    type Err = serde_json::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(Value::String(s.into()))
    }
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
    pub check_type: String,
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

/// The `finished` event of a check's live stream: every result is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckFinished {
    pub id: Uuid,
    pub status: CheckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// One event of `GET /api/v1/checks/{id}/events`. On the wire the variant is the SSE `event:`
/// name and its content the `data:` line; between server instances (Redis) it is this JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum CheckEvent {
    /// An agent's result, once, as soon as it is stored.
    Result(Box<CheckResultView>),
    /// The last event of the stream.
    Finished(CheckFinished),
}

impl CheckEvent {
    /// The SSE frame: `event: <name>` and one `data:` line of JSON.
    pub fn sse_frame(&self) -> String {
        let (name, data) = match self {
            CheckEvent::Result(r) => ("result", serde_json::to_string(r)),
            CheckEvent::Finished(f) => ("finished", serde_json::to_string(f)),
        };
        format!(
            "event: {name}\ndata: {}\n\n",
            data.expect("event serialises")
        )
    }

    /// An SSE event read back; `None` for a name this version does not know (such as a
    /// keep-alive comment's empty name).
    pub fn from_sse(name: &str, data: &str) -> serde_json::Result<Option<Self>> {
        Ok(match name {
            "result" => Some(CheckEvent::Result(serde_json::from_str(data)?)),
            "finished" => Some(CheckEvent::Finished(serde_json::from_str(data)?)),
            _ => None,
        })
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
    pub options: Value,
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
