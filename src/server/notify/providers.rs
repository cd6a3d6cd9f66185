//! Each provider's documented message for a notification: Slack incoming webhooks (`text` +
//! Block Kit `blocks`), Discord webhooks (`content` + `embeds`), Teams workflow webhooks (an
//! Adaptive Card attachment), ntfy's JSON publish (`topic`, `title`, `message`, `priority`,
//! `tags`), PagerDuty Events API v2 and Telegram's `sendMessage`.

use serde_json::{json, Value};

use super::message::{Kind, Message};
use netcheck_proto::api::monitors::WebhookEvent;

pub fn slack(m: &Message) -> Value {
    let emoji = match m.kind {
        Kind::Down => ":red_circle:",
        Kind::Up => ":large_green_circle:",
        Kind::Test => ":test_tube:",
    };
    let facts: Vec<Value> = m
        .facts
        .iter()
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", slack_escape(v))}))
        .collect();
    json!({
        "text": format!("{emoji} {}", m.line()),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": m.title, "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{emoji} {}", slack_escape(&m.summary))}},
            {"type": "section", "fields": facts},
        ],
    })
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn colour(kind: Kind) -> u32 {
    match kind {
        Kind::Down => 0xd93025,
        Kind::Up => 0x1e8e3e,
        Kind::Test => 0x1a73e8,
    }
}

pub fn discord(m: &Message, event: &WebhookEvent) -> Value {
    let fields: Vec<Value> = m
        .facts
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v, "inline": true}))
        .collect();
    json!({
        "content": m.line(),
        "embeds": [{
            "title": m.title,
            "description": m.summary,
            "color": colour(m.kind),
            "fields": fields,
            "timestamp": event.at.to_rfc3339(),
        }],
        // Names in the message never ping anyone.
        "allowed_mentions": {"parse": []},
    })
}

pub fn teams(m: &Message) -> Value {
    let style = match m.kind {
        Kind::Down => "attention",
        Kind::Up => "good",
        Kind::Test => "accent",
    };
    let facts: Vec<Value> = m
        .facts
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": m.title, "size": "Large", "weight": "Bolder", "color": style, "wrap": true},
                    {"type": "TextBlock", "text": m.summary, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
            },
        }],
    })
}

/// ntfy's JSON publishing goes to the server's root with the topic in the body; the
/// channel's URL is the topic's (`https://ntfy.sh/alerts`). The root URL and the body.
pub fn ntfy(m: &Message, topic_url: &url::Url) -> Result<(url::Url, Value), String> {
    let (root, topic) = ntfy_topic(topic_url)?;
    let (priority, tags) = match m.kind {
        Kind::Down => (5, ["rotating_light", "down"]),
        Kind::Up => (3, ["white_check_mark", "up"]),
        Kind::Test => (2, ["test_tube", "test"]),
    };
    let mut message = m.summary.clone();
    for (k, v) in &m.facts {
        message.push_str(&format!("\n{k}: {v}"));
    }
    Ok((
        root,
        json!({"topic": topic, "title": m.title, "message": message, "priority": priority, "tags": tags}),
    ))
}

/// A topic URL split into the server's root and the topic.
pub fn ntfy_topic(topic_url: &url::Url) -> Result<(url::Url, String), String> {
    let mut root = topic_url.clone();
    let topic = root
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_string))
        .filter(|t| !t.is_empty())
        .ok_or("the ntfy URL names no topic (https://ntfy.sh/<topic>)")?;
    root.path_segments_mut()
        .map_err(|_| "not an ntfy URL")?
        .pop();
    Ok((root, topic))
}

/// PagerDuty: `trigger` on down (and test), `resolve` on up, deduplicated by incident.
pub fn pagerduty(m: &Message, event: &WebhookEvent, routing_key: &str) -> Value {
    let action = match m.kind {
        Kind::Up => "resolve",
        Kind::Down | Kind::Test => "trigger",
    };
    let dedup_key = match event.incident_id {
        Some(id) => id.to_string(),
        None => format!("netcheck-test-{}", event.monitor.id),
    };
    let severity = match m.kind {
        Kind::Test => "info",
        _ => "critical",
    };
    let details: serde_json::Map<String, Value> = m
        .facts
        .iter()
        .map(|(k, v)| (k.to_lowercase(), Value::String(v.clone())))
        .collect();
    json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
        "payload": {
            "summary": m.line(),
            "severity": severity,
            "source": event.monitor.target,
            "component": event.monitor.name,
            "group": "netcheck",
            "class": event.monitor.check_type.as_str(),
            "timestamp": event.at.to_rfc3339(),
            "custom_details": details,
        },
        "client": "netcheck",
    })
}

pub fn telegram(m: &Message, chat_id: &str) -> Value {
    let mut text = format!(
        "<b>{}</b>\n{}\n",
        html_escape(&m.title),
        html_escape(&m.summary)
    );
    for (k, v) in &m.facts {
        text.push_str(&format!("\n<i>{k}</i>: {}", html_escape(v)));
    }
    json!({
        "chat_id": chat_id,
        "text": text,
        "parse_mode": "HTML",
        "disable_web_page_preview": true,
    })
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The e-mail's HTML part.
pub fn email_html(m: &Message) -> String {
    let colour = format!("#{:06x}", colour(m.kind));
    let mut rows = String::new();
    for (k, v) in &m.facts {
        rows.push_str(&format!(
            "<tr><th align=\"left\" style=\"padding-right:12px\">{k}</th><td>{}</td></tr>",
            html_escape(v)
        ));
    }
    format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">\
         <h2 style=\"color:{colour}\">{}</h2><p>{}</p><table>{rows}</table>\
         <p style=\"color:#666\">Sent by netcheck.</p></body></html>",
        html_escape(&m.title),
        html_escape(&m.summary)
    )
}
