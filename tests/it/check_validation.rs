//! Check options the API refuses, each with a 422 naming the field.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::rig::rig;

#[tokio::test]
async fn invalid_options_are_422_naming_the_field() {
    let rig = rig().await;
    for (body, field) in [
        (
            json!({"type": "ping", "target": "127.0.0.1", "options": {"count": 17}}),
            "options.count",
        ),
        (
            json!({"type": "ping", "target": "127.0.0.1", "options": {"cuont": 1}}),
            "options",
        ),
        (
            json!({"type": "tcp", "target": "127.0.0.1"}),
            "options.port",
        ),
        (
            json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": "http"}}),
            "options.port",
        ),
        (
            json!({"type": "http", "target": "ftp://example.com/"}),
            "target",
        ),
        (json!({"type": "http", "target": "not a url"}), "target"),
        (
            json!({"type": "http", "target": "http://127.0.0.1/", "options": {"method": "TRACE"}}),
            "options.method",
        ),
        (
            json!({"type": "http", "target": "http://127.0.0.1/", "options": {"version": "http3"}}),
            "options.version",
        ),
        (
            json!({"type": "http", "target": "http://127.0.0.1/", "options": {"body": "x".repeat(16_385)}}),
            "options.body",
        ),
        (
            json!({"type": "http", "target": "http://127.0.0.1/", "options": {"expect": {"versions": ["HTTP/9"]}}}),
            "options.expect.versions",
        ),
        (
            json!({"type": "http", "target": "http://127.0.0.1/", "options": {"expect": {"body_not_regex": "("}}}),
            "options.expect.body_not_regex",
        ),
        (
            json!({"type": "dns", "target": "example.com", "options": {"record_type": "ANY"}}),
            "options.record_type",
        ),
        (json!({"type": "ping", "target": "exa mple.com"}), "target"),
        (
            json!({"type": "dns", "target": "10.0.0.1", "options": {"record_type": "PTR"}}),
            "target",
        ),
        (
            json!({"type": "dns", "target": "1.0.0.10.in-addr.arpa", "options": {"record_type": "PTR"}}),
            "target",
        ),
        (
            json!({"type": "mtr", "target": "127.0.0.1", "options": {"interval_ms": 50}}),
            "options.interval_ms",
        ),
        (
            json!({"type": "mtr", "target": "127.0.0.1", "options": {"interval_ms": 5001}}),
            "options.interval_ms",
        ),
        (
            json!({"type": "ping", "target": "127.0.0.1", "agents": ["00000000-0000-0000-0000-000000000000"]}),
            "agents",
        ),
        (
            json!({"type": "ping", "target": "127.0.0.1", "agents": []}),
            "agents",
        ),
    ] {
        let resp = rig.create_raw(body.clone()).await;
        let (_, err) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        let got = err["error"]["details"]["field"].as_str().unwrap_or("");
        assert!(
            got.starts_with(field),
            "{body}: expected field {field}, got {err}"
        );
    }
    let resp = rig
        .create_raw(json!({"type": "smtp", "target": "127.0.0.1"}))
        .await;
    let (_, err) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(err["error"]["details"]["field"], "type");
}
