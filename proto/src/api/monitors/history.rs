//! What monitors leave behind: incidents, per-agent series, webhook events and their
//! deliveries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::check::CheckType;
use crate::result::ResultStatus;

/// An agent that failed in a run, as incidents and webhooks name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FailingAgent {
    pub id: Uuid,
    pub name: String,
    pub country_code: Option<String>,
    /// The agent's city, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// The result's error code (`timeout` when the agent never answered).
    pub error_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub failing_agents: Vec<FailingAgent>,
    /// The run that opened it.
    pub first_check_id: Uuid,
}

/// A run's result for one agent, for charts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SeriesPoint {
    pub at: DateTime<Utc>,
    /// `ok`, `failed`, `timeout` or `offline` (never `pending`): the worst of the runs the
    /// point stands for.
    pub status: ResultStatus,
    /// The type's headline time: ping average RTT, tcp connect, http total, dns query time.
    pub value_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SeriesAgent {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentSeries {
    pub agent: SeriesAgent,
    pub points: Vec<SeriesPoint>,
}

/// The monitor the webhook is about.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookMonitor {
    pub id: Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub check_type: CheckType,
    pub target: String,
}

/// The JSON body of a webhook POST (header `X-Netcheck-Signature: sha256=<hex HMAC>`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookEvent {
    /// `down`, `up`, or `test` (from the "send test event" button).
    pub event: String,
    pub monitor: WebhookMonitor,
    pub incident_id: Option<Uuid>,
    pub failing_agents: Vec<FailingAgent>,
    /// Agents the run asked (so `failing_agents` reads "3 of 5"); absent on `test`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents_total: Option<u32>,
    pub check_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// One webhook delivery and how it went.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    /// The channel's kind (`webhook`, `slack`, `email`…).
    pub channel: String,
    /// Where it goes: the URL, `mailto:…`, `telegram:<chat>`; tokens are never shown.
    pub url: String,
    pub event: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    /// HTTP status of the last attempt.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// When the next attempt is due (while not delivered).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Retries stopped (after 24 hours of failures).
    pub gave_up_at: Option<DateTime<Utc>>,
}
