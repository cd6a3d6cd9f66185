//! The rig most probe tests run on: a server that may target loopback and the test
//! namespaces, with one real agent process online.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::netns::NETNS_RANGE;

/// A server that may target loopback and the test namespaces, with one online agent.
pub struct Rig {
    pub app: TestApp,
    pub token: String,
    pub agent_id: String,
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
    let agent_id = agent["id"].as_str().unwrap().to_string();
    let agent = app.spawn_agent_with(&token, agent_args);
    eventually("agent online", Duration::from_secs(20), || async {
        (app.agent(&agent_id).await["status"] == "online").then_some(())
    })
    .await;
    let token = app.admin_token().await;
    Rig {
        app,
        token,
        agent_id,
        _agent: Some(agent),
    }
}

pub async fn rig() -> Rig {
    rig_with(&[], |_| {}).await
}

impl Rig {
    pub async fn create(&self, body: Value) -> reqwest::Response {
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
    pub async fn run(&self, body: Value) -> (Value, Vec<Value>) {
        let resp = self.create(body).await;
        assert_eq!(
            resp.status(),
            StatusCode::ACCEPTED,
            "{}",
            resp.text().await.unwrap()
        );
        let location = resp
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let created: Value = resp.json().await.unwrap();
        assert_eq!(
            location,
            format!("/api/v1/checks/{}", created["id"].as_str().unwrap())
        );
        let streamed = self.events(created["id"].as_str().unwrap()).await;
        let check: Value = self
            .app
            .client
            .get(self.app.url(&location))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(check["status"], "finished");
        (check, streamed)
    }

    /// Reads the SSE stream of a check until `finished`; returns the `result` payloads.
    pub async fn events(&self, id: &str) -> Vec<Value> {
        let mut resp = self
            .app
            .client
            .get(self.app.url(&format!("/api/v1/checks/{id}/events")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
        let mut decoder = netcheck::client::sse::Decoder::default();
        let mut results = Vec::new();
        let read = async {
            while let Some(chunk) = resp.chunk().await.unwrap() {
                for event in decoder.push(&chunk) {
                    match event.name.as_str() {
                        "result" => results.push(serde_json::from_str(&event.data).unwrap()),
                        "finished" => return,
                        _ => {}
                    }
                }
            }
            panic!("event stream ended before `finished`");
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .expect("check finished");
        results
    }
}
