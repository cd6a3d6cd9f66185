//! The real `netcheck` binary: `migrate` and `user add`.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;

use crate::helpers::*;

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
