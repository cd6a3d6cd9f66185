//! The rig most probe tests run on: a server that may target loopback and the test
//! namespaces, with one real agent process online.

use std::time::Duration;

use netcheck::client::api::Api;
use netcheck_proto::api::agents::AgentStatus;
use netcheck_proto::api::checks::{CheckResultView, CheckStatus, CheckView, CreateCheck};
use netcheck_proto::check::CheckType;
use netcheck_proto::result::ResultKind;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;
use crate::netns::NETNS_RANGE;

/// A server that may target loopback and the test namespaces, with one online agent.
pub struct Rig {
    pub app: TestApp,
    /// The admin's access token.
    pub token: String,
    /// The typed client, signed in as the admin.
    pub api: Api,
    pub agent_id: Uuid,
    pub _agent: Option<Process>,
}

pub async fn rig_with(
    agent_args: &[&str],
    customize: impl FnOnce(&mut netcheck::config::Settings),
) -> Rig {
    let app = spawn_app_with(|s| {
        s.checks.allowed_networks = vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
            NETNS_RANGE.parse().unwrap(),
        ];
        s.checks.grace_ms = 1500;
        customize(s);
    })
    .await;
    let (agent, token) = app.create_agent("probe-1").await;
    let process = app.spawn_agent_with(&token, agent_args);
    eventually("agent online", Duration::from_secs(20), || async {
        (app.agent(agent.id).await.status == AgentStatus::Online).then_some(())
    })
    .await;
    let token = app.admin_token().await;
    Rig {
        api: app.api_as(&token),
        app,
        token,
        agent_id: agent.id,
        _agent: Some(process),
    }
}

/// A check of `target` with these options (the type's option object), run by every agent.
pub fn check(check_type: CheckType, target: impl Into<String>, options: Value) -> CreateCheck {
    CreateCheck::from_options(check_type, target, options).unwrap()
}

/// The one result of a check run by one agent.
pub fn only(check: &CheckView) -> &CheckResultView {
    assert_eq!(check.results.len(), 1, "{check:?}");
    &check.results[0]
}

/// A result's type-specific fields, read as that type's result (`TcpResult`, `PingResult`…).
pub fn data<T: ResultKind + Clone>(r: &CheckResultView) -> T {
    r.data_as::<T>()
        .cloned()
        .unwrap_or_else(|| panic!("no {}: {r:?}", std::any::type_name::<T>()))
}

/// The code of a result's error, if it has one.
pub fn error_code_of(r: &CheckResultView) -> Option<&str> {
    r.error.as_ref().map(|e| e.code.as_str())
}

pub async fn rig() -> Rig {
    rig_with(&[], |_| {}).await
}

impl Rig {
    /// `POST /api/v1/checks` with a body as it is, for tests of the wire itself.
    pub async fn create_raw(&self, body: Value) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/api/v1/checks"))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a check, follows its event stream to `finished`, and returns the stored check
    /// together with the results the stream delivered.
    pub async fn run(&self, body: CreateCheck) -> (CheckView, Vec<CheckResultView>) {
        let created = self.api.create_check(&body).await.unwrap();
        let streamed = self.events(created.id).await;
        let check = self.api.check(created.id).await.unwrap();
        assert_eq!(check.status, CheckStatus::Finished);
        (check, streamed)
    }

    /// Reads the SSE stream of a check until `finished`; returns the `result` payloads.
    pub async fn events(&self, id: Uuid) -> Vec<CheckResultView> {
        let events = self.api.check_events(id).await.unwrap();
        assert_eq!(events.content_type(), Some("text/event-stream"));
        tokio::time::timeout(Duration::from_secs(60), events.results())
            .await
            .expect("check finished")
            .unwrap()
    }
}
