//! `checks.pending`: how many agents a check still waits for. Storing a result decrements it in
//! the same statement, so the result that brings it to zero finishes the check — one
//! round trip per batch of results and no explicit lock.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
ALTER TABLE checks ADD COLUMN pending integer NOT NULL DEFAULT 0;
UPDATE checks c SET pending = (
    SELECT count(*) FROM check_results r WHERE r.check_id = c.id AND r.status = 'pending'
) WHERE c.status = 'in_progress';
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE checks DROP COLUMN pending;")
            .await?;
        Ok(())
    }
}
