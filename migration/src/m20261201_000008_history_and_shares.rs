//! Finding and sharing results: share links (only a hash of each token is kept), the
//! `monitor_id` a check run by a monitor carries, and indexes for history filters (by agent,
//! by monitor, and — where the `pg_trgm` extension can be installed — by target substring).

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
CREATE TABLE check_shares (
    check_id   uuid PRIMARY KEY REFERENCES checks (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
ALTER TABLE checks ADD COLUMN monitor_id uuid;
CREATE INDEX checks_monitor_idx ON checks (monitor_id, id DESC) WHERE monitor_id IS NOT NULL;
CREATE INDEX checks_type_idx ON checks (type, id DESC);
CREATE INDEX check_results_agent_idx ON check_results (agent_id, check_id);
CREATE INDEX check_results_not_ok_idx ON check_results (check_id) WHERE status <> 'ok';
-- Substring search on targets uses a trigram index when the extension is available (it is
-- part of PostgreSQL's standard contrib modules, but a restricted role may not install it).
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXECUTE 'CREATE INDEX checks_target_trgm_idx ON checks USING gin (target gin_trgm_ops)';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm unavailable (%): target search scans', SQLERRM;
END
$$;
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE check_shares;
                 DROP INDEX IF EXISTS checks_target_trgm_idx;
                 DROP INDEX checks_type_idx;
                 DROP INDEX check_results_agent_idx;
                 DROP INDEX check_results_not_ok_idx;
                 ALTER TABLE checks DROP COLUMN monitor_id;",
            )
            .await?;
        Ok(())
    }
}
