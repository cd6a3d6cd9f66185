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
    /// No answer (connection refused, reset, TLS…). The message names the cause (reqwest's
    /// own says only "error sending request").
    #[error("cannot reach {base}: {}", causes(source))]
    Transport {
        base: String,
        #[source]
        source: reqwest::Error,
    },
}

/// An error and its causes, outermost first: "error sending request for url (…): client
/// error (Connect): tcp connect error: Connection refused (os error 111)" (reqwest's own text
/// stops at the first, which hides e.g. why a certificate was refused).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_transport_error_names_its_cause() {
        // A port nothing listens on: the OS refuses the connection.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let err = reqwest::get(&base).await.unwrap_err();
        let text = ClientError::transport(&base, err).to_string();
        assert!(
            text.starts_with(&format!("cannot reach {base}: ")),
            "{text}"
        );
        assert!(text.contains("Connection refused"), "{text}");
    }
}
