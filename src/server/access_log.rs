//! The request span of every response. As tracing-actix-web's default, except that refusals
//! past capacity (503 `overloaded`) are not logged as errors: they are the server protecting
//! itself, come by the thousand exactly when the server has the least to spare, and are
//! counted in `netcheck_checks_overloaded_total` instead.

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
        let shed = outcome.as_ref().ok().and_then(|r| {
            let e = r.response().error()?.as_error::<ApiError>()?;
            (e.code() == ErrorCode::Overloaded).then_some(r.status())
        });
        match shed {
            Some(status) => {
                span.record("http.status_code", status.as_u16());
                span.record("otel.status_code", "OK");
            }
            None => DefaultRootSpanBuilder::on_request_end(span, outcome),
        }
    }
}
