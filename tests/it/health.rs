//! Liveness, readiness and the published API description.

use netcheck_proto::api::health::Health;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn healthz_and_readyz_answer_when_dependencies_are_up() {
    let app = spawn_app().await;
    assert_eq!(app.api().healthz().await.unwrap().status, "ok");
    let ready = app.api().readyz().await.unwrap();
    assert_eq!(ready.status, "ready");
    let checks = ready.checks.unwrap();
    assert_eq!(
        (checks["database"].as_str(), checks["redis"].as_str()),
        ("ok", "ok")
    );
}

#[tokio::test]
async fn readyz_is_503_when_redis_is_unreachable() {
    // Port 1 on loopback: nothing listens there.
    let app = spawn_app_with(|s| s.redis.url = "redis://127.0.0.1:1".into()).await;
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    // A 503 that still carries the health body (not the error body).
    let body: Health = resp.json().await.unwrap();
    assert_eq!(body.status, "not_ready");
    let checks = body.checks.unwrap();
    assert_eq!(checks["database"], "ok");
    assert_ne!(checks["redis"], "ok");
    // Logins are refused without Redis: the limiter fails closed (nothing would bound
    // password guessing otherwise).
    let (status, _) = app
        .login_with(&new_client(), ADMIN_USER, ADMIN_PASSWORD)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn openapi_document_and_swagger_ui_are_served() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/users/{id}",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    let resp = app.client.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn the_web_ui_is_served_with_spa_fallback() {
    let app = spawn_app().await;
    let get = |p: &str| app.client.get(app.url(p)).send();
    let resp = get("/admin/agents").await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "client-side routes get the app shell"
    );
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("<div id=\"root\">"), "{html}");
    // The hashed bundle it references is served with a long cache lifetime.
    let asset = html
        .split("src=\"/assets/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(|s| format!("/assets/{s}"))
        .expect("script src");
    // The theme script runs before the bundle (no flash of the wrong theme); it is not hashed,
    // so it is revalidated.
    assert!(html.contains("src=\"/theme.js\""), "{html}");
    let theme = get("/theme.js").await.unwrap();
    assert_eq!(theme.status(), StatusCode::OK);
    assert_eq!(theme.headers()["cache-control"], "no-cache");
    let resp = get(&asset).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(
        get("/assets/missing-0000.js").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/favicon-missing.png").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let (code, _) = error_code(get("/api/v1/nope").await.unwrap(), StatusCode::NOT_FOUND).await;
    assert_eq!(code, "not_found", "unknown API paths stay JSON");
}
