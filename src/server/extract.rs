//! Request extractors whose failures speak the API's error format: JSON bodies that name the
//! offending field, and path/query errors as 4xx JSON.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{PathError, PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON request body. Unlike `actix_web::web::Json`, a failure says which field is wrong
/// (`details.field`) and distinguishes malformed JSON (400) from wrong content (422).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "request body must be JSON (Content-Type: application/json)",
                ));
            }
            let bytes = bytes.await.map_err(payload_error)?;
            decode(&bytes).map(Json)
        })
    }
}

/// Decodes a JSON document, naming the path of the first offending field.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request("invalid_json", format!("malformed JSON: {inner}"))
        } else {
            let field = missing_field(&inner.to_string()).unwrap_or(path);
            let message = strip_position(&inner.to_string());
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                if field == "." || field.is_empty() {
                    message
                } else {
                    format!("{field}: {message}")
                },
            )
            .with_details(serde_json::json!({ "field": field }))
        }
    })
}

/// serde reports a missing field at the parent's path; take the field's own name.
fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn payload_error(err: actix_web::Error) -> ApiError {
    match err.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => too_large(),
        _ if err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        _ => ApiError::bad_request(
            "invalid_body",
            format!("could not read request body: {err}"),
        ),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "request body is too large",
    )
}

/// Error handler for `web::Path`: a path segment that does not parse names an unknown resource.
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such resource: {err}"),
    )
    .into()
}

/// Error handler for `web::Query`.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_query", format!("invalid query string: {err}")).into()
}

/// The client's address: the peer, or `X-Forwarded-For` when `http.trust_forwarded_for` is on.
pub fn client_ip(req: &HttpRequest, http: &crate::config::HttpSettings) -> Option<String> {
    if http.trust_forwarded_for {
        req.connection_info()
            .realip_remote_addr()
            .map(str::to_string)
    } else {
        req.peer_addr().map(|a| a.ip().to_string())
    }
}
