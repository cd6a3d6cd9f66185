//! Traces on a chain of network namespaces (agent → router → router → target, 10.213.240.0/24)
//! whose routers keep Linux's default ICMP rate limits (a burst of 6, then one a second), side
//! by side with Debian's `traceroute` and `mtr` in the same run: wall time and hop lists to a
//! reachable 3-hop target and to a blackholed one, loss per hop against `mtr -r` with the same
//! packets and interval (healthy, and with router 2 dropping every other answer), the answer
//! rate of 20 traces started together, in turn, and Debian's 20 together, the agent's CPU per
//! trace and its memory with 50 traces in flight. Runs follow each other as a person's would:
//! the routers' limiters refill (6 s) between them.
//!
//! Run: `cargo bench --bench traces` (as root; installs nothing: needs traceroute and mtr-tiny).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{median, sh, Bench};
use netcheck_proto::api::checks::{CheckStatus, CheckView, CreateCheck};
use netcheck_proto::check::CheckType;
use netcheck_proto::trace::{MtrResult, TracerouteResult};
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
         for n in ncb-r1 ncb-r2; do ip netns exec $n sysctl -qw net.ipv4.ip_forward=1; done"
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

/// Lets the routers' ICMP limiters refill their burst, as between a person's two runs.
async fn refill() {
    tokio::time::sleep(Duration::from_secs(6)).await;
}

/// The first address on each hop line of Debian's traceroute (`None` for `* * *`), and the
/// answers on the lines of TTL 1 and 2.
fn debian_hops(out: &str) -> (Vec<Option<String>>, [usize; 2]) {
    let mut hops = Vec::new();
    let mut answers = [0, 0];
    for line in out.lines().skip(1) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ttl: usize = words.first().and_then(|w| w.parse().ok()).unwrap_or(0);
        hops.push(
            words
                .iter()
                .find(|w| w.contains('.'))
                .map(|w| w.to_string()),
        );
        if (1..=2).contains(&ttl) {
            answers[ttl - 1] += words.iter().filter(|w| **w == "ms").count();
        }
    }
    (hops, answers)
}

/// Debian's `mtr -r`: loss per hop.
fn mtr_loss(report: &str) -> Vec<f64> {
    report
        .lines()
        .filter(|l| l.contains("|--"))
        .filter_map(|l| {
            l.split_whitespace()
                .nth(2)?
                .trim_end_matches('%')
                .parse()
                .ok()
        })
        .collect()
}

fn trace_hops(c: &CheckView) -> (Vec<Option<String>>, [usize; 2]) {
    let t: TracerouteResult = c.results[0].data_as::<TracerouteResult>().unwrap().clone();
    let answers = [t.hops[0].rtt_ms.len(), t.hops[1].rtt_ms.len()];
    (t.hops.into_iter().map(|h| h.address).collect(), answers)
}

fn losses(m: &MtrResult) -> Vec<f64> {
    m.hops.iter().map(|h| h.loss_pct).collect()
}

#[tokio::main]
async fn main() {
    let runs = common::env_or("BENCH_RUNS", 3) as usize;
    chain_up();
    let target = format!("{NET}.10");
    let bench = Bench::start(&["10.213.0.0/16"]).await;
    let agents = bench.spawn_agents(1).await;
    let agent_pid = agents[0].id();

    let trace = |max_hops: u32| {
        CreateCheck::from_options(
            CheckType::Traceroute,
            target.clone(),
            json!({"max_hops": max_hops, "timeout_ms": 1000}),
        )
        .unwrap()
    };
    let mtr = CreateCheck::from_options(
        CheckType::Mtr,
        target.clone(),
        json!({"packets": 10, "interval_ms": 1000, "timeout_ms": 1000}),
    )
    .unwrap();
    let debian_mtr = ["--report", "-n", "-c", "10", "-i", "1", target.as_str()];
    let reached = |c: &CheckView| {
        let trace: TracerouteResult = c.results[0].data_as::<TracerouteResult>().unwrap().clone();
        trace.reached
    };

    // Reachable target: time, hop lists, mtr loss and RTTs against Debian's tools.
    let (mut nc_wall, mut nc_probe, mut deb, mut nc_mtr, mut deb_mtr) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut same_hops, mut rtt_deltas, mut loss_deltas) = (0, Vec::new(), Vec::new());
    let (mut nc_loss, mut deb_loss) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        refill().await;
        let (w, p, c) = run(&bench, trace(30)).await;
        assert!(reached(&c), "{c:?}");
        nc_wall.push(w);
        nc_probe.push(p);
        refill().await;
        let (t, out) = timed("traceroute", &["-I", "-n", "-q", "3", "-w", "1", &target]);
        deb.push(t);
        if debian_hops(&out).0 == trace_hops(&c).0 {
            same_hops += 1;
        }
        refill().await;
        let (w, _, c) = run(&bench, mtr.clone()).await;
        nc_mtr.push(w);
        let ours: MtrResult = c.results[0].data_as::<MtrResult>().unwrap().clone();
        refill().await;
        let (t, report) = timed("mtr", &debian_mtr);
        deb_mtr.push(t);
        // Hop averages (mtr's Avg column) and loss, per hop.
        let theirs_avg: Vec<f64> = report
            .lines()
            .filter(|l| l.contains("|--"))
            .filter_map(|l| l.split_whitespace().nth(5).and_then(|v| v.parse().ok()))
            .collect();
        for (h, b) in ours.hops.iter().zip(&theirs_avg) {
            if let Some(r) = &h.rtt_ms {
                rtt_deltas.push((r.avg - b).abs());
            }
        }
        let theirs = mtr_loss(&report);
        for (a, b) in losses(&ours).iter().zip(&theirs) {
            loss_deltas.push((a - b).abs());
        }
        nc_loss = losses(&ours);
        deb_loss = theirs;
    }
    println!(
        "reachable 3-hop target, ICMP, default router limits: netcheck traceroute {:.0} ms end to end ({:.1} ms on the agent), Debian traceroute -I -q 3 -w 1 {:.0} ms; same hop list in {same_hops} of {runs} runs",
        median(&nc_wall),
        median(&nc_probe),
        median(&deb)
    );
    println!(
        "  mtr 10 packets 1 s apart: netcheck {:.0} ms, mtr -r -c 10 -i 1 {:.0} ms; loss per hop (last run) netcheck {nc_loss:?} mtr {deb_loss:?}, |difference| max {:.1} points; hop RTT |netcheck avg − mtr avg| median {:.3} ms, max {:.3} ms",
        median(&nc_mtr),
        median(&deb_mtr),
        loss_deltas.iter().copied().fold(0.0, f64::max),
        median(&rtt_deltas),
        rtt_deltas.iter().copied().fold(0.0, f64::max)
    );

    // Router 2 drops every other time-exceeded: both should read about 50 % there.
    sh("ip netns exec ncb-r2 nft -f - <<'EOF'\ntable inet lossy {\n chain out {\n  type filter hook output priority 0;\n  icmp type time-exceeded numgen inc mod 2 == 0 drop\n }\n}\nEOF");
    refill().await;
    let (_, _, c) = run(&bench, mtr.clone()).await;
    let ours: MtrResult = c.results[0].data_as::<MtrResult>().unwrap().clone();
    refill().await;
    let (_, report) = timed("mtr", &debian_mtr);
    println!(
        "  router 2 drops every other answer: loss per hop netcheck {:?}, mtr {:?}",
        losses(&ours),
        mtr_loss(&report)
    );
    sh("ip netns exec ncb-r2 nft flush ruleset");

    // 20 traces started together, in turn, and Debian's 20 together: answers at the routers.
    let n = 20;
    refill().await;
    let mut in_turn = [0, 0];
    for _ in 0..n {
        let a = trace_hops(&run(&bench, trace(30)).await.2).1;
        in_turn = [in_turn[0] + a[0], in_turn[1] + a[1]];
    }
    refill().await;
    let t = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(bench.create_check(&trace(30)).await);
    }
    let mut together = [0, 0];
    for id in ids {
        bench.until_finished(id).await;
        let a = trace_hops(&bench.api.check(id).await.unwrap()).1;
        together = [together[0] + a[0], together[1] + a[1]];
    }
    let together_ms = t.elapsed().as_secs_f64() * 1000.0;
    refill().await;
    let t = Instant::now();
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new("traceroute")
                .args(["-I", "-n", "-q", "3", "-w", "1", "-m", "4", &target])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut debian = [0, 0];
    for c in children {
        let a = debian_hops(&String::from_utf8_lossy(
            &c.wait_with_output().unwrap().stdout,
        ))
        .1;
        debian = [debian[0] + a[0], debian[1] + a[1]];
    }
    let debian_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "  {n} traceroutes (60 queries per router), answers at router 1 / router 2: netcheck together {together:?} in {together_ms:.0} ms, netcheck in turn {in_turn:?}, Debian traceroute together {debian:?} in {debian_ms:.0} ms"
    );

    // Blackholed target: nothing answers past router 2.
    sh("ip netns exec ncb-t nft -f - <<'EOF'\ntable inet hole {\n chain in {\n  type filter hook input priority 0; policy drop;\n }\n}\nEOF");
    let (mut nc_wall, mut nc_probe, mut deb) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        refill().await;
        let (w, p, c) = run(&bench, trace(30)).await;
        assert!(!reached(&c), "{c:?}");
        nc_wall.push(w);
        nc_probe.push(p);
        refill().await;
        deb.push(
            timed(
                "traceroute",
                &["-I", "-n", "-q", "3", "-w", "1", "-m", "30", &target],
            )
            .0,
        );
    }
    println!(
        "blackholed target, max 30 hops: netcheck traceroute {:.0} ms end to end ({:.0} ms on the agent), Debian traceroute {:.0} ms: {:.1}x faster",
        median(&nc_wall),
        median(&nc_probe),
        median(&deb),
        median(&deb) / median(&nc_wall),
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
    while t.elapsed() < Duration::from_secs(8) {
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
