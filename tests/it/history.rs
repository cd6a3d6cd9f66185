//! Finding and sharing results: history filters, share links (no login, nothing that finds the
//! agents' hosts, expiry, withdrawal), and retention.

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::rig::rig;
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

async fn shared(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/shared/{token}")))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_share_link_shows_the_check_without_login_and_nothing_that_finds_the_agents() {
    let rig = rig().await;
    let addr = targets::http_server().await;
    let (check, _) = rig
        .run(
            json!({"type": "http", "target": format!("http://{addr}/status/200"),
                    "options": {"headers": {"authorization": "Bearer very-secret-value"}}}),
        )
        .await;
    let id = check["id"].as_str().unwrap();
    let resp = share(&rig.app, &rig.token, id, None).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let link: Value = resp.json().await.unwrap();
    let token = link["token"].as_str().unwrap();
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    assert_eq!(link["url"], rig.app.url(&format!("/s/{token}")));
    let days = (chrono::DateTime::parse_from_rfc3339(link["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
        - chrono::Utc::now())
    .num_hours();
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

    let resp = shared(&rig.app, token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let view: Value = resp.json().await.unwrap();
    assert_eq!(view["id"], id);
    assert_eq!(view["results"][0]["status"], "ok");
    assert_eq!(view["results"][0]["status_code"], 200);
    let agent = &view["results"][0]["agent"];
    assert_eq!(agent["name"], "probe-1");
    let keys: Vec<&String> = agent.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["location", "name", "region"], "{agent}");
    let text = view.to_string();
    assert!(!text.contains(&rig.agent_id), "no agent id: {text}");
    let host = rig.app.agent(&rig.agent_id).await["hostname"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !text.contains(&format!("\"{host}\"")),
        "no host name: {text}"
    );
    assert!(
        !text.contains("very-secret-value"),
        "request header values are hidden"
    );
    assert_eq!(view["options"]["headers"]["authorization"], "(hidden)");

    // A new link replaces the old one; withdrawing it ends it.
    let again: Value = share(
        &rig.app,
        &rig.token,
        id,
        Some(json!({"expires_in_days": 1})),
    )
    .await
    .json()
    .await
    .unwrap();
    let second = again["token"].as_str().unwrap();
    assert_eq!(
        shared(&rig.app, token).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(shared(&rig.app, second).await.status(), StatusCode::OK);
    let unshare = |who: String| {
        let app = &rig.app;
        async move {
            app.client
                .delete(app.url(&format!("/api/v1/checks/{id}/share")))
                .bearer_auth(who)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let eve = rig.app.user_token("eve").await;
    assert_eq!(
        share(&rig.app, &eve, id, None).await.status(),
        StatusCode::NOT_FOUND,
        "not eve's check"
    );
    assert_eq!(unshare(eve).await, StatusCode::NOT_FOUND);
    assert_eq!(unshare(rig.token.clone()).await, StatusCode::NO_CONTENT);
    assert_eq!(
        shared(&rig.app, second).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        unshare(rig.token.clone()).await,
        StatusCode::NOT_FOUND,
        "nothing left to withdraw"
    );

    // Expired links answer like unknown ones.
    let third: Value = share(&rig.app, &rig.token, id, None)
        .await
        .json()
        .await
        .unwrap();
    rig.app
        .state
        .db
        .execute_unprepared(&format!("UPDATE check_shares SET expires_at = now() - interval '1 second' WHERE check_id = '{id}'"))
        .await
        .unwrap();
    assert_eq!(
        shared(&rig.app, third["token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        shared(&rig.app, "not-a-token").await.status(),
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
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = targets::http_server().await;
    let mut ids = Vec::new();
    for body in [
        json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": port}}),
        json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": closed}}),
        json!({"type": "http", "target": format!("http://{addr}/final")}),
        json!({"type": "http", "target": format!("http://{addr}/status/500")}),
    ] {
        let (check, _) = rig.run(body).await;
        ids.push(check["id"].as_str().unwrap().to_string());
    }
    let page = |query: &str| {
        let app = &rig.app;
        let token = rig.token.clone();
        let query = query.to_string();
        async move {
            let resp = app
                .client
                .get(app.url(&format!("/api/v1/checks?{query}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{query}");
            let page: Value = resp.json().await.unwrap();
            page["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let (tcp_ok, tcp_bad, http_ok, http_bad) = (
        ids[0].as_str(),
        ids[1].as_str(),
        ids[2].as_str(),
        ids[3].as_str(),
    );
    assert_eq!(page("type=tcp").await, [tcp_bad, tcp_ok]);
    assert_eq!(page("status=ok").await, [http_ok, tcp_ok]);
    assert_eq!(page("status=failed").await, [http_bad, tcp_bad]);
    assert_eq!(page("type=http&status=failed").await, [http_bad]);
    assert_eq!(
        page("target=%2Fstatus%2F5").await,
        [http_bad],
        "a substring of the target"
    );
    assert_eq!(page("target=HTTP://").await.len(), 2, "any letter case");
    assert!(
        page("target=%25").await.is_empty(),
        "% is a character, not a wildcard"
    );
    assert_eq!(page("agent=PROBE-1").await.len(), 4, "an agent by name");
    assert_eq!(
        page(&format!("agent={}", rig.agent_id)).await.len(),
        4,
        "or by id"
    );
    let (other, _) = rig.app.create_agent("idle-1").await;
    assert!(page(&format!("agent={}", other["id"].as_str().unwrap()))
        .await
        .is_empty());
    // A paused monitor (it never runs), to stamp one of the checks as its run.
    let created: Value = rig
        .app
        .client
        .post(rig.app.url("/api/v1/monitors"))
        .bearer_auth(&rig.token)
        .json(&json!({"name": "m", "check": {"type": "tcp", "target": "127.0.0.1", "options": {"port": 9}}, "paused": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let monitor = created["monitor"]["id"].as_str().unwrap().to_string();
    assert!(page(&format!("monitor={monitor}")).await.is_empty());
    rig.app
        .state
        .db
        .execute_unprepared(&format!(
            "UPDATE checks SET monitor_id = '{monitor}' WHERE id = '{tcp_ok}'"
        ))
        .await
        .unwrap();
    assert_eq!(page(&format!("monitor={monitor}")).await, [tcp_ok]);
    let first = rig.app.check(&rig.token, tcp_ok).await;
    let at = first["created_at"].as_str().unwrap();
    let enc = |t: &str| t.replace('+', "%2B").replace(':', "%3A");
    assert_eq!(
        page(&format!("until={}", enc(at))).await.len(),
        0,
        "until is exclusive"
    );
    assert_eq!(page(&format!("since={}", enc(at))).await.len(), 4);
    assert_eq!(
        page(&format!("since={}&type=tcp&status=ok", enc(at))).await,
        [tcp_ok]
    );
    assert_eq!(page("limit=1&type=tcp").await, [tcp_bad]);

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
    let me = app.get_json(&admin, "/api/v1/auth/me").await;
    let user = me["id"].as_str().unwrap();
    // 1 200 checks 40 days old and one from now, with a result and a share link each.
    let old = chrono::Utc::now() - chrono::Duration::days(40);
    let db = &app.state.db;
    db.execute_unprepared(&format!(
        "INSERT INTO checks (id, user_id, type, target, options, status, created_at, deadline_at, pending)
         SELECT uuid_send_v7_like(g), '{user}', 'tcp', 'old', '{{}}', 'finished', '{old}', '{old}', 0
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
         VALUES ('{fresh}', '{user}', 'tcp', 'new', '{{}}', 'finished', now(), now(), 0);
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
    assert_eq!(app.check(&admin, &fresh.to_string()).await["target"], "new");
}
