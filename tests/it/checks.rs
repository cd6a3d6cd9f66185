//! Checks end to end with the real agent binary against real targets: loopback servers and
//! network namespaces with lossy, blackholed and slow links.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::netns::NetNs;
use crate::rig::{rig, rig_with};
use crate::targets;

fn only(check: &Value) -> &Value {
    let results = check["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{check}");
    &results[0]
}

#[tokio::test]
async fn tcp_open_closed_and_blackholed_ports() {
    let rig = rig().await;
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let (check, streamed) = rig
        .run(json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": open_port}}))
        .await;
    let r = only(&check);
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["connected"], true);
    assert_eq!(r["port"], open_port);
    assert_eq!(r["resolved_address"], "127.0.0.1");
    assert!(r["connect_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(r["agent"]["id"], rig.agent_id.as_str());
    assert_eq!(streamed.len(), 1, "one live result per agent");
    assert_eq!(streamed[0]["connected"], true);

    let (check, _) = rig
        .run(json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": closed_port}}))
        .await;
    let r = only(&check);
    assert_eq!(r["status"], "failed");
    assert_eq!(r["connected"], false);
    assert_eq!(r["error"]["code"], "refused", "{r}");

    let ns = NetNs::new();
    ns.nft("table inet t {\n chain filter_in {\n  type filter hook input priority 0;\n  tcp dport 9 drop\n }\n}\n");
    let (check, _) = rig
        .run(json!({"type": "tcp", "target": ns.addr, "options": {"port": 9, "timeout_ms": 500}}))
        .await;
    let r = only(&check);
    assert_eq!(r["status"], "failed");
    assert_eq!(r["error"]["code"], "timeout", "{r}");
}

#[tokio::test]
async fn http_status_headers_redirects_and_tls_certificate() {
    let rig = rig().await;
    let addr = targets::http_server().await;

    let (check, _) = rig.run(json!({"type": "http", "target": format!("http://{addr}/status/418"), "options": {"headers": {"x-probe": "1"}}})).await;
    let r = only(&check);
    assert_eq!(r["status"], "failed", "a 4xx answer fails by default: {r}");
    assert_eq!(r["error"]["code"], "http_status");
    assert_eq!(r["status_code"], 418);
    assert_eq!(r["http_version"], "HTTP/1.1");
    assert_eq!(r["headers"]["x-netcheck-test"], "yes");
    assert_eq!(r["body_bytes"], 5);
    let t = &r["timings_ms"];
    assert!(t["connect"].as_f64().unwrap() > 0.0 && t["first_byte"].as_f64().unwrap() > 0.0);
    assert!(t["total"].as_f64().unwrap() >= t["first_byte"].as_f64().unwrap());
    assert!(r["tls"].is_null());

    let (check, _) = rig
        .run(json!({"type": "http", "target": format!("http://{addr}/status/503")}))
        .await;
    let r = only(&check);
    assert_eq!(r["status"], "failed");
    assert_eq!(r["status_code"], 503);
    assert_eq!(r["error"]["code"], "http_status");

    let (check, _) = rig
        .run(json!({"type": "http", "target": format!("http://{addr}/redirect")}))
        .await;
    let r = only(&check);
    assert_eq!(
        r["status_code"], 302,
        "redirects are not followed by default"
    );
    assert_eq!(r["redirect_to"], format!("http://{addr}/final"));
    let (check, _) = rig.run(json!({"type": "http", "target": format!("http://{addr}/redirect"), "options": {"follow_redirects": true, "method": "GET"}})).await;
    let r = only(&check);
    assert_eq!(r["status_code"], 200);
    assert_eq!(r["body_bytes"], 6);

    let dir = tempfile::tempdir().unwrap();
    let (port, _server) = targets::https_server(dir.path());
    eventually("https server up", Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let (check, _) = rig.run(json!({"type": "http", "target": format!("https://127.0.0.1:{port}/"), "options": {"verify_tls": false}})).await;
    let r = only(&check);
    assert_eq!(r["status_code"], 200, "{r}");
    let tls = &r["tls"];
    assert!(
        tls["subject"].as_str().unwrap().contains("netcheck-test"),
        "{tls}"
    );
    assert!(
        tls["issuer"].as_str().unwrap().contains("netcheck-test"),
        "self-signed"
    );
    let days = tls["days_left"].as_i64().unwrap();
    assert!((28..=30).contains(&days), "{days}");
    assert!(tls["version"].as_str().unwrap().starts_with("TLSv1."));
    assert!(r["timings_ms"]["tls"].as_f64().unwrap() > 0.0);

    let (check, _) = rig
        .run(json!({"type": "http", "target": format!("https://127.0.0.1:{port}/")}))
        .await;
    let r = only(&check);
    assert_eq!(r["status"], "failed");
    assert_eq!(
        r["error"]["code"], "tls",
        "an untrusted certificate fails when verifying: {r}"
    );
}

#[tokio::test]
async fn dns_answers_rcodes_and_protocols() {
    let rig = rig().await;
    let dns = targets::dns_server().await;
    for protocol in ["udp", "tcp"] {
        let (check, _) = rig.run(json!({"type": "dns", "target": "example.test", "options": {"resolver": dns.to_string(), "protocol": protocol}})).await;
        let r = only(&check);
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["rcode"], "NOERROR");
        assert_eq!(r["resolver"], dns.to_string());
        let mut values: Vec<&str> = r["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["value"].as_str().unwrap())
            .collect();
        values.sort();
        assert_eq!(values, ["192.0.2.10", "192.0.2.11"], "{protocol}");
        assert_eq!(r["answers"][0]["ttl"], 300);
        assert_eq!(r["answers"][0]["type"], "A");
        assert_eq!(r["answers"][0]["name"], "example.test.");
    }
    let (check, _) = rig.run(json!({"type": "dns", "target": "example.test", "options": {"resolver": dns.to_string(), "record_type": "MX"}})).await;
    let r = only(&check);
    assert_eq!(r["answers"][0]["type"], "MX");
    assert_eq!(r["answers"][0]["value"], "10 mail.example.test.");
    let (check, _) = rig
        .run(
            json!({"type": "dns", "target": "nope.test", "options": {"resolver": dns.to_string()}}),
        )
        .await;
    let r = only(&check);
    assert_eq!(r["status"], "failed");
    assert_eq!(r["rcode"], "NXDOMAIN");
}

#[tokio::test]
async fn ping_loopback_reports_every_reply() {
    let rig = rig().await;
    let (check, _) = rig.run(json!({"type": "ping", "target": "127.0.0.1", "options": {"count": 4, "interval_ms": 100}})).await;
    let r = only(&check);
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["sent"], 4);
    assert_eq!(r["received"], 4);
    assert_eq!(r["loss_pct"], 0.0);
    let replies = r["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 4);
    assert!(replies.iter().all(|p| p["ttl"] == 64));
    let rtt = &r["rtt_ms"];
    assert!(rtt["min"].as_f64().unwrap() <= rtt["avg"].as_f64().unwrap());
    assert!(rtt["avg"].as_f64().unwrap() <= rtt["max"].as_f64().unwrap());
}

#[tokio::test]
async fn ping_through_a_lossy_link_reports_plausible_loss() {
    let rig = rig().await;
    let ns = NetNs::new();
    ns.nft("table inet t {\n chain filter_in {\n  type filter hook input priority 0;\n  icmp type echo-request numgen random mod 100 < 30 drop\n }\n}\n");
    let mut sent = 0;
    let mut received = 0;
    for _ in 0..2 {
        let (check, _) = rig.run(json!({"type": "ping", "target": ns.addr, "options": {"count": 16, "interval_ms": 100, "timeout_ms": 1000}})).await;
        let r = only(&check);
        sent += r["sent"].as_u64().unwrap();
        received += r["received"].as_u64().unwrap();
        let loss = r["loss_pct"].as_f64().unwrap();
        assert_eq!(
            loss,
            100.0 * (16 - r["received"].as_u64().unwrap()) as f64 / 16.0
        );
    }
    let loss = 100.0 * (sent - received) as f64 / sent as f64;
    // 32 probes behind a 30 % drop rule: loss of 0 % or above 75 % is astronomically unlikely.
    assert!(
        loss > 0.0 && loss < 75.0,
        "loss {loss}% behind a 30% drop rule"
    );
}

#[tokio::test]
async fn ping_to_a_slow_host_measures_its_delay() {
    let rig = rig().await;
    let ns = NetNs::new();
    ns.sysctl("net.ipv4.icmp_echo_ignore_all=1");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/slow_icmp.py");
    let mut child = ns
        .command("python3")
        .args([script, "50"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let _responder = Process(child);
    let (check, _) = rig
        .run(
            json!({"type": "ping", "target": ns.addr, "options": {"count": 3, "interval_ms": 200}}),
        )
        .await;
    let r = only(&check);
    assert_eq!(r["received"], 3, "{r}");
    let min = r["rtt_ms"]["min"].as_f64().unwrap();
    assert!((50.0..500.0).contains(&min), "RTT to a 50 ms host: {min}");
}

#[tokio::test]
async fn the_api_refuses_reserved_targets() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("ssrf").await;
    let _agent = app.spawn_agent(&token);
    let id = agent["id"].as_str().unwrap().to_string();
    eventually("agent online", Duration::from_secs(20), || async {
        (app.agent(&id).await["status"] == "online").then_some(())
    })
    .await;
    let admin = app.admin_token().await;
    for (t, target) in [
        ("ping", "127.0.0.1"),
        ("ping", "2130706433"),
        ("ping", "0x7f.1"),
        ("ping", "localhost"),
        ("ping", "10.0.0.1"),
        ("ping", "169.254.169.254"),
        ("ping", "100.64.1.1"),
        ("ping", "224.0.0.1"),
        ("ping", "::1"),
        ("ping", "::ffff:127.0.0.1"),
        ("ping", "64:ff9b::a00:1"),
        ("ping", "fe80::1"),
        ("ping", "fd00::1"),
        ("ping", "192.0.2.1"),
        ("ping", "0.0.0.0"),
        ("tcp", "192.168.1.1"),
        ("http", "http://127.0.0.1/"),
        ("http", "http://[::1]:8080/"),
        ("http", "http://0177.0.0.1/"),
        ("http", "http://localhost:8080/"),
        ("http", "https://10.1.2.3/"),
    ] {
        let mut body = json!({"type": t, "target": target});
        if t == "tcp" {
            body["options"] = json!({"port": 80});
        }
        let resp = app
            .client
            .post(app.url("/api/v1/checks"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (code, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(code, "forbidden_target", "{t} {target}: {body}");
        assert_eq!(body["error"]["details"]["field"], "target");
    }
    let resp = app
        .client
        .post(app.url("/api/v1/checks"))
        .bearer_auth(&admin)
        .json(
            &json!({"type": "dns", "target": "example.com", "options": {"resolver": "10.0.0.53"}}),
        )
        .send()
        .await
        .unwrap();
    let (_, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["error"]["details"]["field"], "options.resolver");
}

#[tokio::test]
async fn the_agent_refuses_a_name_that_resolves_to_a_private_address() {
    let dns = targets::dns_server().await;
    // Loopback is allowed (for the resolver), 10.0.0.0/8 is not.
    let rig = rig_with(&["--resolver", &dns.to_string()], |_| {}).await;
    let (check, _) = rig
        .run(json!({"type": "tcp", "target": "rebind.test", "options": {"port": 80}}))
        .await;
    let r = only(&check);
    assert_eq!(r["status"], "failed");
    assert_eq!(r["error"]["code"], "target_refused", "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("10.1.2.3"));
    let (check, _) = rig
        .run(json!({"type": "http", "target": "http://rebind.test/"}))
        .await;
    assert_eq!(only(&check)["error"]["code"], "target_refused");
}

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
            json!({"type": "http", "target": "http://127.0.0.1/", "options": {"method": "DELETE"}}),
            "options.method",
        ),
        (
            json!({"type": "dns", "target": "example.com", "options": {"record_type": "ANY"}}),
            "options.record_type",
        ),
        (json!({"type": "ping", "target": "exa mple.com"}), "target"),
        (
            json!({"type": "ping", "target": "127.0.0.1", "agents": ["00000000-0000-0000-0000-000000000000"]}),
            "agents",
        ),
        (
            json!({"type": "ping", "target": "127.0.0.1", "agents": []}),
            "agents",
        ),
    ] {
        let resp = rig.create(body.clone()).await;
        let (_, err) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        let got = err["error"]["details"]["field"].as_str().unwrap_or("");
        assert!(
            got.starts_with(field),
            "{body}: expected field {field}, got {err}"
        );
    }
    let resp = rig
        .create(json!({"type": "smtp", "target": "127.0.0.1"}))
        .await;
    let (_, err) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(err["error"]["details"]["field"], "type");
}

#[tokio::test]
async fn history_visibility_and_per_user_rate_limit() {
    let rig = rig_with(&[], |s| s.checks.rate_limit_per_minute = 3).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (check, _) = rig
            .run(json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": port}}))
            .await;
        ids.push(check["id"].as_str().unwrap().to_string());
    }
    let resp = rig
        .create(json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": port}}))
        .await;
    assert!(resp.headers().get("retry-after").is_some());
    let (code, _) = error_code(resp, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(code, "rate_limited");

    let page: Value = rig
        .app
        .client
        .get(rig.app.url("/api/v1/checks?limit=2"))
        .bearer_auth(&rig.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got: Vec<&str> = page["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()], "newest first");
    assert_eq!(page["checks"][0]["agents"], 1);
    assert_eq!(page["checks"][0]["ok"], 0);
    let next = page["next_before"].as_str().unwrap();
    let page: Value = rig
        .app
        .client
        .get(
            rig.app
                .url(&format!("/api/v1/checks?limit=2&before={next}")),
        )
        .bearer_auth(&rig.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["checks"][0]["id"], ids[0].as_str());
    assert!(page["next_before"].is_null());

    // Another user sees neither the list nor the check.
    let other = rig.app.user_token("mallory").await;
    let page: Value = rig
        .app
        .client
        .get(rig.app.url("/api/v1/checks"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["checks"].as_array().unwrap().is_empty());
    let resp = rig
        .app
        .client
        .get(rig.app.url(&format!("/api/v1/checks/{}", ids[0])))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = rig
        .app
        .client
        .get(rig.app.url(&format!("/api/v1/checks/{}/events", ids[0])))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ping_over_ipv6_and_an_unreachable_host() {
    let rig = rig().await;
    let (check, _) = rig.run(json!({"type": "ping", "target": "::1", "options": {"count": 2, "interval_ms": 100, "ip_version": 6}})).await;
    let r = only(&check);
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["resolved_address"], "::1");
    assert_eq!(r["received"], 2);

    // The namespace answers echo requests and connection attempts with ICMP host-unreachable.
    let ns = NetNs::new();
    ns.nft("table inet t {\n chain filter_in {\n  type filter hook input priority 0;\n  icmp type echo-request reject with icmp type host-unreachable\n  tcp dport 7 reject with icmp type host-unreachable\n }\n}\n");
    let (check, _) = rig
        .run(json!({"type": "ping", "target": ns.addr, "options": {"count": 2, "interval_ms": 100, "timeout_ms": 5000}}))
        .await;
    let r = only(&check);
    assert_eq!(r["status"], "failed");
    assert_eq!(r["received"], 0);
    // Read from the ICMP error, not a timeout: the check ends long before its 5 s timeout.
    assert_eq!(r["error"]["code"], "unreachable", "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("destination host unreachable"),
        "{message}"
    );
    assert!(r["duration_ms"].as_f64().unwrap() < 2000.0, "{r}");
    let (check, _) = rig
        .run(json!({"type": "tcp", "target": ns.addr, "options": {"port": 7, "timeout_ms": 2000}}))
        .await;
    let r = only(&check);
    assert_eq!(r["status"], "failed");
    assert_eq!(r["error"]["code"], "unreachable", "{r}");
}

#[tokio::test]
async fn metrics_move_when_checks_run() {
    let rig = rig().await;
    let scrape = || async {
        let resp = reqwest::get(rig.app.url("/metrics")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    };
    let value = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
    };
    let before = scrape().await;
    assert_eq!(value(&before, "netcheck_checks_created_total"), 0.0);
    assert_eq!(value(&before, "netcheck_agents{status=\"online\"}"), 1.0);
    assert_eq!(value(&before, "netcheck_broker_connected"), 1.0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for _ in 0..2 {
        rig.run(json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": port}}))
            .await;
    }
    let after = scrape().await;
    assert_eq!(value(&after, "netcheck_checks_created_total"), 2.0);
    assert_eq!(value(&after, "netcheck_checks_finished_total"), 2.0);
    assert_eq!(value(&after, "netcheck_results_stored_total"), 2.0);
    assert_eq!(value(&after, "netcheck_result_latency_seconds_count"), 2.0);
}

#[tokio::test]
async fn agent_metrics_count_probes_by_type_and_outcome() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let rig = rig_with(&["--metrics-listen", &listen], |_| {}).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    rig.run(json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": closed}}))
        .await;
    rig.run(json!({"type": "ping", "target": "127.0.0.1", "options": {"count": 1}}))
        .await;
    let text = reqwest::get(format!("http://{listen}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("netcheck_agent_probes_total{type=\"tcp\",outcome=\"failed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("netcheck_agent_probes_total{type=\"ping\",outcome=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("netcheck_agent_probe_duration_seconds_count{type=\"ping\"} 1"),
        "{text}"
    );
    assert!(text.contains("netcheck_agent_in_flight 0"), "{text}");
    assert!(text.contains("netcheck_agent_reconnects_total 0"), "{text}");
}
