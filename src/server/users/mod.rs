//! Users: the rules for names and passwords, and the service functions the HTTP routes and the
//! `netcheck user` command share. The table itself, which authentication reads too, is
//! `db::users`.

pub mod routes;

use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, PaginatorTrait, QueryOrder, SqlErr};

use super::auth::password;
use super::db::{
    self,
    users::{ActiveModel, Column, Entity, Model},
};
use super::error::{ApiError, ApiResult};
use netcheck_proto::api::auth::{Role, User};
use netcheck_proto::api::ErrorCode;

impl From<Model> for User {
    fn from(m: Model) -> Self {
        Self {
            id: m.id,
            username: m.username,
            role: m.role.into(),
            created_at: m.created_at,
        }
    }
}

/// Checks a username: 1–64 characters of letters, digits, `.`, `_`, `-` and `@`.
pub fn validate_username(name: &str) -> ApiResult<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err(ApiError::invalid_field(
            "username",
            "username must be 1-64 characters of letters, digits, '.', '_', '-' or '@'",
        ));
    }
    Ok(())
}

pub fn validate_password(pw: &str) -> ApiResult<()> {
    let len = pw.chars().count();
    if !(password::MIN_LENGTH..=password::MAX_LENGTH).contains(&len) {
        return Err(ApiError::invalid_field(
            "password",
            format!(
                "password must be {}-{} characters long",
                password::MIN_LENGTH,
                password::MAX_LENGTH
            ),
        ));
    }
    Ok(())
}

/// The user `id`; 404 when there is none.
pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> ApiResult<Model> {
    db::users::find(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}

pub async fn list(db: &impl ConnectionTrait) -> ApiResult<Vec<Model>> {
    Ok(Entity::find()
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Username)
        .all(db)
        .await?)
}

pub async fn count(db: &impl ConnectionTrait) -> ApiResult<u64> {
    Ok(Entity::find().count(db).await?)
}

/// Creates a user; 409 `username_taken` when the name exists in any letter case.
pub async fn create(
    db: &impl ConnectionTrait,
    gate: &password::HashGate,
    username: &str,
    password: &str,
    role: Role,
) -> ApiResult<Model> {
    validate_username(username)?;
    validate_password(password)?;
    let now = Utc::now();
    let model = ActiveModel {
        id: Set(Uuid::now_v7()),
        username: Set(username.to_string()),
        password_hash: Set(password::hash_blocking(gate, password.to_string()).await),
        role: Set(role.into()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    model.insert(db).await.map_err(|err| match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => username_taken(username),
        _ => err.into(),
    })
}

fn username_taken(username: &str) -> ApiError {
    ApiError::conflict(
        ErrorCode::UsernameTaken,
        format!("username '{username}' is already taken"),
    )
    .with_details(serde_json::json!({ "field": "username" }))
}

/// Creates the first administrator when the database has no users. Returns the generated
/// password when none was given, so the caller can show it once.
pub async fn bootstrap_admin(
    db: &impl ConnectionTrait,
    username: &str,
    password: Option<&str>,
) -> anyhow::Result<Option<String>> {
    if count(db).await.map_err(|e| anyhow::anyhow!("{e}"))? > 0 {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => (p.to_string(), false),
        None => (password::generate(), true),
    };
    match create(
        db,
        &password::HashGate::new(1),
        username,
        &password,
        Role::Admin,
    )
    .await
    {
        Ok(_) => Ok(generated.then_some(password)),
        // Another server instance bootstrapped at the same moment.
        Err(e) if e.code() == ErrorCode::UsernameTaken => Ok(None),
        Err(e) => Err(anyhow::anyhow!("creating the first admin: {e}")),
    }
}
