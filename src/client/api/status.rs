//! Status pages, their public view and badges, and maintenance windows.

use reqwest::{Method, StatusCode};
use uuid::Uuid;

use super::{Api, ClientResult};
use netcheck_proto::api::monitors::{
    CreateMaintenance, CreateStatusPage, Maintenance, PublicPage, StatusPage, UpdateStatusPage,
};

impl Api {
    pub async fn create_status_page(&self, body: &CreateStatusPage) -> ClientResult<StatusPage> {
        self.post("/api/v1/status-pages", body, StatusCode::CREATED)
            .await
    }

    pub async fn status_pages(&self) -> ClientResult<Vec<StatusPage>> {
        self.get("/api/v1/status-pages").await
    }

    pub async fn status_page(&self, id: Uuid) -> ClientResult<StatusPage> {
        self.get(&format!("/api/v1/status-pages/{id}")).await
    }

    pub async fn update_status_page(
        &self,
        id: Uuid,
        body: &UpdateStatusPage,
    ) -> ClientResult<StatusPage> {
        self.patch(&format!("/api/v1/status-pages/{id}"), body)
            .await
    }

    pub async fn delete_status_page(&self, id: Uuid) -> ClientResult<()> {
        let path = format!("/api/v1/status-pages/{id}");
        self.no_content(self.request(Method::DELETE, &path)).await
    }

    /// The public view of a page (no login needed).
    pub async fn public_status(&self, slug: &str) -> ClientResult<PublicPage> {
        self.get(&format!("/api/v1/status/{slug}")).await
    }

    pub async fn create_maintenance(&self, body: &CreateMaintenance) -> ClientResult<Maintenance> {
        self.post("/api/v1/maintenance", body, StatusCode::CREATED)
            .await
    }

    pub async fn maintenance_windows(&self) -> ClientResult<Vec<Maintenance>> {
        self.get("/api/v1/maintenance").await
    }

    pub async fn delete_maintenance(&self, id: Uuid) -> ClientResult<()> {
        let path = format!("/api/v1/maintenance/{id}");
        self.no_content(self.request(Method::DELETE, &path)).await
    }
}
