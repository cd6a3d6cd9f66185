//! Notification channels against local receivers that check each provider's documented
//! payload: Slack, Discord, Teams, ntfy, PagerDuty, Telegram (HTTP) and e-mail through a real
//! SMTP server (Python's aiosmtpd). A receiver failing twice still gets every event once, in
//! order; the delivery log never shows a token.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netcheck_proto::api::agents::UpdateAgent;
use netcheck_proto::api::monitors::{
    AlertRule, CreateMonitor, EmailTarget, MonitorState, Notify, PagerDutyTarget, TelegramTarget,
    UpdateMonitor,
};
use netcheck_proto::api::FixedLocation;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::monitors::{due_now, monitor, tcp_monitor};
use crate::rig::rig_with;
use crate::webhook_receiver::recorder;

/// An SMTP server on loopback printing each message it receives; the messages so far.
struct Smtp {
    _process: Process,
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

fn smtp_server() -> Smtp {
    let port = unused_port();
    let mut child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Debugging"])
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m aiosmtpd (scripts/test.sh installs it)");
    let out = child.stdout.take().unwrap();
    let messages: Arc<Mutex<Vec<String>>> = Default::default();
    let sink = messages.clone();
    std::thread::spawn(move || {
        let mut current = String::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with("------------ END MESSAGE") {
                sink.lock().unwrap().push(std::mem::take(&mut current));
            } else if !line.starts_with("---------- MESSAGE FOLLOWS") {
                current.push_str(&line);
                current.push('\n');
            }
        }
    });
    Smtp {
        _process: Process(child),
        port,
        messages,
    }
}

const ROUTING_KEY: &str = "R0UT1NGKEY0123456789abcdefABCDEF";
const BOT_TOKEN: &str = "123456:ABC-def_ghi";

#[tokio::test]
async fn every_channel_gets_its_providers_message_naming_the_places() {
    // Slack's receiver fails twice: its events still arrive once each, in order.
    let (base, got) = recorder("/slack", 2).await;
    let smtp = smtp_server();
    let (pd_url, tg_url, smtp_port) = (
        format!("{base}/pd/v2/enqueue"),
        format!("{base}/tg"),
        smtp.port,
    );
    let rig = rig_with(&[], move |s| {
        s.notify.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        s.notify.retry_first_ms = 300;
        s.notify.pagerduty_url = pd_url;
        s.notify.telegram_url = tg_url;
        s.notify.smtp = Some(
            toml::from_str(&format!(
                "host = '127.0.0.1'\nport = {smtp_port}\ntls = 'none'\nfrom = 'netcheck <alerts@netcheck.test>'"
            ))
            .unwrap(),
        );
    })
    .await;
    // The agent is somewhere people can name.
    rig.api
        .update_agent(
            rig.agent_id,
            &UpdateAgent {
                location: Some(Some(FixedLocation {
                    country_code: "DE".into(),
                    city: Some("Frankfurt".into()),
                    ..Default::default()
                })),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let closed = unused_port();
    let channels = vec![
        Notify::Slack(format!("{base}/slack")),
        Notify::Discord(format!("{base}/discord")),
        Notify::Teams(format!("{base}/teams")),
        Notify::Ntfy(format!("{base}/ntfy/alerts")),
        Notify::Pagerduty(PagerDutyTarget {
            routing_key: ROUTING_KEY.into(),
        }),
        Notify::Telegram(TelegramTarget {
            bot_token: BOT_TOKEN.into(),
            chat_id: "-100200".into(),
        }),
        Notify::Email(EmailTarget {
            to: vec!["ops@example.test".into()],
        }),
    ];
    let body = CreateMonitor {
        alert: Some(AlertRule {
            min_failing_agents: 1,
            for_runs: 1,
        }),
        notify: channels.clone(),
        // Resumed after the test event, so the events arrive in a known order.
        paused: true,
        ..tcp_monitor("shop", json!({"port": closed, "timeout_ms": 500}))
    };
    let created = rig.api.create_monitor(&body).await.unwrap();
    assert_eq!(
        created.monitor.notify, channels,
        "channels read back as given"
    );
    let id = created.monitor.id;

    // A test event to every channel.
    let queued = rig.api.test_monitor(id).await.unwrap();
    assert_eq!(queued.len(), 7);
    let kinds: Vec<&str> = queued.iter().map(|d| d.channel.as_str()).collect();
    for kind in [
        "slack",
        "discord",
        "teams",
        "ntfy",
        "pagerduty",
        "telegram",
        "email",
    ] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    let log = serde_json::to_string(&queued).unwrap();
    assert!(
        !log.contains(BOT_TOKEN) && !log.contains(ROUTING_KEY),
        "{log}"
    );
    assert!(log.contains("telegram:-100200") && log.contains("mailto:ops@example.test"));

    let paths = |p: &str| -> Vec<Value> {
        got.lock()
            .unwrap()
            .iter()
            .filter(|(path, _)| path == p)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let tg_path = format!("/tg/bot{BOT_TOKEN}/sendMessage");
    let receivers = [
        "/slack",
        "/discord",
        "/teams",
        "/ntfy",
        "/pd/v2/enqueue",
        tg_path.as_str(),
    ];
    // Every receiver (and the SMTP server) has had `n` messages.
    let every_channel_got = |n: usize| {
        receivers.iter().all(|p| paths(p).len() == n) && smtp.messages.lock().unwrap().len() == n
    };
    eventually(
        "test events everywhere",
        Duration::from_secs(20),
        || async { every_channel_got(1).then_some(()) },
    )
    .await;
    let pd_test = &paths("/pd/v2/enqueue")[0];
    assert_eq!(pd_test["payload"]["severity"], "info");

    // Down: every channel says where and why.
    rig.api
        .update_monitor(
            id,
            &UpdateMonitor {
                paused: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    eventually("down", Duration::from_secs(20), || async {
        (monitor(&rig, id).await.state == MonitorState::Down).then_some(())
    })
    .await;
    let incident = rig.api.monitor_incidents(id).await.unwrap()[0]
        .id
        .to_string();
    // Up again: the port answers.
    let _open = std::net::TcpListener::bind(("127.0.0.1", closed)).unwrap();
    due_now(&rig, id).await;
    eventually("up", Duration::from_secs(20), || async {
        (monitor(&rig, id).await.state == MonitorState::Up).then_some(())
    })
    .await;
    eventually(
        "down and up everywhere",
        Duration::from_secs(30),
        || async { every_channel_got(3).then_some(()) },
    )
    .await;
    let summary = "down from 1 of 1 place: Frankfurt DE — connection refused";

    let slack = paths("/slack");
    let texts: Vec<&str> = slack.iter().map(|v| v["text"].as_str().unwrap()).collect();
    assert!(texts[0].contains("Test notification"), "{texts:?}");
    assert!(
        texts[1].contains("shop is down") && texts[1].contains(summary),
        "{texts:?}"
    );
    assert!(texts[2].contains("shop is up again"), "in order: {texts:?}");
    let blocks = slack[1]["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");

    let discord = &paths("/discord")[1];
    assert!(discord["content"].as_str().unwrap().contains(summary));
    let embed = &discord["embeds"][0];
    assert_eq!(embed["title"], "shop is down");
    assert_eq!(embed["description"], summary);
    assert!(embed["color"].is_u64() && embed["fields"].is_array());

    let teams = &paths("/teams")[1];
    assert_eq!(teams["type"], "message");
    let card = &teams["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(card["content"]["body"][0]["text"], "shop is down");
    assert_eq!(card["content"]["body"][1]["text"], summary);

    let ntfy = paths("/ntfy");
    assert_eq!(ntfy[1]["topic"], "alerts");
    assert_eq!(ntfy[1]["title"], "shop is down");
    assert!(ntfy[1]["message"].as_str().unwrap().starts_with(summary));
    assert_eq!(ntfy[1]["priority"], 5);
    assert!(ntfy[1]["tags"]
        .as_array()
        .unwrap()
        .contains(&json!("rotating_light")));
    assert_eq!(ntfy[2]["priority"], 3);

    let pd = paths("/pd/v2/enqueue");
    assert_eq!(pd[1]["routing_key"], ROUTING_KEY);
    assert_eq!(pd[1]["event_action"], "trigger");
    assert_eq!(pd[1]["dedup_key"], incident);
    assert_eq!(pd[1]["payload"]["severity"], "critical");
    assert_eq!(pd[1]["payload"]["source"], "127.0.0.1");
    assert!(pd[1]["payload"]["summary"]
        .as_str()
        .unwrap()
        .contains(summary));
    assert_eq!(pd[2]["event_action"], "resolve");
    assert_eq!(
        pd[2]["dedup_key"], incident,
        "resolve closes the same incident"
    );

    let tg = &paths(&tg_path)[1];
    assert_eq!(tg["chat_id"], "-100200");
    assert_eq!(tg["parse_mode"], "HTML");
    assert!(tg["text"]
        .as_str()
        .unwrap()
        .starts_with("<b>shop is down</b>\n"));

    let mails = smtp.messages.lock().unwrap().clone();
    let down = &mails[1];
    assert!(down.contains("Subject: shop is down"), "{down}");
    assert!(down.contains("To: ops@example.test"), "{down}");
    assert!(down.contains("multipart/alternative"), "{down}");
    assert!(down.contains("Content-Type: text/plain"), "{down}");
    assert!(down.contains("Content-Type: text/html"), "{down}");
    assert!(down.contains("Frankfurt DE"), "{down}");
    assert!(mails[2].contains("Subject: shop is up again"));

    // Slack's two failures were retried; each of its events was delivered exactly once.
    let deliveries = rig.api.monitor_deliveries(id).await.unwrap();
    let slack_log: Vec<_> = deliveries.iter().filter(|d| d.channel == "slack").collect();
    assert_eq!(slack_log.len(), 3);
    assert!(slack_log.iter().all(|d| d.delivered_at.is_some()));
    assert_eq!(slack_log.iter().map(|d| d.attempts).sum::<i32>(), 5);
}

#[tokio::test]
async fn bad_channels_are_refused_naming_the_field() {
    let rig = crate::monitors::monitor_rig().await;
    let cases = [
        (
            json!({"pagerduty": {"routing_key": "short"}}),
            "notify[0].pagerduty",
        ),
        (
            json!({"email": {"to": ["ops@example.test"]}}),
            "notify[0].email",
        ),
        (
            json!({"telegram": {"bot_token": "nope", "chat_id": "1"}}),
            "notify[0].telegram",
        ),
        (json!({"ntfy": "http://127.0.0.1:9/"}), "notify[0].ntfy"),
        (json!({"slack": "http://10.1.2.3/hook"}), "notify[0].slack"),
    ];
    for (channel, field) in cases {
        let resp = crate::monitors::call(
            &rig,
            reqwest::Method::POST,
            "/api/v1/monitors",
            Some(json!({"name": "m", "check": {"type": "tcp", "target": "127.0.0.1", "options": {"port": 1}},
                        "notify": [channel]})),
        )
        .await;
        let (code, body) = error_code(resp, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(code, "invalid_field", "{body}");
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
    }
    // Unknown kinds are the body's shape, not a field's value.
    let resp = crate::monitors::call(
        &rig,
        reqwest::Method::POST,
        "/api/v1/monitors",
        Some(json!({"name": "m", "check": {"type": "tcp", "target": "127.0.0.1", "options": {"port": 1}},
                    "notify": [{"carrier_pigeon": "coop"}]})),
    )
    .await;
    assert_eq!(resp.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_test_can_go_to_one_channel() {
    let (base, got) = recorder("/none", 0).await;
    let rig = crate::monitors::monitor_rig().await;
    let body = CreateMonitor {
        notify: vec![
            Notify::Slack(format!("{base}/slack")),
            Notify::Discord(format!("{base}/discord")),
        ],
        paused: true,
        ..tcp_monitor("one", json!({"port": 1}))
    };
    let id = rig.api.create_monitor(&body).await.unwrap().monitor.id;
    let resp = crate::monitors::call(
        &rig,
        reqwest::Method::POST,
        &format!("/api/v1/monitors/{id}/test?channel=1"),
        None,
    )
    .await;
    assert_eq!(resp.status(), reqwest::StatusCode::ACCEPTED);
    let queued: Vec<netcheck_proto::api::monitors::Delivery> = resp.json().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].channel, "discord");
    eventually("the one test", Duration::from_secs(20), || async {
        let paths: Vec<String> = got.lock().unwrap().iter().map(|(p, _)| p.clone()).collect();
        (paths == ["/discord"]).then_some(())
    })
    .await;
    let resp = crate::monitors::call(
        &rig,
        reqwest::Method::POST,
        &format!("/api/v1/monitors/{id}/test?channel=2"),
        None,
    )
    .await;
    let (code, body) = error_code(resp, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        (code.as_str(), &body["error"]["details"]["field"]),
        ("invalid_field", &json!("channel"))
    );
}
