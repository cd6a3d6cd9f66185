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
use netcheck_proto::api::ErrorCode;
use netcheck_proto::check::SpecError;
use netcheck_proto::fields::{failing_field, without_position};

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
                    ErrorCode::UnsupportedMediaType,
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
            ApiError::bad_request(ErrorCode::InvalidJson, format!("malformed JSON: {inner}"))
        } else if let Some(e) = SpecError::from_serde_message(&inner.to_string()) {
            // A check's `type` or `options` (flattened into its object, so serde's path ends
            // at the object; the error names the rest).
            let field = match path.trim_end_matches(['.', '?']) {
                "" => e.field,
                parent => format!("{parent}.{}", e.field),
            };
            ApiError::invalid_field(&field, format!("{field}: {}", e.message))
        } else {
            let inner = inner.to_string();
            let message = without_position(&inner);
            let (field, message) = match failing_field(&path, &inner) {
                // The body as a whole (`details.field` is `.`, as serde_path_to_error says).
                f if f.is_empty() => (".".to_string(), message.to_string()),
                f => {
                    let message = format!("{f}: {message}");
                    (f, message)
                }
            };
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidBody,
                message,
            )
            .with_details(serde_json::json!({ "field": field }))
        }
    })
}

fn payload_error(err: actix_web::Error) -> ApiError {
    match err.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => too_large(),
        _ if err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        _ => ApiError::bad_request(
            ErrorCode::InvalidBody,
            format!("could not read request body: {err}"),
        ),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        "request body is too large",
    )
}

/// Error handler for `web::Path`: a path segment that does not parse names an unknown resource.
pub fn path_error(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
    // The parser's own text ("UUID parsing failed: invalid character…") is for programmers.
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "Nothing is here: the address holds an id that is not valid.",
    )
    .into()
}

/// Error handler for `web::Query`.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(
        ErrorCode::InvalidQuery,
        format!("invalid query string: {err}"),
    )
    .into()
}

/// The client's address: the socket peer, unless the peer is one of `http.trusted_proxies`;
/// then the rightmost `X-Forwarded-For` entry that is not a trusted proxy (entries left of it
/// are written by the client and prove nothing). `Forwarded` is not read.
pub fn client_ip(req: &HttpRequest, http: &crate::config::HttpSettings) -> Option<String> {
    client_addr(req, http).map(|ip| ip.to_string())
}

/// [`client_ip`] as an address.
pub fn client_addr(
    req: &HttpRequest,
    http: &crate::config::HttpSettings,
) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    Some(client_address(peer, forwarded, &http.trusted_proxies))
}

/// [`client_ip`] over plain values: `headers` are the `X-Forwarded-For` header lines in order.
pub fn client_address<'a>(
    peer: std::net::IpAddr,
    headers: impl Iterator<Item = &'a str>,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers.flat_map(|h| h.split(',')).map(str::trim).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // An entry that is not an address (or carries a port) ends the chain we can follow.
        let Ok(ip) = hop.parse::<std::net::IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// 422 naming the first field a request body carried that is not part of it (for bodies that
/// flatten shared parts, where serde's `deny_unknown_fields` cannot be used).
pub fn refuse_unknown(
    unknown: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<(), ApiError> {
    match unknown.keys().next() {
        Some(field) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidBody,
            format!("{field}: unknown field `{field}`"),
        )
        .with_details(serde_json::json!({ "field": field }))),
        None => Ok(()),
    }
}

/// A `%text%` pattern for ILIKE in which `%`, `_` and `\` match themselves.
pub fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The server's address as people reach it: `server.public_url`, or what the request used.
pub fn public_base(settings: &crate::config::Settings, req: &HttpRequest) -> String {
    match &settings.server.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

#[cfg(test)]
mod client_address_tests {
    use super::client_address;

    #[test]
    fn only_trusted_proxies_are_believed_and_the_rightmost_untrusted_entry_wins() {
        let trusted = [
            "10.0.0.0/8".parse().unwrap(),
            "192.0.2.1/32".parse().unwrap(),
        ];
        let ip = |s: &str| s.parse().unwrap();
        let at = |peer: &str, xff: &[&str]| client_address(ip(peer), xff.iter().copied(), &trusted);
        // Not from a trusted proxy: the header is ignored.
        assert_eq!(at("203.0.113.9", &["1.2.3.4"]), ip("203.0.113.9"));
        // From a proxy: the client's own spoofed entries on the left are skipped.
        assert_eq!(
            at("10.1.1.1", &["6.6.6.6, 198.51.100.7"]),
            ip("198.51.100.7")
        );
        // Two proxies in a row, over two header lines.
        assert_eq!(
            at("10.1.1.1", &["6.6.6.6, 198.51.100.7", "192.0.2.1"]),
            ip("198.51.100.7")
        );
        // Nothing but proxies: the leftmost proxy is the best we know.
        assert_eq!(at("10.1.1.1", &["10.2.2.2"]), ip("10.2.2.2"));
        // No header: the proxy itself.
        assert_eq!(at("10.1.1.1", &[]), ip("10.1.1.1"));
        // Garbage stops the walk at what was proven.
        assert_eq!(at("10.1.1.1", &["1.1.1.1, junk"]), ip("10.1.1.1"));
    }
}
