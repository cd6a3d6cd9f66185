//! Admin-only user management and its guards.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn non_admin_gets_403_on_admin_routes() {
    let app = spawn_app().await;
    let token = app.user_token("alice").await;
    for req in [
        app.client.get(app.url("/api/v1/users")),
        app.client
            .post(app.url("/api/v1/users"))
            .json(&json!({"username": "x", "password": "long-enough"})),
    ] {
        let (code, _) = error_code(
            req.bearer_auth(&token).send().await.unwrap(),
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(code, "forbidden");
    }
    // …but /me works for them.
    let resp = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn admin_manages_users_and_names_are_unique_ignoring_case() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let resp = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "Bob", "password": "bob-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(resp.headers().get("location").is_some());
    let bob: Value = resp.json().await.unwrap();
    assert_eq!(bob["role"], "user", "role defaults to user");
    let id = bob["id"].as_str().unwrap();

    let resp = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "bob", "password": "bob-password"}))
        .send()
        .await
        .unwrap();
    let (code, _) = error_code(resp, StatusCode::CONFLICT).await;
    assert_eq!(code, "username_taken");

    let list: Vec<Value> = app
        .client
        .get(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);

    let resp = app
        .client
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["role"], "admin");

    let resp = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "short", "password": "short"}))
        .send()
        .await
        .unwrap();
    let (_, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["error"]["details"]["field"], "password");
}

#[tokio::test]
async fn deleting_a_user_ends_its_access_at_once() {
    let app = spawn_app().await;
    let token = app.user_token("carol").await;
    let admin = app.admin_token().await;
    let me: Value = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = app
        .client
        .delete(app.url(&format!("/api/v1/users/{}", me["id"].as_str().unwrap())))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .client
        .delete(app.url(&format!("/api/v1/users/{}", me["id"].as_str().unwrap())))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_last_admin_cannot_be_deleted_or_demoted() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let me: Value = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = app.url(&format!("/api/v1/users/{}", me["id"].as_str().unwrap()));
    let (code, _) = error_code(
        app.client
            .delete(&url)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(code, "last_admin");
    let resp = app
        .client
        .patch(&url)
        .bearer_auth(&admin)
        .json(&json!({"role": "user"}))
        .send()
        .await
        .unwrap();
    let (code, _) = error_code(resp, StatusCode::CONFLICT).await;
    assert_eq!(code, "last_admin");
}

#[tokio::test]
async fn changing_a_password_ends_existing_sessions() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.user_token("dave").await;
    let client = new_client();
    let (_, body) = app.login_with(&client, "dave", "user-password-1").await;
    let id = body["user"]["id"].as_str().unwrap();
    let resp = app
        .client
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"password": "a-new-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login_with(&new_client(), "dave", "user-password-1")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_with(&new_client(), "dave", "a-new-password")
            .await
            .0,
        StatusCode::OK
    );
}
