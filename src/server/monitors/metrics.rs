//! Per-monitor series on `/metrics`, from each monitor's last judged run, so Prometheus and
//! Alertmanager can alert without webhooks (see docs/monitors.md for a rule).

use std::fmt::Write;

use sea_orm::{ConnectionTrait, Statement};

use crate::server::db::stored::StoredResultStatus;
use crate::server::AppState;
use netcheck_proto::result::ResultStatus;

/// A label value in the text format: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The monitor families in OpenMetrics text (empty when the database cannot be read).
pub async fn render(state: &AppState) -> String {
    let rows = match state
        .db
        .query_all_raw(Statement::from_string(
            state.db.get_database_backend(),
            "SELECT m.id::text AS id, m.name, m.state, r.agent_name, r.status,
                    r.value_ms AS headline_ms
             FROM monitors m
             LEFT JOIN check_results r ON r.check_id = m.last_evaluated_check_id
             WHERE m.state IN ('up', 'down')
             ORDER BY m.id, r.agent_name",
        ))
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "monitor metrics unavailable");
            return String::new();
        }
    };
    let (mut up, mut success, mut duration) = (String::new(), String::new(), String::new());
    let mut last_monitor = String::new();
    for r in rows {
        let (Ok(id), Ok(name), Ok(st)) = (
            r.try_get::<String>("", "id"),
            r.try_get::<String>("", "name"),
            r.try_get::<String>("", "state"),
        ) else {
            continue;
        };
        let base = format!("id=\"{id}\",monitor=\"{}\"", label(&name));
        if id != last_monitor {
            let _ = writeln!(up, "netcheck_monitor_up{{{base}}} {}", u8::from(st == "up"));
            last_monitor = id.clone();
        }
        let (Ok(Some(agent)), Ok(Some(status))) = (
            r.try_get::<Option<String>>("", "agent_name"),
            r.try_get::<Option<StoredResultStatus>>("", "status")
                .map(|s| s.map(ResultStatus::from)),
        ) else {
            continue;
        };
        if matches!(status, ResultStatus::Offline | ResultStatus::Pending) {
            continue;
        }
        let labels = format!("{base},agent=\"{}\"", label(&agent));
        let _ = writeln!(
            success,
            "netcheck_monitor_agent_success{{{labels}}} {}",
            u8::from(status == ResultStatus::Ok)
        );
        if let Ok(Some(ms)) = r.try_get::<Option<f64>>("", "headline_ms") {
            let _ = writeln!(
                duration,
                "netcheck_monitor_duration_seconds{{{labels}}} {}",
                ms / 1000.0
            );
        }
    }
    let mut out = String::new();
    for (name, help, body) in [
        ("netcheck_monitor_up", "1 when the monitor is up, 0 when down (last judged run).", up),
        ("netcheck_monitor_agent_success", "1 when the agent's result in the monitor's last run was ok.", success),
        ("netcheck_monitor_duration_seconds", "The agent's headline time in the last run (ping avg RTT, tcp connect, http total, dns query).", duration),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        out.push_str(&body);
    }
    out
}
