//! Per-monitor series on `/metrics`, from each monitor's last judged run, so Prometheus and
//! Alertmanager can alert without webhooks (see docs/monitors.md for a rule).

use std::fmt::Write;

use crate::server::db::monitor_history::{self, LastRun};
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
    match monitor_history::last_runs(&state.db).await {
        Ok(rows) => families(&rows),
        Err(e) => {
            tracing::warn!(error = %e, "monitor metrics unavailable");
            String::new()
        }
    }
}

/// The families of `rows` (ordered by monitor): `up` once per monitor; success and duration
/// per agent that was asked and answered (not offline, not pending).
fn families(rows: &[LastRun]) -> String {
    let (mut up, mut success, mut duration) = (String::new(), String::new(), String::new());
    let mut last_monitor = None;
    for r in rows {
        let base = format!("id=\"{}\",monitor=\"{}\"", r.monitor, label(&r.name));
        if last_monitor != Some(r.monitor) {
            let _ = writeln!(up, "netcheck_monitor_up{{{base}}} {}", u8::from(r.up));
            last_monitor = Some(r.monitor);
        }
        let Some(a) = &r.answer else {
            continue;
        };
        if matches!(a.status, ResultStatus::Offline | ResultStatus::Pending) {
            continue;
        }
        let labels = format!("{base},agent=\"{}\"", label(&a.agent));
        let _ = writeln!(
            success,
            "netcheck_monitor_agent_success{{{labels}}} {}",
            u8::from(a.status == ResultStatus::Ok)
        );
        if let Some(ms) = a.value_ms {
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

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::server::db::monitor_history::LastAnswer;

    #[test]
    fn each_asked_agent_has_a_series_and_each_monitor_one_up() {
        let id = Uuid::now_v7();
        let row = |agent: &str, status, value_ms| LastRun {
            monitor: id,
            name: "shop \"eu\"".into(),
            up: false,
            answer: Some(LastAnswer {
                agent: agent.into(),
                status,
                value_ms,
            }),
        };
        let text = families(&[
            row("fra-1", ResultStatus::Ok, Some(12.0)),
            row("nyc-1", ResultStatus::Timeout, None),
            row("sgp-1", ResultStatus::Offline, None),
        ]);
        let base = format!("id=\"{id}\",monitor=\"shop \\\"eu\\\"\"");
        assert_eq!(text.matches("netcheck_monitor_up{").count(), 1);
        assert!(text.contains(&format!("netcheck_monitor_up{{{base}}} 0\n")));
        assert!(text.contains(&format!(
            "netcheck_monitor_agent_success{{{base},agent=\"fra-1\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "netcheck_monitor_agent_success{{{base},agent=\"nyc-1\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "netcheck_monitor_duration_seconds{{{base},agent=\"fra-1\"}} 0.012\n"
        )));
        assert!(!text.contains("sgp-1"), "an offline agent was not asked");
    }
}
