//! `GET /probe` as Prometheus and its users meet it: blackbox's families, one sample per
//! agent with its place; blackbox's refusals; the scrape's deadline; no check history.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use netcheck_proto::api::agents::{AgentStatus, UpdateAgent};
use netcheck_proto::api::auth::{ApiScope, CreateApiKey};
use netcheck_proto::api::checks::HistoryQuery;
use netcheck_proto::api::FixedLocation;
use reqwest::StatusCode;

use crate::helpers::*;
use crate::targets::http_server;

/// One sample of a text exposition: family name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples and `# TYPE` lines of a text exposition (format 0.0.4).
pub fn parse_exposition(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (head, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match head.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let mut labels = BTreeMap::new();
                // Values here never hold `",`; blackbox's and netcheck's label values are plain.
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").unwrap();
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (name.to_string(), labels)
            }
            None => (head.to_string(), BTreeMap::new()),
        };
        samples.push(Sample {
            name,
            labels,
            value: value.parse().unwrap(),
        });
    }
    (samples, types)
}

/// The value of `name` for `agent`.
pub fn value_of(samples: &[Sample], name: &str, agent: &str) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && s.labels.get("agent").map(String::as_str) == Some(agent))
        .map(|s| s.value)
}

/// A server that may probe loopback, two agents online (one placed in Berlin, AS3320), and
/// an API key with the `probe` scope.
pub struct ProbeFleet {
    pub app: TestApp,
    pub key: String,
    pub _agents: Vec<Process>,
    pub pids: Vec<u32>,
}

pub async fn probe_fleet(customize: impl FnOnce(&mut netcheck::config::Settings)) -> ProbeFleet {
    let app = spawn_app_with(|s| {
        s.checks.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        customize(s);
    })
    .await;
    let admin = app.admin().await;
    let mut agents = Vec::new();
    let mut pids = Vec::new();
    for name in ["probe-a", "probe-b"] {
        let (agent, token) = app.create_agent(name).await;
        if name == "probe-a" {
            let place = UpdateAgent {
                location: Some(Some(FixedLocation {
                    country_code: "DE".into(),
                    city: Some("Berlin".into()),
                    lat: None,
                    lon: None,
                    asn: Some(3320),
                    network: None,
                })),
                ..Default::default()
            };
            admin.update_agent(agent.id, &place).await.unwrap();
        }
        let process = app.spawn_agent(&token);
        pids.push(process.0.id());
        agents.push(process);
        eventually("agent online", Duration::from_secs(20), || async {
            (app.agent(agent.id).await.status == AgentStatus::Online).then_some(())
        })
        .await;
    }
    let key = admin
        .create_api_key(&CreateApiKey {
            name: "prometheus".into(),
            scopes: Some(vec![ApiScope::Probe]),
            ..Default::default()
        })
        .await
        .unwrap()
        .key;
    ProbeFleet {
        app,
        key,
        _agents: agents,
        pids,
    }
}

impl ProbeFleet {
    /// `GET /probe?{query}` as Prometheus sends it, with a scrape timeout of `timeout` s.
    pub async fn scrape(&self, query: &str, timeout: &str) -> reqwest::Response {
        self.app
            .client
            .get(self.app.url(&format!("/probe?{query}")))
            .bearer_auth(&self.key)
            .header("X-Prometheus-Scrape-Timeout-Seconds", timeout)
            .send()
            .await
            .unwrap()
    }
}

async fn refusal(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    resp.text().await.unwrap()
}

#[tokio::test]
async fn every_agent_answers_a_scrape_with_blackboxs_families_and_its_place() {
    let fleet = probe_fleet(|_| {}).await;
    let web = http_server().await;
    let resp = fleet
        .scrape(
            &format!("module=http_2xx&target=http://{web}/status/200"),
            "5",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("# HELP probe_success Displays whether or not the probe was a success\n"),
        "{text}"
    );
    let (samples, types) = parse_exposition(&text);
    assert!(types.values().all(|t| t == "gauge"), "{types:?}");
    for agent in ["probe-a", "probe-b"] {
        assert_eq!(
            value_of(&samples, "probe_success", agent),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            value_of(&samples, "probe_http_status_code", agent),
            Some(200.0)
        );
        assert_eq!(value_of(&samples, "probe_ip_protocol", agent), Some(4.0));
        assert_eq!(
            value_of(&samples, "probe_http_uncompressed_body_length", agent),
            Some(5.0)
        );
        let phases: Vec<&str> = samples
            .iter()
            .filter(|s| s.name == "probe_http_duration_seconds" && s.labels["agent"] == agent)
            .map(|s| s.labels["phase"].as_str())
            .collect();
        assert_eq!(
            phases,
            ["connect", "processing", "resolve", "tls", "transfer"]
        );
    }
    let berlin = samples
        .iter()
        .find(|s| s.name == "probe_success" && s.labels["agent"] == "probe-a")
        .unwrap();
    assert_eq!(berlin.labels["country"], "DE");
    assert_eq!(berlin.labels["city"], "Berlin");
    assert_eq!(berlin.labels["asn"], "3320");

    // A closed port fails on every agent, still with a 200 and every series.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = fleet
        .scrape(&format!("module=tcp_connect&target=127.0.0.1:{port}"), "5")
        .await
        .text()
        .await
        .unwrap();
    let (samples, _) = parse_exposition(&text);
    for agent in ["probe-a", "probe-b"] {
        assert_eq!(
            value_of(&samples, "probe_success", agent),
            Some(0.0),
            "{text}"
        );
        assert!(value_of(&samples, "probe_duration_seconds", agent).is_some());
    }
    // Choosing agents as checks do: one place, or named agents.
    let text = fleet
        .scrape(
            &format!("module=http_2xx&target=http://{web}/status/503&location=DE,Berlin"),
            "5",
        )
        .await
        .text()
        .await
        .unwrap();
    let (samples, _) = parse_exposition(&text);
    assert_eq!(value_of(&samples, "probe_success", "probe-a"), Some(0.0));
    assert_eq!(
        value_of(&samples, "probe_http_status_code", "probe-a"),
        Some(503.0)
    );
    assert_eq!(value_of(&samples, "probe_success", "probe-b"), None);

    // Scrapes are not check history.
    let history = fleet
        .app
        .admin()
        .await
        .history(&HistoryQuery::default())
        .await
        .unwrap();
    assert!(history.checks.is_empty(), "{history:?}");
}

#[tokio::test]
async fn refusals_are_blackboxs_plain_text_400s_and_credentials_are_needed() {
    let fleet = probe_fleet(|_| {}).await;
    assert_eq!(
        refusal(fleet.scrape("module=nope&target=x", "5").await).await,
        "Unknown module \"nope\"\n"
    );
    // The module is looked at before the target, as blackbox does.
    assert_eq!(
        refusal(fleet.scrape("module=nope", "5").await).await,
        "Unknown module \"nope\"\n"
    );
    assert_eq!(
        refusal(fleet.scrape("module=http_2xx", "5").await).await,
        "Target parameter is missing\n"
    );
    let policy = refusal(
        fleet
            .scrape("module=tcp_connect&target=10.1.2.3:80", "5")
            .await,
    )
    .await;
    assert!(policy.contains("10.1.2.3"), "{policy}");
    let nobody = refusal(
        fleet
            .scrape("module=icmp&target=127.0.0.1&location=ZZ", "5")
            .await,
    )
    .await;
    assert!(nobody.contains("location=ZZ"), "{nobody}");
    let bad_header = refusal(fleet.scrape("module=icmp&target=127.0.0.1", "soon").await).await;
    assert!(bad_header.starts_with("Failed to parse timeout from Prometheus header"));

    // No credentials: 401. A key without the `probe` scope: 403.
    let anonymous = fleet
        .app
        .client
        .get(fleet.app.url("/probe?module=icmp&target=127.0.0.1"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let reader = fleet
        .app
        .admin()
        .await
        .create_api_key(&CreateApiKey {
            name: "reader".into(),
            scopes: Some(vec![ApiScope::Read]),
            ..Default::default()
        })
        .await
        .unwrap()
        .key;
    let resp = fleet
        .app
        .client
        .get(fleet.app.url("/probe?module=icmp&target=127.0.0.1"))
        .bearer_auth(reader)
        .send()
        .await
        .unwrap();
    let (code, _) = error_code(resp, StatusCode::FORBIDDEN).await;
    assert_eq!(code, "insufficient_scope");

    // debug=true: blackbox's three parts, the probe really run.
    let debug = fleet
        .scrape("module=icmp&target=127.0.0.1&debug=true", "5")
        .await
        .text()
        .await
        .unwrap();
    let logs = debug.find("Logs for the probe:\n").unwrap();
    let metrics = debug
        .find("\n\n\nMetrics that would have been returned:\n")
        .unwrap();
    let config = debug.find("\n\n\nModule configuration:\n").unwrap();
    assert!(logs < metrics && metrics < config, "{debug}");
    assert!(
        debug.contains("agent=\"probe-a\" msg=\"Probe succeeded\""),
        "{debug}"
    );
    assert!(debug[config..].contains("prober: icmp"), "{debug}");
}

#[tokio::test]
async fn an_agent_that_cannot_answer_in_time_is_a_failure_within_the_scrape_timeout() {
    let fleet = probe_fleet(|_| {}).await;
    // Stop one agent: still online for the server (its heartbeats are recent), it answers
    // nothing.
    let stopped = fleet.pids[1];
    let status = std::process::Command::new("kill")
        .args(["-STOP", &stopped.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let resp = fleet.scrape("module=icmp&target=127.0.0.1", "1").await;
    let took = started.elapsed();
    std::process::Command::new("kill")
        .args(["-CONT", &stopped.to_string()])
        .status()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let (samples, _) = parse_exposition(&text);
    assert_eq!(
        value_of(&samples, "probe_success", "probe-a"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value_of(&samples, "probe_success", "probe-b"),
        Some(0.0),
        "{text}"
    );
    let waited = value_of(&samples, "probe_duration_seconds", "probe-b").unwrap();
    assert!((0.4..1.0).contains(&waited), "waited {waited} s");
    assert!(
        took < Duration::from_millis(1000),
        "the scrape took {took:?}"
    );
}

#[tokio::test]
async fn a_modules_file_with_a_key_netcheck_does_not_implement_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blackbox.yml");
    std::fs::write(
        &path,
        "modules:\n  web:\n    prober: http\n    http:\n      basic_auth:\n        username: x\n",
    )
    .unwrap();
    let mut settings = test_settings().await;
    settings.probe.modules_file = Some(path);
    let args = netcheck::server::ServerArgs {
        admin_username: ADMIN_USER.into(),
        admin_password: Some(ADMIN_PASSWORD.into()),
        local_agent: None,
    };
    let err = match netcheck::server::Application::build(settings, args).await {
        Ok(_) => panic!("the server started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("\"web\"") && err.contains("http.basic_auth"),
        "{err}"
    );
}
