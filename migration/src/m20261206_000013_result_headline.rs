//! Each result keeps its headline figure (ping's average round trip, TCP's connect time,
//! HTTP's total, else the probe's duration) in a column of its own, so monitor series and
//! `/metrics` read eight bytes a row instead of decompressing whole results. Results of
//! monitor runs stored before get theirs here.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE check_results ADD COLUMN value_ms double precision;
                 UPDATE check_results r SET value_ms = CASE c.type
                     WHEN 'ping' THEN (r.data #>> '{rtt_ms,avg}')::float8
                     WHEN 'tcp' THEN (r.data ->> 'connect_ms')::float8
                     WHEN 'http' THEN (r.data #>> '{timings_ms,total}')::float8
                     ELSE r.duration_ms END
                 FROM checks c
                 WHERE c.id = r.check_id AND c.monitor_id IS NOT NULL AND r.data IS NOT NULL;",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE check_results DROP COLUMN value_ms;")
            .await?;
        Ok(())
    }
}
