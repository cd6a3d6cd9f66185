//! What a client sends: a new monitor, a change to one, and the filters of the list and of a
//! series.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{AlertRule, MonitorCheck, MonitorState, Notify};
use crate::api::AgentSelection;

/// `POST /api/v1/monitors`. Agents are chosen as for a check (`agents`, `locations`, `limit`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateMonitor {
    pub name: String,
    pub check: MonitorCheck,
    #[serde(flatten)]
    pub selection: AgentSelection,
    /// Seconds between runs (10..86400, default 60).
    #[schema(minimum = 10, maximum = 86400)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertRule>,
    #[serde(default)]
    pub notify: Vec<Notify>,
    #[serde(default)]
    pub paused: bool,
    /// Fields that belong to none of the above (refused with a 422).
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: std::collections::BTreeMap<String, serde_json::Value>,
}

/// `PATCH /api/v1/monitors/{id}`: what is given changes. Any of `agents`, `locations`,
/// `limit` replaces the whole selection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateMonitor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<MonitorCheck>,
    #[serde(flatten)]
    pub selection: AgentSelection,
    #[schema(minimum = 10, maximum = 86400)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<Vec<Notify>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// `true` goes back to every online agent (the selection fields would otherwise be kept
    /// when left out); not together with `agents`, `locations` or `limit`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_agents: bool,
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The filters of `GET /api/v1/monitors`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MonitorQuery {
    /// At most this many (1–200, default 50).
    pub limit: Option<u64>,
    /// Only monitors after this id (the previous page's `next_after`).
    pub after: Option<Uuid>,
    /// Only monitors in this state.
    pub state: Option<MonitorState>,
    /// Only monitors whose name or target contains this text (any letter case).
    pub q: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// From (RFC 3339; default 24 hours ago).
    pub since: Option<DateTime<Utc>>,
    /// Until, exclusive (RFC 3339; default now). At most 31 days after `since`.
    pub until: Option<DateTime<Utc>>,
}

/// `POST /api/v1/monitors/{id}/test`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TestQuery {
    /// Only this channel: its index in `notify` (0-based); every channel when left out.
    pub channel: Option<usize>,
}
