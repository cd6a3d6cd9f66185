//! Agents, as administrators manage them.

use reqwest::{Method, StatusCode};
use uuid::Uuid;

use super::{Api, ClientResult};
use netcheck_proto::api::agents::{Agent, AgentToken, CreateAgent, CreatedAgent, UpdateAgent};

impl Api {
    pub async fn agents(&self) -> ClientResult<Vec<Agent>> {
        self.get("/api/v1/agents").await
    }

    pub async fn agent(&self, id: Uuid) -> ClientResult<Agent> {
        self.get(&format!("/api/v1/agents/{id}")).await
    }

    pub async fn create_agent(&self, body: &CreateAgent) -> ClientResult<CreatedAgent> {
        self.post("/api/v1/agents", body, StatusCode::CREATED).await
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
        self.json(self.request(Method::POST, &path), StatusCode::OK)
            .await
    }
}
