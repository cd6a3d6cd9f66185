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

use super::error::ApiError;
use super::users;
use super::AppState;
use crate::proto::api::auth::Role;
use crate::server::error::ErrorCode;

/// The signed-in user behind a request, loaded fresh from the database so that deleted users
/// and changed roles take effect at once.
#[derive(Debug, Clone)]
pub struct AuthUser(pub users::Model, pub Credential);

/// What a request was authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An access token from a password sign-in.
    Session,
    /// A personal API key.
    ApiKey,
}

/// A signed-in administrator; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub users::Model);

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
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("AppState missing"))?;
            let token = token.ok_or_else(unauthenticated)?;
            let (user_id, credential) = if api_keys::is_api_key(&token) {
                let id = api_keys::authenticate(&state.db, &token)
                    .await?
                    .ok_or_else(unauthenticated)?;
                (id, Credential::ApiKey)
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
            let AuthUser(user, _) = user.await?;
            if user.role != Role::Admin {
                return Err(ApiError::forbidden("administrators only"));
            }
            Ok(AdminUser(user))
        })
    }
}
