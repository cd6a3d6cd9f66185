//! Agents gain the network they sit in (`asn`, `network`, from the offline ASN data at
//! registration) and an optional place set by hand (`fixed_location`) for agents whose address
//! GeoIP cannot place. The GeoIP columns stay as measured, so clearing the fixed place shows
//! them again.

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
ALTER TABLE agents ADD COLUMN asn bigint;
ALTER TABLE agents ADD COLUMN network text;
ALTER TABLE agents ADD COLUMN fixed_location jsonb;
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE agents DROP COLUMN asn, DROP COLUMN network, DROP COLUMN fixed_location;",
            )
            .await?;
        Ok(())
    }
}
