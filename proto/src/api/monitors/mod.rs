//! Monitors: a check definition run every `interval_secs` from chosen agents, an alert rule,
//! and webhooks told when the state changes. What monitors leave behind (incidents, series,
//! webhook events and deliveries) is in `history`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AgentSelection;
use crate::check::CheckSpec;

mod history;
mod maintenance;
mod requests;
mod status;
pub use history::{
    AgentSeries, Delivery, FailingAgent, Incident, SeriesAgent, SeriesPoint, WebhookEvent,
    WebhookMonitor,
};
pub use maintenance::{CreateMaintenance, Maintenance, MaintenanceSchedule, Weekday, WeeklyWindow};
pub use requests::{CreateMonitor, MonitorQuery, SeriesQuery, TestQuery, UpdateMonitor};
pub use status::{
    BadgeKind, BadgeQuery, BadgeWindow, CreateStatusPage, IncidentPlace, PublicGroup,
    PublicIncident, PublicMaintenance, PublicMonitor, PublicPage, StatusDay, StatusGroup,
    StatusGroupMonitor, StatusPage, StatusPlace, StatusState, UpdateStatusPage, Uptimes,
};

/// What a monitor runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MonitorCheck {
    /// `type` and its `options`, expectations included; defaults apply to what is left out.
    #[serde(flatten)]
    pub spec: CheckSpec,
    pub target: String,
    /// Fields that belong to neither: refused (serde's `deny_unknown_fields` does not combine
    /// with `flatten`).
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: std::collections::BTreeMap<String, serde_json::Value>,
}

impl MonitorCheck {
    pub fn new(spec: CheckSpec, target: impl Into<String>) -> Self {
        Self {
            spec,
            target: target.into(),
            unknown: Default::default(),
        }
    }
}

/// When a monitor goes `down`: at least `min_failing_agents` agents answered `failed` or
/// `timeout` in each of the last `for_runs` runs. One run below that brings it back `up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    #[serde(default = "one")]
    #[schema(minimum = 1, default = 1)]
    pub min_failing_agents: u32,
    #[serde(default = "two")]
    #[schema(minimum = 1, maximum = 100, default = 2)]
    pub for_runs: u32,
}

fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}

impl Default for AlertRule {
    fn default() -> Self {
        Self {
            min_failing_agents: 1,
            for_runs: 2,
        }
    }
}

/// Where state changes are sent: one entry is one channel, e.g. `{"webhook": "https://…"}` or
/// `{"email": {"to": ["ops@example.com"]}}`. Every channel gets `down` and `up` (and `test`),
/// in order, retried for 24 hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Notify {
    /// An http(s) URL that receives the signed JSON `WebhookEvent`.
    Webhook(String),
    /// A Slack incoming-webhook URL (`text` and `blocks`).
    Slack(String),
    /// A Discord webhook URL (`content` and `embeds`).
    Discord(String),
    /// A Microsoft Teams workflow ("Post to a channel when a webhook request is received") URL;
    /// the message is an Adaptive Card.
    Teams(String),
    /// An ntfy topic URL, e.g. `https://ntfy.sh/my-alerts` (title, priority and tags set).
    Ntfy(String),
    /// PagerDuty Events API v2: `trigger` on down, `resolve` on up, `dedup_key` = incident id.
    Pagerduty(PagerDutyTarget),
    /// E-mail through the server's SMTP relay (`notify.smtp`), plain text and HTML.
    Email(EmailTarget),
    /// A Telegram chat, through a bot.
    Telegram(TelegramTarget),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyTarget {
    /// The integration key of an Events API v2 integration (32 characters).
    pub routing_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailTarget {
    /// 1–10 addresses.
    pub to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TelegramTarget {
    /// The bot's token from @BotFather.
    pub bot_token: String,
    /// The chat (a number, or `@channelname`).
    pub chat_id: String,
}

impl Notify {
    /// The channel's kind, as the key of its JSON object.
    pub fn kind(&self) -> &'static str {
        match self {
            Notify::Webhook(_) => "webhook",
            Notify::Slack(_) => "slack",
            Notify::Discord(_) => "discord",
            Notify::Teams(_) => "teams",
            Notify::Ntfy(_) => "ntfy",
            Notify::Pagerduty(_) => "pagerduty",
            Notify::Email(_) => "email",
            Notify::Telegram(_) => "telegram",
        }
    }

    /// Where deliveries go, as the delivery log shows it: the URL, the addresses, the chat;
    /// never a token or routing key.
    pub fn destination(&self) -> String {
        match self {
            Notify::Webhook(u) => u.clone(),
            Notify::Slack(u) | Notify::Discord(u) | Notify::Teams(u) | Notify::Ntfy(u) => {
                format!("{}:{u}", self.kind())
            }
            Notify::Pagerduty(p) => {
                let tail: String = p.routing_key.chars().rev().take(4).collect();
                format!("pagerduty:…{}", tail.chars().rev().collect::<String>())
            }
            Notify::Email(e) => format!("mailto:{}", e.to.join(",")),
            Notify::Telegram(t) => format!("telegram:{}", t.chat_id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MonitorState {
    /// No run judged yet.
    Pending,
    Up,
    Down,
    Paused,
    /// In a maintenance window: runs go on, nothing alerts.
    Maintenance,
}

impl MonitorState {
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorState::Pending => "pending",
            MonitorState::Up => "up",
            MonitorState::Down => "down",
            MonitorState::Paused => "paused",
            MonitorState::Maintenance => "maintenance",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "up" => MonitorState::Up,
            "down" => MonitorState::Down,
            "paused" => MonitorState::Paused,
            "maintenance" => MonitorState::Maintenance,
            _ => MonitorState::Pending,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Monitor {
    pub id: Uuid,
    pub name: String,
    pub check: MonitorCheck,
    /// How the runs choose their agents (`agents`, `locations`, `limit`, as given).
    #[serde(flatten)]
    pub selection: AgentSelection,
    pub interval_secs: u32,
    pub alert: AlertRule,
    pub notify: Vec<Notify>,
    pub paused: bool,
    pub state: MonitorState,
    pub last_check_id: Option<Uuid>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub next_run_at: DateTime<Utc>,
    /// Set while runs are held back because netcheck is past capacity (a run refused with
    /// `overloaded` is retried when the backlog has drained, not skipped): since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The owner.
    pub user_id: Uuid,
    /// Uptime and hourly latency (in `GET` answers, the list's included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<MonitorStats>,
}

/// How a monitor has been doing, from hourly roll-ups of its judged runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MonitorStats {
    /// Share of runs (%) in the last 24 hours with fewer than `min_failing_agents` failing
    /// agents; `null` without runs.
    pub uptime_24h: Option<f64>,
    /// The same over the last 7 days.
    pub uptime_7d: Option<f64>,
    /// The last 24 hours, oldest first; hours without runs are left out.
    pub hours: Vec<HourStats>,
}

/// One hour of a monitor's runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HourStats {
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    pub runs: u32,
    /// Runs at or above the rule's `min_failing_agents`.
    pub failing_runs: u32,
    /// Mean headline time of the runs' ok answers; `null` when none answered ok.
    pub value_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedMonitor {
    pub monitor: Monitor,
    /// Key of the `X-Netcheck-Signature` HMAC-SHA256; shown only here (rotate it with
    /// `POST /api/v1/monitors/{id}/secret`).
    pub webhook_secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookSecret {
    pub webhook_secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitorPage {
    pub monitors: Vec<Monitor>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<Uuid>,
    /// Monitors matching the filters.
    pub total: u64,
}
