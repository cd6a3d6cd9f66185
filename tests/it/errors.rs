//! Bad input of every kind answers a 4xx with the stable JSON error shape.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let resp = post_raw(
        &app,
        "/api/v1/auth/login",
        "application/json",
        "{\"username\": \"a\",",
    )
    .await;
    let (code, _) = error_code(resp, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "invalid_json");
}

#[tokio::test]
async fn missing_field_is_422_naming_the_field() {
    let app = spawn_app().await;
    let resp = post_raw(
        &app,
        "/api/v1/auth/login",
        "application/json",
        r#"{"username":"a"}"#,
    )
    .await;
    let (code, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(code, "invalid_body");
    assert_eq!(body["error"]["details"]["field"], "password");
}

#[tokio::test]
async fn wrong_type_is_422_naming_the_field() {
    let app = spawn_app().await;
    let resp = post_raw(
        &app,
        "/api/v1/auth/login",
        "application/json",
        r#"{"username":"a","password":42}"#,
    )
    .await;
    let (code, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(code, "invalid_body");
    assert_eq!(body["error"]["details"]["field"], "password");
}

#[tokio::test]
async fn nested_wrong_type_names_the_path() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let resp = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({ "username": "x", "password": "long-enough", "role": "superuser" }))
        .send()
        .await
        .unwrap();
    let (_, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["error"]["details"]["field"], "role");
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = spawn_app_with(|s| s.http.max_body_bytes = 4096).await;
    let big = format!(r#"{{"username":"a","password":"{}"}}"#, "x".repeat(10_000));
    let resp = post_raw(&app, "/api/v1/auth/login", "application/json", big).await;
    let (code, _) = error_code(resp, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(code, "payload_too_large");
}

#[tokio::test]
async fn non_json_content_type_is_415() {
    let app = spawn_app().await;
    let resp = post_raw(
        &app,
        "/api/v1/auth/login",
        "text/plain",
        r#"{"username":"a","password":"b"}"#,
    )
    .await;
    let (code, _) = error_code(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_eq!(code, "unsupported_media_type");
}

#[tokio::test]
async fn unknown_route_and_bad_id_are_json_404() {
    let app = spawn_app().await;
    let (code, _) = error_code(
        app.client
            .get(app.url("/api/v1/nope"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(code, "not_found");
    let admin = app.admin_token().await;
    let resp = app
        .client
        .get(app.url("/api/v1/users/not-a-uuid"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (code, body) = error_code(resp, StatusCode::NOT_FOUND).await;
    assert_eq!(code, "not_found");
    // Written for people, not the parser's debug text.
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("UUID") && message.contains("not valid"),
        "{message}"
    );
}

#[tokio::test]
async fn non_utf8_and_deeply_nested_bodies_do_not_crash() {
    let app = spawn_app().await;
    let resp = post_raw(
        &app,
        "/api/v1/auth/login",
        "application/json",
        vec![0xff, 0xfe, 0x00, 0x7b],
    )
    .await;
    assert!(resp.status().is_client_error());
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let resp = post_raw(&app, "/api/v1/auth/login", "application/json", deep).await;
    assert!(resp.status().is_client_error());
    // Still serving.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn nul_characters_are_refused_with_4xx_everywhere() {
    // PostgreSQL cannot hold U+0000; every place a string reaches the database must answer
    // with a client error, never 500 (found by the schemathesis campaign on login).
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "ad\u{0}min", "password": "whatever-password"}))
        .send()
        .await
        .unwrap();
    let (code, _) = error_code(resp, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "invalid_credentials");

    let admin = app.admin_token().await;
    for (path, body) in [
        ("/api/v1/agents", json!({"name": "probe\u{0}1"})),
        (
            "/api/v1/agents",
            json!({"name": "probe-2", "region": "eu\u{0}"}),
        ),
        ("/api/v1/auth/api-keys", json!({"name": "key\u{0}"})),
        (
            "/api/v1/users",
            json!({"username": "u\u{0}ser", "password": "a-long-enough-password", "role": "user"}),
        ),
        (
            "/api/v1/checks",
            json!({"type": "tcp", "target": "exa\u{0}mple.com", "options": {"port": 80}}),
        ),
    ] {
        let resp = app
            .client
            .post(app.url(path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_client_error(), "{path} {body}: {status} {text}");
        let err: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(err["error"]["code"].is_string(), "{text}");
    }
}
