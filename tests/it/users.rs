//! Admin-only user management and its guards.

use netcheck::client::api::Api;
use netcheck_proto::api::auth::{CreateUser, Role, UpdateUser, User};
use netcheck_proto::api::ErrorCode;
use reqwest::StatusCode;
use serde_json::json;

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
    let bob: User = resp.json().await.unwrap();
    assert_eq!(bob.role, Role::User, "role defaults to user");
    let id = bob.id;

    let admin = app.api_as(&admin);
    let user = |name: &str, password: &str| CreateUser {
        username: name.into(),
        password: password.into(),
        role: Role::User,
    };
    let taken = admin.create_user(&user("bob", "bob-password")).await;
    let taken = refused(taken, StatusCode::CONFLICT);
    assert_eq!(taken.code(), Some(ErrorCode::UsernameTaken));

    assert_eq!(admin.users().await.unwrap().len(), 2);

    let promote = UpdateUser {
        role: Some(Role::Admin),
        ..Default::default()
    };
    let promoted = admin.update_user(id, &promote).await.unwrap();
    assert_eq!(promoted.role, Role::Admin);

    let short = refused(
        admin.create_user(&user("short", "short")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(short.field(), Some("password"));
}

#[tokio::test]
async fn deleting_a_user_ends_its_access_at_once() {
    let app = spawn_app().await;
    let carol = app.api_as(&app.user_token("carol").await);
    let admin = app.admin().await;
    let id = carol.me().await.unwrap().id;
    admin.delete_user(id).await.unwrap();
    refused(carol.me().await, StatusCode::UNAUTHORIZED);
    refused(admin.delete_user(id).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_last_admin_cannot_be_deleted_or_demoted() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let id = admin.me().await.unwrap().id;
    let err = refused(admin.delete_user(id).await, StatusCode::CONFLICT);
    assert_eq!(err.code(), Some(ErrorCode::LastAdmin));
    let demote = UpdateUser {
        role: Some(Role::User),
        ..Default::default()
    };
    let err = refused(admin.update_user(id, &demote).await, StatusCode::CONFLICT);
    assert_eq!(err.code(), Some(ErrorCode::LastAdmin));
}

#[tokio::test]
async fn changing_a_password_ends_existing_sessions() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    app.user_token("dave").await;
    let dave = Api::new(new_client(), &app.address);
    let id = dave.login("dave", "user-password-1").await.unwrap().user.id;
    let change = UpdateUser {
        password: Some("a-new-password".into()),
        ..Default::default()
    };
    admin.update_user(id, &change).await.unwrap();
    refused(dave.refresh().await, StatusCode::UNAUTHORIZED);
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
