//! Checks: creation, results, the live event stream, history, share links and lookups.

use reqwest::{Method, StatusCode};
use uuid::Uuid;

use super::{Api, CheckEvents, ClientResult};
use netcheck_proto::api::checks::{
    CheckCreated, CheckPage, CheckResultView, CheckView, CreateCheck, HistoryQuery,
};
use netcheck_proto::api::lookup::Lookup;
use netcheck_proto::api::share::{ShareLink, ShareRequest, SharedCheck};

impl Api {
    pub async fn create_check(&self, body: &CreateCheck) -> ClientResult<CheckCreated> {
        self.post("/api/v1/checks", body, StatusCode::ACCEPTED)
            .await
    }

    pub async fn check(&self, id: Uuid) -> ClientResult<CheckView> {
        self.get(&format!("/api/v1/checks/{id}")).await
    }

    /// The live event stream of a check: stored results first, then each new one, then
    /// `finished`.
    pub async fn check_events(&self, id: Uuid) -> ClientResult<CheckEvents> {
        let path = format!("/api/v1/checks/{id}/events");
        let resp = self
            .send(self.request(Method::GET, &path), StatusCode::OK)
            .await?;
        Ok(CheckEvents::new(resp, &self.base))
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
        self.json(
            self.request(Method::GET, "/api/v1/checks").query(query),
            StatusCode::OK,
        )
        .await
    }

    pub async fn share(&self, id: Uuid, body: &ShareRequest) -> ClientResult<ShareLink> {
        let path = format!("/api/v1/checks/{id}/share");
        self.post(&path, body, StatusCode::CREATED).await
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
        self.json(self.request_to(Method::GET, url), StatusCode::OK)
            .await
    }
}
