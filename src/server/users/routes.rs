//! `/api/v1/users`: user management, for administrators only.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QuerySelect, SqlErr, TransactionTrait};

use super::{validate_password, validate_username, Column, Entity};
use crate::server::auth::{password, sessions, AdminUser, SessionAdmin};
use crate::server::db::stored::StoredRole;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Json;
use crate::server::AppState;
use netcheck_proto::api::auth::{CreateUser, Role, UpdateUser, User};
use netcheck_proto::api::ErrorCode;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/users")
            .route("", web::get().to(list))
            .route("", web::post().to(create))
            .route("/{id}", web::get().to(get))
            .route("/{id}", web::patch().to(update))
            .route("/{id}", web::delete().to(delete))
            .configure(crate::server::auth::api_keys::configure_admin),
    );
}

#[utoipa::path(operation_id = "list_users", get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = [User]), (status = 403, body = netcheck_proto::api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, _admin: AdminUser) -> ApiResult<HttpResponse> {
    let users: Vec<User> = super::list(&state.db)
        .await?
        .into_iter()
        .map(User::from)
        .collect();
    Ok(HttpResponse::Ok().json(users))
}

#[utoipa::path(operation_id = "create_user", post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 409, body = netcheck_proto::api::ErrorBody),
              (status = 422, body = netcheck_proto::api::ErrorBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id))]
pub async fn create(
    state: web::Data<AppState>,
    admin: SessionAdmin,
    body: Json<CreateUser>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let user = super::create(
        &state.db,
        &state.hash_gate,
        &body.username,
        &body.password,
        body.role,
    )
    .await?;
    tracing::info!(user_id = %user.id, role = user.role.wire().as_str(), "user created");
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/users/{}", user.id)))
        .json(User::from(user)))
}

#[utoipa::path(operation_id = "get_user", get, path = "/api/v1/users/{id}", tag = "users",
    responses((status = 200, body = User), (status = 404, body = netcheck_proto::api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let user = super::find(&state.db, *id).await?;
    Ok(HttpResponse::Ok().json(User::from(user)))
}

/// Fails with 409 when the change would leave no administrator.
/// Changing one's own password needs the present one: a session left open on a shared
/// screen must not be enough to take the account over.
async fn own_password_confirmed(
    state: &AppState,
    user: &super::Model,
    current: Option<&str>,
) -> ApiResult<()> {
    let Some(current) = current else {
        return Err(ApiError::invalid_field(
            "current_password",
            "Give your present password (current_password) to change it.",
        ));
    };
    let slot = state.hash_gate.enter().await;
    let ok = password::verify_blocking(slot, current.to_string(), Some(user.password_hash.clone()))
        .await;
    if !ok {
        return Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            ErrorCode::InvalidCredentials,
            "current_password is not your present password",
        )
        .with_details(serde_json::json!({ "field": "current_password" })));
    }
    Ok(())
}

async fn ensure_admin_remains(txn: &impl ConnectionTrait, leaving: Uuid) -> ApiResult<()> {
    // Lock the admin rows so two concurrent demotions cannot both pass.
    let admins = Entity::find()
        .filter(Column::Role.eq(StoredRole::Admin))
        .lock_exclusive()
        .all(txn)
        .await?;
    if admins.iter().all(|a| a.id == leaving) {
        return Err(ApiError::conflict(
            ErrorCode::LastAdmin,
            "this is the last administrator; create or promote another first",
        ));
    }
    Ok(())
}

#[utoipa::path(operation_id = "update_user", patch, path = "/api/v1/users/{id}", tag = "users", request_body = UpdateUser,
    responses((status = 200, body = User), (status = 404, body = netcheck_proto::api::ErrorBody),
              (status = 409, body = netcheck_proto::api::ErrorBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id, user_id = %*id))]
pub async fn update(
    state: web::Data<AppState>,
    admin: SessionAdmin,
    id: web::Path<Uuid>,
    body: Json<UpdateUser>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    if let Some(name) = &body.username {
        validate_username(name)?;
    }
    let new_hash = match &body.password {
        Some(pw) => {
            validate_password(pw)?;
            if *id == admin.0.id {
                own_password_confirmed(&state, &admin.0, body.current_password.as_deref()).await?;
            }
            Some(password::hash_blocking(&state.hash_gate, pw.clone()).await)
        }
        None => None,
    };
    let txn = state.db.begin().await?;
    let current = super::find(&txn, *id).await?;
    if current.role == Role::Admin && body.role == Some(Role::User) {
        ensure_admin_remains(&txn, current.id).await?;
    }
    let mut model: super::ActiveModel = current.into();
    if let Some(name) = body.username {
        model.username = Set(name);
    }
    if let Some(role) = body.role {
        model.role = Set(role.into());
    }
    let password_changed = new_hash.is_some();
    if let Some(hash) = new_hash {
        model.password_hash = Set(hash);
    }
    model.updated_at = Set(Utc::now());
    let user = model
        .update(&txn)
        .await
        .map_err(|err| match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                ApiError::conflict(ErrorCode::UsernameTaken, "username is already taken")
                    .with_details(serde_json::json!({ "field": "username" }))
            }
            _ => err.into(),
        })?;
    if password_changed {
        sessions::revoke_all_for_user(&txn, user.id, "password changed").await?;
        // Keys were issued on the strength of the old password.
        crate::server::auth::api_keys::revoke_all_for_user(&txn, user.id).await?;
    }
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(User::from(user)))
}

#[utoipa::path(operation_id = "delete_user", delete, path = "/api/v1/users/{id}", tag = "users",
    responses((status = 204), (status = 404, body = netcheck_proto::api::ErrorBody),
              (status = 409, body = netcheck_proto::api::ErrorBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id, user_id = %*id))]
pub async fn delete(
    state: web::Data<AppState>,
    admin: SessionAdmin,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let txn = state.db.begin().await?;
    let user = super::find(&txn, *id).await?;
    if user.role == Role::Admin {
        ensure_admin_remains(&txn, user.id).await?;
    }
    Entity::delete_by_id(user.id).exec(&txn).await?;
    txn.commit().await?;
    tracing::info!("user deleted");
    Ok(HttpResponse::NoContent().finish())
}
