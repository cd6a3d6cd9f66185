//! Many traces from one agent at once, through routers that keep Linux's default ICMP rate
//! limits (a burst of 6 time-exceeded per source, then one a second): the agent's pacer
//! spreads them so they fare no worse than the same traces run in turn, answers are never
//! taken for another trace's, and a hop silenced by the limiter says so.

use std::process::Command;
use std::time::Duration;

use netcheck_proto::api::checks::{CheckStatus, CheckView};
use netcheck_proto::trace::TracerouteResult;
use serde_json::json;
use uuid::Uuid;

use crate::netns::Chain;
use crate::rig::{data, only, Rig};
use crate::traces::{trace_rig, traceroute};

/// Creates the checks at once (not one stream each: a user may hold 20), then reads them
/// when finished.
async fn together(
    rig: &Rig,
    n: usize,
    protocol: impl Fn(usize) -> &'static str,
    target: &str,
) -> Vec<CheckView> {
    let mut ids: Vec<Uuid> = Vec::new();
    for i in 0..n {
        let body = traceroute(target, json!({"protocol": protocol(i)}));
        ids.push(rig.api.create_check(&body).await.unwrap().id);
    }
    let mut checks = Vec::new();
    for id in ids {
        checks.push(
            crate::helpers::eventually("the trace", Duration::from_secs(60), || async {
                let c = rig.app.check(&rig.token, id).await;
                (c.status == CheckStatus::Finished).then_some(c)
            })
            .await,
        );
    }
    checks
}

/// Answers at router 1 and router 2, over every query of these traces, checking on the way
/// that no hop shows another trace's answer and that a hop missing answers says whether the
/// agent's own rate may be why.
fn answers_at_routers(chain: &Chain, checks: &[CheckView]) -> [usize; 2] {
    let want = chain.path();
    let mut answered = [0, 0];
    for check in checks {
        let trace: TracerouteResult = data(only(check));
        for (i, hop) in trace.hops.iter().enumerate().take(3) {
            if let Some(a) = &hop.address {
                assert_eq!(Some(a), want[i].as_ref(), "hop {}: {check:?}", hop.ttl);
            }
        }
        for (i, n) in answered.iter_mut().enumerate() {
            let hop = &trace.hops[i];
            *n += hop.rtt_ms.len();
            assert!(
                hop.rtt_ms.len() == 3 || hop.rate_limited,
                "a hop missing answers while the agent probed beyond the routers' rate is \
                 flagged: {check:?}"
            );
        }
    }
    answered
}

/// Debian's `traceroute -I -q 3` to `target`, `n` at once: answers at TTL 1 and 2.
fn debian_together(target: &str, n: usize) -> [usize; 2] {
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new("traceroute")
                .args(["-I", "-n", "-q", "3", "-w", "1", "-m", "4", target])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("Debian's traceroute is installed")
        })
        .collect();
    let mut answered = [0, 0];
    for child in children {
        let out = child.wait_with_output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            let mut words = line.split_whitespace();
            let ttl: usize = words.next().and_then(|t| t.parse().ok()).unwrap_or(0);
            if (1..=2).contains(&ttl) {
                answered[ttl - 1] += words.filter(|w| *w == "ms").count();
            }
        }
    }
    answered
}

#[tokio::test]
async fn twenty_traces_started_together_fare_no_worse_than_in_turn_or_debians() {
    let chain = Chain::new();
    let rig = trace_rig().await;
    let target = chain.target.addr.clone();
    let n = 20;
    let mut in_turn = Vec::new();
    for _ in 0..n {
        in_turn.push(rig.run(traceroute(&target, json!({}))).await.0);
    }
    let in_turn = answers_at_routers(&chain, &in_turn);
    Chain::let_routers_refill().await;
    let started = std::time::Instant::now();
    let checks = together(&rig, n, |_| "icmp", &target).await;
    let took = started.elapsed();
    for c in &checks {
        assert!(data::<TracerouteResult>(only(c)).reached, "{c:?}");
    }
    let at_once = answers_at_routers(&chain, &checks);
    Chain::let_routers_refill().await;
    let debian = debian_together(&target, n);
    let queries = 3 * n;
    eprintln!(
        "answers of {queries} queries at router 1 / router 2: together {at_once:?} in {took:?}, \
         in turn {in_turn:?}, Debian's traceroute together {debian:?}"
    );
    for i in 0..2 {
        assert!(
            at_once[i] >= in_turn[i] && at_once[i] >= debian[i],
            "router {}: together {at_once:?}, in turn {in_turn:?}, Debian {debian:?}",
            i + 1
        );
    }
}

#[tokio::test]
async fn fifty_concurrent_traces_on_one_agent_each_get_their_own_hops() {
    let chain = Chain::new();
    let rig = trace_rig().await;
    let protocols = ["icmp", "udp", "tcp"];
    let checks = together(&rig, 50, |i| protocols[i % 3], &chain.target.addr).await;
    answers_at_routers(&chain, &checks);
    for (i, check) in checks.iter().enumerate() {
        // The target's echo replies and TCP answers are not rate-limited; its UDP
        // port-unreachable errors are, so a UDP trace among fifty may end unreached.
        if protocols[i % 3] != "udp" {
            assert!(data::<TracerouteResult>(only(check)).reached, "{check:?}");
        }
    }
}
