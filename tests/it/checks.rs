//! Checks end to end with the real agent binary against real targets: loopback servers and
//! network namespaces with lossy, blackholed and slow links.

use std::time::Duration;

use netcheck_proto::api::agents::AgentStatus;
use netcheck_proto::api::checks::{CheckCreated, CheckStatus, CreateCheck, HistoryQuery};
use netcheck_proto::check::CheckType;
use netcheck_proto::result::{DnsResult, HttpResult, PingResult, ResultStatus, TcpResult};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;
use crate::netns::NetNs;
use crate::rig::{check, data, error_code_of, only, rig, rig_with};
use crate::targets;

#[tokio::test]
async fn check_creation_answers_202_with_its_location() {
    let rig = rig().await;
    let resp = rig
        .create_raw(json!({"type": "ping", "target": "127.0.0.1", "options": {"count": 1}}))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let created: CheckCreated = resp.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/checks/{}", created.id));
    assert_eq!(created.status, CheckStatus::InProgress);
    assert_eq!(created.agents, 1);
    assert_eq!(rig.events(created.id).await.len(), 1);
}

#[tokio::test]
async fn tcp_open_closed_and_blackholed_ports() {
    let rig = rig().await;
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed_port = unused_port();

    let (check, streamed) = rig.run(tcp("127.0.0.1", json!({"port": open_port}))).await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    let tcp_result: TcpResult = data(r);
    assert!(tcp_result.connected);
    assert_eq!(tcp_result.port, open_port);
    assert_eq!(tcp_result.resolved_address.as_deref(), Some("127.0.0.1"));
    assert!(tcp_result.connect_ms.unwrap() > 0.0);
    assert_eq!(r.agent.id, rig.agent_id);
    assert_eq!(streamed.len(), 1, "one live result per agent");
    assert!(data::<TcpResult>(&streamed[0]).connected);

    let (check, _) = rig
        .run(tcp("127.0.0.1", json!({"port": closed_port})))
        .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Failed);
    assert!(!data::<TcpResult>(r).connected);
    assert_eq!(error_code_of(r), Some("refused"), "{r:?}");

    let ns = NetNs::new();
    ns.nft("table inet t {\n chain filter_in {\n  type filter hook input priority 0;\n  tcp dport 9 drop\n }\n}\n");
    let (check, _) = rig
        .run(tcp(&ns.addr, json!({"port": 9, "timeout_ms": 500})))
        .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Failed);
    assert_eq!(error_code_of(r), Some("timeout"), "{r:?}");
}

fn tcp(target: &str, options: serde_json::Value) -> CreateCheck {
    check(CheckType::Tcp, target, options)
}

fn http(target: String, options: serde_json::Value) -> CreateCheck {
    check(CheckType::Http, target, options)
}

#[tokio::test]
async fn http_status_headers_redirects_and_tls_certificate() {
    let rig = rig().await;
    let addr = targets::http_server().await;

    let (check, _) = rig
        .run(http(
            format!("http://{addr}/status/418"),
            json!({"headers": {"x-probe": "1"}}),
        ))
        .await;
    let r = only(&check);
    assert_eq!(
        r.status,
        ResultStatus::Failed,
        "a 4xx answer fails by default: {r:?}"
    );
    assert_eq!(error_code_of(r), Some("http_status"));
    let h: HttpResult = data(r);
    assert_eq!(h.status_code, Some(418));
    assert_eq!(h.http_version.as_deref(), Some("HTTP/1.1"));
    assert_eq!(h.headers["x-netcheck-test"], "yes");
    assert_eq!(h.body_bytes, Some(5));
    let t = &h.timings_ms;
    assert!(t.connect.unwrap() > 0.0 && t.first_byte.unwrap() > 0.0);
    assert!(t.total.unwrap() >= t.first_byte.unwrap());
    assert!(h.tls.is_none());

    let (check, _) = rig
        .run(http(format!("http://{addr}/status/503"), json!({})))
        .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Failed);
    assert_eq!(data::<HttpResult>(r).status_code, Some(503));
    assert_eq!(error_code_of(r), Some("http_status"));

    let (check, _) = rig
        .run(http(format!("http://{addr}/redirect"), json!({})))
        .await;
    let h: HttpResult = data(only(&check));
    assert_eq!(
        h.status_code,
        Some(302),
        "redirects are not followed by default"
    );
    assert_eq!(h.redirect_to, Some(format!("http://{addr}/final")));
    let (check, _) = rig
        .run(http(
            format!("http://{addr}/redirect"),
            json!({"follow_redirects": true, "method": "GET"}),
        ))
        .await;
    let h: HttpResult = data(only(&check));
    assert_eq!(h.status_code, Some(200));
    assert_eq!(h.body_bytes, Some(6));

    let dir = tempfile::tempdir().unwrap();
    let (port, _server) = targets::https_server(dir.path());
    eventually("https server up", Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let (check, _) = rig
        .run(http(
            format!("https://127.0.0.1:{port}/"),
            json!({"verify_tls": false}),
        ))
        .await;
    let h: HttpResult = data(only(&check));
    assert_eq!(h.status_code, Some(200), "{h:?}");
    let tls = h.tls.as_ref().unwrap();
    assert!(tls.subject.contains("netcheck-test"), "{tls:?}");
    assert!(tls.issuer.contains("netcheck-test"), "self-signed");
    assert!((28..=30).contains(&tls.days_left), "{}", tls.days_left);
    assert!(tls.version.starts_with("TLSv1."));
    assert!(h.timings_ms.tls.unwrap() > 0.0);

    let (check, _) = rig
        .run(http(format!("https://127.0.0.1:{port}/"), json!({})))
        .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Failed);
    assert_eq!(
        error_code_of(r),
        Some("tls"),
        "an untrusted certificate fails when verifying: {r:?}"
    );
}

#[tokio::test]
async fn dns_answers_rcodes_and_protocols() {
    let rig = rig().await;
    let dns = targets::dns_server().await;
    let query = |name: &str, options: serde_json::Value| check(CheckType::Dns, name, options);
    for protocol in ["udp", "tcp"] {
        let (check, _) = rig
            .run(query(
                "example.test",
                json!({"resolver": dns.to_string(), "protocol": protocol}),
            ))
            .await;
        let r = only(&check);
        assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
        let d: DnsResult = data(r);
        assert_eq!(d.rcode.as_deref(), Some("NOERROR"));
        assert_eq!(d.resolver, Some(dns.to_string()));
        let mut values: Vec<&str> = d.answers.iter().map(|a| a.value.as_str()).collect();
        values.sort();
        assert_eq!(values, ["192.0.2.10", "192.0.2.11"], "{protocol}");
        assert_eq!(d.answers[0].ttl, 300);
        assert_eq!(d.answers[0].record_type, "A");
        assert_eq!(d.answers[0].name, "example.test.");
    }
    let (check, _) = rig
        .run(query(
            "example.test",
            json!({"resolver": dns.to_string(), "record_type": "MX"}),
        ))
        .await;
    let d: DnsResult = data(only(&check));
    assert_eq!(d.answers[0].record_type, "MX");
    assert_eq!(d.answers[0].value, "10 mail.example.test.");
    let (check, _) = rig
        .run(query("nope.test", json!({"resolver": dns.to_string()})))
        .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Failed);
    assert_eq!(data::<DnsResult>(r).rcode.as_deref(), Some("NXDOMAIN"));
}

fn ping(target: &str, options: serde_json::Value) -> CreateCheck {
    check(CheckType::Ping, target, options)
}

#[tokio::test]
async fn ping_loopback_reports_every_reply() {
    let rig = rig().await;
    let (check, _) = rig
        .run(ping("127.0.0.1", json!({"count": 4, "interval_ms": 100})))
        .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    let p: PingResult = data(r);
    assert_eq!((p.sent, p.received, p.loss_pct), (4, 4, 0.0));
    assert_eq!(p.replies.len(), 4);
    assert!(p.replies.iter().all(|reply| reply.ttl == Some(64)));
    let rtt = p.rtt_ms.unwrap();
    assert!(rtt.min <= rtt.avg && rtt.avg <= rtt.max, "{rtt:?}");
}

#[tokio::test]
async fn ping_through_a_lossy_link_reports_plausible_loss() {
    let rig = rig().await;
    let ns = NetNs::new();
    ns.nft("table inet t {\n chain filter_in {\n  type filter hook input priority 0;\n  icmp type echo-request numgen random mod 100 < 30 drop\n }\n}\n");
    let mut sent = 0;
    let mut received = 0;
    for _ in 0..2 {
        let (check, _) = rig
            .run(ping(
                &ns.addr,
                json!({"count": 16, "interval_ms": 100, "timeout_ms": 1000}),
            ))
            .await;
        let p: PingResult = data(only(&check));
        sent += p.sent;
        received += p.received;
        assert_eq!(p.loss_pct, 100.0 * (16 - p.received) as f64 / 16.0);
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
        .run(ping(&ns.addr, json!({"count": 3, "interval_ms": 200})))
        .await;
    let p: PingResult = data(only(&check));
    assert_eq!(p.received, 3, "{p:?}");
    let min = p.rtt_ms.unwrap().min;
    assert!((50.0..500.0).contains(&min), "RTT to a 50 ms host: {min}");
}

#[tokio::test]
async fn the_api_refuses_reserved_targets() {
    let app = spawn_app().await;
    let (agent, token) = app.create_agent("ssrf").await;
    let _agent = app.spawn_agent(&token);
    eventually("agent online", Duration::from_secs(20), || async {
        (app.agent(agent.id).await.status == AgentStatus::Online).then_some(())
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
    let (check, _) = rig.run(tcp("rebind.test", json!({"port": 80}))).await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Failed);
    assert_eq!(error_code_of(r), Some("target_refused"), "{r:?}");
    assert!(r.error.as_ref().unwrap().message.contains("10.1.2.3"));
    let (check, _) = rig.run(http("http://rebind.test/".into(), json!({}))).await;
    assert_eq!(error_code_of(only(&check)), Some("target_refused"));
}

#[tokio::test]
async fn history_visibility_and_per_user_rate_limit() {
    let rig = rig_with(&[], |s| s.checks.rate_limit_per_minute = 3).await;
    let port = unused_port();
    let closed = tcp("127.0.0.1", json!({"port": port}));
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(rig.run(closed.clone()).await.0.id);
    }
    let resp = rig
        .create_raw(json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": port}}))
        .await;
    assert!(resp.headers().get("retry-after").is_some());
    let (code, _) = error_code(resp, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(code, "rate_limited");

    let page = rig
        .api
        .history(&HistoryQuery {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    let got: Vec<Uuid> = page.checks.iter().map(|c| c.id).collect();
    assert_eq!(got, [ids[2], ids[1]], "newest first");
    assert_eq!((page.checks[0].agents, page.checks[0].ok), (1, 0));
    let page = rig
        .api
        .history(&HistoryQuery {
            limit: Some(2),
            before: page.next_before,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.checks[0].id, ids[0]);
    assert_eq!(page.next_before, None);

    // Another user sees neither the list nor the check.
    let other = rig.app.api_as(&rig.app.user_token("mallory").await);
    let page = other.history(&HistoryQuery::default()).await.unwrap();
    assert!(page.checks.is_empty());
    refused(other.check(ids[0]).await, StatusCode::NOT_FOUND);
    refused(other.check_events(ids[0]).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ping_over_ipv6_and_an_unreachable_host() {
    let rig = rig().await;
    let (check, _) = rig
        .run(ping(
            "::1",
            json!({"count": 2, "interval_ms": 100, "ip_version": 6}),
        ))
        .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    let p: PingResult = data(r);
    assert_eq!(p.resolved_address.as_deref(), Some("::1"));
    assert_eq!(p.received, 2);

    // The namespace answers echo requests and connection attempts with ICMP host-unreachable.
    let ns = NetNs::new();
    ns.nft("table inet t {\n chain filter_in {\n  type filter hook input priority 0;\n  icmp type echo-request reject with icmp type host-unreachable\n  tcp dport 7 reject with icmp type host-unreachable\n }\n}\n");
    let (check, _) = rig
        .run(ping(
            &ns.addr,
            json!({"count": 2, "interval_ms": 100, "timeout_ms": 5000}),
        ))
        .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Failed);
    assert_eq!(data::<PingResult>(r).received, 0);
    // Read from the ICMP error, not a timeout: the check ends long before its 5 s timeout.
    assert_eq!(error_code_of(r), Some("unreachable"), "{r:?}");
    let message = &r.error.as_ref().unwrap().message;
    assert!(
        message.contains("destination host unreachable"),
        "{message}"
    );
    assert!(r.duration_ms.unwrap() < 2000.0, "{r:?}");
    let (check, _) = rig
        .run(tcp(&ns.addr, json!({"port": 7, "timeout_ms": 2000})))
        .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Failed);
    assert_eq!(error_code_of(r), Some("unreachable"), "{r:?}");
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
    let port = unused_port();
    for _ in 0..2 {
        rig.run(tcp("127.0.0.1", json!({"port": port}))).await;
    }
    let after = scrape().await;
    assert_eq!(value(&after, "netcheck_checks_created_total"), 2.0);
    assert_eq!(value(&after, "netcheck_checks_finished_total"), 2.0);
    assert_eq!(value(&after, "netcheck_results_stored_total"), 2.0);
    assert_eq!(value(&after, "netcheck_result_latency_seconds_count"), 2.0);
}

#[tokio::test]
async fn agent_metrics_count_probes_by_type_and_outcome() {
    let port = unused_port();
    let listen = format!("127.0.0.1:{port}");
    let rig = rig_with(&["--metrics-listen", &listen], |_| {}).await;
    let closed = unused_port();
    rig.run(tcp("127.0.0.1", json!({"port": closed}))).await;
    rig.run(ping("127.0.0.1", json!({"count": 1}))).await;
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

/// Names of a process's threads that run Tokio's multi-thread workers.
fn tokio_workers(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        // Tokio's name for them (its blocking pool's threads are named otherwise).
        .filter(|name| name.trim_end() == "tokio-rt-worker")
        .count()
}

/// One test for both runtimes: were Tokio to rename its workers, the default's count of none
/// would hold for any runtime; the count of two beside it then fails.
#[tokio::test]
async fn an_agent_runs_on_one_thread_unless_asked_and_on_two_side_by_side() {
    let default = rig().await;
    let pid = default._agent.as_ref().unwrap().0.id();
    assert_eq!(
        tokio_workers(pid),
        0,
        "the default is the current-thread runtime"
    );
    drop(default);

    let rig = rig_with(&["--threads", "2"], |_| {}).await;
    let pid = rig._agent.as_ref().unwrap().0.id();
    assert_eq!(
        tokio_workers(pid),
        2,
        "--threads 2 gives two runtime workers"
    );

    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = open.local_addr().unwrap().port();
    let (tcp_check, ping_check) = tokio::join!(
        rig.run(tcp("127.0.0.1", json!({"port": port}))),
        rig.run(ping("127.0.0.1", json!({"count": 3, "interval_ms": 100}))),
    );
    let r = only(&tcp_check.0);
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    assert!(data::<TcpResult>(r).connected);
    let r = only(&ping_check.0);
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    assert_eq!(data::<PingResult>(r).received, 3);
}
