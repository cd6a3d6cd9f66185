//! Users: the account table, the rules for names and passwords, and the service functions the
//! HTTP routes and the `netcheck user` command share.

pub mod routes;

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{ExprTrait, Func};
use sea_orm::{ActiveValue::Set, ConnectionTrait, PaginatorTrait, QueryOrder, SqlErr};

use super::auth::password;
use super::db::stored::StoredRole;
use super::error::{ApiError, ApiResult};
use netcheck_proto::api::auth::{Role, User};
use netcheck_proto::api::ErrorCode;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub role: StoredRole,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The one ownership rule: administrators see and manage everyone's checks and monitors,
/// everyone else their own.
impl Model {
    pub fn is_admin(&self) -> bool {
        self.role == StoredRole::Admin
    }

    /// Whether this user may see (and, where the route allows, change) what `owner` owns.
    pub fn may_see(&self, owner: Uuid) -> bool {
        owner == self.id || self.is_admin()
    }

    /// The owner a listing is limited to: `None` for an administrator (everyone's).
    pub fn listing_owner(&self) -> Option<Uuid> {
        (!self.is_admin()).then_some(self.id)
    }
}

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

/// Finds a user by name, ignoring case.
pub async fn find_by_username(db: &impl ConnectionTrait, name: &str) -> ApiResult<Option<Model>> {
    Ok(Entity::find()
        .filter(Expr::expr(Func::lower(Expr::col(Column::Username))).eq(name.to_lowercase()))
        .one(db)
        .await?)
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> ApiResult<Model> {
    Entity::find_by_id(id)
        .one(db)
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
