//! Finding and sharing results: history filters, share links (no login, nothing that finds the
//! agents' hosts, expiry, withdrawal), and retention.

use netcheck::client::api::ClientResult;
use netcheck_proto::api::checks::{HistoryQuery, OutcomeFilter};
use netcheck_proto::api::monitors::{CreateMonitor, MonitorCheck};
use netcheck_proto::api::share::{ShareLink, ShareRequest, SharedCheck};
use netcheck_proto::check::{CheckSpec, CheckType};
use netcheck_proto::result::{HttpResult, ResultStatus};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::helpers::*;
use crate::rig::{check, rig};
use crate::targets;

async fn share(app: &TestApp, token: &str, id: &str, body: Option<Value>) -> reqwest::Response {
    let req = app
        .client
        .post(app.url(&format!("/api/v1/checks/{id}/share")))
        .bearer_auth(token);
    match body {
        Some(b) => req.json(&b),
        None => req,
    }
    .send()
    .await
    .unwrap()
}

/// The shared check behind `token`, read by someone who is not signed in.
async fn shared(app: &TestApp, token: &str) -> ClientResult<SharedCheck> {
    app.api().shared(token).await
}

/// The status a failed call answered with.
fn status_of<T>(r: ClientResult<T>) -> StatusCode {
    match r {
        Ok(_) => panic!("the call should fail"),
        Err(e) => e.status().unwrap(),
    }
}

#[tokio::test]
async fn a_share_link_shows_the_check_without_login_and_nothing_that_finds_the_agents() {
    let rig = rig().await;
    let addr = targets::http_server().await;
    let (c, _) = rig
        .run(check(
            CheckType::Http,
            format!("http://{addr}/status/200"),
            json!({"headers": {"authorization": "Bearer very-secret-value"}}),
        ))
        .await;
    let id = &c.id.to_string();
    // The body is optional.
    let resp = share(&rig.app, &rig.token, id, None).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let link: ShareLink = resp.json().await.unwrap();
    let token = link.token.as_str();
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    assert_eq!(link.url, rig.app.url(&format!("/s/{token}")));
    let days = (link.expires_at - chrono::Utc::now()).num_hours();
    assert!(
        (29 * 24..=30 * 24).contains(&days),
        "30 days by default: {days} h"
    );

    // Only a hash of the token is stored.
    let row = rig
        .app
        .state
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!("SELECT token_hash FROM check_shares WHERE check_id = '{id}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: Vec<u8> = row.try_get("", "token_hash").unwrap();
    assert_eq!(stored, Sha256::digest(token.as_bytes()).to_vec());

    let view = shared(&rig.app, token).await.unwrap();
    assert_eq!(view.id, c.id);
    assert_eq!(view.results[0].status, ResultStatus::Ok);
    let result = view.results[0]
        .data
        .as_ref()
        .and_then(|d| d.get::<HttpResult>());
    assert_eq!(result.map(|r| r.status_code), Some(Some(200)));
    assert_eq!(view.results[0].agent.name, "probe-1");
    // What the page shows of an agent, on the wire: nothing more than these.
    let wire: Value = rig
        .app
        .client
        .get(rig.app.url(&format!("/api/v1/shared/{token}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agent = &wire["results"][0]["agent"];
    let keys: Vec<&String> = agent.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["location", "name", "region"], "{agent}");
    let text = wire.to_string();
    assert!(
        !text.contains(&rig.agent_id.to_string()),
        "no agent id: {text}"
    );
    let host = rig.app.agent(rig.agent_id).await.hostname.unwrap();
    assert!(
        !text.contains(&format!("\"{host}\"")),
        "no host name: {text}"
    );
    assert!(
        !text.contains("very-secret-value"),
        "request header values are hidden"
    );
    let CheckSpec::Http(options) = &view.spec else {
        panic!("an http check: {view:?}")
    };
    assert_eq!(options.headers["authorization"], "(hidden)");

    // A new link replaces the old one; withdrawing it ends it.
    let one_day = ShareRequest {
        expires_in_days: Some(1),
    };
    let again = rig.api.share(c.id, &one_day).await.unwrap();
    let second = again.token.as_str();
    assert_eq!(
        status_of(shared(&rig.app, token).await),
        StatusCode::NOT_FOUND
    );
    assert!(shared(&rig.app, second).await.is_ok());
    let eve = rig.app.api_as(&rig.app.user_token("eve").await);
    assert_eq!(
        status_of(eve.share(c.id, &ShareRequest::default()).await),
        StatusCode::NOT_FOUND,
        "not eve's check"
    );
    assert_eq!(status_of(eve.unshare(c.id).await), StatusCode::NOT_FOUND);
    rig.api.unshare(c.id).await.unwrap();
    assert_eq!(
        status_of(shared(&rig.app, second).await),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(rig.api.unshare(c.id).await),
        StatusCode::NOT_FOUND,
        "nothing left to withdraw"
    );

    // Expired links answer like unknown ones.
    let third = rig.api.share(c.id, &ShareRequest::default()).await.unwrap();
    rig.app
        .state
        .db
        .execute_unprepared(&format!("UPDATE check_shares SET expires_at = now() - interval '1 second' WHERE check_id = '{id}'"))
        .await
        .unwrap();
    assert_eq!(
        status_of(shared(&rig.app, &third.token).await),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(shared(&rig.app, "not-a-token").await),
        StatusCode::NOT_FOUND
    );
    for days in [0, 366] {
        let resp = share(
            &rig.app,
            &rig.token,
            id,
            Some(json!({"expires_in_days": days})),
        )
        .await;
        let (_, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["error"]["details"]["field"], "expires_in_days");
    }
}

#[tokio::test]
async fn history_filters_combine() {
    let rig = rig().await;
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let closed = unused_port();
    let addr = targets::http_server().await;
    let mut ids = Vec::new();
    for body in [
        check(CheckType::Tcp, "127.0.0.1", json!({"port": port})),
        check(CheckType::Tcp, "127.0.0.1", json!({"port": closed})),
        check(CheckType::Http, format!("http://{addr}/final"), json!({})),
        check(
            CheckType::Http,
            format!("http://{addr}/status/500"),
            json!({}),
        ),
    ] {
        ids.push(rig.run(body).await.0.id);
    }
    let api = &rig.api;
    let page = |query: HistoryQuery| async move {
        let page = api.history(&query).await;
        let page = page.unwrap_or_else(|e| panic!("{query:?}: {e}"));
        page.checks.iter().map(|c| c.id).collect::<Vec<Uuid>>()
    };
    let q = HistoryQuery::default;
    let (tcp_ok, tcp_bad, http_ok, http_bad) = (ids[0], ids[1], ids[2], ids[3]);
    let tcp = || HistoryQuery {
        check_type: Some(CheckType::Tcp),
        ..q()
    };
    let status = |s| HistoryQuery {
        status: Some(s),
        ..q()
    };
    let target = |t: &str| HistoryQuery {
        target: Some(t.into()),
        ..q()
    };
    let agent = |a: String| HistoryQuery {
        agent: Some(a),
        ..q()
    };
    assert_eq!(page(tcp()).await, [tcp_bad, tcp_ok]);
    assert_eq!(page(status(OutcomeFilter::Ok)).await, [http_ok, tcp_ok]);
    assert_eq!(
        page(status(OutcomeFilter::Failed)).await,
        [http_bad, tcp_bad]
    );
    let http_failed = HistoryQuery {
        check_type: Some(CheckType::Http),
        ..status(OutcomeFilter::Failed)
    };
    assert_eq!(page(http_failed).await, [http_bad]);
    assert_eq!(
        page(target("/status/5")).await,
        [http_bad],
        "a substring of the target"
    );
    assert_eq!(page(target("HTTP://")).await.len(), 2, "any letter case");
    assert!(
        page(target("%")).await.is_empty(),
        "% is a character, not a wildcard"
    );
    assert_eq!(
        page(agent("PROBE-1".into())).await.len(),
        4,
        "an agent by name"
    );
    assert_eq!(
        page(agent(rig.agent_id.to_string())).await.len(),
        4,
        "or by id"
    );
    let (other, _) = rig.app.create_agent("idle-1").await;
    assert!(page(agent(other.id.to_string())).await.is_empty());
    // A paused monitor (it never runs), to stamp one of the checks as its run.
    let paused = CreateMonitor {
        name: "m".into(),
        check: MonitorCheck::new(
            CheckSpec::from_parts(CheckType::Tcp, &json!({"port": 9})).unwrap(),
            "127.0.0.1",
        ),
        selection: Default::default(),
        interval_secs: None,
        alert: None,
        notify: Vec::new(),
        paused: true,
        unknown: Default::default(),
    };
    let monitor = rig.api.create_monitor(&paused).await.unwrap().monitor.id;
    let of_monitor = || HistoryQuery {
        monitor: Some(monitor),
        ..q()
    };
    assert!(page(of_monitor()).await.is_empty());
    rig.app
        .state
        .db
        .execute_unprepared(&format!(
            "UPDATE checks SET monitor_id = '{monitor}' WHERE id = '{tcp_ok}'"
        ))
        .await
        .unwrap();
    assert_eq!(page(of_monitor()).await, [tcp_ok]);
    let at = rig.app.check(&rig.token, tcp_ok).await.created_at;
    let until = HistoryQuery {
        until: Some(at),
        ..q()
    };
    assert_eq!(page(until).await.len(), 0, "until is exclusive");
    let since = || HistoryQuery {
        since: Some(at),
        ..q()
    };
    assert_eq!(page(since()).await.len(), 4);
    let combined = HistoryQuery {
        check_type: Some(CheckType::Tcp),
        status: Some(OutcomeFilter::Ok),
        ..since()
    };
    assert_eq!(page(combined).await, [tcp_ok]);
    let one = HistoryQuery {
        limit: Some(1),
        ..tcp()
    };
    assert_eq!(page(one).await, [tcp_bad]);

    for (query, status) in [
        ("type=smtp", StatusCode::BAD_REQUEST),
        ("status=maybe", StatusCode::BAD_REQUEST),
        ("since=yesterday", StatusCode::BAD_REQUEST),
        ("colour=red", StatusCode::BAD_REQUEST),
        ("agent=nobody-here", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let resp = rig
            .app
            .client
            .get(rig.app.url(&format!("/api/v1/checks?{query}")))
            .bearer_auth(&rig.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{query}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn checks_older_than_the_retention_are_pruned_in_batches() {
    let app = spawn_app_with(|s| s.checks.retention_days = 30).await;
    let admin = app.admin_token().await;
    let user = app.api_as(&admin).me().await.unwrap().id;
    // 1 200 checks 40 days old and one from now, with a result and a share link each.
    let old = chrono::Utc::now() - chrono::Duration::days(40);
    let db = &app.state.db;
    db.execute_unprepared(&format!(
        "INSERT INTO checks (id, user_id, type, target, options, status, created_at, deadline_at, pending)
         SELECT uuid_send_v7_like(g), '{user}', 'tcp', 'old', jsonb_build_object('port', 9), 'finished', '{old}', '{old}', 0
         FROM generate_series(1, 1200) g",
        old = old.to_rfc3339()
    ).replace(
        "uuid_send_v7_like(g)",
        // A UUIDv7 of the old time: its 48-bit millisecond prefix, then the row number.
        &format!("(lpad(to_hex({}::bigint), 12, '0') || '7000' || '8000' || lpad(to_hex(g), 12, '0'))::uuid", old.timestamp_millis()),
    ))
    .await
    .unwrap();
    let fresh = uuid::Uuid::now_v7();
    db.execute_unprepared(&format!(
        "INSERT INTO checks (id, user_id, type, target, options, status, created_at, deadline_at, pending)
         VALUES ('{fresh}', '{user}', 'tcp', 'new', jsonb_build_object('port', 9), 'finished', now(), now(), 0);
         INSERT INTO check_results (check_id, agent_id, agent_name, status)
         SELECT id, gen_random_uuid(), 'a', 'ok' FROM checks;
         INSERT INTO check_shares (check_id, token_hash, created_at, expires_at)
         SELECT id, sha256(id::text::bytea), now(), now() + interval '1 day' FROM checks;"
    ))
    .await
    .unwrap();
    assert_eq!(
        netcheck::server::checks::prune_old(&app.state)
            .await
            .unwrap(),
        1000,
        "one bounded batch"
    );
    assert_eq!(
        netcheck::server::checks::prune_old(&app.state)
            .await
            .unwrap(),
        200
    );
    assert_eq!(
        netcheck::server::checks::prune_old(&app.state)
            .await
            .unwrap(),
        0
    );
    let left = |table: &str| {
        let sql = format!("SELECT count(*) AS n FROM {table}");
        async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    sea_orm::DatabaseBackend::Postgres,
                    sql,
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "n").unwrap()
        }
    };
    assert_eq!(
        (
            left("checks").await,
            left("check_results").await,
            left("check_shares").await
        ),
        (1, 1, 1)
    );
    assert_eq!(app.check(&admin, fresh).await.target, "new");
}

#[tokio::test]
async fn a_shared_result_shows_no_internal_address() {
    let rig = rig().await;
    let closed = unused_port();
    let (c, _) = rig
        .run(check(CheckType::Tcp, "127.0.0.1", json!({"port": closed})))
        .await;
    let own = c.results[0].error.as_ref().unwrap().message.clone();
    assert!(own.contains("127.0.0.1"), "the owner sees it: {own}");
    let link: ShareLink = share(&rig.app, &rig.token, &c.id.to_string(), None)
        .await
        .json()
        .await
        .unwrap();
    let view = shared(&rig.app, &link.token).await.unwrap();
    let message = &view.results[0].error.as_ref().unwrap().message;
    assert_eq!(*message, own.replace("127.0.0.1", "(private address)"));
}
