//! Sign-in, the signed-in user, users and personal API keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    User,
}

/// The CLI's `--role admin|user`.
impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(format!("{other:?} is neither admin nor user")),
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub password: String,
    #[serde(default = "default_role")]
    pub role: Role,
}

fn default_role() -> Role {
    Role::User
}

#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// New password; ends every session of the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The present password: required to change one's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: User,
}

/// What an API key may do. Whatever its scopes, a key never manages users, passwords, agents
/// or keys: those need a signed-in session.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ApiScope {
    /// Read checks, results, history, agents, monitors (every `GET`).
    Read,
    /// Create checks, share and unshare them.
    Checks,
    /// Create, change and delete monitors.
    Monitors,
    /// Scrape `/probe` (Prometheus).
    Probe,
    /// An administrator's other powers (given only when asked for).
    Admin,
}

impl ApiScope {
    pub const ALL: [ApiScope; 5] = [
        ApiScope::Read,
        ApiScope::Checks,
        ApiScope::Monitors,
        ApiScope::Probe,
        ApiScope::Admin,
    ];

    /// What a key gets when its creator names no scopes.
    pub const DEFAULT: [ApiScope; 3] = [ApiScope::Read, ApiScope::Checks, ApiScope::Monitors];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Read => "read",
            ApiScope::Checks => "checks",
            ApiScope::Monitors => "monitors",
            ApiScope::Probe => "probe",
            ApiScope::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The public part, to recognise the key (`nck_<key_id>_…`).
    pub key_id: String,
    /// What the key may do.
    pub scopes: Vec<ApiScope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The key itself: shown only here.
    pub key: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    /// Lifetime in days, 1-365 (default 90).
    #[schema(minimum = 1, maximum = 365)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<i64>,
    /// Or an exact expiry, at most 365 days ahead (instead of `expires_in_days`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// What the key may do (default `read`, `checks`, `monitors`; `admin` only when named,
    /// and only an administrator's key may have it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<ApiScope>>,
}
