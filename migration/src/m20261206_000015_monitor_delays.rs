//! A monitor whose run was held back because netcheck was past capacity (503 `overloaded`)
//! keeps the time that began, so its view can say its runs are delayed, not silently missing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE monitors ADD COLUMN delayed_since timestamptz;")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE monitors DROP COLUMN delayed_since;")
            .await?;
        Ok(())
    }
}
