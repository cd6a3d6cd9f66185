//! The real `netcheck` binary: `migrate` and `user add`.

use std::io::Write;
use std::process::{Command, Stdio};

use netcheck_proto::api::agents::{Agent, AgentStatus};
use netcheck_proto::api::auth::{CreateApiKey, CreatedApiKey};
use netcheck_proto::api::checks::CheckView;
use reqwest::StatusCode;

use crate::helpers::*;
use crate::rig::error_code_of;

fn netcheck(db_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netcheck"));
    cmd.env("NETCHECK__DATABASE__URL", db_url)
        .env("NETCHECK_LOG_FORMAT", "json");
    cmd
}

#[tokio::test]
async fn user_add_creates_an_account_that_can_sign_in() {
    let db = fresh_database().await;
    let status = netcheck(&db).arg("migrate").status().unwrap();
    assert!(status.success());

    let mut child = netcheck(&db)
        .args(["user", "add", "ops", "--role", "admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"ops-password-123\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin user ops"));

    // A second `user add` of the same name fails cleanly.
    let out = netcheck(&db).args(["user", "add", "OPS"]).output().unwrap();
    assert!(!out.status.success());

    let app = spawn_app_with(|s| s.database.url = db.clone().into()).await;
    let (status, body) = app
        .login_with(&new_client(), "ops", "ops-password-123")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["role"], "admin");
    // The database already had a user, so no bootstrap admin was created.
    assert_eq!(
        app.login_with(&new_client(), ADMIN_USER, ADMIN_PASSWORD)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bad_configuration_is_refused_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_netcheck"))
        .env("NETCHECK__DATABSE__URL", "postgres://x")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("databse"));
}

pub(crate) async fn new_api_key(app: &TestApp, token: &str) -> CreatedApiKey {
    let body = CreateApiKey {
        name: "script".into(),
        ..Default::default()
    };
    app.api_as(token).create_api_key(&body).await.unwrap()
}

#[tokio::test]
async fn api_keys_work_like_tokens_until_revoked() {
    let app = spawn_app().await;
    let token = app.user_token("scripter").await;
    let created = new_api_key(&app, &token).await;
    let key = created.key.clone();
    assert!(key.starts_with("nck_"));
    let scripted = app.api_as(&key);
    assert_eq!(scripted.me().await.unwrap().username, "scripter");
    // Keys are managed from a session, not with a key.
    refused(scripted.api_keys().await, StatusCode::FORBIDDEN);
    let list = app.api_as(&token).api_keys().await.unwrap();
    assert_eq!(list.len(), 1);
    let listed = serde_json::to_value(&list[0]).unwrap();
    assert!(listed.get("key").is_none(), "the key is shown only once");
    assert!(!listed.to_string().contains(&key[21..]));
    // Not an admin: an API key carries its user's role.
    refused(scripted.users().await, StatusCode::FORBIDDEN);
    // Someone else cannot revoke it.
    let id = created.api_key.id;
    refused(
        app.admin().await.revoke_api_key(id).await,
        StatusCode::NOT_FOUND,
    );
    app.api_as(&token).revoke_api_key(id).await.unwrap();
    // Revocation is effective at once.
    refused(scripted.me().await, StatusCode::UNAUTHORIZED);
    let wrong = format!("{}x", &key[..key.len() - 1]);
    assert_eq!(
        app.client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(&wrong)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_cli_runs_checks_live_with_exit_codes_and_json() {
    let rig = crate::rig::rig().await;
    let key = new_api_key(&rig.app, &rig.token).await.key;
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port().to_string();
    let closed_port = unused_port().to_string();
    let cli = |args: Vec<String>| {
        let address = rig.app.address.clone();
        let key = key.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_netcheck"))
                .args(&args)
                .env("NETCHECK_SERVER_URL", address)
                .env("NETCHECK_API_KEY", key)
                .env("HOME", "/nonexistent")
                .output()
                .unwrap()
        })
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    let out = cli(s(&["check", "tcp", "127.0.0.1", "--port", &open_port]))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("probe-1") && text.contains("connected in"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colours when not a terminal");

    let out = cli(s(&[
        "check",
        "tcp",
        "127.0.0.1",
        "--port",
        &closed_port,
        "--json",
    ]))
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "failed everywhere → exit 1");
    let check: CheckView = serde_json::from_slice(&out.stdout).expect("--json prints a check");
    assert_eq!(error_code_of(&check.results[0]), Some("refused"));

    // Traces: traceroute's lines, and mtr's report.
    let out = cli(s(&[
        "check",
        "traceroute",
        "127.0.0.1",
        "--protocol",
        "tcp",
        "--port",
        &open_port,
    ]))
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "TRACEROUTE 127.0.0.1 (tcp port {open_port} · max 30 hops)"
        )) && text.contains("reached in 1 hops")
            && text.contains("  1  127.0.0.1  "),
        "{text}"
    );
    let out = cli(s(&["check", "mtr", "127.0.0.1", "--packets", "3"]))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Loss%") && text.contains("  1.|-- 127.0.0.1"),
        "{text}"
    );

    let out = cli(s(&["agents", "--json"])).await.unwrap();
    assert!(out.status.success());
    let agents: Vec<Agent> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(agents[0].name, "probe-1");
    assert_eq!(agents[0].status, AgentStatus::Online);

    // Places, networks and labels: set by hand (loopback has no GeoIP place), then chosen.
    let resp = rig
        .app
        .client
        .patch(rig.app.url(&format!("/api/v1/agents/{}", rig.agent_id)))
        .bearer_auth(&rig.token)
        .json(&serde_json::json!({"labels": ["dc1"], "location": {"country_code": "DE", "city": "Berlin", "asn": 3320, "network": "Deutsche Telekom AG"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let tcp = |extra: &[&str]| {
        let mut v = s(&["check", "tcp", "127.0.0.1", "--port", &open_port]);
        v.extend(s(extra));
        cli(v)
    };
    let out = tcp(&[
        "--from",
        "country:de",
        "--from",
        "label:dc1",
        "--limit",
        "3",
    ])
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("TCP 127.0.0.1 (port {open_port}) on 1 agent(s)"))
            && text.contains("probe-1"),
        "{text}"
    );
    let out = tcp(&["--agent", "PROBE-1", "--share"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "an agent by name");
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("shared: "))
        .unwrap_or_else(|| panic!("--share prints the link: {text}"));
    let token = url.rsplit('/').next().unwrap();
    let shared = reqwest::get(rig.app.url(&format!("/api/v1/shared/{token}")))
        .await
        .unwrap();
    assert_eq!(
        shared.status(),
        StatusCode::OK,
        "the link works without login"
    );
    let out = tcp(&["--expect-max-connect-ms", "0.0001"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unmet expectation fails: {text}"
    );
    assert!(text.contains("max_connect_ms"), "{text}");
    let out = tcp(&["--from", "country:FR"]).await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no online agent matches"), "{err}");
    let out = tcp(&["--from", "planet:mars"]).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key 'planet'"));
    // Monitors from the terminal: the same check options and agent choice.
    let out = cli(s(&[
        "monitor",
        "add",
        "--name",
        "cli-mon",
        "--interval",
        "3600",
        "tcp",
        "127.0.0.1",
        "--port",
        &open_port,
        "--from",
        "country:DE",
    ]))
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = text.split_whitespace().nth(1).unwrap().to_string();
    let out = cli(s(&["monitors"])).await.unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&id) && table.contains("cli-mon") && table.contains("TCP 127.0.0.1"),
        "{table}"
    );
    let out = cli(s(&["monitor", "pause", &id])).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("is paused"));
    let out = cli(s(&["monitor", "delete", &id])).await.unwrap();
    assert!(out.status.success());
    let out = cli(s(&["monitors", "--json"])).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );

    let out = cli(s(&["agents"])).await.unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    for expected in ["DE", "Berlin", "AS3320 Deutsche Telekom AG", "dc1"] {
        assert!(table.contains(expected), "{expected}: {table}");
    }

    let out = Command::new(env!("CARGO_BIN_EXE_netcheck"))
        .args(["agents"])
        .env("HOME", "/nonexistent")
        .env_remove("NETCHECK_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API key"));
}

#[tokio::test]
async fn health_subcommand_reflects_readiness() {
    let app = spawn_app().await;
    let url = app.url("/readyz");
    let ok = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_netcheck"))
            .args(["health", &url])
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(ok.success());
    let port = unused_port();
    let down = Command::new(env!("CARGO_BIN_EXE_netcheck"))
        .args(["health", &format!("http://127.0.0.1:{port}/readyz")])
        .status()
        .unwrap();
    assert!(!down.success());
}

#[test]
fn every_check_option_in_the_api_schema_has_a_cli_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_netcheck"))
        .arg("openapi")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let schemas = &doc["components"]["schemas"];
    let props = |name: &str| -> Vec<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    };
    let mut missing = Vec::new();
    for (kind, options, expect) in [
        ("ping", "PingOptions", "PingExpect"),
        ("tcp", "TcpOptions", "TcpExpect"),
        ("http", "HttpOptions", "HttpExpect"),
        ("dns", "DnsOptions", "DnsExpect"),
        ("traceroute", "TracerouteOptions", "TraceExpect"),
        ("mtr", "MtrOptions", "TraceExpect"),
    ] {
        let help = Command::new(env!("CARGO_BIN_EXE_netcheck"))
            .args(["check", kind, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout).to_string();
        let flags = props(options)
            .into_iter()
            .filter(|f| f != "expect")
            .map(|f| format!("--{}", f.replace('_', "-")))
            .chain(
                props(expect)
                    .into_iter()
                    .map(|f| format!("--expect-{}", f.replace('_', "-"))),
            );
        for flag in flags {
            // A flag is there when its name is followed by a space, a comma or `]` (aliases).
            if ![" ", ",", "]", "\n"]
                .iter()
                .any(|end| help.contains(&format!("{flag}{end}")))
            {
                missing.push(format!("{kind} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "options without a CLI flag: {missing:?}"
    );
}
