//! The request span of every response, and the event logged for a failed one. As
//! tracing-actix-web's defaults (its `emit_event_on_error` feature is off because it cannot
//! leave anything out), except that refusals past capacity (503 `overloaded`) are neither
//! marked nor logged as errors: they are the server protecting itself, come by the thousand
//! exactly when the server has the least to spare, and are counted in
//! `netcheck_checks_overloaded_total` instead.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::Error;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

use super::error::ApiError;
use netcheck_proto::api::ErrorCode;

pub struct AccessLog;

impl RootSpanBuilder for AccessLog {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(request)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (error, status) = match outcome {
            Ok(r) => (r.response().error(), r.status()),
            Err(e) => (Some(e), e.as_response_error().status_code()),
        };
        let shed = error
            .and_then(|e| e.as_error::<ApiError>())
            .is_some_and(|e| e.code() == ErrorCode::Overloaded);
        if shed {
            span.record("http.status_code", status.as_u16());
            span.record("otel.status_code", "OK");
            return;
        }
        if let Some(e) = error.map(Error::as_response_error) {
            if status.is_client_error() {
                tracing::warn!("{REQUEST_FAILED}: {e:?}");
            } else {
                tracing::error!("{REQUEST_FAILED}: {e:?}");
            }
        }
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The words tracing-actix-web logs a failed request with, kept for those who search logs.
const REQUEST_FAILED: &str = "Error encountered while processing the incoming HTTP request";
