//! Monitors and what they leave behind.

use reqwest::{Method, StatusCode};
use uuid::Uuid;

use super::{Api, ClientResult};
use netcheck_proto::api::monitors::{
    AgentSeries, CreateMonitor, CreatedMonitor, Delivery, Incident, Monitor, MonitorPage,
    MonitorQuery, SeriesQuery, UpdateMonitor, WebhookSecret,
};

impl Api {
    pub async fn create_monitor(&self, body: &CreateMonitor) -> ClientResult<CreatedMonitor> {
        self.post("/api/v1/monitors", body, StatusCode::CREATED)
            .await
    }

    pub async fn monitors(&self, query: &MonitorQuery) -> ClientResult<MonitorPage> {
        self.json(
            self.request(Method::GET, "/api/v1/monitors").query(query),
            StatusCode::OK,
        )
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
        self.json(
            self.request(Method::GET, &path).query(query),
            StatusCode::OK,
        )
        .await
    }

    pub async fn monitor_deliveries(&self, id: Uuid) -> ClientResult<Vec<Delivery>> {
        self.get(&format!("/api/v1/monitors/{id}/deliveries")).await
    }

    /// A new webhook signing secret; the old one stops signing at once.
    pub async fn rotate_monitor_secret(&self, id: Uuid) -> ClientResult<WebhookSecret> {
        let path = format!("/api/v1/monitors/{id}/secret");
        self.json(self.request(Method::POST, &path), StatusCode::OK)
            .await
    }

    /// Sends a `test` event to the monitor's webhooks; returns the deliveries queued.
    pub async fn test_monitor(&self, id: Uuid) -> ClientResult<Vec<Delivery>> {
        let path = format!("/api/v1/monitors/{id}/test");
        self.json(self.request(Method::POST, &path), StatusCode::ACCEPTED)
            .await
    }
}
