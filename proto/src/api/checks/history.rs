//! `GET /api/v1/checks`: the filters and a page of the history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::CheckStatus;
use crate::check::{CheckSpec, CheckType};

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

/// A line of the history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckSummary {
    pub id: Uuid,
    /// `type` and its `options` (port, count, method, record type, resolver,
    /// expectations), so a line of the history can tell two checks of one target apart.
    #[serde(flatten)]
    pub spec: CheckSpec,
    pub target: String,
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
