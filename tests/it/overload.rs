//! Past capacity, netcheck refuses at the door instead of accepting work it cannot finish:
//! checks to an agent whose answers queue get 503 `overloaded` with `Retry-After`, every
//! accepted check is answered (none turns into a `timeout`), and an agent past capacity
//! beside one that keeps up answers `agent_busy` at once.

use std::time::Duration;

use netcheck_proto::api::checks::{CheckStatus, CheckView};
use netcheck_proto::api::ErrorCode;
use netcheck_proto::check::CheckType;
use netcheck_proto::result::{ProbeErrorCode, ResultStatus};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;
use crate::rig::{check, rig_with, Rig};
use crate::targets;

/// An agent that runs one probe at a time, and HTTP checks that take 50 ms: about 20 a second.
async fn one_at_a_time() -> (Rig, netcheck_proto::api::checks::CreateCheck) {
    let rig = rig_with(&["--concurrency", "1"], |s| {
        // The product's defaults for the slack and the queueing limit.
        s.checks.grace_ms = 3000;
        s.checks.max_queueing_ms = 500;
        s.checks.rate_limit_per_minute = 1_000_000;
    })
    .await;
    let web = targets::http_server().await;
    let body = check(
        CheckType::Http,
        format!("http://{web}/slow/50"),
        json!({"timeout_ms": 2000}),
    );
    (rig, body)
}

/// Offers `per_second` checks a second for `secs` seconds; returns the accepted ids and
/// the refusals.
async fn offer(
    rig: &Rig,
    body: &netcheck_proto::api::checks::CreateCheck,
    per_second: u64,
    secs: u64,
) -> (Vec<Uuid>, Vec<netcheck::client::api::ClientError>) {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
    let mut tasks = Vec::new();
    for _ in 0..per_second * secs {
        tick.tick().await;
        let (api, body) = (rig.api.clone(), body.clone());
        tasks.push(tokio::spawn(async move { api.create_check(&body).await }));
    }
    let (mut accepted, mut refused) = (Vec::new(), Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            Ok(c) => accepted.push(c.id),
            Err(e) => refused.push(e),
        }
    }
    (accepted, refused)
}

async fn finished(rig: &Rig, ids: &[Uuid]) -> Vec<CheckView> {
    let mut out = Vec::new();
    for id in ids {
        out.push(
            eventually("check finished", Duration::from_secs(30), || async {
                let c = rig.api.check(*id).await.ok()?;
                (c.status == CheckStatus::Finished).then_some(c)
            })
            .await,
        );
    }
    out
}

fn code(r: &netcheck_proto::api::checks::CheckResultView) -> Option<ProbeErrorCode> {
    r.error.as_ref().map(|e| e.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_capacity_checks_are_refused_at_the_door_and_every_accepted_one_is_answered() {
    let (rig, body) = one_at_a_time().await;
    // Three times what the agent can do, for five seconds.
    let (accepted, refused) = offer(&rig, &body, 60, 5).await;
    assert!(!refused.is_empty(), "nothing refused at 3x capacity");
    for e in &refused {
        assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{e}");
        assert_eq!(e.code(), Some(ErrorCode::Overloaded), "{e}");
    }
    let checks = finished(&rig, &accepted).await;
    let results: Vec<_> = checks.iter().flat_map(|c| &c.results).collect();
    let timeouts = results
        .iter()
        .filter(|r| r.status == ResultStatus::Timeout)
        .count();
    let ok = results
        .iter()
        .filter(|r| r.status == ResultStatus::Ok)
        .count();
    let busy = results
        .iter()
        .filter(|r| code(r) == Some(ProbeErrorCode::AgentBusy))
        .count();
    eprintln!(
        "offered 300: accepted {}, refused {}, ok {ok}, agent_busy {busy}, timeout {timeouts}",
        accepted.len(),
        refused.len()
    );
    assert_eq!(timeouts, 0, "an accepted check ended as a timeout");
    assert_eq!(ok + busy, results.len(), "every answer is ok or agent_busy");
    // The promise is an answer for every accepted check; how many were taken too late (the
    // refusals start from a measured, so lagging, queue) varies with the machine's load.
    assert!(
        ok * 2 >= results.len(),
        "{ok} of {} accepted checks ran",
        results.len()
    );
    assert!(ok >= 30, "the agent kept working: {ok}");
    assert_eq!(
        rig.app.state.metrics.checks_overloaded.get(),
        refused.len() as u64
    );

    // The refusal says when to come back, while the queue stands.
    let raw = loop {
        let (_, refused) = offer(&rig, &body, 60, 1).await;
        if refused.is_empty() {
            continue;
        }
        let resp = rig
            .app
            .client
            .post(rig.app.url("/api/v1/checks"))
            .bearer_auth(&rig.app.admin_token().await)
            .json(&body)
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            break resp;
        }
    };
    let retry: u64 = raw.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    let (code, err) = error_code(raw, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(code, "overloaded");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("past capacity"),
        "{err}"
    );
    // The one agent is what is behind, and the body says so and by how much.
    assert_eq!(err["error"]["details"]["scope"], "agents", "{err}");
    let queued = err["error"]["details"]["queued_ms"]
        .as_u64()
        .expect("queued_ms");
    assert!(
        queued > 0 && queued.div_ceil(1000) <= retry,
        "queued {queued} ms, Retry-After {retry}: {err}"
    );

    // Once the queue has drained, checks are accepted again.
    eventually("accepted again", Duration::from_secs(15), || async {
        rig.api.create_check(&body).await.ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_past_capacity_answers_agent_busy_while_another_runs_the_check() {
    let (rig, body) = one_at_a_time().await;
    let (other, token) = rig.app.create_agent("idle").await;
    let _idle = rig.app.spawn_agent(&token);
    eventually("second agent online", Duration::from_secs(20), || async {
        (rig.app.agent(other.id).await.status == netcheck_proto::api::agents::AgentStatus::Online)
            .then_some(())
    })
    .await;
    // Flood the first agent alone until it is refused.
    let flood = body.clone().agents([rig.agent_id]);
    loop {
        let (_, refused) = offer(&rig, &flood, 60, 1).await;
        if refused
            .iter()
            .any(|e| e.code() == Some(ErrorCode::Overloaded))
        {
            break;
        }
    }
    // Past the limit a share of the checks to an agent is refused, growing with its queue:
    // of checks to both made while the queue stands, some find it busy, and the idle agent
    // runs every one of them.
    let both = body.clone().agents([rig.agent_id, other.id]);
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(rig.api.create_check(&both).await.unwrap().id);
    }
    let mut busy = 0;
    for c in finished(&rig, &ids).await {
        let of = |agent: Uuid| c.results.iter().find(|r| r.agent.id == agent).unwrap();
        assert_eq!(of(other.id).status, ResultStatus::Ok, "{c:?}");
        let flooded = of(rig.agent_id);
        if code(flooded) == Some(ProbeErrorCode::AgentBusy) {
            assert_eq!(flooded.status, ResultStatus::Failed, "{c:?}");
            busy += 1;
        }
    }
    assert!(busy >= 1, "none of 20 checks found the flooded agent busy");
    assert!(rig.app.state.metrics.agents_busy.get() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_run_refused_past_capacity_is_delayed_not_skipped() {
    let (rig, body) = one_at_a_time().await;
    // The agent's answers wait 4 s, eight times the limit, for as long as this runs: every
    // check to it is refused. Fed by hand because a real flood settles where only a share
    // of checks is refused, and the test needs this one run to be among them.
    let waiting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let feed = {
        let (state, agent, waiting) = (rig.app.state.clone(), rig.agent_id, waiting.clone());
        tokio::spawn(async move {
            while waiting.load(std::sync::atomic::Ordering::Relaxed) {
                for _ in 0..4 {
                    state.pressure.observe(agent, 4.0);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // An hourly monitor, due at once: its first run meets the backlog.
    let mut monitor =
        crate::monitors::tcp_monitor("held back", json!({"port": 9, "timeout_ms": 1000}));
    monitor.check =
        netcheck_proto::api::monitors::MonitorCheck::new(body.spec.clone(), body.target.clone());
    let created = rig.api.create_monitor(&monitor).await.unwrap().monitor;
    let delayed = eventually("run delayed", Duration::from_secs(10), || async {
        let m = rig.api.monitor(created.id).await.ok()?;
        m.delayed_since.map(|since| (since, m))
    })
    .await;
    assert!(delayed.1.last_check_id.is_none(), "{:?}", delayed.1);
    assert!(
        delayed.1.next_run_at < created.created_at + chrono::Duration::seconds(15),
        "retried soon, not an interval later: {:?}",
        delayed.1
    );
    waiting.store(false, std::sync::atomic::Ordering::Relaxed);
    feed.await.unwrap();
    // Once the backlog drained, the same run starts and the delay is cleared.
    let ran = eventually("run started", Duration::from_secs(30), || async {
        let m = rig.api.monitor(created.id).await.ok()?;
        m.last_check_id.is_some().then_some(m)
    })
    .await;
    assert_eq!(ran.delayed_since, None, "{ran:?}");
    assert!(ran.last_run_at.unwrap() >= delayed.0);
    assert!(ran.next_run_at > ran.last_run_at.unwrap() + chrono::Duration::seconds(3000));
}

/// Sends `signal` (`STOP`, `CONT`) to the agent process.
fn signal(agent: &Process, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), agent.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn an_agent_that_takes_a_request_too_late_answers_agent_busy_at_once() {
    let rig = crate::rig::rig().await;
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // A deadline far behind the start-by time: grace (1.5 s) plus the probe's 5 s.
    let body = check(
        CheckType::Tcp,
        "127.0.0.1",
        json!({"port": open.local_addr().unwrap().port(), "timeout_ms": 5000}),
    );
    let agent = rig._agent.as_ref().unwrap();
    signal(agent, "STOP");
    let created = rig.api.create_check(&body).await.unwrap();
    let c = rig.api.check(created.id).await.unwrap();
    // The agent is frozen past the request's start-by time (the thing under test is time).
    let late = c.created_at + chrono::Duration::milliseconds(1700);
    tokio::time::sleep((late - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    signal(agent, "CONT");
    let c = &finished(&rig, &[created.id]).await[0];
    let r = &c.results[0];
    assert_eq!(r.status, ResultStatus::Failed, "{c:?}");
    assert_eq!(code(r), Some(ProbeErrorCode::AgentBusy), "{c:?}");
    assert!(
        r.error
            .as_ref()
            .unwrap()
            .message
            .contains("took the request"),
        "{c:?}"
    );
    // Answered when the agent woke, long before the check's deadline.
    let answered = c.finished_at.unwrap() - c.created_at;
    assert!(answered < chrono::Duration::seconds(5), "{answered:?}");
}

#[tokio::test]
async fn a_server_past_capacity_refuses_before_it_reads_the_request() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    // A large body, which a refusal must still read: the connection carries the next one.
    let pad = "x".repeat(48 * 1024);
    let post = |auth: Option<&str>| {
        let mut req = app.client.post(app.url("/api/v1/checks")).json(
            &json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": 1}, "pad": pad}),
        );
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    // Nothing waits: an anonymous request is refused for want of a token.
    let (code, _) = error_code(post(None).await.unwrap(), StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "unauthenticated");

    // Two agents' answers have waited 4 s each: the server's own pipeline is behind.
    let waited = || {
        for agent in [Uuid::now_v7(), Uuid::now_v7()] {
            for _ in 0..4 {
                app.state.pressure.observe(agent, 4.0);
            }
        }
    };
    waited();
    let before = app.state.metrics.checks_overloaded.get();
    for auth in [None, None, Some(token.as_str()), Some(token.as_str())] {
        waited();
        let resp = post(auth).await.unwrap();
        assert_eq!(
            resp.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap()),
            Some("4"),
            "{resp:?}"
        );
        // The body was read, so the connection is kept for the next request.
        assert!(resp.headers().get("connection").is_none(), "{resp:?}");
        let (code, err) = error_code(resp, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(code, "overloaded", "{err}");
        assert_eq!(err["error"]["details"]["scope"], "server", "{err}");
        assert_eq!(err["error"]["details"]["queued_ms"], 4000, "{err}");
    }
    assert_eq!(app.state.metrics.checks_overloaded.get(), before + 4);
}
