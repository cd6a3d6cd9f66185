//! `traceroute` and `mtr` through the API with a real agent, over a chain of network
//! namespaces (agent → router → router → target), with Debian's `traceroute` run on the same
//! chain as the reference.

use std::process::Command;

use serde_json::{json, Value};

use crate::netns::Chain;
use crate::rig::{rig_with, Rig};

async fn trace_rig() -> Rig {
    rig_with(&[], |s| {
        s.checks.allowed_networks.push("fd13::/16".parse().unwrap());
    })
    .await
}

/// The hop addresses of the one result (`None` for a silent TTL).
fn hops(check: &Value) -> Vec<Option<String>> {
    check["results"][0]["hops"]
        .as_array()
        .unwrap_or_else(|| panic!("no hops: {check}"))
        .iter()
        .map(|h| h["address"].as_str().map(str::to_string))
        .collect()
}

/// Debian's `traceroute -n` to `target` with `flags`: the address of each TTL (`None` for `*`).
fn reference(target: &str, flags: &[&str]) -> Vec<Option<String>> {
    let out = Command::new("traceroute")
        .args(flags)
        .args(["-n", "-q", "1", "-w", "1", "-m", "8", target])
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
    let want = vec![
        Some(chain.r1.addr.clone()),
        Some(chain.r2.addr.clone()),
        Some(chain.target.addr.clone()),
    ];
    for (protocol, flags) in [
        ("icmp", vec!["-I"]),
        ("udp", vec![]),
        ("tcp", vec!["-T", "-p", "80"]),
    ] {
        assert_eq!(
            reference(&chain.target.addr, &flags),
            want,
            "Debian's traceroute, {protocol}"
        );
        let (check, _) = rig
            .run(json!({"type": "traceroute", "target": chain.target.addr, "options": {"protocol": protocol, "port": if protocol == "tcp" { Some(80) } else { None }}}))
            .await;
        assert_eq!(hops(&check), want, "{protocol}: {check}");
        let r = &check["results"][0];
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["reached"], true);
        assert!(
            r["hops"][2]["rtt_ms"].as_array().unwrap().len() == 3,
            "three answers per hop: {r}"
        );
    }
    // IPv6 on the same chain, every protocol.
    let want6 = vec![
        Some(chain.r1.addr6.clone()),
        Some(chain.r2.addr6.clone()),
        Some(chain.target.addr6.clone()),
    ];
    for protocol in ["icmp", "udp", "tcp"] {
        let (check, _) = rig
            .run(json!({"type": "traceroute", "target": chain.target.addr6, "options": {"protocol": protocol}}))
            .await;
        assert_eq!(hops(&check), want6, "IPv6 {protocol}: {check}");
    }
}

#[tokio::test]
async fn a_silent_router_is_null_and_a_blackholed_target_is_not_reached() {
    let chain = Chain::new();
    let rig = trace_rig().await;
    // Router 1 forwards but never says "time exceeded".
    chain.r1.nft("table inet quiet {\n chain out {\n type filter hook output priority 0;\n icmp type time-exceeded drop\n }\n}\n");
    let (check, _) = rig
        .run(json!({"type": "traceroute", "target": chain.target.addr, "options": {"max_hops": 6}}))
        .await;
    assert_eq!(
        hops(&check),
        vec![
            None,
            Some(chain.r2.addr.clone()),
            Some(chain.target.addr.clone())
        ],
        "{check}"
    );
    assert_eq!(check["results"][0]["reached"], true);
    // The target drops everything: the routers are listed, the rest is null up to max_hops.
    chain.target.nft(
        "table inet hole {\n chain in {\n type filter hook input priority 0; policy drop;\n }\n}\n",
    );
    let (check, _) = rig
        .run(json!({"type": "mtr", "target": chain.target.addr, "options": {"max_hops": 6, "packets": 2, "timeout_ms": 500}}))
        .await;
    let r = &check["results"][0];
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["error"]["code"], "not_reached");
    assert_eq!(r["reached"], false);
    assert_eq!(
        hops(&check),
        vec![None, Some(chain.r2.addr.clone()), None, None, None, None],
        "{check}"
    );
    assert_eq!(r["hops"][5]["loss_pct"], 100.0);
    // …which is what `expect.reached: false` asks for.
    let (check, _) = rig
        .run(json!({"type": "traceroute", "target": chain.target.addr, "options": {"max_hops": 4, "timeout_ms": 300, "expect": {"reached": false}}}))
        .await;
    assert_eq!(check["results"][0]["status"], "ok", "{check}");
}

#[tokio::test]
async fn mtr_reports_loss_on_a_lossy_hop() {
    let chain = Chain::new();
    let rig = trace_rig().await;
    // Router 2 answers every other probe.
    chain.r2.nft("table inet lossy {\n chain out {\n type filter hook output priority 0;\n icmp type time-exceeded numgen inc mod 2 == 0 drop\n }\n}\n");
    let (check, _) = rig
        .run(json!({"type": "mtr", "target": chain.target.addr, "options": {"packets": 10, "timeout_ms": 500}}))
        .await;
    let r = &check["results"][0];
    assert_eq!(r["reached"], true, "{r}");
    let hop = |i: usize| &r["hops"][i];
    assert_eq!(hop(0)["loss_pct"], 0.0, "{r}");
    let lossy = hop(1)["loss_pct"].as_f64().unwrap();
    assert!(
        (30.0..=70.0).contains(&lossy),
        "about half lost at router 2: {r}"
    );
    assert_eq!(hop(1)["sent"], 10);
    assert!(hop(2)["rtt_ms"]["avg"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn fifty_concurrent_traces_on_one_agent_each_get_their_own_hops() {
    let chain = Chain::new();
    let rig = trace_rig().await;
    let want = vec![
        Some(chain.r1.addr.clone()),
        Some(chain.r2.addr.clone()),
        Some(chain.target.addr.clone()),
    ];
    // Created at once (not one stream each: a user may hold 20), then read when finished.
    let mut ids = Vec::new();
    for i in 0..50 {
        let protocol = ["icmp", "udp", "tcp"][i % 3];
        let resp = rig
            .create(json!({"type": "traceroute", "target": chain.target.addr, "options": {"protocol": protocol}}))
            .await;
        assert_eq!(resp.status(), reqwest::StatusCode::ACCEPTED);
        ids.push(
            resp.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        let check =
            crate::helpers::eventually("the trace", std::time::Duration::from_secs(60), || async {
                let c = rig.app.check(&rig.token, id).await;
                (c["status"] == "finished").then_some(c)
            })
            .await;
        assert_eq!(hops(&check), want, "{check}");
    }
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
            let list = rig.app.get_json(&rig.token, "/api/v1/agents").await;
            list.as_array()?
                .iter()
                .any(|a| a["name"] == "old-1" && a["status"] == "online")
                .then_some(())
        },
    )
    .await;
    let (check, _) = rig
        .run(json!({"type": "traceroute", "target": "127.0.0.1", "agents": ["probe-1", "old-1"], "options": {"protocol": "udp"}}))
        .await;
    let by_name = |n: &str| {
        check["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["agent"]["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("probe-1")["status"], "ok", "{check}");
    let old = by_name("old-1");
    assert_eq!(old["status"], "failed");
    assert_eq!(old["error"]["code"], "unsupported");
    assert!(
        old["error"]["message"]
            .as_str()
            .unwrap()
            .contains("udp traceroute"),
        "{old}"
    );
}
