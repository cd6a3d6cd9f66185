//! API keys get scopes. Keys made before keep what users do with them (read, checks,
//! monitors) but lose an administrator's powers: those now need a key made with `admin`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'read,checks,monitors';",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE api_keys DROP COLUMN scopes;")
            .await?;
        Ok(())
    }
}
