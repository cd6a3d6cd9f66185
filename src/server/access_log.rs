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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use actix_web::{test, web, App};
    use tracing_actix_web::TracingLogger;

    use super::*;

    /// What the test's subscriber printed.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(str::to_owned).collect()
        }
    }

    #[actix_web::test]
    async fn refusals_past_capacity_are_not_logged_and_other_failures_are() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(TracingLogger::<AccessLog>::new())
                .route(
                    "/shed",
                    web::get().to(|| async {
                        Err::<String, _>(ApiError::overloaded(
                            crate::server::error::OverloadScope::Server,
                            "the server is",
                            std::time::Duration::from_millis(900),
                        ))
                    }),
                )
                .route(
                    "/down",
                    web::get().to(|| async { Err::<String, _>(ApiError::unavailable("database")) }),
                )
                .route(
                    "/missing",
                    web::get().to(|| async { Err::<String, _>(ApiError::not_found("check")) }),
                ),
        )
        .await;

        for _ in 0..50 {
            let resp =
                test::call_service(&app, test::TestRequest::get().uri("/shed").to_request()).await;
            assert_eq!(resp.status(), 503);
        }
        let lines = captured.lines();
        assert!(
            lines.is_empty(),
            "{} of 50 refusals were logged, the first: {:?}",
            lines.len(),
            lines.first()
        );

        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/down").to_request()).await;
        assert_eq!(resp.status(), 503);
        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/missing").to_request()).await;
        assert_eq!(resp.status(), 404);
        let lines = captured.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("ERROR") && lines[0].contains(REQUEST_FAILED),
            "{lines:?}"
        );
        assert!(
            lines[0].contains("dependency_unavailable") || lines[0].contains("database"),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("WARN") && lines[1].contains(REQUEST_FAILED),
            "{lines:?}"
        );
    }
}
