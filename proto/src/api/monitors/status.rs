//! Status pages: what their owners edit, and what anyone may read at `/status/{slug}`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A monitor on a page, under the name the page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusGroupMonitor {
    pub id: Uuid,
    /// Shown instead of the monitor's own name (at most 100 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusGroup {
    pub name: String,
    pub monitors: Vec<StatusGroupMonitor>,
}

/// `POST /api/v1/status-pages`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStatusPage {
    #[schema(pattern = "^[a-z0-9-]{3,40}$")]
    pub slug: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Readable without login at `/status/{slug}` (default `true`).
    #[serde(default = "yes")]
    pub public: bool,
    /// Show each monitor's target on the page (default `false`).
    #[serde(default)]
    pub show_targets: bool,
    #[serde(default)]
    pub groups: Vec<StatusGroup>,
}

fn yes() -> bool {
    true
}

/// `PATCH /api/v1/status-pages/{id}`: what is given changes (`groups` as a whole).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStatusPage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9-]{3,40}$")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `null` clears it.
    #[serde(
        default,
        deserialize_with = "crate::api::agents::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub description: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_targets: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<StatusGroup>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusPage {
    pub id: Uuid,
    pub slug: String,
    pub title: String,
    pub description: Option<String>,
    pub public: bool,
    pub show_targets: bool,
    pub groups: Vec<StatusGroup>,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A page's, a monitor's or a place's state as the public sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    Up,
    /// Up, but failing from some places (a monitor), or some monitors down (a page).
    Degraded,
    Down,
    Maintenance,
    /// No judged run yet, or paused.
    Unknown,
}

/// Uptime (%) over each window; `null` without runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Uptimes {
    #[serde(rename = "24h")]
    pub h24: Option<f64>,
    #[serde(rename = "7d")]
    pub d7: Option<f64>,
    #[serde(rename = "30d")]
    pub d30: Option<f64>,
    #[serde(rename = "90d")]
    pub d90: Option<f64>,
}

/// One UTC day of a monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusDay {
    pub date: NaiveDate,
    /// `null` on a day without runs.
    pub uptime: Option<f64>,
    /// Incidents that started that day.
    pub incidents: u32,
}

/// A place the monitor is checked from, and what it sees in the latest run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusPlace {
    pub country_code: Option<String>,
    pub city: Option<String>,
    /// `up` or `down` (`down` when any agent there failed).
    pub state: StatusState,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicMonitor {
    pub display_name: String,
    /// Only when the page shows targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub state: StatusState,
    pub uptime: Uptimes,
    /// 90 days, oldest first, today last.
    pub days: Vec<StatusDay>,
    pub places: Vec<StatusPlace>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicGroup {
    pub name: String,
    pub monitors: Vec<PublicMonitor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IncidentPlace {
    pub country_code: Option<String>,
    pub city: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicIncident {
    pub id: Uuid,
    /// The monitor's display name on the page.
    pub monitor: String,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Where it failed when the incident opened.
    pub places: Vec<IncidentPlace>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicMaintenance {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub note: String,
    /// Display names of the monitors on the page it covers.
    pub monitors: Vec<String>,
}

/// `GET /api/v1/status/{slug}`: no agent ids, names or addresses.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicPage {
    pub title: String,
    pub description: Option<String>,
    pub state: StatusState,
    pub updated_at: DateTime<Utc>,
    pub groups: Vec<PublicGroup>,
    /// Open incidents and those of the last 30 days, newest first.
    pub incidents: Vec<PublicIncident>,
    /// Current and upcoming windows (the next 30 days), soonest first.
    pub maintenance: Vec<PublicMaintenance>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BadgeKind {
    #[default]
    Status,
    Uptime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub enum BadgeWindow {
    #[serde(rename = "24h")]
    #[default]
    H24,
    #[serde(rename = "7d")]
    D7,
    #[serde(rename = "30d")]
    D30,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BadgeQuery {
    /// `status` (default) or `uptime`.
    pub kind: Option<BadgeKind>,
    /// The uptime's window: `24h` (default), `7d`, `30d`.
    pub window: Option<BadgeWindow>,
}
