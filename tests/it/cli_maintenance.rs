//! The CLI's monitor channels and maintenance windows, through the real binary.

use std::process::Command;

use netcheck_proto::api::monitors::{Maintenance, MonitorQuery, Notify};
use serde_json::json;

use crate::monitors::{monitor_rig, tcp_monitor};

#[tokio::test]
async fn the_cli_adds_channels_and_plans_maintenance() {
    let rig = monitor_rig().await;
    let key = crate::cli::new_api_key(&rig.app, &rig.token).await.key;
    // The server runs on this test's runtime: the CLI is waited for off it.
    let cli = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (address, key) = (rig.app.address.clone(), key.clone());
        async move {
            let out = tokio::task::spawn_blocking(move || {
                Command::new(env!("CARGO_BIN_EXE_netcheck"))
                    .args(&args)
                    .env("NETCHECK_SERVER_URL", address)
                    .env("NETCHECK_API_KEY", key)
                    .env("HOME", "/nonexistent")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(out.status.success(), "{text} {err}");
            text
        }
    };
    let hook = "http://127.0.0.1:9/slack";
    cli(&[
        "monitor",
        "add",
        "--name",
        "web",
        "--notify",
        &format!("slack={hook}"),
        "--notify",
        "telegram=123:abc,@ops",
        "tcp",
        "127.0.0.1",
        "--port",
        "9",
    ])
    .await;
    let page = rig.api.monitors(&MonitorQuery::default()).await.unwrap();
    let m = &page.monitors[0];
    assert_eq!(
        m.notify,
        vec![
            Notify::Slack(hook.into()),
            Notify::Telegram(netcheck_proto::api::monitors::TelegramTarget {
                bot_token: "123:abc".into(),
                chat_id: "@ops".into()
            })
        ]
    );
    let other = rig
        .api
        .create_monitor(&tcp_monitor("db", json!({"port": 9})))
        .await
        .unwrap()
        .monitor
        .id;
    let id = m.id.to_string();
    let until = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let out = cli(&[
        "maintenance",
        "add",
        "--monitor",
        &id,
        "--monitor",
        &other.to_string(),
        "--until",
        &until,
        "--note",
        "upgrade",
        "--json",
    ])
    .await;
    let once: Maintenance = serde_json::from_str(&out).unwrap();
    assert!(once.active);
    assert_eq!(once.monitors.len(), 2);
    let out = cli(&[
        "maintenance",
        "add",
        "--monitor",
        &id,
        "--weekly",
        "sunday,02:00,90",
    ])
    .await;
    assert!(out.contains("maintenance window"), "{out}");
    let list = cli(&["maintenance", "list"]).await;
    assert!(
        list.contains("upgrade") && list.contains("weekly Sunday 02:00 for 90 min"),
        "{list}"
    );
    cli(&["maintenance", "delete", &once.id.to_string()]).await;
    assert_eq!(rig.api.maintenance_windows().await.unwrap().len(), 1);
}
