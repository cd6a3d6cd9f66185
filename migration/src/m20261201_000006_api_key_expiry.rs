//! API keys expire: keys made before expiry was required get 90 days from now (not from their
//! creation, so no script loses its key the moment the server is upgraded), and none lives
//! longer than a year from now.

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
UPDATE api_keys SET expires_at = now() + interval '90 days' WHERE expires_at IS NULL;
UPDATE api_keys SET expires_at = now() + interval '365 days'
 WHERE expires_at > now() + interval '365 days';
ALTER TABLE api_keys ALTER COLUMN expires_at SET NOT NULL;
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE api_keys ALTER COLUMN expires_at DROP NOT NULL;")
            .await?;
        Ok(())
    }
}
