//! The error body every non-2xx answer carries, and the list of its stable codes. Clients (the
//! CLI, tests, generated ones) match on [`ErrorCode`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every stable error code the API answers with (`error.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 422: a field parsed but its value is not acceptable (`details.field` names it).
    InvalidField,
    /// 400/422: the body does not have the expected shape (`details.field` where known).
    InvalidBody,
    /// 400: the body is not JSON.
    InvalidJson,
    /// 400: a query parameter or path segment could not be read.
    InvalidQuery,
    /// 422: text the database cannot hold (a NUL character).
    InvalidText,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 413: the body is larger than `http.max_body_bytes`.
    PayloadTooLarge,
    /// 401: no valid access token or API key.
    Unauthenticated,
    /// 401: wrong username or password (the same for an unknown user).
    InvalidCredentials,
    /// 401: no refresh cookie.
    MissingRefreshToken,
    /// 401: the refresh token is unknown, expired or revoked.
    InvalidRefreshToken,
    /// 401: an already-rotated refresh token was presented; the session is revoked.
    RefreshTokenReused,
    /// 401: the agent token is unknown or revoked.
    InvalidAgentToken,
    /// 403: not allowed for this user (e.g. administrators only).
    Forbidden,
    /// 403: API keys are created from a signed-in session, not with another key.
    ApiKeyCannotMint,
    /// 403: this needs a signed-in session; an API key may not do it (user, password, agent
    /// and key management).
    SessionRequired,
    /// 403: the API key lacks the scope this needs (`details.scope` names it).
    InsufficientScope,
    /// 409: a monitor would take the user past their probe budget (`details` has the numbers).
    OverBudget,
    /// 404: no such resource (or not yours to see).
    NotFound,
    /// 409: the username is taken (in any letter case).
    UsernameTaken,
    /// 409: the agent name is taken.
    NameTaken,
    /// 409: a status page already has this slug.
    SlugTaken,
    /// 409: the last administrator cannot be deleted or demoted.
    LastAdmin,
    /// 409: none of the chosen agents is online.
    NoAgentsOnline,
    /// 409: the user holds `monitors.max_per_user` monitors already.
    TooManyMonitors,
    /// 422: the agent selection matches no agent (no online agent in those places).
    NoMatchingAgents,
    /// 422: more than one way of choosing agents at once (`agents`, `locations`,
    /// `same_agents_as`).
    InvalidSelection,
    /// 422: the target is in a range the target policy refuses.
    ForbiddenTarget,
    /// 422: the target name does not resolve.
    NotResolvable,
    /// 429: too many attempts (`Retry-After` says when to try again).
    RateLimited,
    /// 429: the user holds the maximum of open live streams.
    TooManyStreams,
    /// 503: the server is at a capacity limit of its own (`Retry-After: 1`).
    Busy,
    /// 503: the agents or the server are past their capacity: checks wait in queues longer
    /// than `checks.max_queueing_ms`, so a new one would not be answered in time. Nothing was
    /// accepted; `Retry-After` says when to try again. `details.scope` says whose queues
    /// (`server`: the server's own pipeline; `agents`: most of the chosen agents) and
    /// `details.queued_ms` how long checks wait in them.
    Overloaded,
    /// 503: a dependency (database, Redis, broker) is down (`details.dependency`).
    DependencyUnavailable,
    /// 503: no broker node accepts the check's messages (no session, or a cluster without a
    /// majority); nothing was accepted (`details.dependency` is `broker`).
    BrokerUnavailable,
    /// 500: a fault of the server's; never for anything a client can send.
    InternalError,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidText => "invalid_text",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::MissingRefreshToken => "missing_refresh_token",
            ErrorCode::InvalidRefreshToken => "invalid_refresh_token",
            ErrorCode::RefreshTokenReused => "refresh_token_reused",
            ErrorCode::InvalidAgentToken => "invalid_agent_token",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::ApiKeyCannotMint => "api_key_cannot_mint",
            ErrorCode::SessionRequired => "session_required",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::OverBudget => "over_budget",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::SlugTaken => "slug_taken",
            ErrorCode::LastAdmin => "last_admin",
            ErrorCode::NoAgentsOnline => "no_agents_online",
            ErrorCode::TooManyMonitors => "too_many_monitors",
            ErrorCode::NoMatchingAgents => "no_matching_agents",
            ErrorCode::InvalidSelection => "invalid_selection",
            ErrorCode::ForbiddenTarget => "forbidden_target",
            ErrorCode::NotResolvable => "not_resolvable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyStreams => "too_many_streams",
            ErrorCode::Busy => "busy",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::DependencyUnavailable => "dependency_unavailable",
            ErrorCode::BrokerUnavailable => "broker_unavailable",
            ErrorCode::InternalError => "internal_error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorObject {
    /// Stable, machine-readable code.
    pub code: ErrorCode,
    /// Explanation for humans.
    pub message: String,
    /// Extra facts, e.g. `{"field": "password"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_on_the_wire_are_their_snake_case_names() {
        for code in [
            ErrorCode::InvalidField,
            ErrorCode::ApiKeyCannotMint,
            ErrorCode::SessionRequired,
            ErrorCode::InsufficientScope,
            ErrorCode::OverBudget,
            ErrorCode::DependencyUnavailable,
            ErrorCode::BrokerUnavailable,
            ErrorCode::TooManyStreams,
            ErrorCode::NoMatchingAgents,
            ErrorCode::InvalidSelection,
            ErrorCode::TooManyMonitors,
            ErrorCode::InternalError,
        ] {
            let wire = serde_json::to_value(code).unwrap();
            assert_eq!(wire, code.as_str());
            assert_eq!(serde_json::from_value::<ErrorCode>(wire).unwrap(), code);
        }
    }
}
