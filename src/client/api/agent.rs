//! The agent protocol: what an agent says to the server, with its agent token as the bearer
//! credential (`Api::with_token`). The agent itself and the benches use these.

use reqwest::{Method, StatusCode};

use super::{Api, ClientResult};
use netcheck_proto::agent::{Heartbeat, RegisterRequest, RegisterResponse};

impl Api {
    /// `POST /api/v1/agent/register`: the agent's own broker user, queue and settings.
    pub async fn register_agent(&self, body: &RegisterRequest) -> ClientResult<RegisterResponse> {
        self.post("/api/v1/agent/register", body, StatusCode::OK)
            .await
    }

    /// `POST` a heartbeat to the address the registration gave (`heartbeat.url`).
    pub async fn heartbeat(&self, url: &str, beat: &Heartbeat) -> ClientResult<()> {
        let req = self.request_to(Method::POST, url).json(beat);
        self.send(req, StatusCode::NO_CONTENT).await.map(drop)
    }
}
