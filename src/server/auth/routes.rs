//! `/api/v1/auth`: login, refresh, logout and the current user.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};

use super::ratelimit::LoginLimiter;
use super::{password, sessions, AuthUser};
use crate::server::db::users;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Json;
use crate::server::AppState;
use netcheck_proto::api::auth::{LoginRequest, TokenResponse, User};
use netcheck_proto::api::ErrorBody;
use netcheck_proto::api::ErrorCode;

/// Name of the HttpOnly cookie that carries the refresh token.
pub const REFRESH_COOKIE: &str = "netcheck_refresh";
const COOKIE_PATH: &str = "/api/v1/auth";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/auth")
            .route("/login", web::post().to(login))
            .route("/refresh", web::post().to(refresh))
            .route("/logout", web::post().to(logout))
            .route("/me", web::get().to(me))
            .configure(super::api_keys::configure),
    );
}

fn refresh_cookie(state: &AppState, value: String, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(REFRESH_COOKIE, value)
        .path(COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.secure_cookie())
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

fn session_response(state: &AppState, user: users::Model, refresh_token: String) -> HttpResponse {
    let access_token = state.jwt.issue(user.id, user.role.wire());
    let ttl = state.settings.auth.refresh_token_ttl_secs as i64;
    HttpResponse::Ok()
        .cookie(refresh_cookie(state, refresh_token, ttl))
        .insert_header(("Cache-Control", "no-store"))
        .json(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: state.jwt.ttl_secs(),
            user: user.into(),
        })
}

#[utoipa::path(operation_id = "login", post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse, description = "Signed in; sets the refresh cookie"),
              (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody, description = "Too many sign-ins being verified at once (`busy`, with `Retry-After`), or the rate limiter's store is down")))]
#[tracing::instrument(skip_all)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let LoginRequest { username, password } = body.0;
    // No user name holds a NUL (PostgreSQL text cannot), so such a login cannot succeed.
    if username.len() > 256 || username.contains('\0') || password.len() > password::MAX_LENGTH * 4
    {
        return Err(bad_credentials());
    }
    let ip = crate::server::extract::client_addr(&req, &state.settings.http)
        .unwrap_or(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
    let auth = &state.settings.auth;
    let limiter = LoginLimiter {
        redis: &state.redis,
        prefix: &state.settings.redis.key_prefix,
        max_per_user: auth.login_max_failures_per_user,
        max_per_ip: auth.login_max_failures_per_ip,
        window_secs: auth.login_window_secs,
    };
    let attempt = limiter.attempt(ip, &username).await?;
    let Some(slot) = state.hash_gate.try_enter() else {
        limiter.not_verified(attempt).await;
        return Err(ApiError::busy(
            "too many sign-ins are being checked right now; try again in a second",
        ));
    };
    let user = users::find_by_username(&state.db, &username).await?;
    let ok = password::verify_blocking(
        slot,
        password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await;
    let user = match (ok, user) {
        (true, Some(user)) => user,
        _ => {
            tracing::info!(%ip, "failed login");
            limiter.failed(attempt).await;
            return Err(bad_credentials());
        }
    };
    limiter.succeeded(attempt).await;
    let refresh = sessions::start(&state.db, user.id, auth.refresh_token_ttl_secs).await?;
    tracing::info!(user_id = %user.id, "signed in");
    Ok(session_response(&state, user, refresh))
}

fn bad_credentials() -> ApiError {
    ApiError::unauthorized(ErrorCode::InvalidCredentials, "wrong username or password")
}

#[utoipa::path(operation_id = "refresh", post, path = "/api/v1/auth/refresh", tag = "auth",
    responses((status = 200, body = TokenResponse, description = "New access token; the refresh cookie is rotated"),
              (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn refresh(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let Some(cookie) = req.cookie(REFRESH_COOKIE) else {
        return Err(ApiError::unauthorized(
            ErrorCode::MissingRefreshToken,
            "no session; sign in",
        ));
    };
    let (user_id, new_token) = sessions::rotate(&state.db, &state.rotation, cookie.value()).await?;
    let user = users::find(&state.db, user_id).await?.ok_or_else(|| {
        ApiError::unauthorized(
            ErrorCode::InvalidRefreshToken,
            "session expired or invalid; sign in again",
        )
    })?;
    Ok(session_response(&state, user, new_token))
}

#[utoipa::path(operation_id = "logout", post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Session ended and cookie cleared")))]
pub async fn logout(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    if let Some(cookie) = req.cookie(REFRESH_COOKIE) {
        sessions::revoke_by_token(&state.db, cookie.value()).await?;
    }
    let mut gone = refresh_cookie(&state, String::new(), 0);
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

#[utoipa::path(operation_id = "me", get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn me(user: AuthUser) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(User::from(user.0)))
}
