//! Does netcheck tell the truth about the network, and how fast is an agent cut off?
//! (issue: proof under faults, load and bad input)
//!
//! 1. RTT accuracy: netcheck's ping (through the whole pipeline, one real agent) against
//!    iputils `ping` to the same hosts, in alternating runs of 16 echoes each: a fast host
//!    (kernel echo in a network namespace behind a veth pair) and a slow host (kernel echo
//!    off, `tests/fixtures/slow_icmp.py` answering after 50 ms). Reports the median and mean
//!    RTT of every reply of each tool, and their differences.
//! 2. Revocation latency: `DELETE /api/v1/agents/{id}` → the broker closes that agent's live
//!    AMQP connection, for many agents one after another (p50/p90/p99/max).
//!
//! Run as root: `cargo bench --bench accuracy` (env BENCH_RTT_ROUNDS, BENCH_REVOKE_N).

#[allow(dead_code)] // the bench uses only part of the test client
#[path = "../tests/it/amqp.rs"]
mod amqp;
mod common;

use std::time::{Duration, Instant};

use common::{env_or, median, pct, sh, Bench};
use netcheck_proto::agent::{Capability, RegisterRequest};
use netcheck_proto::api::checks::CreateCheck;
use netcheck_proto::check::CheckType;
use netcheck_proto::result::{PingResult, ResultStatus};
use serde_json::json;

/// A namespace `name` reachable at 10.213.{net}.2 from this host's 10.213.{net}.1.
struct Host {
    name: String,
    link: String,
    addr: String,
    responder: Option<std::process::Child>,
}

impl Host {
    fn new(name: &str, net: u8) -> Host {
        let link = format!("ncb{net}");
        sh(&format!(
            "ip netns del {name} 2>/dev/null; ip link del {link} 2>/dev/null"
        ));
        assert!(
            sh(&format!(
                "ip netns add {name} && ip link add {link} type veth peer name {link}p && \
                 ip link set {link}p netns {name} && ip addr add 10.213.{net}.1/30 dev {link} && \
                 ip link set {link} up && ip -n {name} addr add 10.213.{net}.2/30 dev {link}p && \
                 ip -n {name} link set {link}p up && ip -n {name} link set lo up"
            )),
            "creating namespace {name} (needs root)"
        );
        Host {
            name: name.into(),
            link,
            addr: format!("10.213.{net}.2"),
            responder: None,
        }
    }

    /// Turns the kernel's echo replies off and answers from user space after `delay_ms`.
    fn slow(mut self, delay_ms: u64) -> Host {
        assert!(sh(&format!(
            "ip netns exec {} sysctl -qw net.ipv4.icmp_echo_ignore_all=1",
            self.name
        )));
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.name, "python3"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/slow_icmp.py"
            ))
            .arg(delay_ms.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // It prints "ready" once its socket is open.
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready");
        self.responder = Some(child);
        self
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut c) = self.responder.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        sh(&format!(
            "ip netns del {} 2>/dev/null; ip link del {} 2>/dev/null",
            self.name, self.link
        ));
    }
}

/// iputils ping: 16 echoes 100 ms apart; the RTT of each reply in ms.
fn iputils_rtts(addr: &str) -> Vec<f64> {
    let out = std::process::Command::new("ping")
        .args(["-n", "-c", "16", "-i", "0.1", "-W", "2", addr])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "64 bytes from 10.213.251.2: icmp_seq=1 ttl=64 time=0.041 ms"
    let rtts: Vec<f64> = text
        .lines()
        .filter_map(|l| l.split_once(" time=")?.1.strip_suffix(" ms")?.parse().ok())
        .collect();
    assert_eq!(rtts.len(), 16, "every echo answered: {text}");
    rtts
}

/// netcheck ping through the pipeline: the same 16 echoes 100 ms apart; each reply's RTT.
async fn netcheck_rtts(bench: &Bench, addr: &str) -> Vec<f64> {
    let ping = CreateCheck::from_options(
        CheckType::Ping,
        addr,
        json!({"count": 16, "interval_ms": 100, "timeout_ms": 2000}),
    )
    .unwrap();
    let id = bench.create_check(&ping).await;
    let results = bench.until_finished(id).await;
    let r = &results[0];
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    let ping = r.data_as::<PingResult>().unwrap();
    assert_eq!(ping.received, 16, "{ping:?}");
    ping.replies.iter().map(|p| p.rtt_ms).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[tokio::main]
async fn main() {
    let rounds = env_or("BENCH_RTT_ROUNDS", 9) as usize;
    let revoke_n = env_or("BENCH_REVOKE_N", 200) as usize;
    let bench = Bench::start(&["10.213.0.0/16"]).await;
    let agents = bench.spawn_agents(1).await;

    // 1. RTT accuracy.
    let fast = Host::new("nc-bench-fast", 251);
    let slow = Host::new("nc-bench-slow", 252).slow(50);
    println!("RTT accuracy, {rounds} alternating runs of 16 echoes per tool and host:");
    for host in [&fast, &slow] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let (mut run_ours, mut run_theirs) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = iputils_rtts(&host.addr);
            run_theirs.push(mean(&t));
            theirs.extend(t);
            let o = netcheck_rtts(&bench, &host.addr).await;
            run_ours.push(mean(&o));
            ours.extend(o);
        }
        let (m_ours, m_theirs) = (median(&ours), median(&theirs));
        println!(
            "  {:<13} median of {} replies: iputils {m_theirs:.3} ms, netcheck {m_ours:.3} ms, difference {:+.3} ms; \
             mean: iputils {:.3} ms, netcheck {:.3} ms, difference {:+.3} ms",
            host.name,
            ours.len(),
            m_ours - m_theirs,
            mean(&theirs),
            mean(&ours),
            mean(&ours) - mean(&theirs)
        );
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!("    per-run mean, iputils:  {}", fmt(&run_theirs));
        println!("    per-run mean, netcheck: {}", fmt(&run_ours));
    }
    drop((fast, slow, agents));

    // 2. Revocation latency, each agent connected to the broker with its own credentials.
    let mut closed_after = Vec::with_capacity(revoke_n);
    let mut delete_took = Vec::with_capacity(revoke_n);
    for i in 0..revoke_n {
        let (id, token) = bench.create_agent(&format!("doomed-{i}")).await;
        let reg = bench
            .api
            .with_token(token)
            .register_agent(&RegisterRequest {
                hostname: "bench".into(),
                version: "0".into(),
                capabilities: vec![Capability::Tcp],
                protocol_version: None,
                platform: None,
            })
            .await
            .unwrap();
        let reg = serde_json::to_value(reg).unwrap();
        let (_conn, mut closed) = amqp::connect_as(&reg).await.unwrap();
        let sent = Instant::now();
        bench.api.delete_agent(id).await.unwrap();
        delete_took.push(sent.elapsed().as_secs_f64() * 1000.0);
        let (at, _) = tokio::time::timeout(Duration::from_secs(5), closed.recv())
            .await
            .expect("connection closed within 5 s")
            .unwrap();
        closed_after.push((at - sent).as_secs_f64() * 1000.0);
    }
    closed_after.sort_by(f64::total_cmp);
    delete_took.sort_by(f64::total_cmp);
    println!("revocation ({revoke_n} agents, each with a live AMQP connection):");
    for (what, v) in [
        ("DELETE -> connection closed", &closed_after),
        ("DELETE round trip (204)", &delete_took),
    ] {
        println!(
            "  {what:<28} p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99),
            v[v.len() - 1]
        );
    }
    bench.finish().await;
}
