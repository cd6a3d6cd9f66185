//! The one error type every handler returns: a status, a stable snake_case code and a message,
//! rendered as `{"error": {"code", "message", "details"?}}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::Value;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    details: Option<Value>,
    retry_after_secs: Option<u64>,
}

use netcheck_proto::api::{ErrorBody, ErrorCode, ErrorObject};

/// Whose queues a 503 `overloaded` was judged by (`details.scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverloadScope {
    /// The server's own pipeline (result collection, commits) is behind.
    Server,
    /// Most of the chosen agents are behind.
    Agents,
}

impl OverloadScope {
    pub fn as_str(self) -> &'static str {
        match self {
            OverloadScope::Server => "server",
            OverloadScope::Agents => "agents",
        }
    }
}

/// Seconds until a backlog of `behind` has drained, for `Retry-After` (at least one).
pub fn retry_after_for(behind: std::time::Duration) -> u64 {
    behind.as_secs_f64().ceil().max(1.0) as u64
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
        }
    }

    /// The field a 4xx names (`details.field`), if any.
    pub fn field(&self) -> Option<String> {
        self.details
            .as_ref()?
            .get("field")?
            .as_str()
            .map(str::to_string)
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422 for a value that parsed but is not acceptable; names the field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidField,
            message,
        )
        .with_details(serde_json::json!({ "field": field }))
    }

    pub fn unauthorized(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!("too many attempts; retry in {retry_after_secs} s"),
        );
        err.retry_after_secs = Some(retry_after_secs.max(1));
        err
    }

    /// Sets the `Retry-After` header (seconds).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    /// The server is at a capacity limit of its own (503, retry in a second).
    pub fn busy(message: &str) -> Self {
        let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy, message);
        err.retry_after_secs = Some(1);
        err
    }

    /// Past capacity: checks wait `behind` in queues already (503, retry once that drained).
    /// `details.scope` says whose queues (`server` or `agents`), `details.queued_ms` how long.
    pub fn overloaded(scope: OverloadScope, what: &str, behind: std::time::Duration) -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Overloaded,
            format!(
                "{what} past capacity: checks are waiting {} ms in queues, so a new one would not be answered in time; nothing was accepted",
                behind.as_millis()
            ),
        )
        .with_details(serde_json::json!({
            "scope": scope.as_str(),
            "queued_ms": behind.as_millis() as u64,
        }));
        err.retry_after_secs = Some(retry_after_for(behind));
        err
    }

    pub fn unavailable(dependency: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::DependencyUnavailable,
            format!("{dependency} is unavailable; try again shortly"),
        )
        .with_details(serde_json::json!({ "dependency": dependency }))
    }

    /// The broker does not take the check's messages: 503 `broker_unavailable`.
    pub fn broker_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::BrokerUnavailable,
            "no message broker node accepts checks right now; try again shortly",
        )
        .with_details(serde_json::json!({ "dependency": "broker" }))
        .retry_after(1)
    }

    /// A fault of ours. Logged with its cause; the client only sees a generic message.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "internal error",
        )
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// 422 `forbidden_target`: `field` names something the target policy refuses.
    pub fn forbidden_target(field: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ForbiddenTarget,
            message,
        )
        .with_details(serde_json::json!({ "field": field }))
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The seconds of `Retry-After`, when the error asks to come back later.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        resp.json(ErrorBody {
            error: ErrorObject {
                code: self.code,
                message: self.message.clone(),
                details: self.details.clone(),
            },
        })
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        use sea_orm::DbErr;
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                tracing::warn!(error = %err, "database unavailable");
                crate::server::metrics::dependency_error("database");
                Self::unavailable("database")
            }
            _ if is_connection_failure(&err) => {
                tracing::warn!(error = %err, "database unavailable");
                crate::server::metrics::dependency_error("database");
                Self::unavailable("database")
            }
            // PostgreSQL holds no NUL character in text or JSON; a value carrying one is the
            // client's error, wherever it slipped past validation.
            _ if is_nul_text(&err) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidText,
                "text values may not contain NUL (\\u0000) characters",
            ),
            _ => Self::internal(err),
        }
    }
}

/// The driver's error under a sea-orm error, when there is one.
fn sqlx_error(err: &sea_orm::DbErr) -> Option<&sea_orm::sqlx::Error> {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    }
}

/// The SQLSTATE PostgreSQL answered with, when it answered.
fn sqlstate(err: &sea_orm::DbErr) -> Option<String> {
    match sqlx_error(err)? {
        sea_orm::sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// PostgreSQL's refusals of a NUL character: in text (22021 character_not_in_repertoire)
/// or in JSON (22P05 untranslatable_character).
fn is_nul_text(err: &sea_orm::DbErr) -> bool {
    matches!(sqlstate(err).as_deref(), Some("22021" | "22P05"))
}

/// The database could not be reached or went away: the driver's I/O and pool errors, and
/// PostgreSQL's connection-exception (08), shutdown (57P01-57P03) and too-many-connections
/// (53300) answers.
fn is_connection_failure(err: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error;
    match sqlx_error(err) {
        Some(Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed) => true,
        Some(Error::Database(e)) => e.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

impl From<deadpool_redis::PoolError> for ApiError {
    fn from(err: deadpool_redis::PoolError) -> Self {
        tracing::warn!(error = %err, "redis unavailable");
        crate::server::metrics::dependency_error("redis");
        Self::unavailable("redis")
    }
}

impl From<deadpool_redis::redis::RedisError> for ApiError {
    fn from(err: deadpool_redis::redis::RedisError) -> Self {
        tracing::warn!(error = %err, "redis unavailable");
        crate::server::metrics::dependency_error("redis");
        Self::unavailable("redis")
    }
}

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
