//! Maintenance windows: planned work during which monitors run but nothing alerts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    #[serde(alias = "mon")]
    Monday,
    #[serde(alias = "tue")]
    Tuesday,
    #[serde(alias = "wed")]
    Wednesday,
    #[serde(alias = "thu")]
    Thursday,
    #[serde(alias = "fri")]
    Friday,
    #[serde(alias = "sat")]
    Saturday,
    #[serde(alias = "sun")]
    Sunday,
}

impl Weekday {
    /// Days after Monday (0–6).
    pub fn from_monday(self) -> u32 {
        self as u32
    }
}

/// A window that comes back every week (times in UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyWindow {
    pub day: Weekday,
    /// Start, `HH:MM` in UTC.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "02:00")]
    pub start: String,
    #[schema(minimum = 1, maximum = 10080)]
    pub duration_minutes: u32,
}

/// `POST /api/v1/maintenance`: `monitors` or `status_page` (every monitor on the page);
/// `starts_at` + `ends_at` (one-off) or `weekly`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMaintenance {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitors: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_page: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<WeeklyWindow>,
    /// Shown on status pages (at most 500 characters).
    #[serde(default)]
    pub note: String,
}

/// How a window recurs: once, or weekly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceSchedule {
    Once {
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    },
    Weekly(WeeklyWindow),
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Maintenance {
    pub id: Uuid,
    /// The monitors it covers (for a page's window: the page's monitors when it was read).
    pub monitors: Vec<Uuid>,
    pub status_page: Option<Uuid>,
    pub schedule: MaintenanceSchedule,
    pub note: String,
    /// In the window right now.
    pub active: bool,
    /// The current or next occurrence; `null` when a one-off window is over.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
}
