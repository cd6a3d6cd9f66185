//! `GET /api/v1/checks/{id}/events`: the live stream of a check.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{CheckResultView, CheckStatus};

/// The `finished` event of a check's live stream: every result is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckFinished {
    pub id: Uuid,
    pub status: CheckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// One event of `GET /api/v1/checks/{id}/events`. On the wire the variant is the SSE `event:`
/// name and its content the `data:` line; between server instances (Redis) it is this JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum CheckEvent {
    /// An agent's result, once, as soon as it is stored.
    Result(Box<CheckResultView>),
    /// The last event of the stream.
    Finished(CheckFinished),
}

impl CheckEvent {
    /// The SSE frame: `event: <name>` and one `data:` line of JSON.
    pub fn sse_frame(&self) -> serde_json::Result<String> {
        let (name, data) = match self {
            CheckEvent::Result(r) => ("result", serde_json::to_string(r)?),
            CheckEvent::Finished(f) => ("finished", serde_json::to_string(f)?),
        };
        Ok(format!("event: {name}\ndata: {data}\n\n"))
    }

    /// An SSE event read back; `None` for a name this version does not know (such as a
    /// keep-alive comment's empty name).
    pub fn from_sse(name: &str, data: &str) -> serde_json::Result<Option<Self>> {
        Ok(match name {
            "result" => Some(CheckEvent::Result(serde_json::from_str(data)?)),
            "finished" => Some(CheckEvent::Finished(serde_json::from_str(data)?)),
            _ => None,
        })
    }
}
