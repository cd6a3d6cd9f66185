//! Authentication: password login, JWT access tokens, rotating refresh-token sessions, and the
//! extractors handlers use to require a signed-in user or an administrator.

pub mod api_keys;
pub mod password;
pub mod ratelimit;
pub mod routes;
pub mod secret_token;
pub mod sessions;
pub mod tokens;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use sea_orm::EntityTrait;

use super::db::users;
use super::error::ApiError;
use super::AppState;
use netcheck_proto::api::auth::ApiScope;
use netcheck_proto::api::ErrorCode;

/// The signed-in user behind a request, loaded fresh from the database so that deleted users
/// and changed roles take effect at once.
#[derive(Debug, Clone)]
pub struct AuthUser(pub users::Model, pub Credential);

/// What a request was authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An access token from a password sign-in.
    Session,
    /// A personal API key, with what it may do.
    ApiKey(api_keys::Scopes),
}

/// A signed-in administrator (an API key needs the `admin` scope); anyone else gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub users::Model);

/// A user signed in with a password session: user, password, agent and key management take
/// no API key, so a leaked key cannot make itself more keys, an administrator or a broker
/// credential.
#[derive(Debug, Clone)]
pub struct SessionUser(pub users::Model);

/// An administrator signed in with a password session.
#[derive(Debug, Clone)]
pub struct SessionAdmin(pub users::Model);

/// The scope an API key needs for a request: `probe` for `/probe`, `read` for every other
/// `GET`, `checks` or `monitors` for changes under those (status pages and maintenance
/// windows are the monitors'), `admin` for any other change.
fn scope_for(method: &actix_web::http::Method, path: &str) -> ApiScope {
    use actix_web::http::Method;
    if path == "/probe" || path.starts_with("/probe/") {
        ApiScope::Probe
    } else if method == Method::GET || method == Method::HEAD {
        ApiScope::Read
    } else if path.starts_with("/api/v1/checks") {
        ApiScope::Checks
    } else if path.starts_with("/api/v1/monitors")
        || path.starts_with("/api/v1/status-pages")
        || path.starts_with("/api/v1/maintenance")
    {
        ApiScope::Monitors
    } else {
        ApiScope::Admin
    }
}

fn insufficient(scope: ApiScope) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::FORBIDDEN,
        ErrorCode::InsufficientScope,
        format!("this API key lacks the `{}` scope", scope.as_str()),
    )
    .with_details(serde_json::json!({ "scope": scope.as_str() }))
}

fn session_required() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::FORBIDDEN,
        ErrorCode::SessionRequired,
        "This needs a signed-in session (sign in with your password); an API key cannot do it.",
    )
}

/// The credential of an `Authorization: Bearer …` header.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

fn unauthenticated() -> ApiError {
    ApiError::unauthorized(
        ErrorCode::Unauthenticated,
        "a valid access token is required (Authorization: Bearer …)",
    )
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        let needed = scope_for(req.method(), req.path());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("AppState missing"))?;
            let token = token.ok_or_else(unauthenticated)?;
            let (user_id, credential) = if api_keys::is_api_key(&token) {
                let (id, scopes) = api_keys::authenticate(&state.db, &token)
                    .await?
                    .ok_or_else(unauthenticated)?;
                if !scopes.has(needed) {
                    return Err(insufficient(needed));
                }
                (id, Credential::ApiKey(scopes))
            } else {
                let id = state.jwt.verify(&token).ok_or_else(unauthenticated)?.sub;
                (id, Credential::Session)
            };
            let user = users::Entity::find_by_id(user_id)
                .one(&state.db)
                .await?
                .ok_or_else(unauthenticated)?;
            Ok(AuthUser(user, credential))
        })
    }
}

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let AuthUser(user, credential) = user.await?;
            if !user.is_admin() {
                return Err(ApiError::forbidden("administrators only"));
            }
            if let Credential::ApiKey(scopes) = credential {
                if !scopes.has(ApiScope::Admin) {
                    return Err(insufficient(ApiScope::Admin));
                }
            }
            Ok(AdminUser(user))
        })
    }
}

impl FromRequest for SessionUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // A key is refused before its scopes are looked at: no scope allows this.
        let by_key = bearer(req).is_some_and(|t| api_keys::is_api_key(&t));
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            if by_key {
                return Err(session_required());
            }
            let AuthUser(user, _) = user.await?;
            Ok(SessionUser(user))
        })
    }
}

impl FromRequest for SessionAdmin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = SessionUser::from_request(req, payload);
        Box::pin(async move {
            let SessionUser(user) = user.await?;
            if !user.is_admin() {
                return Err(ApiError::forbidden("administrators only"));
            }
            Ok(SessionAdmin(user))
        })
    }
}
