//! `traceroute` and `mtr` through the API with a real agent, over a chain of network
//! namespaces (agent → router → router → target), with Debian's `traceroute` run on the same
//! chain as the reference.

use std::process::Command;

use netcheck_proto::api::agents::AgentStatus;
use netcheck_proto::api::checks::{CheckView, CreateCheck};
use netcheck_proto::check::CheckType;
use netcheck_proto::result::{ResultData, ResultStatus};
use netcheck_proto::trace::{MtrResult, TracerouteResult};
use serde_json::json;

use crate::netns::Chain;
use crate::rig::{check, data, error_code_of, only, rig_with, Rig};

pub async fn trace_rig() -> Rig {
    rig_with(&[], |s| {
        s.checks.allowed_networks.push("fd13::/16".parse().unwrap());
    })
    .await
}

/// The hop addresses of the one result, a traceroute's or an mtr's (`None` for a silent TTL).
fn hops(check: &CheckView) -> Vec<Option<String>> {
    let r = only(check);
    match &r.data {
        Some(ResultData::Traceroute(t)) => t.hops.iter().map(|h| h.address.clone()).collect(),
        Some(ResultData::Mtr(t)) => t.hops.iter().map(|h| h.address.clone()).collect(),
        _ => panic!("no trace: {r:?}"),
    }
}

pub fn traceroute(target: &str, options: serde_json::Value) -> CreateCheck {
    check(CheckType::Traceroute, target, options)
}

/// Debian's `traceroute -n` to `target` with `flags`: the address of each TTL (`None` for `*`).
fn reference(target: &str, flags: &[&str]) -> Vec<Option<String>> {
    let out = Command::new("traceroute")
        .args(flags)
        .args(["-n", "-q", "1", "-w", "1", "-m", "4", target])
        .output()
        .expect("Debian's traceroute is installed (scripts/test.sh installs it)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let addr = l.split_whitespace().nth(1).unwrap_or("*");
            (addr != "*").then(|| addr.to_string())
        })
        .collect()
}

#[tokio::test]
async fn every_protocol_finds_the_path_debians_traceroute_finds() {
    let chain = Chain::new();
    let rig = trace_rig().await;
    let want = chain.path();
    for (protocol, flags) in [
        ("icmp", vec!["-I"]),
        ("udp", vec![]),
        ("tcp", vec!["-T", "-p", "80"]),
    ] {
        // Each protocol is a person's next run: the routers' limiters refill in between.
        Chain::let_routers_refill().await;
        assert_eq!(
            reference(&chain.target.addr, &flags),
            want,
            "Debian's traceroute, {protocol}"
        );
        let port = (protocol == "tcp").then_some(80);
        let (check, _) = rig
            .run(traceroute(
                &chain.target.addr,
                json!({"protocol": protocol, "port": port}),
            ))
            .await;
        assert_eq!(hops(&check), want, "{protocol}: {check:?}");
        let r = only(&check);
        assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
        let trace: TracerouteResult = data(r);
        assert!(trace.reached);
        assert_eq!(
            trace.hops[2].rtt_ms.len(),
            3,
            "three answers per hop: {r:?}"
        );
    }
    // IPv6 on the same chain, every protocol.
    let want6 = chain.path6();
    for protocol in ["icmp", "udp", "tcp"] {
        Chain::let_routers_refill().await;
        let (check, _) = rig
            .run(traceroute(
                &chain.target.addr6,
                json!({"protocol": protocol}),
            ))
            .await;
        assert_eq!(hops(&check), want6, "IPv6 {protocol}: {check:?}");
    }
}

#[tokio::test]
async fn a_silent_router_is_null_and_a_blackholed_target_is_not_reached() {
    let chain = Chain::new();
    let rig = trace_rig().await;
    // Router 1 forwards but never says "time exceeded".
    chain.r1.nft("table inet quiet {\n chain out {\n type filter hook output priority 0;\n icmp type time-exceeded drop\n }\n}\n");
    let (check, _) = rig
        .run(traceroute(&chain.target.addr, json!({"max_hops": 6})))
        .await;
    assert_eq!(
        hops(&check),
        vec![
            None,
            Some(chain.r2.addr.clone()),
            Some(chain.target.addr.clone())
        ],
        "{check:?}"
    );
    assert!(data::<TracerouteResult>(only(&check)).reached);
    // The target drops everything: the routers are listed, the rest is null up to max_hops.
    chain.target.nft(
        "table inet hole {\n chain in {\n type filter hook input priority 0; policy drop;\n }\n}\n",
    );
    let (check, _) = rig
        .run(mtr(
            &chain.target.addr,
            json!({"max_hops": 6, "packets": 2, "timeout_ms": 500}),
        ))
        .await;
    let r = only(&check);
    assert_eq!(r.status, ResultStatus::Failed, "{r:?}");
    assert_eq!(error_code_of(r), Some("not_reached"));
    let m: MtrResult = data(r);
    assert!(!m.reached);
    assert_eq!(
        hops(&check),
        vec![None, Some(chain.r2.addr.clone()), None, None, None, None],
        "{check:?}"
    );
    assert_eq!(m.hops[5].loss_pct, 100.0);
    // …which is what `expect.reached: false` asks for.
    let (check, _) = rig
        .run(traceroute(
            &chain.target.addr,
            json!({"max_hops": 4, "timeout_ms": 300, "expect": {"reached": false}}),
        ))
        .await;
    assert_eq!(only(&check).status, ResultStatus::Ok, "{check:?}");
}

fn mtr(target: &str, options: serde_json::Value) -> CreateCheck {
    check(CheckType::Mtr, target, options)
}

/// Debian's `mtr -n -r -c <packets>` to `target`: the loss percentage of each hop.
fn reference_mtr(target: &str, packets: u8) -> Vec<f64> {
    let out = Command::new("mtr")
        .args(["-n", "-r", "-i", "1", "-c", &packets.to_string(), target])
        .output()
        .expect("Debian's mtr is installed (scripts/test.sh installs mtr-tiny)");
    let text = String::from_utf8_lossy(&out.stdout);
    let loss: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("|--"))
        .map(|l| {
            let pct = l.split_whitespace().nth(2).expect("a loss column");
            pct.trim_end_matches('%').parse().expect("a percentage")
        })
        .collect();
    assert!(!loss.is_empty(), "mtr printed no hops: {text}");
    loss
}

/// netcheck's and Debian's mtr with 10 packets, one after the other, on the same chain: the
/// loss per hop of each.
async fn mtr_side_by_side(rig: &Rig, chain: &Chain) -> (MtrResult, Vec<f64>) {
    let (check, _) = rig
        .run(mtr(&chain.target.addr, json!({"packets": 10})))
        .await;
    let ours: MtrResult = data(only(&check));
    Chain::let_routers_refill().await;
    let theirs = reference_mtr(&chain.target.addr, 10);
    (ours, theirs)
}

#[tokio::test]
async fn mtr_reads_no_loss_on_routers_that_rate_limit_as_debians_mtr() {
    let chain = Chain::new();
    let rig = trace_rig().await;
    let (ours, theirs) = mtr_side_by_side(&rig, &chain).await;
    assert!(ours.reached, "{ours:?}");
    assert_eq!(ours.hops.len(), theirs.len(), "{ours:?} vs {theirs:?}");
    for (hop, reference) in ours.hops.iter().zip(&theirs) {
        assert_eq!(hop.sent, 10, "{hop:?}");
        assert!(
            (hop.loss_pct - reference).abs() <= 10.0 && hop.loss_pct <= 10.0,
            "hop {}: netcheck {} %, mtr {reference} %: {ours:?}",
            hop.ttl,
            hop.loss_pct
        );
        assert!(!hop.rate_limited, "{hop:?}");
    }
}

#[tokio::test]
async fn mtr_reports_loss_on_a_lossy_hop_as_debians_mtr() {
    let chain = Chain::new();
    let rig = trace_rig().await;
    // Router 2 answers every other probe.
    chain.r2.nft("table inet lossy {\n chain out {\n type filter hook output priority 0;\n icmp type time-exceeded numgen inc mod 2 == 0 drop\n }\n}\n");
    let (m, theirs) = mtr_side_by_side(&rig, &chain).await;
    assert!(m.reached, "{m:?}");
    assert_eq!(m.hops[0].loss_pct, 0.0, "{m:?}");
    let lossy = m.hops[1].loss_pct;
    assert!(
        (30.0..=70.0).contains(&lossy) && (lossy - theirs[1]).abs() <= 10.0,
        "about half lost at router 2, as mtr reads it ({theirs:?}): {m:?}"
    );
    assert_eq!(m.hops[1].sent, 10);
    assert!(
        !m.hops[1].rate_limited,
        "one round a second is within the limit"
    );
    assert!(m.hops[2].rtt_ms.as_ref().unwrap().avg > 0.0);
}

#[tokio::test]
async fn mtr_rounds_faster_than_routers_answer_are_flagged() {
    let chain = Chain::new();
    let rig = trace_rig().await;
    // 16 rounds 100 ms apart: past the routers' burst of 6, most rounds go unanswered.
    let (check, _) = rig
        .run(mtr(
            &chain.target.addr,
            json!({"packets": 16, "interval_ms": 100}),
        ))
        .await;
    let m: MtrResult = data(only(&check));
    let r1 = &m.hops[0];
    assert!(r1.loss_pct >= 30.0, "the limiter drops rounds: {m:?}");
    assert!(r1.rate_limited, "and the result says why: {m:?}");
    // The target's echo replies are not rate-limited.
    assert_eq!(m.hops[2].loss_pct, 0.0, "{m:?}");
}

#[tokio::test]
async fn an_agent_that_cannot_trace_answers_unsupported_at_once() {
    let rig = trace_rig().await;
    // An agent that registered without the trace capabilities (no raw sockets, or older).
    let (_, token) = rig.app.create_agent("old-1").await;
    assert!(rig.app.register(&token).await.status().is_success());
    crate::helpers::eventually(
        "old-1 online",
        std::time::Duration::from_secs(10),
        || async {
            let agents = rig.api.agents().await.unwrap();
            agents
                .iter()
                .any(|a| a.name == "old-1" && a.status == AgentStatus::Online)
                .then_some(())
        },
    )
    .await;
    let body = traceroute("127.0.0.1", json!({"protocol": "udp"})).agents(["probe-1", "old-1"]);
    let (check, _) = rig.run(body).await;
    let by_name = |n: &str| check.results.iter().find(|r| r.agent.name == n).unwrap();
    assert_eq!(by_name("probe-1").status, ResultStatus::Ok, "{check:?}");
    let old = by_name("old-1");
    assert_eq!(old.status, ResultStatus::Failed);
    assert_eq!(error_code_of(old), Some("unsupported"));
    assert!(
        old.error
            .as_ref()
            .unwrap()
            .message
            .contains("udp traceroute"),
        "{old:?}"
    );
}
