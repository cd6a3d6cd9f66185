//! Agents: probe hosts, their hashed enrollment tokens and what they last reported.

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
CREATE TABLE agents (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    region        text,
    labels        jsonb NOT NULL DEFAULT '[]',
    -- Tokens look like nca_<token_id>_<secret>; only SHA-256(secret) is stored.
    token_id      text NOT NULL UNIQUE,
    token_hash    bytea NOT NULL,
    broker_user   text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    registered_at timestamptz,
    last_seen_at  timestamptz,
    version       text,
    hostname      text,
    public_ip     text,
    capabilities  jsonb NOT NULL DEFAULT '[]',
    country_code  text,
    city          text,
    lat           double precision,
    lon           double precision
);
CREATE UNIQUE INDEX agents_name_lower_idx ON agents (lower(name));
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE agents;")
            .await?;
        Ok(())
    }
}
