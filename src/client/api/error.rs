//! The client's errors.

use reqwest::StatusCode;

use netcheck_proto::api::{ErrorBody, ErrorCode};

/// What a call can end in besides its answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with its error body.
    #[error("{status}: {}", body.error.message)]
    Api {
        status: StatusCode,
        body: Box<ErrorBody>,
    },
    /// The server answered something that is not the documented body.
    #[error("{status}: unexpected answer ({reason}): {text}")]
    Unexpected {
        status: StatusCode,
        reason: String,
        text: String,
    },
    /// No answer (connection refused, reset, TLS…).
    #[error("cannot reach {base}: {source}")]
    Transport {
        base: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } | ClientError::Unexpected { status, .. } => {
                Some(*status)
            }
            ClientError::Transport { .. } => None,
        }
    }

    /// The stable error code, when the server answered with its error body.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { body, .. } => Some(body.error.code),
            _ => None,
        }
    }

    /// The request field a 422 names (`details.field`), if any.
    pub fn field(&self) -> Option<&str> {
        self.detail("field")
    }

    /// A text fact of the error body's `details` (`field`, `scope`, `dependency`…), if any.
    pub fn detail(&self, key: &str) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => body.error.details.as_ref()?.get(key)?.as_str(),
            _ => None,
        }
    }
}

impl ClientError {
    /// No answer from the server at `base`.
    pub(super) fn transport(base: &str, source: reqwest::Error) -> Self {
        ClientError::Transport {
            base: base.to_string(),
            source,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;
