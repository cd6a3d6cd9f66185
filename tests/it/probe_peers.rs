//! `/probe` beside the real thing: Debian's Prometheus scrapes it with the standard blackbox
//! relabelling, and Debian's blackbox_exporter 0.23 runs the same modules file on the same
//! targets, side by side with netcheck.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
use crate::probe::{parse_exposition, probe_fleet, Sample};
use crate::targets::{dns_server, http_server, https_server};

/// The labels blackbox would not have.
const OURS: [&str; 4] = ["agent", "country", "city", "asn"];

#[tokio::test]
async fn prometheus_scrapes_every_agent_through_the_blackbox_relabelling() {
    let fleet = probe_fleet(|_| {}).await;
    let web = http_server().await;
    let closed = unused_port();
    let server = fleet.app.address.trim_start_matches("http://").to_string();
    let job = |name: &str, module: &str, target: String| {
        format!(
            r#"  - job_name: {name}
    metrics_path: /probe
    scrape_interval: 1s
    scrape_timeout: 1s
    params: {{module: [{module}]}}
    authorization: {{credentials: "{key}"}}
    static_configs: [{{targets: ["{target}"]}}]
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {{target_label: __address__, replacement: "{server}"}}
"#,
            key = fleet.key
        )
    };
    let config = format!(
        "scrape_configs:\n{}{}{}",
        job("web", "http_2xx", format!("http://{web}/status/200")),
        job("port", "tcp_connect", web.to_string()),
        job("closed", "tcp_connect", format!("127.0.0.1:{closed}")),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let port = unused_port();
    let _prometheus = Process(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's prometheus (scripts/test.sh installs it)"),
    );
    let client = new_client();
    let query = |q: &'static str| {
        let client = client.clone();
        async move {
            let body: Value = client
                .get(format!("http://127.0.0.1:{port}/api/v1/query"))
                .query(&[("query", q)])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let series: Vec<(String, String, f64)> = body["data"]["result"]
                .as_array()?
                .iter()
                .map(|r| {
                    let m = &r["metric"];
                    (
                        m["job"].as_str().unwrap_or("").to_string(),
                        m["agent"].as_str().unwrap_or("").to_string(),
                        r["value"][1].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect();
            Some(series)
        }
    };
    // Two scrape intervals at least: every job and agent has a sample.
    let success = eventually(
        "probe_success for every job and agent",
        Duration::from_secs(30),
        || async { query("probe_success").await.filter(|s| s.len() == 6) },
    )
    .await;
    for (job, agent, value) in &success {
        let want = if job == "closed" { 0.0 } else { 1.0 };
        assert_eq!(*value, want, "{job} {agent}: {success:?}");
        assert!(["probe-a", "probe-b"].contains(&agent.as_str()));
    }
    let up = query("up").await.unwrap();
    assert_eq!(up.len(), 3, "{up:?}");
    assert!(up.iter().all(|(_, _, v)| *v == 1.0), "{up:?}");

    // The Grafana dashboard in deploy/ asks Prometheus valid questions, and those on every
    // probe have answers.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/grafana/netcheck-probe.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        let expr = panel["targets"][0]["expr"].as_str().unwrap();
        let expr = expr
            .replace("$job", ".*")
            .replace("$instance", ".*")
            .replace("$country", ".*");
        let body: Value = client
            .get(format!("http://127.0.0.1:{port}/api/v1/query"))
            .query(&[("query", expr.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{expr}: {body}");
        let answered = !body["data"]["result"].as_array().unwrap().is_empty();
        let general = expr.contains("probe_success") || expr.contains("probe_duration_seconds");
        assert!(answered || !general, "{expr}: no data");
    }
}

/// The families of a scrape: name → (HELP, TYPE, label names without netcheck's, samples).
type Families = BTreeMap<String, (String, String, BTreeSet<String>, Vec<Sample>)>;

fn families(text: &str) -> Families {
    let (samples, types) = parse_exposition(text);
    let mut out: Families = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            out.entry(name.into()).or_default().0 = help.into();
        }
    }
    for (name, kind) in types {
        out.entry(name).or_default().1 = kind;
    }
    for s in samples {
        let f = out.entry(s.name.clone()).or_default();
        f.2.extend(
            s.labels
                .keys()
                .filter(|k| !OURS.contains(&k.as_str()))
                .cloned(),
        );
        f.3.push(s);
    }
    out
}

const MODULES: &str = r#"
modules:
  web:
    prober: http
    timeout: 4s
    http:
      valid_status_codes: [200]
      valid_http_versions: ["HTTP/1.1"]
      method: GET
      headers:
        X-Probe: netcheck
      no_follow_redirects: false
      fail_if_ssl: true
      fail_if_body_matches_regexp: ["nothing like this"]
      fail_if_body_not_matches_regexp: ["fin.l"]
      fail_if_header_matches:
        - {header: X-Evil, regexp: ".+", allow_missing: true}
      fail_if_header_not_matches:
        - {header: Content-Length, regexp: "^6$"}
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls_config:
        insecure_skip_verify: true
  post:
    prober: http
    http:
      method: POST
      body: "hello"
      valid_status_codes: [404, 405]
  strict:
    prober: http
    http:
      fail_if_header_matches:
        - {header: X-Evil, regexp: ".+"}
  web_tls:
    prober: http
    http:
      fail_if_not_ssl: true
      tls_config:
        insecure_skip_verify: true
  tls_only:
    prober: http
    http:
      fail_if_not_ssl: true
  port:
    prober: tcp
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  ping:
    prober: icmp
    icmp:
      preferred_ip_protocol: ip4
  dns:
    prober: dns
    dns:
      query_name: example.test
      query_type: A
      transport_protocol: udp
      valid_rcodes: [NOERROR]
      preferred_ip_protocol: ip4
"#;

#[tokio::test]
async fn blackbox_exporter_and_netcheck_agree_on_the_same_modules_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    std::fs::write(&file, MODULES).unwrap();
    let path = file.clone();
    let fleet = probe_fleet(move |s| s.probe.modules_file = Some(path)).await;
    let port = unused_port();
    let _blackbox = Process(
        Command::new("prometheus-blackbox-exporter")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's prometheus-blackbox-exporter (scripts/test.sh installs it)"),
    );
    let client = new_client();
    eventually("blackbox_exporter up", Duration::from_secs(20), || async {
        let r = client
            .get(format!("http://127.0.0.1:{port}/-/healthy"))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    let web = http_server().await;
    let dns = dns_server().await;
    let (tls_port, _tls) = https_server(dir.path());
    eventually(
        "openssl s_server listening",
        Duration::from_secs(10),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
                .await
                .ok()
                .map(drop)
        },
    )
    .await;
    let cases = [
        // openssl s_server: a self-signed certificate, HTTP/1.0 without a length.
        ("web_tls", format!("https://127.0.0.1:{tls_port}/")),
        // Followed to /final ("final!"): every expectation met.
        ("web", format!("http://{web}/redirect")),
        ("web", format!("http://{web}/status/500")),
        ("post", format!("http://{web}/final")),
        ("tls_only", format!("http://{web}/final")),
        // A header fail_if_header_matches names must be there (unless allow_missing).
        ("strict", format!("http://{web}/final")),
        ("port", web.to_string()),
        ("ping", "127.0.0.1".to_string()),
        ("dns", dns.to_string()),
    ];
    for (module, target) in cases {
        let query = format!("module={module}&target={target}");
        let theirs = client
            .get(format!("http://127.0.0.1:{port}/probe?{query}"))
            .header("X-Prometheus-Scrape-Timeout-Seconds", "5")
            .send()
            .await
            .unwrap();
        assert_eq!(theirs.status(), 200);
        let theirs = families(&theirs.text().await.unwrap());
        let ours = families(&fleet.scrape(&query, "5").await.text().await.unwrap());
        let case = format!("{module} {target}");
        if target.ends_with("/redirect") || module == "web_tls" {
            assert_eq!(
                theirs["probe_success"].3[0].value, 1.0,
                "{case}: the good path"
            );
        }
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{case}: the same families"
        );
        for (name, (help, kind, labels, _)) in &theirs {
            let mine = &ours[name];
            assert_eq!(
                (&mine.0, &mine.1, &mine.2),
                (help, kind, labels),
                "{case}: {name}"
            );
        }
        // One sample per agent, and the facts agree with blackbox's.
        for name in [
            "probe_success",
            "probe_http_status_code",
            "probe_http_redirects",
            "probe_http_ssl",
            "probe_http_version",
            "probe_http_content_length",
            "probe_http_uncompressed_body_length",
            "probe_ssl_earliest_cert_expiry",
            "probe_ssl_last_chain_expiry_timestamp_seconds",
            "probe_failed_due_to_regex",
            "probe_ip_protocol",
            "probe_ip_addr_hash",
            "probe_dns_answer_rrs",
            "probe_dns_authority_rrs",
            "probe_dns_query_succeeded",
        ] {
            let Some((_, _, _, their)) = theirs.get(name) else {
                continue;
            };
            // s_server's page describes the session: its length differs per connection.
            if module == "web_tls" && name == "probe_http_uncompressed_body_length" {
                continue;
            }
            let (_, _, _, mine) = &ours[name];
            assert_eq!(mine.len(), 2, "{case}: {name} for each agent");
            for s in mine {
                assert_eq!(s.value, their[0].value, "{case}: {name} {:?}", s.labels);
            }
        }
        // The same certificate, described alike.
        for name in ["probe_ssl_last_chain_info", "probe_tls_version_info"] {
            let Some((_, _, labels, their)) = theirs.get(name) else {
                continue;
            };
            for s in &ours[name].3 {
                for label in labels {
                    assert_eq!(
                        s.labels[label], their[0].labels[label],
                        "{case}: {name} {label}"
                    );
                }
            }
        }
    }
}
