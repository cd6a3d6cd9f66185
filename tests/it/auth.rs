//! Login, refresh rotation and reuse detection, logout, and everything a forged token tries.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn refresh_cookie(resp: &reqwest::Response) -> String {
    let raw = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("netcheck_refresh="))
        .expect("refresh cookie set");
    raw.split(';')
        .next()
        .unwrap()
        .trim_start_matches("netcheck_refresh=")
        .to_string()
}

async fn login_raw(app: &TestApp) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap()
}

async fn refresh_with(app: &TestApp, cookie: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("netcheck_refresh={cookie}"))
        .send()
        .await
        .unwrap()
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn login_returns_a_short_lived_token_and_a_strict_http_only_cookie() {
    let app = spawn_app().await;
    let resp = login_raw(&app).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/api/v1/auth"] {
        assert!(set_cookie.contains(attr), "{set_cookie} lacks {attr}");
    }
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!(expires_in > 0 && expires_in <= 900);
    assert_eq!(body["user"]["username"], ADMIN_USER);
    assert_eq!(body["user"]["role"], "admin");
    assert!(body["user"].get("password_hash").is_none());

    let resp = me(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["id"], body["user"]["id"]);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let app = spawn_app().await;
    let wrong = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": ADMIN_USER, "password": "not-the-password" }))
        .send()
        .await
        .unwrap();
    let (code_a, body_a) = error_code(wrong, StatusCode::UNAUTHORIZED).await;
    let unknown = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": "nobody-here", "password": "not-the-password" }))
        .send()
        .await
        .unwrap();
    let (code_b, body_b) = error_code(unknown, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code_a, "invalid_credentials");
    assert_eq!(body_a, body_b);
    assert_eq!(code_a, code_b);
}

#[tokio::test]
async fn username_is_case_insensitive_at_login() {
    let app = spawn_app().await;
    let (status, _) = app.login_with(&new_client(), "ADMIN", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    let first = refresh_cookie(&login_raw(&app).await);

    let resp = refresh_with(&app, &first).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let second = refresh_cookie(&resp);
    assert_ne!(first, second, "cookie rotated");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        me(&app, body["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    let resp = refresh_with(&app, &second).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let third = refresh_cookie(&resp);

    // `first` was rotated already: presenting it again means it leaked.
    let (code, _) = error_code(refresh_with(&app, &first).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "refresh_token_reused");
    // The newest token of the family is dead too.
    let (code, _) = error_code(refresh_with(&app, &third).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "invalid_refresh_token");

    // Another login (another family) is unaffected.
    let other = refresh_cookie(&login_raw(&app).await);
    assert_eq!(refresh_with(&app, &other).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_share_one_successor() {
    let app = spawn_app().await;
    let cookie = refresh_cookie(&login_raw(&app).await);
    // Two tabs refreshing at once: both keep the session, with the same new cookie.
    let (a, b) = tokio::join!(refresh_with(&app, &cookie), refresh_with(&app, &cookie));
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let (next_a, next_b) = (refresh_cookie(&a), refresh_cookie(&b));
    assert_eq!(next_a, next_b, "one successor, not a fork of the session");
    assert_ne!(next_a, cookie);
    // The successor is one token: used once it rotates, and the fork-free family lives on.
    let resp = refresh_with(&app, &next_a).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        refresh_with(&app, &refresh_cookie(&resp)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_page_reloaded_mid_refresh_keeps_its_session_but_only_within_the_grace_window() {
    let app = spawn_app().await;
    let first = refresh_cookie(&login_raw(&app).await);
    // The server rotated `first`, but the reloading page never saw the answer's cookie.
    let lost = refresh_cookie(&refresh_with(&app, &first).await);
    let again = refresh_with(&app, &first).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(refresh_cookie(&again), lost, "the same successor again");
    let body: Value = again.json().await.unwrap();
    assert_eq!(
        me(&app, body["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    // Past the window the old token is a leak again: the family is revoked.
    let second = refresh_cookie(&login_raw(&app).await);
    let successor = refresh_cookie(&refresh_with(&app, &second).await);
    let hash = sha256(&second);
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.state.db,
        &format!(
            "UPDATE refresh_tokens SET rotated_at = now() - interval '11 seconds' \
             WHERE token_hash = '\\x{hash}'"
        ),
    )
    .await
    .unwrap();
    let (code, _) = error_code(refresh_with(&app, &second).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "refresh_token_reused");
    let (code, _) = error_code(
        refresh_with(&app, &successor).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(code, "invalid_refresh_token");
}

#[tokio::test]
async fn with_the_grace_window_off_a_second_presentation_always_revokes() {
    let app = spawn_app_with(|s| s.auth.refresh_reuse_grace_secs = 0).await;
    let first = refresh_cookie(&login_raw(&app).await);
    let second = refresh_cookie(&refresh_with(&app, &first).await);
    let (code, _) = error_code(refresh_with(&app, &first).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "refresh_token_reused");
    let (code, _) = error_code(refresh_with(&app, &second).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "invalid_refresh_token");
}

fn sha256(raw: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(raw.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn browser_style_refresh_with_cookie_jar_and_logout() {
    let app = spawn_app().await;
    let client = new_client();
    let (status, _) = app.login_with(&client, ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let resp = client
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = refresh_cookie(&resp);

    let resp = client
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cleared = resp.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The jar dropped the cookie, and the token itself no longer works.
    let (code, _) = error_code(
        client
            .post(app.url("/api/v1/auth/refresh"))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(code, "missing_refresh_token");
    let (code, _) = error_code(refresh_with(&app, &cookie).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "invalid_refresh_token");
}

#[tokio::test]
async fn garbage_refresh_cookie_is_401() {
    let app = spawn_app().await;
    let (code, _) = error_code(
        refresh_with(&app, "garbage").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(code, "invalid_refresh_token");
}

fn sign(claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key).unwrap(),
    )
    .unwrap()
}

fn claims_for(user_id: &str, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": user_id, "role": "admin", "typ": "access", "iss": "netcheck", "aud": "netcheck-api",
        "iat": now, "exp": now + exp_offset, "jti": uuid::Uuid::new_v4(),
    })
}

#[tokio::test]
async fn expired_tampered_foreign_and_alg_none_tokens_are_401() {
    let app = spawn_app().await;
    let body = app
        .login_with(&new_client(), ADMIN_USER, ADMIN_PASSWORD)
        .await
        .1;
    let token = body["access_token"].as_str().unwrap().to_string();
    let id = body["user"]["id"].as_str().unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    // Sanity: a token we sign ourselves with the server's key passes, so the refusals below
    // are about the property each one breaks.
    assert_eq!(
        me(&app, &sign(&claims_for(id, 60), JWT_SECRET.as_bytes()))
            .await
            .status(),
        StatusCode::OK
    );

    let expired = sign(&claims_for(id, -120), JWT_SECRET.as_bytes());
    let foreign_key = sign(&claims_for(id, 60), b"some-other-key-0123456789abcdef!");
    let mut wrong_aud = claims_for(id, 60);
    wrong_aud["aud"] = json!("someone-else");
    let wrong_aud = sign(&wrong_aud, JWT_SECRET.as_bytes());
    let mut wrong_typ = claims_for(id, 60);
    wrong_typ["typ"] = json!("refresh");
    let wrong_typ = sign(&wrong_typ, JWT_SECRET.as_bytes());

    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = json!("admin");
    payload["exp"] = json!(payload["exp"].as_i64().unwrap() + 3600);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(payload.to_string()),
        parts[2]
    );
    let alg_none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims_for(id, 60),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();

    for (what, bad) in [
        ("expired", expired),
        ("foreign key", foreign_key),
        ("wrong audience", wrong_aud),
        ("wrong typ", wrong_typ),
        ("tampered", tampered),
        ("alg none", alg_none),
        ("other algorithm", hs512),
        ("garbage", "not.a.jwt".to_string()),
    ] {
        let resp = me(&app, &bad).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
        let (code, _) = error_code(resp, StatusCode::UNAUTHORIZED).await;
        assert_eq!(code, "unauthenticated", "{what}");
    }
    let resp = reqwest::Client::new()
        .get(app.url("/api/v1/auth/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "no token");
}

#[tokio::test]
async fn refresh_token_never_passes_as_access_token_nor_the_reverse() {
    let app = spawn_app().await;
    let resp = login_raw(&app).await;
    let refresh = refresh_cookie(&resp);
    let access = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(me(&app, &refresh).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh_with(&app, &access).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn login_failures_are_rate_limited_per_username_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.auth.login_max_failures_per_user = 3;
        s.auth.login_window_secs = 120;
    })
    .await;
    for _ in 0..3 {
        let (status, _) = app
            .login_with(&new_client(), ADMIN_USER, "wrong-password")
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = resp
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 120, "{retry_after}");
    let (code, _) = error_code(resp, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(code, "rate_limited");
}

#[tokio::test]
async fn login_failures_are_rate_limited_per_address_across_usernames() {
    let app = spawn_app_with(|s| {
        s.auth.login_max_failures_per_ip = 4;
    })
    .await;
    for i in 0..4 {
        let (status, _) = app
            .login_with(&new_client(), &format!("user{i}"), "wrong-password")
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = app
        .login_with(&new_client(), "someone-else", "wrong-password")
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}
