//! `netcheck maintenance add|list|delete`: planned work from a terminal.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::{connect, ClientArgs};
use netcheck_proto::api::monitors::{
    CreateMaintenance, MaintenanceSchedule, Weekday, WeeklyWindow,
};

#[derive(Debug, Subcommand, Clone)]
pub enum MaintenanceCommand {
    /// Create a window: for --monitor ids or a --status-page; --from/--until once, or --weekly.
    Add(Box<MaintenanceAddArgs>),
    /// List windows, with whether each is on now.
    List(ClientArgs),
    /// Delete a window (ends it now).
    Delete {
        id: uuid::Uuid,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args, Clone)]
pub struct MaintenanceAddArgs {
    /// A monitor the window covers (repeat for more).
    #[arg(long = "monitor", value_name = "ID")]
    pub monitors: Vec<uuid::Uuid>,
    /// Every monitor on this status page instead.
    #[arg(long, value_name = "ID", conflicts_with = "monitors")]
    pub status_page: Option<uuid::Uuid>,
    /// Start (RFC 3339, e.g. 2026-12-24T02:00:00Z; default now).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339).
    #[arg(long, conflicts_with = "weekly")]
    pub until: Option<DateTime<Utc>>,
    /// Every week: `DAY,HH:MM,MINUTES` in UTC, e.g. `sunday,02:00,90`.
    #[arg(long, value_parser = parse_weekly, conflicts_with = "from")]
    pub weekly: Option<WeeklyWindow>,
    /// Shown on status pages.
    #[arg(long, default_value = "")]
    pub note: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn parse_weekly(s: &str) -> Result<WeeklyWindow, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [day, start, minutes] = parts[..] else {
        return Err("expected DAY,HH:MM,MINUTES, e.g. sunday,02:00,90".into());
    };
    let day: Weekday = serde_json::from_value(serde_json::Value::String(day.to_lowercase()))
        .map_err(|_| format!("{day:?} is not a day of the week"))?;
    let duration_minutes = minutes
        .parse()
        .map_err(|_| format!("{minutes:?} is not a number of minutes"))?;
    Ok(WeeklyWindow {
        day,
        start: start.to_string(),
        duration_minutes,
    })
}

pub async fn run(command: MaintenanceCommand) -> anyhow::Result<()> {
    match command {
        MaintenanceCommand::Add(a) => {
            let api = connect(&a.client)?;
            let once = a.weekly.is_none();
            let body =
                CreateMaintenance {
                    monitors: a.monitors.clone(),
                    status_page: a.status_page,
                    starts_at: once.then(|| a.from.unwrap_or_else(Utc::now)),
                    ends_at: if once {
                        Some(a.until.ok_or_else(|| {
                            anyhow::anyhow!("give --until (with --from) or --weekly")
                        })?)
                    } else {
                        None
                    },
                    weekly: a.weekly.clone(),
                    note: a.note.clone(),
                };
            let w = api.create_maintenance(&body).await?;
            if a.client.json {
                println!("{}", serde_json::to_string_pretty(&w)?);
            } else {
                println!(
                    "maintenance window {} created{}",
                    w.id,
                    if w.active { " (on now)" } else { "" }
                );
            }
            Ok(())
        }
        MaintenanceCommand::List(client) => {
            let api = connect(&client)?;
            let windows = api.maintenance_windows().await?;
            if client.json {
                println!("{}", serde_json::to_string_pretty(&windows)?);
                return Ok(());
            }
            println!(
                "{:<36}  {:<6}  {:<40}  {:>8}  NOTE",
                "ID", "ON", "WHEN", "MONITORS"
            );
            for w in windows {
                let when = match &w.schedule {
                    MaintenanceSchedule::Once { starts_at, ends_at } => format!(
                        "{} → {}",
                        starts_at.format("%Y-%m-%d %H:%M"),
                        ends_at.format("%Y-%m-%d %H:%M")
                    ),
                    MaintenanceSchedule::Weekly(wk) => format!(
                        "weekly {:?} {} for {} min",
                        wk.day, wk.start, wk.duration_minutes
                    ),
                };
                let on = if w.active { "yes" } else { "no" };
                println!(
                    "{:<36}  {on:<6}  {when:<40}  {:>8}  {}",
                    w.id,
                    w.monitors.len(),
                    w.note
                );
            }
            Ok(())
        }
        MaintenanceCommand::Delete { id, client } => {
            connect(&client)?.delete_maintenance(id).await?;
            println!("maintenance window {id} deleted");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_windows_read_day_time_and_length() {
        let w = parse_weekly("Sunday, 02:00, 90").unwrap();
        assert_eq!(
            (w.day, w.start.as_str(), w.duration_minutes),
            (Weekday::Sunday, "02:00", 90)
        );
        assert!(parse_weekly("someday,02:00,90").is_err());
        assert!(parse_weekly("sunday,02:00").is_err());
    }
}
