//! Login sessions as refresh-token families. Each login starts a family; each refresh rotates
//! the token within it. Presenting a token that was already rotated means it leaked: the whole
//! family is revoked. Only SHA-256 hashes of tokens are stored.
//!
//! One exception, so that a browser is not signed out by its own races: a token presented again
//! within a short grace window after its rotation, while its successor is still unused, gets that
//! same successor again. This happens when a page reloads while a refresh is in flight (the
//! server rotated, the browser never saw the new cookie) or when two tabs refresh at once.
//! The successor is derived from the token with a keyed HMAC, so it can be handed out again
//! without being stored; outside the window, or once the successor was used, reuse revokes.

use base64::Engine;
use chrono::{Duration, Utc};
use hmac::{KeyInit, Mac};
use rand::Rng;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, TransactionTrait};
use sha2::{Digest, Sha256};

use crate::server::error::{ApiError, ApiResult};
use netcheck_proto::api::ErrorCode;

pub mod family {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_families")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub created_at: DateTimeUtc,
        pub revoked_at: Option<DateTimeUtc>,
        pub revoked_reason: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub family_id: Uuid,
        pub token_hash: Vec<u8>,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub rotated_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(raw: &str) -> Vec<u8> {
    Sha256::digest(raw.as_bytes()).to_vec()
}

/// How refresh tokens rotate: their lifetime, the key their successors are derived with, and
/// the grace window in which a just-rotated token gets its successor again.
#[derive(Clone)]
pub struct Rotation {
    key: [u8; 32],
    ttl_secs: u64,
    grace: Duration,
}

impl Rotation {
    /// `secret` is the deployment's token key; a separate key is derived from it for this use.
    pub fn new(secret: &[u8], ttl_secs: u64, grace_secs: u64) -> Self {
        let mut mac = <hmac::Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes any key");
        mac.update(b"netcheck refresh-token successor v1");
        Self {
            key: mac.finalize().into_bytes().into(),
            ttl_secs,
            grace: Duration::seconds(grace_secs as i64),
        }
    }

    /// The token that replaces `raw` when it is rotated.
    fn successor(&self, raw: &str) -> String {
        let mut mac = <hmac::Hmac<Sha256>>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(raw.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

async fn insert_token(
    db: &impl ConnectionTrait,
    family_id: Uuid,
    raw: &str,
    ttl_secs: u64,
) -> ApiResult<()> {
    let now = Utc::now();
    token::ActiveModel {
        id: Set(Uuid::now_v7()),
        family_id: Set(family_id),
        token_hash: Set(digest(raw)),
        created_at: Set(now),
        expires_at: Set(now + Duration::seconds(ttl_secs as i64)),
        rotated_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Starts a session for `user_id` and returns its first refresh token.
pub async fn start(db: &DatabaseConnection, user_id: Uuid, ttl_secs: u64) -> ApiResult<String> {
    let txn = db.begin().await?;
    let family_id = Uuid::now_v7();
    family::ActiveModel {
        id: Set(family_id),
        user_id: Set(user_id),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
        revoked_reason: Set(None),
    }
    .insert(&txn)
    .await?;
    let raw = new_secret();
    insert_token(&txn, family_id, &raw, ttl_secs).await?;
    txn.commit().await?;
    Ok(raw)
}

fn invalid() -> ApiError {
    ApiError::unauthorized(
        ErrorCode::InvalidRefreshToken,
        "session expired or invalid; sign in again",
    )
}

/// Exchanges a refresh token for a new one in the same family. Returns the user and the new
/// token. A token that was already rotated revokes the family, unless the grace rule above
/// applies.
pub async fn rotate(
    db: &DatabaseConnection,
    rotation: &Rotation,
    raw: &str,
) -> ApiResult<(Uuid, String)> {
    let Some(tok) = token::Entity::find()
        .filter(token::Column::TokenHash.eq(digest(raw)))
        .one(db)
        .await?
    else {
        return Err(invalid());
    };
    let Some(fam) = family::Entity::find_by_id(tok.family_id).one(db).await? else {
        return Err(invalid());
    };
    if fam.revoked_at.is_some() || tok.expires_at <= Utc::now() {
        return Err(invalid());
    }
    let txn = db.begin().await?;
    // Claim the token atomically: of two concurrent presentations only one wins.
    let claimed = token::Entity::update_many()
        .col_expr(token::Column::RotatedAt, Expr::value(Utc::now()))
        .filter(token::Column::Id.eq(tok.id))
        .filter(token::Column::RotatedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    let successor = rotation.successor(raw);
    if !claimed {
        txn.rollback().await?;
        if regranted(db, rotation, tok.id, fam.id, &successor).await? {
            tracing::debug!(family_id = %fam.id, "refresh token presented again within the grace window");
            return Ok((fam.user_id, successor));
        }
        revoke_family(db, fam.id, "refresh token reused").await?;
        tracing::warn!(user_id = %fam.user_id, family_id = %fam.id, "refresh token reuse detected; session revoked");
        return Err(ApiError::unauthorized(
            ErrorCode::RefreshTokenReused,
            "this session was ended because its refresh token was used twice; sign in again",
        ));
    }
    insert_token(&txn, fam.id, &successor, rotation.ttl_secs).await?;
    txn.commit().await?;
    Ok((fam.user_id, successor))
}

/// Whether an already-rotated token may have its successor again: it was rotated within the
/// grace window, the successor has not been used, and the family is still live.
async fn regranted(
    db: &DatabaseConnection,
    rotation: &Rotation,
    token_id: Uuid,
    family_id: Uuid,
    successor: &str,
) -> ApiResult<bool> {
    let rotated_at = token::Entity::find_by_id(token_id)
        .one(db)
        .await?
        .and_then(|t| t.rotated_at);
    if rotation.grace.is_zero() || rotated_at.is_none_or(|at| Utc::now() - at > rotation.grace) {
        return Ok(false);
    }
    let next_unused = token::Entity::find()
        .filter(token::Column::TokenHash.eq(digest(successor)))
        .filter(token::Column::FamilyId.eq(family_id))
        .filter(token::Column::RotatedAt.is_null())
        .one(db)
        .await?
        .is_some();
    let live = family::Entity::find_by_id(family_id)
        .one(db)
        .await?
        .is_some_and(|f| f.revoked_at.is_none());
    Ok(next_unused && live)
}

async fn revoke_family(db: &impl ConnectionTrait, family_id: Uuid, reason: &str) -> ApiResult<()> {
    family::Entity::update_many()
        .col_expr(family::Column::RevokedAt, Expr::value(Utc::now()))
        .col_expr(family::Column::RevokedReason, Expr::value(reason))
        .filter(family::Column::Id.eq(family_id))
        .filter(family::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends the session a refresh token belongs to (logout). Unknown tokens are ignored.
pub async fn revoke_by_token(db: &impl ConnectionTrait, raw: &str) -> ApiResult<()> {
    if let Some(tok) = token::Entity::find()
        .filter(token::Column::TokenHash.eq(digest(raw)))
        .one(db)
        .await?
    {
        revoke_family(db, tok.family_id, "logout").await?;
    }
    Ok(())
}

/// Ends every session of a user (password change).
pub async fn revoke_all_for_user(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    reason: &str,
) -> ApiResult<()> {
    family::Entity::update_many()
        .col_expr(family::Column::RevokedAt, Expr::value(Utc::now()))
        .col_expr(family::Column::RevokedReason, Expr::value(reason))
        .filter(family::Column::UserId.eq(user_id))
        .filter(family::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
