//! Traces on a chain of network namespaces (agent → router → router → target, 10.213.240.0/24),
//! side by side with Debian's `traceroute` and `mtr` in the same run: wall time to a reachable
//! 3-hop target and to a blackholed one (max 30 hops), hop RTTs against mtr's, the agent's CPU
//! per trace and its memory with 50 traces in flight.
//!
//! Run: `cargo bench --bench traces` (as root; installs nothing: needs traceroute and mtr-tiny).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{median, sh, Bench};
use netcheck::proto::api::checks::{CheckStatus, CheckView, CreateCheck};
use netcheck::proto::check::{CheckType, MtrResult, TracerouteResult};
use serde_json::json;

const NET: &str = "10.213.240";

fn chain_down() {
    for n in ["ncb-r1", "ncb-r2", "ncb-t"] {
        sh(&format!("ip netns del {n} 2>/dev/null"));
    }
    sh("ip link del ncb-a 2>/dev/null");
}

fn chain_up() {
    chain_down();
    let script = format!(
        "set -e
         for n in ncb-r1 ncb-r2 ncb-t; do ip netns add $n; ip -n $n link set lo up; done
         ip link add ncb-a type veth peer name ncb-b netns ncb-r1
         ip addr add {NET}.1/30 dev ncb-a; ip link set ncb-a up
         ip -n ncb-r1 addr add {NET}.2/30 dev ncb-b; ip -n ncb-r1 link set ncb-b up
         ip link add ncb-c netns ncb-r1 type veth peer name ncb-d netns ncb-r2
         ip -n ncb-r1 addr add {NET}.5/30 dev ncb-c; ip -n ncb-r1 link set ncb-c up
         ip -n ncb-r2 addr add {NET}.6/30 dev ncb-d; ip -n ncb-r2 link set ncb-d up
         ip link add ncb-e netns ncb-r2 type veth peer name ncb-f netns ncb-t
         ip -n ncb-r2 addr add {NET}.9/30 dev ncb-e; ip -n ncb-r2 link set ncb-e up
         ip -n ncb-t addr add {NET}.10/30 dev ncb-f; ip -n ncb-t link set ncb-f up
         ip route add {NET}.4/30 via {NET}.2; ip route add {NET}.8/30 via {NET}.2
         ip -n ncb-r1 route add {NET}.8/30 via {NET}.6
         ip -n ncb-r2 route add default via {NET}.5
         ip -n ncb-t route add default via {NET}.9
         for n in ncb-r1 ncb-r2; do ip netns exec $n sysctl -qw net.ipv4.ip_forward=1; done
         for n in ncb-r1 ncb-r2 ncb-t; do ip netns exec $n sysctl -qw net.ipv4.icmp_ratelimit=0; done"
    );
    assert!(
        sh(&script),
        "the namespace chain could not be built (run as root)"
    );
}

fn timed(cmd: &str, args: &[&str]) -> (f64, String) {
    let t = Instant::now();
    let out = Command::new(cmd).args(args).output().expect(cmd);
    (
        t.elapsed().as_secs_f64() * 1000.0,
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// Runs a check and polls it to the end; (end-to-end ms, the agent's own duration ms, check).
async fn run(bench: &Bench, body: CreateCheck) -> (f64, f64, CheckView) {
    let t = Instant::now();
    let id = bench.create_check(&body).await;
    loop {
        let c = bench.api.check(id).await.unwrap();
        if c.status == CheckStatus::Finished {
            let wall = t.elapsed().as_secs_f64() * 1000.0;
            let probe = c.results[0].duration_ms.unwrap_or(f64::NAN);
            return (wall, probe, c);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() {
    let runs = common::env_or("BENCH_RUNS", 5) as usize;
    chain_up();
    let target = format!("{NET}.10");
    let bench = Bench::start(&["10.213.0.0/16"]).await;
    let agents = bench.spawn_agents(1).await;
    let agent_pid = agents[0].id();

    let trace = |max_hops: u32| {
        CreateCheck::new(CheckType::Traceroute, target.clone())
            .options(json!({"max_hops": max_hops, "timeout_ms": 1000}))
    };
    let mtr = CreateCheck::new(CheckType::Mtr, target.clone())
        .options(json!({"packets": 5, "timeout_ms": 1000}));
    let reached = |c: &CheckView| {
        let trace: TracerouteResult = c.results[0].data_as().unwrap();
        trace.reached
    };
    let (mut nc_wall, mut nc_probe, mut deb, mut nc_mtr, mut deb_mtr) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut rtt_deltas = Vec::new();
    for _ in 0..runs {
        let (w, p, c) = run(&bench, trace(30)).await;
        assert!(reached(&c), "{c:?}");
        nc_wall.push(w);
        nc_probe.push(p);
        deb.push(timed("traceroute", &["-I", "-n", "-q", "3", "-w", "1", &target]).0);
        let (w, _, c) = run(&bench, mtr.clone()).await;
        nc_mtr.push(w);
        let (t, report) = timed("mtr", &["--report", "-n", "-c", "5", "-i", "0.1", &target]);
        deb_mtr.push(t);
        // Hop averages, netcheck's against mtr's (Avg column), per hop.
        let theirs: Vec<f64> = report
            .lines()
            .filter(|l| l.contains("|--"))
            .filter_map(|l| l.split_whitespace().nth(5).and_then(|v| v.parse().ok()))
            .collect();
        let report: MtrResult = c.results[0].data_as().unwrap();
        let ours: Vec<f64> = report
            .hops
            .iter()
            .filter_map(|h| Some(h.rtt_ms.as_ref()?.avg))
            .collect();
        for (a, b) in ours.iter().zip(&theirs) {
            rtt_deltas.push((a - b).abs());
        }
    }
    println!(
        "reachable 3-hop target, ICMP: netcheck traceroute {:.0} ms end to end ({:.1} ms on the agent), Debian traceroute -I -q 3 -w 1 {:.0} ms",
        median(&nc_wall),
        median(&nc_probe),
        median(&deb)
    );
    println!(
        "  mtr 5 packets: netcheck {:.0} ms, mtr --report -c 5 -i 0.1 {:.0} ms; hop RTT |netcheck avg − mtr avg| median {:.3} ms, max {:.3} ms",
        median(&nc_mtr),
        median(&deb_mtr),
        median(&rtt_deltas),
        rtt_deltas.iter().copied().fold(0.0, f64::max)
    );

    // Blackholed target: nothing answers past router 2.
    sh("ip netns exec ncb-t nft -f - <<'EOF'\ntable inet hole {\n chain in {\n  type filter hook input priority 0; policy drop;\n }\n}\nEOF");
    let (mut nc_wall, mut nc_probe, mut deb) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        let (w, p, c) = run(&bench, trace(30)).await;
        assert!(!reached(&c), "{c:?}");
        nc_wall.push(w);
        nc_probe.push(p);
        deb.push(
            timed(
                "traceroute",
                &["-I", "-n", "-q", "3", "-w", "1", "-m", "30", &target],
            )
            .0,
        );
    }
    let (deb_mtr, _) = timed(
        "mtr",
        &[
            "--report", "-n", "-c", "5", "-i", "0.1", "-m", "30", &target,
        ],
    );
    let (nc_mtr, _, _) = run(&bench, mtr).await;
    println!(
        "blackholed target, max 30 hops: netcheck traceroute {:.0} ms end to end ({:.0} ms on the agent), Debian traceroute {:.0} ms: {:.1}x faster; mtr 5 packets: netcheck {:.0} ms, mtr --report {:.0} ms",
        median(&nc_wall),
        median(&nc_probe),
        median(&deb),
        median(&deb) / median(&nc_wall),
        nc_mtr,
        deb_mtr
    );

    // Agent CPU per trace (reachable target) and memory with 50 blackholed traces in flight.
    sh("ip netns exec ncb-t nft flush ruleset");
    let cpu0 = common::cpu_secs(agent_pid);
    let n = 100;
    for _ in 0..n {
        run(&bench, trace(30)).await;
    }
    let cpu = (common::cpu_secs(agent_pid) - cpu0) / n as f64;
    sh("ip netns exec ncb-t nft -f - <<'EOF'\ntable inet hole {\n chain in {\n  type filter hook input priority 0; policy drop;\n }\n}\nEOF");
    let idle = common::rss_kib(agent_pid);
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(bench.create_check(&trace(30)).await);
    }
    let mut peak = idle;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(4) {
        peak = peak.max(common::rss_kib(agent_pid));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "agent: {:.1} ms CPU per traceroute (3 hops, 3 queries); RSS {} MiB idle, {} MiB peak with 50 blackholed traces in flight",
        cpu * 1000.0,
        idle / 1024,
        peak / 1024
    );
    drop(agents);
    bench.finish().await;
    chain_down();
}
