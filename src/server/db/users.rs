//! The `users` table, the one ownership rule, and the reads authentication needs. It sits below
//! `auth` and `users` (which both use it), so neither has to import the other to know a user.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{ExprTrait, Func};
use sea_orm::ConnectionTrait;

use super::stored::StoredRole;

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

/// A user by name, ignoring case.
pub async fn find_by_username(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Expr::expr(Func::lower(Expr::col(Column::Username))).eq(name.to_lowercase()))
        .one(db)
        .await
}

/// The user `id`, if there is one.
pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}
