//! Health, sign-in, the signed-in user, personal API keys and users.

use reqwest::{Method, StatusCode};
use uuid::Uuid;

use super::{Api, ClientResult};
use netcheck_proto::api::auth::{
    ApiKey, CreateApiKey, CreateUser, CreatedApiKey, LoginRequest, TokenResponse, UpdateUser, User,
};
use netcheck_proto::api::health::Health;

impl Api {
    pub async fn healthz(&self) -> ClientResult<Health> {
        self.get("/healthz").await
    }

    pub async fn readyz(&self) -> ClientResult<Health> {
        self.get("/readyz").await
    }

    /// Signs in; the refresh token arrives as a cookie in `http`'s store, if it has one.
    pub async fn login(&self, username: &str, password: &str) -> ClientResult<TokenResponse> {
        let body = LoginRequest {
            username: username.into(),
            password: password.into(),
        };
        self.post("/api/v1/auth/login", &body, StatusCode::OK).await
    }

    /// A new access token for the refresh cookie (which is rotated).
    pub async fn refresh(&self) -> ClientResult<TokenResponse> {
        self.json(
            self.request(Method::POST, "/api/v1/auth/refresh"),
            StatusCode::OK,
        )
        .await
    }

    pub async fn logout(&self) -> ClientResult<()> {
        self.no_content(self.request(Method::POST, "/api/v1/auth/logout"))
            .await
    }

    pub async fn me(&self) -> ClientResult<User> {
        self.get("/api/v1/auth/me").await
    }

    pub async fn create_api_key(&self, body: &CreateApiKey) -> ClientResult<CreatedApiKey> {
        self.post("/api/v1/auth/api-keys", body, StatusCode::CREATED)
            .await
    }

    pub async fn api_keys(&self) -> ClientResult<Vec<ApiKey>> {
        self.get("/api/v1/auth/api-keys").await
    }

    pub async fn revoke_api_key(&self, id: Uuid) -> ClientResult<()> {
        let path = format!("/api/v1/auth/api-keys/{id}");
        self.no_content(self.request(Method::DELETE, &path)).await
    }

    /// A user's API keys (administrators).
    pub async fn user_api_keys(&self, user: Uuid) -> ClientResult<Vec<ApiKey>> {
        self.get(&format!("/api/v1/users/{user}/api-keys")).await
    }

    /// Revokes any user's API key (administrators).
    pub async fn revoke_user_api_key(&self, user: Uuid, key: Uuid) -> ClientResult<()> {
        let path = format!("/api/v1/users/{user}/api-keys/{key}");
        self.no_content(self.request(Method::DELETE, &path)).await
    }

    pub async fn users(&self) -> ClientResult<Vec<User>> {
        self.get("/api/v1/users").await
    }

    pub async fn user(&self, id: Uuid) -> ClientResult<User> {
        self.get(&format!("/api/v1/users/{id}")).await
    }

    pub async fn create_user(&self, body: &CreateUser) -> ClientResult<User> {
        self.post("/api/v1/users", body, StatusCode::CREATED).await
    }

    pub async fn update_user(&self, id: Uuid, body: &UpdateUser) -> ClientResult<User> {
        self.patch(&format!("/api/v1/users/{id}"), body).await
    }

    pub async fn delete_user(&self, id: Uuid) -> ClientResult<()> {
        let path = format!("/api/v1/users/{id}");
        self.no_content(self.request(Method::DELETE, &path)).await
    }
}
