//! Abuse of the sign-in and the API, tried the way an attacker or an unlucky operator would:
//! login bursts and lockouts, API keys, weak settings and missing security headers.

use netcheck_proto::api::auth::{ApiScope, CreatedApiKey, UpdateUser};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// A login from `address` (behind the trusted proxy 127.0.0.1).
async fn login_from(app: &TestApp, address: &str, user: &str, password: &str) -> reqwest::Response {
    new_client()
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", address)
        .json(&json!({ "username": user, "password": password }))
        .send()
        .await
        .unwrap()
}

fn behind_proxy(s: &mut netcheck::config::Settings) {
    s.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

#[tokio::test]
async fn a_login_burst_is_counted_before_hashing_and_memory_stays_bounded() {
    let app = spawn_app().await;
    // Warm up: one hash, so the allocator's first arena is counted before the burst.
    assert_eq!(
        app.login_with(&new_client(), ADMIN_USER, ADMIN_PASSWORD)
            .await
            .0,
        StatusCode::OK
    );
    let before = rss();
    let logins = (0..64).map(|_| {
        let (client, url) = (new_client(), app.url("/api/v1/auth/login"));
        async move {
            client
                .post(url)
                .json(&json!({ "username": ADMIN_USER, "password": "wrong-password" }))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures_util::future::join_all(logins).await;
    let growth = rss().saturating_sub(before);
    let verified = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| {
            matches!(
                **s,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            )
        })
        .count();
    assert_eq!(verified + refused, 64, "{statuses:?}");
    assert!(
        verified <= app.settings.auth.login_max_failures_per_user as usize,
        "at most the limit was verified: {verified}"
    );
    assert!(growth < 100 << 20, "memory grew by {} MiB", growth >> 20);
    eprintln!(
        "login burst: {verified} verified, {refused} refused, RSS +{} MiB",
        growth >> 20
    );
}

#[tokio::test]
async fn failures_from_elsewhere_slow_an_account_down_but_spare_its_owners_address() {
    let app = spawn_app_with(behind_proxy).await;
    let limit = app.settings.auth.login_max_failures_per_user;
    // The owner signed in from here before.
    let resp = login_from(&app, "198.51.100.1", ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // A guesser elsewhere: after five failures the account asks it to wait, twice as long
    // each time.
    for _ in 0..5 {
        let resp = login_from(&app, "203.0.113.5", ADMIN_USER, "guess").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = login_from(&app, "203.0.113.5", ADMIN_USER, "guess").await;
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let (code, _) = error_code(resp, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(code, "rate_limited");
    // Also when it writes the owner's address to the left of the header.
    let resp = login_from(
        &app,
        "198.51.100.1, 203.0.113.5",
        ADMIN_USER,
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // The owner, from their own address, is not slowed.
    let resp = login_from(&app, "198.51.100.1", ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // And a right password starts the pair's count over.
    for _ in 0..limit - 1 {
        login_from(&app, "198.51.100.1", ADMIN_USER, "typo").await;
    }
    assert_eq!(
        login_from(&app, "198.51.100.1", ADMIN_USER, ADMIN_PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        login_from(&app, "198.51.100.1", ADMIN_USER, "typo")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_hundred_addresses_of_one_ipv6_64_share_one_limit() {
    let app = spawn_app_with(behind_proxy).await;
    let per_ip = app.settings.auth.login_max_failures_per_ip as usize;
    let (mut verified, mut refused) = (0, 0);
    // Other user names each time: only the address limit stands in the way.
    for i in 0..100 {
        let address = format!("2001:db8:77:1:{:x}::{:x}", i * 7 + 1, i + 1);
        match login_from(&app, &address, &format!("nobody{i}"), "guess")
            .await
            .status()
        {
            StatusCode::UNAUTHORIZED => verified += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(verified, per_ip, "the /64 is one client");
    assert_eq!(refused, 100 - per_ip);
    // Another /64 of the same /48 is a client of its own (the /48 tier is wider).
    let resp = login_from(&app, "2001:db8:77:2::1", "nobody", "guess").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn hashing_beyond_capacity_answers_503_at_once() {
    let app = spawn_app_with(|s| {
        behind_proxy(s);
        s.auth.max_concurrent_hashes = 1;
    })
    .await;
    // Different users from different addresses: no limiter stands in the way.
    let logins = (0..16).map(|i| {
        let app = &app;
        async move {
            let resp = login_from(app, &format!("192.0.2.{}", i + 1), &format!("u{i}"), "x").await;
            let retry = resp.headers().get("retry-after").cloned();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            (status, retry, body)
        }
    });
    let answers = futures_util::future::join_all(logins).await;
    let busy: Vec<_> = answers
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(!busy.is_empty(), "some logins found no hashing slot");
    for (_, retry, body) in &busy {
        assert_eq!(body["error"]["code"], "busy", "{body}");
        assert!(retry.is_some());
    }
    assert!(answers
        .iter()
        .any(|(s, _, _)| *s == StatusCode::UNAUTHORIZED));
    assert!(answers.iter().all(|(s, _, _)| matches!(
        *s,
        StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE
    )));
}

#[tokio::test]
async fn logins_fail_closed_when_redis_is_unreachable() {
    let app = spawn_app_with(|s| s.redis.url = "redis://127.0.0.1:1".into()).await;
    let (status, body) = app
        .login_with(&new_client(), ADMIN_USER, ADMIN_PASSWORD)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "dependency_unavailable");
}

async fn create_key(app: &TestApp, credential: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/api-keys"))
        .bearer_auth(credential)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn me_status(app: &TestApp, credential: &str) -> StatusCode {
    app.client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(credential)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn api_keys_cannot_mint_keys_expire_and_end_with_a_password_change() {
    let app = spawn_app().await;
    let token = app.user_token("scripter").await;
    let resp = create_key(&app, &token, json!({"name": "cron"})).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let key: CreatedApiKey = resp.json().await.unwrap();
    let secret = key.key.clone();
    let expires = key.api_key.expires_at.unwrap();
    let days = (expires - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((89.9..=90.0).contains(&days), "90 days by default: {days}");
    assert_eq!(me_status(&app, &secret).await, StatusCode::OK);

    let resp = create_key(&app, &secret, json!({"name": "child"})).await;
    let (code, _) = error_code(resp, StatusCode::FORBIDDEN).await;
    assert_eq!(code, "session_required");

    let resp = create_key(
        &app,
        &token,
        json!({"name": "long", "expires_in_days": 400}),
    )
    .await;
    let (_, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["error"]["details"]["field"], "expires_in_days");
    let far = (chrono::Utc::now() + chrono::Duration::days(400)).to_rfc3339();
    let resp = create_key(&app, &token, json!({"name": "long", "expires_at": far})).await;
    let (_, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["error"]["details"]["field"], "expires_at");
    let resp = create_key(
        &app,
        &token,
        json!({"name": "year", "expires_in_days": 365}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    // The admin changes the user's password: every key of theirs stops working.
    let admin = app.admin().await;
    let me = app.api_as(&token).me().await.unwrap();
    let change = UpdateUser {
        password: Some("a-new-password-1".into()),
        ..Default::default()
    };
    admin.update_user(me.id, &change).await.unwrap();
    assert_eq!(me_status(&app, &secret).await, StatusCode::UNAUTHORIZED);
    assert!(admin.user_api_keys(me.id).await.unwrap().is_empty());
}

/// `method path` with `credential` and a JSON body: the status and body of the answer.
async fn call(
    app: &TestApp,
    credential: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let resp = app
        .client
        .request(method, app.url(path))
        .bearer_auth(credential)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn api_keys_are_scoped_and_never_manage_users_passwords_agents_or_keys() {
    use reqwest::Method;
    let app = spawn_app().await;
    let admin_session = app.admin_token().await;
    let admin_key: CreatedApiKey = create_key(
        &app,
        &admin_session,
        json!({"name": "everything", "scopes": ["read", "checks", "monitors", "probe", "admin"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let key = admin_key.key.as_str();
    let me = app.api_as(&admin_session).me().await.unwrap();
    // With every scope, an admin's key still cannot manage users, passwords, agents or keys.
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/users".to_string(),
            json!({"username": "eve", "password": "eve-password-1", "role": "admin"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{}", me.id),
            json!({"password": "taken-over-1"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/users/{}", me.id),
            json!({}),
        ),
        (
            Method::POST,
            "/api/v1/agents".to_string(),
            json!({"name": "rogue"}),
        ),
        (
            Method::POST,
            format!("/api/v1/agents/{}/token", uuid::Uuid::now_v7()),
            json!({}),
        ),
        (
            Method::POST,
            "/api/v1/auth/api-keys".to_string(),
            json!({"name": "child"}),
        ),
        (Method::GET, "/api/v1/auth/api-keys".to_string(), json!({})),
        (
            Method::GET,
            format!("/api/v1/users/{}/api-keys", me.id),
            json!({}),
        ),
    ] {
        let (status, body) = call(&app, key, method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "session_required", "{method} {path}");
    }
    // With the admin scope it may still read the users list; without it, not.
    let (status, _) = call(&app, key, Method::GET, "/api/v1/users", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let plain: CreatedApiKey = create_key(&app, &admin_session, json!({"name": "default"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !plain.api_key.scopes.contains(&ApiScope::Admin),
        "{:?}",
        plain.api_key.scopes
    );
    let (status, body) = call(&app, &plain.key, Method::GET, "/api/v1/users", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "insufficient_scope");
    assert_eq!(body["error"]["details"]["scope"], "admin");
    // A read key reads but cannot create checks or monitors.
    let user = app.user_token("reader").await;
    let read: CreatedApiKey = create_key(&app, &user, json!({"name": "ro", "scopes": ["read"]}))
        .await
        .json()
        .await
        .unwrap();
    let (status, _) = call(&app, &read.key, Method::GET, "/api/v1/checks", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let monitor = format!("/api/v1/monitors/{}", uuid::Uuid::now_v7());
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/checks",
            json!({"type": "ping", "target": "127.0.0.1"}),
        ),
        (Method::DELETE, monitor.as_str(), json!({})),
    ] {
        let (status, body) = call(&app, &read.key, method, path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["error"]["code"], "insufficient_scope");
    }
    // Only an administrator's key may have the admin scope.
    let resp = create_key(&app, &user, json!({"name": "up", "scopes": ["admin"]})).await;
    let (_, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["error"]["details"]["field"], "scopes");
}

#[tokio::test]
async fn changing_ones_own_password_needs_the_present_one() {
    use reqwest::Method;
    let app = spawn_app().await;
    let session = app.admin_token().await;
    let me = app.api_as(&session).me().await.unwrap();
    let path = format!("/api/v1/users/{}", me.id);
    let (status, body) = call(
        &app,
        &session,
        Method::PATCH,
        &path,
        json!({"password": "new-password-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["details"]["field"], "current_password");
    let wrong = json!({"password": "new-password-1", "current_password": "not-it"});
    let (status, body) = call(&app, &session, Method::PATCH, &path, wrong).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let right = json!({"password": "new-password-1", "current_password": ADMIN_PASSWORD});
    let (status, body) = call(&app, &session, Method::PATCH, &path, right).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn admins_list_and_revoke_any_users_api_keys() {
    let app = spawn_app().await;
    let token = app.user_token("owner").await;
    let key: CreatedApiKey = create_key(&app, &token, json!({"name": "ci"}))
        .await
        .json()
        .await
        .unwrap();
    let user_id = app.api_as(&token).me().await.unwrap().id;
    let admin = app.admin().await;
    let keys = admin.user_api_keys(user_id).await.unwrap();
    assert_eq!(keys[0].id, key.api_key.id);
    let listed = serde_json::to_value(&keys[0]).unwrap();
    assert!(listed.get("key").is_none(), "the secret is never listed");
    // Not for anyone else.
    let other = app.api_as(&app.user_token("nosy").await);
    refused(other.user_api_keys(user_id).await, StatusCode::FORBIDDEN);
    let err = other.revoke_user_api_key(user_id, key.api_key.id).await;
    assert_eq!(err.unwrap_err().status(), Some(StatusCode::FORBIDDEN));
    admin
        .revoke_user_api_key(user_id, key.api_key.id)
        .await
        .unwrap();
    let err = admin.revoke_user_api_key(user_id, key.api_key.id).await;
    assert_eq!(err.unwrap_err().status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(me_status(&app, &key.key).await, StatusCode::UNAUTHORIZED);
}

fn assert_security_headers(resp: &reqwest::Response, what: &str) {
    let h = |name: &str| {
        resp.headers()
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let csp = h("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for (path, status) in [
        ("/", None),
        ("/lookup/8.8.8.8", None),
        ("/healthz", Some(StatusCode::OK)),
        ("/api/v1/auth/me", Some(StatusCode::UNAUTHORIZED)),
        ("/api/v1/nowhere", Some(StatusCode::NOT_FOUND)),
        ("/api/openapi.json", Some(StatusCode::OK)),
    ] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        if let Some(s) = status {
            assert_eq!(resp.status(), s, "{path}");
        }
        assert_security_headers(&resp, path);
        assert!(resp.headers().get("strict-transport-security").is_none());
    }
    // A UI route whose last segment has a dot is the app, not a missing file.
    let resp = app
        .client
        .get(app.url("/lookup/8.8.8.8"))
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .client
        .get(app.url("/assets/missing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let https =
        spawn_app_with(|s| s.server.public_url = Some("https://netcheck.example".into())).await;
    let resp = https
        .client
        .get(https.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(resp
        .headers()
        .get("strict-transport-security")
        .is_some_and(|v| v.to_str().unwrap().contains("max-age=")));
}

#[tokio::test]
async fn a_short_jwt_secret_is_refused_before_any_connection() {
    let err = netcheck::config::Settings::load_from(
        None,
        [(
            "NETCHECK__AUTH__JWT_SECRET".to_string(),
            "too-short".to_string(),
        )],
    )
    .unwrap_err();
    assert!(err.to_string().contains("auth.jwt_secret"), "{err}");
    // The binary, with a database that is not there: the secret is what it complains about.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netcheck"))
        .arg("server")
        .env("NETCHECK__AUTH__JWT_SECRET", "too-short")
        .env(
            "NETCHECK__DATABASE__URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("auth.jwt_secret") && stderr.contains("32 bytes"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("127.0.0.1:1"),
        "no connection was tried: {stderr}"
    );
    let err = netcheck::config::Settings::load_from(
        None,
        [(
            "NETCHECK__HTTP__TRUST_FORWARDED_FOR".to_string(),
            "true".to_string(),
        )],
    )
    .unwrap_err();
    assert!(err.to_string().contains("http.trusted_proxies"), "{err}");
}
