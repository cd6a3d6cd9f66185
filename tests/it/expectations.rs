//! Expectations (`options.expect`): each one passing and failing through the real agent, the
//! default HTTP judgement (2xx/3xx ok, 4xx/5xx `http_status`), and 422s that name the field.

use netcheck_proto::api::checks::CheckResultView;
use netcheck_proto::check::CheckType;
use netcheck_proto::result::ResultStatus;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::rig::{error_code_of, only, rig};
use crate::targets;

/// `(name, ok)` of each assertion of a result (every result type carries `assertions`).
fn verdicts(r: &CheckResultView) -> Vec<(String, bool)> {
    let data = r.data.as_ref().unwrap_or_else(|| panic!("no data: {r:?}"));
    data.assertions()
        .iter()
        .map(|a| {
            assert!(!a.detail.is_empty(), "{a:?}");
            (a.name.clone(), a.ok)
        })
        .collect()
}

/// A result's status and error code, side by side.
fn outcome(r: &CheckResultView) -> (ResultStatus, Option<&str>) {
    (r.status, error_code_of(r))
}

fn v(list: &[(&str, bool)]) -> Vec<(String, bool)> {
    list.iter().map(|(n, ok)| (n.to_string(), *ok)).collect()
}

#[tokio::test]
async fn http_expectations_judge_status_body_headers_and_time() {
    let rig = rig().await;
    let addr = targets::http_server().await;
    let get = |path: &str, options: Value| {
        crate::rig::check(CheckType::Http, format!("http://{addr}{path}"), options)
    };
    let run = |path: &str, expect: Value| rig.run(get(path, json!({ "expect": expect })));

    // Default judgement: 3xx ok, 4xx failed, and no assertions without expectations.
    let (c, _) = rig.run(get("/redirect", json!({}))).await;
    assert_eq!(only(&c).status, ResultStatus::Ok);
    assert_eq!(verdicts(only(&c)), v(&[]));
    let (c, _) = rig.run(get("/status/403", json!({}))).await;
    assert_eq!(
        outcome(only(&c)),
        (ResultStatus::Failed, Some("http_status"))
    );

    // An accepted 403 (a geo-block page, say) with the right body and header is ok.
    let (check, _) = run(
        "/status/403",
        json!({"status": ["2xx", "403"], "body_contains": "hell", "body_regex": "^h.l+o$",
               "header": {"X-Netcheck-Test": "^yes$"}, "max_total_ms": 5000}),
    )
    .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    assert_eq!(
        verdicts(r),
        v(&[
            ("status", true),
            ("body_contains", true),
            ("body_regex", true),
            ("header.x-netcheck-test", true),
            ("max_total_ms", true)
        ])
    );

    // Each failing: the first failing one names the error.
    let (check, _) = run(
        "/status/200",
        json!({"status": ["301"], "body_contains": "bye", "body_regex": "^x", "header": {"x-netcheck-test": "^no$", "server": "."},
               "cert_min_days": 1, "max_total_ms": 0.001}),
    )
    .await;
    let r = only(&check);
    assert_eq!(
        outcome(r),
        (ResultStatus::Failed, Some("expectation_failed"))
    );
    assert!(
        r.error
            .as_ref()
            .unwrap()
            .message
            .starts_with("status: status 200 (expected 301)"),
        "{r:?}"
    );
    assert_eq!(
        verdicts(r),
        v(&[
            ("status", false),
            ("body_contains", false),
            ("body_regex", false),
            ("header.server", false),
            ("header.x-netcheck-test", false),
            ("cert_min_days", false),
            ("max_total_ms", false)
        ])
    );

    // The certificate's remaining days, on https.
    let dir = tempfile::tempdir().unwrap();
    let (port, _server) = targets::https_server(dir.path());
    eventually(
        "https server up",
        std::time::Duration::from_secs(10),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
    for (min, ok) in [(20, true), (60, false)] {
        let body = crate::rig::check(
            CheckType::Http,
            format!("https://127.0.0.1:{port}/"),
            json!({"verify_tls": false, "expect": {"cert_min_days": min}}),
        );
        let (c, _) = rig.run(body).await;
        let r = only(&c);
        assert_eq!(verdicts(r), v(&[("cert_min_days", ok)]), "{r:?}");
        let want = if ok {
            ResultStatus::Ok
        } else {
            ResultStatus::Failed
        };
        assert_eq!(r.status, want);
    }
}

#[tokio::test]
async fn ping_tcp_and_dns_expectations() {
    let rig = rig().await;
    let ping = |options: Value| crate::rig::check(CheckType::Ping, "127.0.0.1", options);
    let (check, _) = rig
        .run(ping(json!({"count": 2, "interval_ms": 100,
                          "expect": {"max_loss_pct": 0, "max_avg_rtt_ms": 500}})))
        .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    assert_eq!(
        verdicts(r),
        v(&[("max_loss_pct", true), ("max_avg_rtt_ms", true)])
    );
    let (check, _) = rig
        .run(ping(
            json!({"count": 1, "expect": {"max_avg_rtt_ms": 0.0001}}),
        ))
        .await;
    assert_eq!(
        outcome(only(&check)),
        (ResultStatus::Failed, Some("expectation_failed"))
    );

    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    for (max, ok) in [(1000.0, true), (0.0001, false)] {
        let body = crate::rig::check(
            CheckType::Tcp,
            "127.0.0.1",
            json!({"port": port, "expect": {"max_connect_ms": max}}),
        );
        let (check, _) = rig.run(body).await;
        let r = only(&check);
        assert_eq!(verdicts(r), v(&[("max_connect_ms", ok)]), "{r:?}");
    }

    let dns = targets::dns_server().await;
    let query = |name: &str, expect: Value| {
        let options = json!({"resolver": dns.to_string(), "expect": expect});
        rig.run(crate::rig::check(CheckType::Dns, name, options))
    };
    let (check, _) = query(
        "example.test",
        json!({"rcode": "noerror", "answer_contains": "192.0.2.11", "min_answers": 2}),
    )
    .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    assert_eq!(
        verdicts(r),
        v(&[
            ("rcode", true),
            ("answer_contains", true),
            ("min_answers", true)
        ])
    );
    let (check, _) = query(
        "example.test",
        json!({"answer_contains": "198.51.100.1", "min_answers": 3}),
    )
    .await;
    assert_eq!(
        verdicts(only(&check)),
        v(&[("answer_contains", false), ("min_answers", false)])
    );
    // Expecting NXDOMAIN turns a missing name into a pass.
    let (check, _) = query("missing.test", json!({"rcode": "NXDOMAIN"})).await;
    let r = only(&check);
    assert_eq!(verdicts(r), v(&[("rcode", true)]), "{r:?}");
}

#[tokio::test]
async fn bad_expectations_get_422_naming_the_field() {
    let rig = rig().await;
    for (check_type, target, expect, field) in [
        (
            "http",
            "http://127.0.0.1/",
            json!({"body_regex": "(unclosed"}),
            "options.expect.body_regex",
        ),
        (
            "http",
            "http://127.0.0.1/",
            json!({"body_regex": "(?=lookahead)"}),
            "options.expect.body_regex",
        ),
        (
            "http",
            "http://127.0.0.1/",
            json!({"header": {"x-a": "["}}),
            "options.expect.header.x-a",
        ),
        (
            "http",
            "http://127.0.0.1/",
            json!({"header": {"bad header": "."}}),
            "options.expect.header.bad header",
        ),
        (
            "http",
            "http://127.0.0.1/",
            json!({"status": ["2xx", "6xx"]}),
            "options.expect.status[1]",
        ),
        (
            "http",
            "http://127.0.0.1/",
            json!({"status": []}),
            "options.expect.status",
        ),
        (
            "http",
            "http://127.0.0.1/",
            json!({"cert_min_days": -1}),
            "options.expect.cert_min_days",
        ),
        (
            "http",
            "http://127.0.0.1/",
            json!({"body_contain": "typo"}),
            "options.expect.body_contain",
        ),
        (
            "ping",
            "127.0.0.1",
            json!({"max_loss_pct": 101}),
            "options.expect.max_loss_pct",
        ),
        (
            "ping",
            "127.0.0.1",
            json!({"max_connect_ms": 1}),
            "options.expect.max_connect_ms",
        ),
        (
            "tcp",
            "127.0.0.1",
            json!({"max_connect_ms": -1}),
            "options.expect.max_connect_ms",
        ),
        (
            "dns",
            "example.test",
            json!({"rcode": "MAYBE"}),
            "options.expect.rcode",
        ),
        (
            "dns",
            "example.test",
            json!({"answer_contains": ""}),
            "options.expect.answer_contains",
        ),
    ] {
        let mut options = json!({"expect": expect});
        if check_type == "tcp" {
            options["port"] = json!(80);
        }
        let resp = rig
            .create_raw(json!({"type": check_type, "target": target, "options": options}))
            .await;
        let (code, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(code == "invalid_field" || code == "invalid_body", "{body}");
        assert_eq!(body["error"]["details"]["field"], field, "{expect}: {body}");
    }
}
