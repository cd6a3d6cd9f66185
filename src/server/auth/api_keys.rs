//! Personal API keys: long-lived credentials for scripts and the CLI, usable wherever an
//! access token is (`Authorization: Bearer nck_…`). Shown once, stored hashed, revocable.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{secret_token, AuthUser};
use crate::server::error::{ApiError, ApiResult, ErrorBody};
use crate::server::extract::Json;
use crate::server::AppState;

pub const PREFIX: &str = "nck";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub key_id: String,
    pub key_hash: Vec<u8>,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The public part, to recognise the key (`nck_<key_id>_…`).
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<Model> for ApiKey {
    fn from(m: Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            key_id: m.key_id,
            created_at: m.created_at,
            expires_at: m.expires_at,
            last_used_at: m.last_used_at,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The key itself: shown only here.
    pub key: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    /// Optional expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Routes inside the `/api/v1/auth` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-keys", web::post().to(create))
        .route("/api-keys", web::get().to(list))
        .route("/api-keys/{id}", web::delete().to(revoke));
}

/// Whether a bearer credential is an API key (rather than a JWT).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with("nck_")
}

/// The user an API key belongs to; `None` for unknown, wrong, expired or revoked keys.
pub async fn authenticate(db: &DatabaseConnection, token: &str) -> ApiResult<Option<Uuid>> {
    let Some((id, secret)) = secret_token::parse(PREFIX, token) else {
        return Ok(None);
    };
    let Some(key) = Entity::find().filter(Column::KeyId.eq(id)).one(db).await? else {
        return Ok(None);
    };
    if !secret_token::matches(secret, &key.key_hash)
        || key.expires_at.is_some_and(|e| e <= Utc::now())
    {
        return Ok(None);
    }
    // Recorded at most once a minute per key.
    if key
        .last_used_at
        .is_none_or(|t| Utc::now() - t > chrono::Duration::seconds(60))
    {
        Entity::update_many()
            .col_expr(Column::LastUsedAt, Expr::value(Utc::now()))
            .filter(Column::Id.eq(key.id))
            .exec(db)
            .await?;
    }
    Ok(Some(key.user_id))
}

#[utoipa::path(post, operation_id = "create_api_key", path = "/api/v1/auth/api-keys", tag = "auth", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<CreateApiKey>,
) -> ApiResult<HttpResponse> {
    let CreateApiKey { name, expires_at } = body.0;
    if name.trim().is_empty() || name.chars().count() > 64 {
        return Err(ApiError::invalid_field(
            "name",
            "name must be 1-64 characters",
        ));
    }
    if expires_at.is_some_and(|e| e <= Utc::now()) {
        return Err(ApiError::invalid_field(
            "expires_at",
            "expires_at must be in the future",
        ));
    }
    let minted = secret_token::mint(PREFIX);
    let model = ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.0.id),
        name: Set(name.trim().to_string()),
        key_id: Set(minted.id),
        key_hash: Set(minted.hash),
        created_at: Set(Utc::now()),
        expires_at: Set(expires_at),
        last_used_at: Set(None),
    }
    .insert(&state.db)
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedApiKey {
            api_key: model.into(),
            key: minted.token,
        }))
}

#[utoipa::path(get, operation_id = "list_api_keys", path = "/api/v1/auth/api-keys", tag = "auth",
    responses((status = 200, body = [ApiKey])), security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let keys: Vec<ApiKey> = Entity::find()
        .filter(Column::UserId.eq(user.0.id))
        .order_by_asc(Column::CreatedAt)
        .all(&state.db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(keys))
}

#[utoipa::path(delete, operation_id = "revoke_api_key", path = "/api/v1/auth/api-keys/{id}", tag = "auth",
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let deleted = Entity::delete_many()
        .filter(Column::Id.eq(*id))
        .filter(Column::UserId.eq(user.0.id))
        .exec(&state.db)
        .await?
        .rows_affected;
    if deleted == 0 {
        return Err(ApiError::not_found("API key"));
    }
    Ok(HttpResponse::NoContent().finish())
}
