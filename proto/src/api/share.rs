//! Share links: the request, the link, and a check as the link shows it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::CheckStatus;
use crate::check::CheckSpec;
use crate::result::{ProbeError, ResultData, ResultStatus};

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// Days until the link stops working (1..365, default 30).
    #[schema(minimum = 1, maximum = 365)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ShareLink {
    /// The page to give people: `<server>/s/<token>`.
    pub url: String,
    /// 256 random bits, URL-safe; shown only here.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// An agent in a shared result: enough to read the result, nothing to find the host.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedAgent {
    pub name: String,
    pub region: Option<String>,
    pub location: Option<SharedPlace>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedPlace {
    pub country_code: Option<String>,
    pub city: Option<String>,
}

/// One agent's result in a shared check; the check type's result fields are merged in, as in
/// `CheckResultView` (without the agent's own resolver address, private hop addresses and
/// cookies).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedResult {
    pub agent: SharedAgent,
    pub status: ResultStatus,
    pub error: Option<ProbeError>,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<f64>,
    #[serde(flatten)]
    #[schema(schema_with = super::checks::maybe_result_data)]
    pub data: Option<ResultData>,
}

/// A check as a share link shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedCheck {
    pub id: Uuid,
    /// `type` and its `options`; request header values are hidden (they may hold credentials).
    #[serde(flatten)]
    pub spec: CheckSpec,
    pub target: String,
    pub status: CheckStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub results: Vec<SharedResult>,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}
