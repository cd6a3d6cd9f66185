//! `/probe` under a real Prometheus, beside blackbox_exporter (issue: Prometheus scrapes the
//! whole fleet).
//!
//! Starts the server (in this process), five agents, 100 HTTP and 100 TCP targets on loopback,
//! Debian's blackbox_exporter and Debian's Prometheus. Prometheus scrapes the 100 targets × 2
//! modules every 15 s through netcheck's `/probe` (five agents each) and through
//! blackbox_exporter's (one probe each) for `BENCH_MINUTES` (default 10). Then it reports the
//! scrape durations Prometheus measured (p50/p99), the scrapes that failed, CPU per probe of the
//! server, the agents and blackbox_exporter, and how much the database grew.
//!
//! Run: `cargo bench --bench probe` (env BENCH_MINUTES).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{cpu_secs, env_or, pct, Bench};
use netcheck_proto::api::auth::{ApiScope, CreateApiKey};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AGENTS: usize = 5;
const TARGETS: usize = 100;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tiny HTTP/1.1 server: every request gets `200 ok`, then the connection closes.
async fn http_target() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    port
}

/// `TARGETS` listening TCP ports that accept and close.
async fn tcp_targets() -> Vec<u16> {
    let mut ports = Vec::new();
    for _ in 0..TARGETS {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push(listener.local_addr().unwrap().port());
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
    }
    ports
}

fn job(name: &str, module: &str, exporter: &str, key: Option<&str>, targets: &[String]) -> String {
    let auth = key
        .map(|k| format!("    authorization: {{credentials: \"{k}\"}}\n"))
        .unwrap_or_default();
    let list = targets
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "  - job_name: {name}\n    metrics_path: /probe\n    scrape_interval: 15s\n    scrape_timeout: 10s\n    params: {{module: [{module}]}}\n{auth}    static_configs: [{{targets: [{list}]}}]\n    relabel_configs:\n      - {{source_labels: [__address__], target_label: __param_target}}\n      - {{source_labels: [__param_target], target_label: instance}}\n      - {{target_label: __address__, replacement: \"{exporter}\"}}\n"
    )
}

async fn db_bytes(bench: &Bench) -> i64 {
    bench
        .count("SELECT pg_database_size(current_database()) AS n")
        .await
}

#[tokio::main]
async fn main() {
    let minutes = env_or("BENCH_MINUTES", 10);
    let bench = Bench::start(&["127.0.0.0/8"]).await;
    let agents = bench.spawn_agents(AGENTS).await;
    let key = bench
        .api
        .create_api_key(&CreateApiKey {
            name: "prometheus".into(),
            scopes: Some(vec![ApiScope::Probe]),
            ..Default::default()
        })
        .await
        .unwrap()
        .key;
    let web = http_target().await;
    let ports = tcp_targets().await;
    let http_targets: Vec<String> = (0..TARGETS)
        .map(|i| format!("http://127.0.0.1:{web}/t/{i}"))
        .collect();
    let tcp_targets: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("blackbox.yml"),
        "modules:\n  http_2xx: {prober: http}\n  tcp_connect: {prober: tcp}\n",
    )
    .unwrap();
    let bb_port = free_port();
    let blackbox = Child(
        Command::new("prometheus-blackbox-exporter")
            .arg(format!(
                "--config.file={}",
                dir.path().join("blackbox.yml").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{bb_port}"))
            .arg("--log.level=error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's prometheus-blackbox-exporter"),
    );
    let ours = bench.base.trim_start_matches("http://").to_string();
    let theirs = format!("127.0.0.1:{bb_port}");
    let config = format!(
        "scrape_configs:\n{}{}{}{}",
        job("nc_http", "http_2xx", &ours, Some(&key), &http_targets),
        job("nc_tcp", "tcp_connect", &ours, Some(&key), &tcp_targets),
        job("bb_http", "http_2xx", &theirs, None, &http_targets),
        job("bb_tcp", "tcp_connect", &theirs, None, &tcp_targets),
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let prom_port = free_port();
    let prometheus = Child(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's prometheus"),
    );

    let me = std::process::id();
    let agent_pids: Vec<u32> = agents.iter().map(|a| a.id()).collect();
    let cpu = |pids: &[u32]| pids.iter().map(|p| cpu_secs(*p)).sum::<f64>();
    let db_before = db_bytes(&bench).await;
    let (server0, agents0, bb0, prom0) = (
        cpu_secs(me),
        cpu(&agent_pids),
        cpu_secs(blackbox.0.id()),
        cpu_secs(prometheus.0.id()),
    );
    println!("scraping {TARGETS} targets × 2 modules every 15 s for {minutes} min…");
    tokio::time::sleep(Duration::from_secs(minutes * 60)).await;
    let (server1, agents1, bb1, prom1) = (
        cpu_secs(me),
        cpu(&agent_pids),
        cpu_secs(blackbox.0.id()),
        cpu_secs(prometheus.0.id()),
    );
    let db_after = db_bytes(&bench).await;

    let query = |q: String| {
        let http = bench.http.clone();
        async move {
            let body: Value = http
                .get(format!("http://127.0.0.1:{prom_port}/api/v1/query"))
                .query(&[("query", q.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
    };
    let window = format!("{minutes}m");
    println!(
        "\n| job | scrapes | failed (up 0) | scrape p50 | scrape p99 | max | probe_success avg |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut scrapes = std::collections::HashMap::new();
    for name in ["nc_http", "nc_tcp", "bb_http", "bb_tcp"] {
        let series = query(format!(
            "scrape_duration_seconds{{job=\"{name}\"}}[{window}]"
        ))
        .await;
        let mut durations: Vec<f64> = series
            .iter()
            .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v[1].as_str()?.parse().ok())
            .collect();
        durations.sort_by(f64::total_cmp);
        let failed = query(format!(
            "sum(count_over_time((up{{job=\"{name}\"}} == 0)[{window}:15s]))"
        ))
        .await;
        let failed = failed
            .first()
            .and_then(|r| r["value"][1].as_str()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        let success = query(format!(
            "avg(avg_over_time(probe_success{{job=\"{name}\"}}[{window}]))"
        ))
        .await;
        let success = success
            .first()
            .and_then(|r| r["value"][1].as_str()?.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        scrapes.insert(name, durations.len());
        println!(
            "| {name} | {} | {failed} | {:.1} ms | {:.1} ms | {:.1} ms | {success:.4} |",
            durations.len(),
            pct(&durations, 0.5) * 1e3,
            pct(&durations, 0.99) * 1e3,
            durations.last().copied().unwrap_or(0.0) * 1e3,
        );
    }
    let ours = (scrapes["nc_http"] + scrapes["nc_tcp"]) as f64;
    let theirs = (scrapes["bb_http"] + scrapes["bb_tcp"]) as f64;
    let nc_probes = ours * AGENTS as f64;
    let (server, agents_cpu, bb) = (server1 - server0, agents1 - agents0, bb1 - bb0);
    println!("\n| | CPU-seconds | probes | CPU ms per probe |");
    println!("|---|---|---|---|");
    println!(
        "| netcheck server (scrapes, dispatch, exposition) | {server:.1} | {nc_probes:.0} | {:.3} |",
        server * 1e3 / nc_probes
    );
    println!(
        "| netcheck agents ({AGENTS}) | {agents_cpu:.1} | {nc_probes:.0} | {:.3} |",
        agents_cpu * 1e3 / nc_probes
    );
    println!(
        "| netcheck, server + agents | {:.1} | {nc_probes:.0} | {:.3} |",
        server + agents_cpu,
        (server + agents_cpu) * 1e3 / nc_probes
    );
    println!(
        "| blackbox_exporter | {bb:.1} | {theirs:.0} | {:.3} |",
        bb * 1e3 / theirs
    );
    println!(
        "| Prometheus (both exporters' series) | {:.1} | – | – |",
        prom1 - prom0
    );
    println!(
        "\ndatabase: {} KiB before, {} KiB after ({:+} KiB)",
        db_before / 1024,
        db_after / 1024,
        (db_after - db_before) / 1024
    );
    drop(prometheus);
    drop(blackbox);
    drop(agents);
    bench.finish().await;
}
