//! Maintenance windows: during one, a monitor's runs go on but its state reads `maintenance`,
//! no incident opens and nothing is sent. A window covers listed monitors, or every monitor
//! on a status page (as the page is at the time, so monitors added later are covered too).

pub mod routes;
pub mod schedule;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::server::db::maintenance::{self, Model};

use netcheck_proto::api::monitors::{
    Maintenance, MaintenanceSchedule, StatusGroup, Weekday, WeeklyWindow,
};
use schedule::Schedule;

const DAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

impl Model {
    pub fn schedule(&self) -> Schedule {
        match (self.starts_at, self.ends_at) {
            (Some(starts_at), Some(ends_at)) => Schedule::Once { starts_at, ends_at },
            // The table's constraint makes the weekly columns present otherwise.
            _ => Schedule::Weekly {
                day: self.weekly_day.unwrap_or(0).clamp(0, 6) as u32,
                minute: self.weekly_minute.unwrap_or(0).max(0) as u32,
                duration: self.duration_minutes.unwrap_or(1).max(1) as u32,
            },
        }
    }

    /// The API's view; `page_monitors`: the monitors on its page now (for a page's window).
    pub fn view(&self, page_monitors: &[Uuid], now: DateTime<Utc>) -> Maintenance {
        let schedule = match self.schedule() {
            Schedule::Once { starts_at, ends_at } => {
                MaintenanceSchedule::Once { starts_at, ends_at }
            }
            Schedule::Weekly {
                day,
                minute,
                duration,
            } => MaintenanceSchedule::Weekly(WeeklyWindow {
                day: DAYS[day as usize % 7],
                start: format!("{:02}:{:02}", minute / 60, minute % 60),
                duration_minutes: duration,
            }),
        };
        let occurrence = self.schedule().occurrence(now);
        let monitors = if self.status_page_id.is_some() {
            page_monitors.to_vec()
        } else {
            self.monitor_ids.clone()
        };
        Maintenance {
            id: self.id,
            monitors,
            status_page: self.status_page_id,
            schedule,
            note: self.note.clone(),
            active: self.schedule().active(now),
            starts_at: occurrence.map(|o| o.0),
            ends_at: occurrence.map(|o| o.1),
            user_id: self.user_id,
            created_at: self.created_at,
        }
    }
}

/// The monitor ids in a page's groups.
pub fn page_monitor_ids(groups: &serde_json::Value) -> Vec<Uuid> {
    serde_json::from_value::<Vec<StatusGroup>>(groups.clone())
        .unwrap_or_default()
        .into_iter()
        .flat_map(|g| g.monitors.into_iter().map(|m| m.id))
        .collect()
}

/// A window and the monitors it covers now.
#[derive(Debug, Clone)]
pub struct Covering {
    pub window: Model,
    pub monitors: Vec<Uuid>,
}

/// The windows that cover any of `monitors` (whose owners are `owners`), each with the
/// monitors it covers: one query.
pub async fn covering(
    db: &impl ConnectionTrait,
    monitors: &[Uuid],
    owners: &[Uuid],
) -> Result<Vec<Covering>, DbErr> {
    if monitors.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: HashSet<Uuid> = monitors.iter().copied().collect();
    let mut out = Vec::new();
    let windows = maintenance::of_monitors_or_pages(db, monitors, owners).await?;
    for (window, groups) in windows {
        let covered = match groups {
            Some(g) => page_monitor_ids(&g),
            None => window.monitor_ids.clone(),
        };
        let monitors: Vec<Uuid> = covered.into_iter().filter(|m| wanted.contains(m)).collect();
        if !monitors.is_empty() {
            out.push(Covering { window, monitors });
        }
    }
    Ok(out)
}

/// Which of `monitors` are in a window at `now`.
pub async fn under_maintenance(
    db: &impl ConnectionTrait,
    monitors: &[Uuid],
    owners: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashSet<Uuid>, DbErr> {
    Ok(active_of(&covering(db, monitors, owners).await?, now))
}

/// The monitors covered by a window that is on at `now`.
pub fn active_of(windows: &[Covering], now: DateTime<Utc>) -> HashSet<Uuid> {
    windows
        .iter()
        .filter(|c| c.window.schedule().active(now))
        .flat_map(|c| c.monitors.iter().copied())
        .collect()
}

/// Monitor id → owner, for [`covering`]'s arguments.
pub fn ids_and_owners(pairs: impl IntoIterator<Item = (Uuid, Uuid)>) -> (Vec<Uuid>, Vec<Uuid>) {
    let map: HashMap<Uuid, Uuid> = pairs.into_iter().collect();
    let mut owners: Vec<Uuid> = map.values().copied().collect();
    owners.sort();
    owners.dedup();
    (map.into_keys().collect(), owners)
}
