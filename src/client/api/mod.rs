//! The typed HTTP client of the API: one method per operation, taking and returning the types
//! of `netcheck_proto::api`. `netcheck check`, the integration tests and the benches use it. The
//! operations are grouped as the API's tags are: `auth` (health, sign-in, keys, users),
//! `agents`, `checks` (with the live event stream) and `monitors`.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

mod agent;
mod agents;
mod auth;
mod checks;
mod error;
mod events;
mod monitors;
mod status;
pub use error::{ClientError, ClientResult};
pub use events::CheckEvents;

use netcheck_proto::api::ErrorBody;

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

    /// Sends `req`; the answer when its status is `expected` (each operation has one, so a
    /// server that drifts from the contract is noticed, not papered over).
    async fn send(
        &self,
        req: RequestBuilder,
        expected: StatusCode,
    ) -> ClientResult<reqwest::Response> {
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::transport(&self.base, e))?;
        let status = resp.status();
        if status == expected {
            return Ok(resp);
        }
        let json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let text = resp.text().await.unwrap_or_default();
        let unexpected = |reason: String, text| ClientError::Unexpected {
            status,
            reason,
            text,
        };
        if status.is_success() {
            return Err(unexpected(format!("expected {expected}"), text));
        }
        // Every refusal is the JSON error body; anything else (a proxy's HTML page) is not.
        if !json {
            return Err(unexpected("the error answer is not JSON".into(), text));
        }
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status,
                body: Box::new(body),
            },
            Err(e) => unexpected(e.to_string(), text),
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        expected: StatusCode,
    ) -> ClientResult<T> {
        let resp = self.send(req, expected).await?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::transport(&self.base, e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected {
            status,
            reason: e.to_string(),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        self.json(self.request(Method::GET, path), StatusCode::OK)
            .await
    }

    /// A POST answered with `expected` (201 for what it creates, 202 for a check).
    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        expected: StatusCode,
    ) -> ClientResult<T> {
        self.json(self.request(Method::POST, path).json(body), expected)
            .await
    }

    async fn patch<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> ClientResult<T> {
        self.json(self.request(Method::PATCH, path).json(body), StatusCode::OK)
            .await
    }

    /// A request answered with 204 No Content.
    async fn no_content(&self, req: RequestBuilder) -> ClientResult<()> {
        self.send(req, StatusCode::NO_CONTENT).await.map(drop)
    }
}
