//! The typed HTTP client of the API: one method per operation, taking and returning the types
//! of `crate::proto::api`. `netcheck check`, the integration tests and the benches use it.

use std::collections::VecDeque;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::sse;
use crate::proto::api::agents::{Agent, AgentToken, CreateAgent, CreatedAgent, UpdateAgent};
use crate::proto::api::auth::{
    ApiKey, CreateApiKey, CreateUser, CreatedApiKey, LoginRequest, TokenResponse, UpdateUser, User,
};
use crate::proto::api::checks::{
    CheckCreated, CheckEvent, CheckPage, CheckResultView, CheckView, CreateCheck, HistoryQuery,
};
use crate::proto::api::health::Health;
use crate::proto::api::lookup::Lookup;
use crate::proto::api::monitors::{
    AgentSeries, CreateMonitor, CreatedMonitor, Delivery, Incident, Monitor, MonitorPage,
    MonitorQuery, SeriesQuery, UpdateMonitor, WebhookSecret,
};
use crate::proto::api::share::{ShareLink, ShareRequest, SharedCheck};
use crate::proto::api::{ErrorBody, ErrorCode};

/// What a call can end in besides its answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with its error body.
    #[error("{status}: {}", body.error.message)]
    Api {
        status: StatusCode,
        body: Box<ErrorBody>,
    },
    /// The server answered something that is not the documented body.
    #[error("{status}: unexpected answer ({reason}): {text}")]
    Unexpected {
        status: StatusCode,
        reason: String,
        text: String,
    },
    /// No answer (connection refused, reset, TLS…).
    #[error("cannot reach {base}: {source}")]
    Transport {
        base: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } | ClientError::Unexpected { status, .. } => {
                Some(*status)
            }
            ClientError::Transport { .. } => None,
        }
    }

    /// The stable error code, when the server answered with its error body.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { body, .. } => Some(body.error.code),
            _ => None,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// A client of one server, signed in with a bearer token (an access token or an API key) or
/// not at all.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    /// A client of the server at `base` (`http://host:port`), using `http` for its requests;
    /// give `http` a cookie store for the refresh-token cookie.
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: None,
        }
    }

    /// The same client, sending `token` as its bearer credential.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_to(method, format!("{}{path}", self.base))
    }

    fn request_to(&self, method: Method, url: impl reqwest::IntoUrl) -> RequestBuilder {
        let req = self.http.request(method, url);
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn send(&self, req: RequestBuilder) -> ClientResult<reqwest::Response> {
        let resp = req.send().await.map_err(|source| ClientError::Transport {
            base: self.base.clone(),
            source,
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status,
                body: Box::new(body),
            },
            Err(e) => ClientError::Unexpected {
                status,
                reason: e.to_string(),
                text,
            },
        })
    }

    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> ClientResult<T> {
        let resp = self.send(req).await?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                base: self.base.clone(),
                source,
            })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected {
            status,
            reason: e.to_string(),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        self.json(self.request(Method::GET, path)).await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> ClientResult<T> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    async fn patch<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> ClientResult<T> {
        self.json(self.request(Method::PATCH, path).json(body))
            .await
    }

    /// A request answered with 204 No Content.
    async fn no_content(&self, req: RequestBuilder) -> ClientResult<()> {
        self.send(req).await.map(drop)
    }

    // Operations.

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
        self.post("/api/v1/auth/login", &body).await
    }

    /// A new access token for the refresh cookie (which is rotated).
    pub async fn refresh(&self) -> ClientResult<TokenResponse> {
        self.json(self.request(Method::POST, "/api/v1/auth/refresh"))
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
        self.post("/api/v1/auth/api-keys", body).await
    }

    pub async fn api_keys(&self) -> ClientResult<Vec<ApiKey>> {
        self.get("/api/v1/auth/api-keys").await
    }

    pub async fn revoke_api_key(&self, id: Uuid) -> ClientResult<()> {
        let path = format!("/api/v1/auth/api-keys/{id}");
        self.no_content(self.request(Method::DELETE, &path)).await
    }

    pub async fn users(&self) -> ClientResult<Vec<User>> {
        self.get("/api/v1/users").await
    }

    pub async fn user(&self, id: Uuid) -> ClientResult<User> {
        self.get(&format!("/api/v1/users/{id}")).await
    }

    pub async fn create_user(&self, body: &CreateUser) -> ClientResult<User> {
        self.post("/api/v1/users", body).await
    }

    pub async fn update_user(&self, id: Uuid, body: &UpdateUser) -> ClientResult<User> {
        self.patch(&format!("/api/v1/users/{id}"), body).await
    }

    pub async fn delete_user(&self, id: Uuid) -> ClientResult<()> {
        let path = format!("/api/v1/users/{id}");
        self.no_content(self.request(Method::DELETE, &path)).await
    }

    pub async fn agents(&self) -> ClientResult<Vec<Agent>> {
        self.get("/api/v1/agents").await
    }

    pub async fn agent(&self, id: Uuid) -> ClientResult<Agent> {
        self.get(&format!("/api/v1/agents/{id}")).await
    }

    pub async fn create_agent(&self, body: &CreateAgent) -> ClientResult<CreatedAgent> {
        self.post("/api/v1/agents", body).await
    }

    pub async fn update_agent(&self, id: Uuid, body: &UpdateAgent) -> ClientResult<Agent> {
        self.patch(&format!("/api/v1/agents/{id}"), body).await
    }

    /// Deletes the agent; its broker access ends at once.
    pub async fn delete_agent(&self, id: Uuid) -> ClientResult<()> {
        let path = format!("/api/v1/agents/{id}");
        self.no_content(self.request(Method::DELETE, &path)).await
    }

    /// A new enrollment token; the old one stops working.
    pub async fn rotate_agent_token(&self, id: Uuid) -> ClientResult<AgentToken> {
        let path = format!("/api/v1/agents/{id}/token");
        self.json(self.request(Method::POST, &path)).await
    }

    pub async fn create_check(&self, body: &CreateCheck) -> ClientResult<CheckCreated> {
        self.post("/api/v1/checks", body).await
    }

    pub async fn check(&self, id: Uuid) -> ClientResult<CheckView> {
        self.get(&format!("/api/v1/checks/{id}")).await
    }

    /// The live event stream of a check: stored results first, then each new one, then
    /// `finished`.
    pub async fn check_events(&self, id: Uuid) -> ClientResult<CheckEvents> {
        let path = format!("/api/v1/checks/{id}/events");
        let resp = self.send(self.request(Method::GET, &path)).await?;
        Ok(CheckEvents {
            resp,
            base: self.base.clone(),
            decoder: sse::Decoder::default(),
            queue: VecDeque::new(),
        })
    }

    /// Creates a check and follows its stream to the end. Returns the stored check and the
    /// results in the order the stream delivered them.
    pub async fn run_check(
        &self,
        body: &CreateCheck,
    ) -> ClientResult<(CheckView, Vec<CheckResultView>)> {
        let created = self.create_check(body).await?;
        let streamed = self.check_events(created.id).await?.results().await?;
        Ok((self.check(created.id).await?, streamed))
    }

    /// A page of the history, newest first.
    pub async fn history(&self, query: &HistoryQuery) -> ClientResult<CheckPage> {
        self.json(self.request(Method::GET, "/api/v1/checks").query(query))
            .await
    }

    pub async fn share(&self, id: Uuid, body: &ShareRequest) -> ClientResult<ShareLink> {
        self.post(&format!("/api/v1/checks/{id}/share"), body).await
    }

    pub async fn unshare(&self, id: Uuid) -> ClientResult<()> {
        let path = format!("/api/v1/checks/{id}/share");
        self.no_content(self.request(Method::DELETE, &path)).await
    }

    /// A shared check, as anyone with the link sees it.
    pub async fn shared(&self, token: &str) -> ClientResult<SharedCheck> {
        self.get(&format!("/api/v1/shared/{token}")).await
    }

    /// The host's addresses and places; `host` is escaped as one path segment.
    pub async fn lookup(&self, host: &str) -> ClientResult<Lookup> {
        let mut url = reqwest::Url::parse(&format!("{}/api/v1/lookup/", self.base))
            .expect("the base is a URL");
        url.path_segments_mut()
            .expect("an http URL has a path")
            .pop_if_empty()
            .push(host);
        self.json(self.request_to(Method::GET, url)).await
    }

    pub async fn create_monitor(&self, body: &CreateMonitor) -> ClientResult<CreatedMonitor> {
        self.post("/api/v1/monitors", body).await
    }

    pub async fn monitors(&self, query: &MonitorQuery) -> ClientResult<MonitorPage> {
        self.json(self.request(Method::GET, "/api/v1/monitors").query(query))
            .await
    }

    pub async fn monitor(&self, id: Uuid) -> ClientResult<Monitor> {
        self.get(&format!("/api/v1/monitors/{id}")).await
    }

    pub async fn update_monitor(&self, id: Uuid, body: &UpdateMonitor) -> ClientResult<Monitor> {
        self.patch(&format!("/api/v1/monitors/{id}"), body).await
    }

    pub async fn delete_monitor(&self, id: Uuid) -> ClientResult<()> {
        let path = format!("/api/v1/monitors/{id}");
        self.no_content(self.request(Method::DELETE, &path)).await
    }

    pub async fn monitor_incidents(&self, id: Uuid) -> ClientResult<Vec<Incident>> {
        self.get(&format!("/api/v1/monitors/{id}/incidents")).await
    }

    pub async fn monitor_series(
        &self,
        id: Uuid,
        query: &SeriesQuery,
    ) -> ClientResult<Vec<AgentSeries>> {
        let path = format!("/api/v1/monitors/{id}/series");
        self.json(self.request(Method::GET, &path).query(query))
            .await
    }

    pub async fn monitor_deliveries(&self, id: Uuid) -> ClientResult<Vec<Delivery>> {
        self.get(&format!("/api/v1/monitors/{id}/deliveries")).await
    }

    /// A new webhook signing secret; the old one stops signing at once.
    pub async fn rotate_monitor_secret(&self, id: Uuid) -> ClientResult<WebhookSecret> {
        let path = format!("/api/v1/monitors/{id}/secret");
        self.json(self.request(Method::POST, &path)).await
    }

    /// Sends a `test` event to the monitor's webhooks; returns the deliveries queued.
    pub async fn test_monitor(&self, id: Uuid) -> ClientResult<Vec<Delivery>> {
        let path = format!("/api/v1/monitors/{id}/test");
        self.json(self.request(Method::POST, &path)).await
    }
}

/// The events of one check's stream, in order.
pub struct CheckEvents {
    resp: reqwest::Response,
    base: String,
    decoder: sse::Decoder,
    queue: VecDeque<CheckEvent>,
}

impl CheckEvents {
    /// The stream's `Content-Type`.
    pub fn content_type(&self) -> Option<&str> {
        self.resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> ClientResult<Option<CheckEvent>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(Some(event));
            }
            let status = self.resp.status();
            let chunk = self
                .resp
                .chunk()
                .await
                .map_err(|source| ClientError::Transport {
                    base: self.base.clone(),
                    source,
                })?;
            let Some(chunk) = chunk else {
                return Ok(None);
            };
            for raw in self.decoder.push(&chunk) {
                let event = CheckEvent::from_sse(&raw.name, &raw.data).map_err(|e| {
                    ClientError::Unexpected {
                        status,
                        reason: e.to_string(),
                        text: raw.data.clone(),
                    }
                })?;
                self.queue.extend(event);
            }
        }
    }

    /// Reads to `finished`; returns the results in the order they came.
    pub async fn results(mut self) -> ClientResult<Vec<CheckResultView>> {
        let mut results = Vec::new();
        while let Some(event) = self.next().await? {
            match event {
                CheckEvent::Result(r) => results.push(*r),
                CheckEvent::Finished(_) => return Ok(results),
            }
        }
        Err(ClientError::Unexpected {
            status: self.resp.status(),
            reason: "the stream ended before `finished`".into(),
            text: String::new(),
        })
    }
}
