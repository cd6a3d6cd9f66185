//! What a notification says, whatever carries it: which monitor, what happened, from where,
//! and why ("down from 3 of 5 places: Frankfurt DE, Paris FR — connection refused").

use std::collections::BTreeMap;

use netcheck_proto::api::monitors::{FailingAgent, WebhookEvent};
use netcheck_proto::result::ProbeErrorCode;

/// What happened, as providers need to tell it apart (colour, priority, PagerDuty action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Down,
    Up,
    Test,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub kind: Kind,
    /// "shop is down" — a subject line or title.
    pub title: String,
    /// "down from 3 of 5 places: Frankfurt DE, Paris FR — connection refused".
    pub summary: String,
    /// Label and value pairs: check, target, incident, time.
    pub facts: Vec<(&'static str, String)>,
}

impl Message {
    pub fn of(event: &WebhookEvent) -> Self {
        let name = &event.monitor.name;
        let kind = match event.event.as_str() {
            "down" => Kind::Down,
            "up" => Kind::Up,
            _ => Kind::Test,
        };
        let (title, summary) = match kind {
            Kind::Down => (format!("{name} is down"), down_summary(event)),
            Kind::Up => (
                format!("{name} is up again"),
                "answering from every place again".to_string(),
            ),
            Kind::Test => (
                format!("Test notification for {name}"),
                "this channel works: netcheck will tell it when the monitor goes down or up"
                    .to_string(),
            ),
        };
        let mut facts = vec![
            (
                "Check",
                format!(
                    "{} {}",
                    event.monitor.check_type.as_str(),
                    event.monitor.target
                ),
            ),
            ("At", event.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        ];
        if let Some(id) = event.incident_id {
            facts.push(("Incident", id.to_string()));
        }
        Self {
            kind,
            title,
            summary,
            facts,
        }
    }

    /// Title and summary on one line.
    pub fn line(&self) -> String {
        format!("{}: {}", self.title, self.summary)
    }

    /// The whole message as plain text.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n{}\n", self.title, self.summary);
        for (k, v) in &self.facts {
            out.push_str(&format!("\n{k}: {v}"));
        }
        out.push('\n');
        out
    }
}

fn down_summary(event: &WebhookEvent) -> String {
    let failing = &event.failing_agents;
    let noun = |n: usize| if n == 1 { "place" } else { "places" };
    let n = failing.len();
    let mut out = match event.agents_total {
        Some(total) => format!("down from {n} of {total} {}", noun(total as usize)),
        None => format!("down from {n} {}", noun(n)),
    };
    let places = places(failing);
    if !places.is_empty() {
        out.push_str(": ");
        out.push_str(&places.join(", "));
    }
    if let Some(reason) = reason(failing) {
        out.push_str(" — ");
        out.push_str(&reason);
    }
    out
}

/// "Frankfurt DE", "DE", or the agent's name when it has no place; each place once, in the
/// order the agents came.
pub fn places(agents: &[FailingAgent]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in agents {
        let place = match (&a.city, &a.country_code) {
            (Some(city), Some(cc)) => format!("{city} {cc}"),
            (None, Some(cc)) => cc.clone(),
            (Some(city), None) => city.clone(),
            (None, None) => a.name.clone(),
        };
        if !out.contains(&place) {
            out.push(place);
        }
    }
    out
}

/// The most common failure, in words (ties: the first seen).
fn reason(agents: &[FailingAgent]) -> Option<String> {
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, a) in agents.iter().enumerate() {
        if let Some(code) = a.error_code.as_deref() {
            let e = counts.entry(code).or_insert((0, i));
            e.0 += 1;
        }
    }
    let (code, _) = counts
        .into_iter()
        .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))?;
    let parsed: ProbeErrorCode =
        serde_json::from_value(serde_json::Value::String(code.to_string())).ok()?;
    Some(match parsed {
        ProbeErrorCode::Unknown => code.replace('_', " "),
        known => known.phrase().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use netcheck_proto::api::monitors::WebhookMonitor;
    use netcheck_proto::check::CheckType;

    fn agent(name: &str, city: Option<&str>, cc: Option<&str>, code: &str) -> FailingAgent {
        FailingAgent {
            id: Uuid::nil(),
            name: name.into(),
            country_code: cc.map(Into::into),
            city: city.map(Into::into),
            error_code: Some(code.into()),
        }
    }

    fn event(kind: &str, agents: Vec<FailingAgent>, total: Option<u32>) -> WebhookEvent {
        WebhookEvent {
            event: kind.into(),
            monitor: WebhookMonitor {
                id: Uuid::nil(),
                name: "shop".into(),
                check_type: CheckType::Tcp,
                target: "shop.example".into(),
            },
            incident_id: Some(Uuid::nil()),
            failing_agents: agents,
            agents_total: total,
            check_id: None,
            at: Utc::now(),
        }
    }

    #[test]
    fn a_down_message_names_the_places_and_the_commonest_reason() {
        let m = Message::of(&event(
            "down",
            vec![
                agent("fra-1", Some("Frankfurt"), Some("DE"), "refused"),
                agent("par-1", Some("Paris"), Some("FR"), "timeout"),
                agent("waw-1", Some("Warsaw"), Some("PL"), "refused"),
                agent("fra-2", Some("Frankfurt"), Some("DE"), "refused"),
                agent("lab", None, None, "refused"),
            ],
            Some(7),
        ));
        assert_eq!(m.kind, Kind::Down);
        assert_eq!(m.title, "shop is down");
        assert_eq!(
            m.summary,
            "down from 5 of 7 places: Frankfurt DE, Paris FR, Warsaw PL, lab — connection refused"
        );
        assert!(m.text().contains("Check: tcp shop.example"), "{}", m.text());
    }

    #[test]
    fn an_unknown_code_is_still_said_and_up_and_test_read_differently() {
        let m = Message::of(&event(
            "down",
            vec![agent("a", None, Some("NL"), "quantum_flux")],
            None,
        ));
        assert_eq!(m.summary, "down from 1 place: NL — quantum flux");
        assert_eq!(Message::of(&event("up", vec![], None)).kind, Kind::Up);
        let t = Message::of(&event("test", vec![], None));
        assert_eq!(t.kind, Kind::Test);
        assert!(t.title.starts_with("Test"));
    }
}
