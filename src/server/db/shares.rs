//! `check_shares`: one share link per check, kept as the hash of its token.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement};
use uuid::Uuid;

/// Stores the link of `check_id` (replacing an earlier one, which stops working).
pub async fn save(
    db: &impl ConnectionTrait,
    check_id: Uuid,
    token_hash: Vec<u8>,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    super::execute(
        db,
        "INSERT INTO check_shares (check_id, token_hash, created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (check_id) DO UPDATE SET token_hash = EXCLUDED.token_hash,
             created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at,
             expires_at = EXCLUDED.expires_at",
        [
            check_id.into(),
            token_hash.into(),
            created_by.into(),
            created_at.into(),
            expires_at.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Withdraws the link of `check_id`; whether there was one.
pub async fn remove(db: &impl ConnectionTrait, check_id: Uuid) -> Result<bool, DbErr> {
    let done = super::execute(
        db,
        "DELETE FROM check_shares WHERE check_id = $1",
        [check_id.into()],
    )
    .await?;
    Ok(done > 0)
}

/// The check a link that has not expired shows, and when the link expires.
pub async fn live(
    db: &impl ConnectionTrait,
    token_hash: Vec<u8>,
) -> Result<Option<(Uuid, DateTime<Utc>)>, DbErr> {
    let Some(row) = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT check_id, expires_at FROM check_shares WHERE token_hash = $1 AND expires_at > now()",
            [token_hash.into()],
        ))
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        row.try_get("", "check_id")?,
        row.try_get("", "expires_at")?,
    )))
}

/// Deletes the links past their expiry.
pub async fn delete_expired(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    super::execute(db, "DELETE FROM check_shares WHERE expires_at < now()", []).await
}
