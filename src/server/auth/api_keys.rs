//! Personal API keys: credentials for scripts and the CLI, usable wherever an access token is
//! (`Authorization: Bearer nck_…`). Shown once, stored hashed, revocable by their owner and by
//! administrators. They expire (90 days unless asked otherwise, a year at most), end when their
//! owner's password changes, and cannot create further keys.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder};

use super::{secret_token, SessionAdmin, SessionUser};
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Json;
use crate::server::AppState;
use netcheck_proto::api::auth::{ApiKey, ApiScope, CreateApiKey, CreatedApiKey};
use netcheck_proto::api::ErrorBody;

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
    /// Comma-separated `ApiScope` names.
    pub scopes: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl From<Model> for ApiKey {
    fn from(m: Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            key_id: m.key_id,
            created_at: m.created_at,
            expires_at: m.expires_at,
            last_used_at: m.last_used_at,
            scopes: Scopes::parse(&m.scopes).list(),
        }
    }
}

/// A key's scopes as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn of(list: &[ApiScope]) -> Scopes {
        Scopes(list.iter().fold(0, |bits, s| bits | 1 << *s as u8))
    }

    /// From the stored column; unknown names are ignored (a downgrade's leftovers).
    pub fn parse(column: &str) -> Scopes {
        let list: Vec<ApiScope> = column
            .split(',')
            .filter_map(|n| ApiScope::ALL.into_iter().find(|s| s.as_str() == n.trim()))
            .collect();
        Scopes::of(&list)
    }

    pub fn has(self, scope: ApiScope) -> bool {
        self.0 & (1 << scope as u8) != 0
    }

    pub fn list(self) -> Vec<ApiScope> {
        ApiScope::ALL.into_iter().filter(|s| self.has(*s)).collect()
    }

    fn column(self) -> String {
        self.list()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Default lifetime of a key, in days.
pub const DEFAULT_DAYS: i64 = 90;
/// Longest lifetime of a key, in days.
pub const MAX_DAYS: i64 = 365;

/// Routes inside the `/api/v1/auth` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-keys", web::post().to(create))
        .route("/api-keys", web::get().to(list))
        .route("/api-keys/{id}", web::delete().to(revoke));
}

/// Administrators' routes inside the `/api/v1/users` scope.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.route("/{id}/api-keys", web::get().to(list_of_user))
        .route("/{id}/api-keys/{key_id}", web::delete().to(revoke_of_user));
}

/// Whether a bearer credential is an API key (rather than a JWT).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with("nck_")
}

/// The user an API key belongs to and what the key may do; `None` for unknown, wrong,
/// expired or revoked keys.
pub async fn authenticate(
    db: &DatabaseConnection,
    token: &str,
) -> ApiResult<Option<(Uuid, Scopes)>> {
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
    Ok(Some((key.user_id, Scopes::parse(&key.scopes))))
}

/// Revokes every key of a user (their password changed: the keys were issued on the old one).
pub async fn revoke_all_for_user(db: &impl ConnectionTrait, user_id: Uuid) -> ApiResult<u64> {
    Ok(Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .exec(db)
        .await?
        .rows_affected)
}

/// When a new key expires: `expires_in_days` or `expires_at`, within a year, 90 days if neither.
fn expiry(body: &CreateApiKey) -> ApiResult<DateTime<Utc>> {
    let now = Utc::now();
    let latest = now + chrono::Duration::days(MAX_DAYS);
    match (body.expires_in_days, body.expires_at) {
        (Some(_), Some(_)) => Err(ApiError::invalid_field(
            "expires_at",
            "Give either expires_in_days or expires_at, not both.",
        )),
        (Some(days), None) if !(1..=MAX_DAYS).contains(&days) => Err(ApiError::invalid_field(
            "expires_in_days",
            "expires_in_days must be between 1 and 365.",
        )),
        (Some(days), None) => Ok(now + chrono::Duration::days(days)),
        (None, Some(at)) if at <= now => Err(ApiError::invalid_field(
            "expires_at",
            "expires_at must be in the future.",
        )),
        (None, Some(at)) if at > latest + chrono::Duration::minutes(1) => Err(
            ApiError::invalid_field("expires_at", "A key can live at most 365 days."),
        ),
        (None, Some(at)) => Ok(at),
        (None, None) => Ok(now + chrono::Duration::days(DEFAULT_DAYS)),
    }
}

#[utoipa::path(post, operation_id = "create_api_key", path = "/api/v1/auth/api-keys", tag = "auth", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey),
              (status = 403, body = ErrorBody, description = "`session_required`: keys are created from a signed-in session, not with another key"),
              (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    user: SessionUser,
    body: Json<CreateApiKey>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::invalid_field(
            "name",
            "name must be 1-64 characters",
        ));
    }
    let expires_at = expiry(&body)?;
    let scopes = match &body.scopes {
        None => Scopes::of(&ApiScope::DEFAULT),
        Some(list) if list.is_empty() => {
            return Err(ApiError::invalid_field(
                "scopes",
                "A key needs at least one scope (read, checks, monitors, probe, admin).",
            ))
        }
        Some(list) => Scopes::of(list),
    };
    if scopes.has(ApiScope::Admin) && !user.0.is_admin() {
        return Err(ApiError::invalid_field(
            "scopes",
            "Only an administrator's key may have the admin scope.",
        ));
    }
    let minted = secret_token::mint(PREFIX);
    let model = ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.0.id),
        name: Set(name.to_string()),
        key_id: Set(minted.id),
        key_hash: Set(minted.hash),
        created_at: Set(Utc::now()),
        expires_at: Set(Some(expires_at)),
        last_used_at: Set(None),
        scopes: Set(scopes.column()),
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

async fn keys_of(db: &DatabaseConnection, user_id: Uuid) -> ApiResult<Vec<ApiKey>> {
    Ok(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_asc(Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

async fn delete_key(db: &DatabaseConnection, user_id: Uuid, id: Uuid) -> ApiResult<HttpResponse> {
    let deleted = Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::UserId.eq(user_id))
        .exec(db)
        .await?
        .rows_affected;
    if deleted == 0 {
        return Err(ApiError::not_found("API key"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, operation_id = "list_api_keys", path = "/api/v1/auth/api-keys", tag = "auth",
    responses((status = 200, body = [ApiKey])), security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, user: SessionUser) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(keys_of(&state.db, user.0.id).await?))
}

#[utoipa::path(delete, operation_id = "revoke_api_key", path = "/api/v1/auth/api-keys/{id}", tag = "auth",
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke(
    state: web::Data<AppState>,
    user: SessionUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    delete_key(&state.db, user.0.id, *id).await
}

#[utoipa::path(get, operation_id = "list_user_api_keys", path = "/api/v1/users/{id}/api-keys", tag = "users",
    responses((status = 200, body = [ApiKey]), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_of_user(
    state: web::Data<AppState>,
    _admin: SessionAdmin,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let user = crate::server::db::users::find(&state.db, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(HttpResponse::Ok().json(keys_of(&state.db, user.id).await?))
}

#[utoipa::path(delete, operation_id = "revoke_user_api_key", path = "/api/v1/users/{id}/api-keys/{key_id}", tag = "users",
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id))]
pub async fn revoke_of_user(
    state: web::Data<AppState>,
    admin: SessionAdmin,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (user_id, key_id) = path.into_inner();
    let answer = delete_key(&state.db, user_id, key_id).await?;
    tracing::info!(%user_id, %key_id, "API key revoked by an administrator");
    Ok(answer)
}
