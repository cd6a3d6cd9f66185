//! One user's check cannot knock an agent off the broker: answers no well-behaved server
//! gives (a 300 KB `Location`, 99 headers of 1 KiB of 0xFF, 4 000 DNS records over TCP) give
//! small, clear results, the agent keeps its broker session, and the next check is answered
//! at once.

use std::time::{Duration, Instant};

use netcheck_proto::check::CheckType;
use netcheck_proto::result::{DnsResult, HttpResult, ResultStatus, TcpResult};
use serde_json::json;

use crate::rig::{check, data, only, rig_with};
use crate::targets;

async fn agent_metric(listen: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{listen}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

#[tokio::test]
async fn oversized_answers_give_bounded_results_and_the_agent_keeps_its_session() {
    let port = crate::helpers::unused_port();
    let listen = format!("127.0.0.1:{port}");
    let rig = rig_with(&["--metrics-listen", &listen], |_| {}).await;
    let web = targets::http_server().await;
    let dns = targets::dns_server().await;

    // A 300 KB Location: reported cut to 2 KiB, and refused when it is to be followed.
    let url = format!("http://{web}/huge-location");
    let (c, _) = rig
        .run(check(
            CheckType::Http,
            url.clone(),
            json!({"timeout_ms": 5000}),
        ))
        .await;
    let r = only(&c);
    let h: HttpResult = data(r);
    assert_eq!(h.status_code, Some(302), "{r:?}");
    let to = h.redirect_to.as_deref().unwrap();
    assert!(to.len() <= 2048 + 3 && to.ends_with('…'), "{}", to.len());
    assert!(h.headers_truncated);
    assert!(h.headers.values().map(|v| v.len()).sum::<usize>() <= 16 * 1024);
    let (c, _) = rig
        .run(check(
            CheckType::Http,
            url,
            json!({"timeout_ms": 5000, "follow_redirects": true}),
        ))
        .await;
    let r = only(&c);
    assert_eq!(r.status, ResultStatus::Failed);
    let e = r.error.as_ref().unwrap();
    assert_eq!(e.code.as_str(), "bad_redirect", "{r:?}");
    assert!(e.message.contains("300001 bytes"), "{}", e.message);

    // 90 headers of 1 KiB of 0xFF (3 KiB each once decoded): at most 16 KiB reported.
    let (c, _) = rig
        .run(check(
            CheckType::Http,
            format!("http://{web}/ff-headers/90"),
            json!({"timeout_ms": 5000}),
        ))
        .await;
    let r = only(&c);
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    let h: HttpResult = data(r);
    let bytes: usize = h.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(bytes <= 16 * 1024 && h.headers_truncated, "{bytes}");
    assert!(h.headers.len() < 90);
    // 99 of them (with the server's own, over the client's 100): refused, and said why.
    let (c, _) = rig
        .run(check(
            CheckType::Http,
            format!("http://{web}/ff-headers/99"),
            json!({"timeout_ms": 5000}),
        ))
        .await;
    let r = only(&c);
    assert_eq!(r.status, ResultStatus::Failed, "{r:?}");
    assert!(
        r.error.as_ref().unwrap().message.contains("too large"),
        "{r:?}"
    );

    // 4 000 records over TCP: 100 reported, flagged.
    let (c, _) = rig
        .run(check(
            CheckType::Dns,
            "many.test",
            json!({"resolver": dns.to_string(), "timeout_ms": 5000}),
        ))
        .await;
    let r = only(&c);
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    let d: DnsResult = data(r);
    assert_eq!(d.answers.len(), 100);
    assert!(d.truncated);

    // The session held, and the next check is answered at once.
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let t = Instant::now();
    let (c, _) = rig
        .run(check(
            CheckType::Tcp,
            "127.0.0.1",
            json!({"port": open.local_addr().unwrap().port()}),
        ))
        .await;
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(data::<TcpResult>(only(&c)).connected);
    assert_eq!(
        agent_metric(&listen, "netcheck_agent_reconnects_total").await,
        0.0,
        "no broker session lost"
    );
}

/// Takes seconds over `/zeros-ones` even in the regex crate's linear time: its lazy DFA keeps
/// outgrowing its cache.
const PATHOLOGICAL: &str = "(?:[01]{0,30}1){1,60}x";

#[tokio::test]
async fn a_pathological_body_regex_is_unevaluable_in_time_and_stalls_nothing() {
    let rig = rig_with(&[], |_| {}).await;
    let web = targets::http_server().await;
    let slow = check(
        CheckType::Http,
        format!("http://{web}/zeros-ones"),
        json!({"timeout_ms": 1500, "expect": {"body_regex": PATHOLOGICAL}}),
    );
    // Three at once: two hold the judges, the third cannot start in time.
    let t = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(rig.api.create_check(&slow).await.unwrap().id);
    }
    // Meanwhile other checks answer at once.
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = open.local_addr().unwrap().port();
    for _ in 0..3 {
        let asked = Instant::now();
        let (c, _) = rig
            .run(check(CheckType::Tcp, "127.0.0.1", json!({"port": port})))
            .await;
        assert!(data::<TcpResult>(only(&c)).connected);
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
    }
    for id in ids {
        let results = rig.events(id).await;
        let r = &results[0];
        assert_eq!(r.status, ResultStatus::Failed, "{r:?}");
        assert_eq!(
            r.error.as_ref().map(|e| e.code.as_str()),
            Some("expectation_unevaluable"),
            "{r:?}"
        );
        assert!(r.duration_ms.unwrap() < 2100.0, "{r:?}");
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // The agent still heartbeats: it is online.
    assert_eq!(
        rig.app.agent(rig.agent_id).await.status,
        netcheck_proto::api::agents::AgentStatus::Online
    );
}
