//! `traceroute` and `mtr` become check types.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE checks DROP CONSTRAINT checks_type_check;
                 ALTER TABLE checks ADD CONSTRAINT checks_type_check
                     CHECK (type IN ('ping', 'tcp', 'http', 'dns', 'traceroute', 'mtr'));",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DELETE FROM checks WHERE type IN ('traceroute', 'mtr');
                 ALTER TABLE checks DROP CONSTRAINT checks_type_check;
                 ALTER TABLE checks ADD CONSTRAINT checks_type_check
                     CHECK (type IN ('ping', 'tcp', 'http', 'dns'));",
            )
            .await?;
        Ok(())
    }
}
