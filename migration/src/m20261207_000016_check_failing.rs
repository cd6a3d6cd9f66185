//! A result row is written twice: `pending` when its check is created, its answer moments
//! later. The partial index on `status <> 'ok'` made that second write touch an indexed
//! column, so PostgreSQL could never update the row in place (a HOT update): every answer
//! inserted into all three indexes of `check_results` and left dead entries for vacuum.
//! The history's outcome filters, the index's only users, read a per-check count of
//! answers that were not `ok` instead (`checks.failing`, kept by the statements that
//! already write the check row), so without the index answers are stored in place and the
//! filters no longer probe results at all.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE checks ADD COLUMN failing integer NOT NULL DEFAULT 0;
                 UPDATE checks c SET failing = f.n
                 FROM (SELECT check_id, count(*)::int AS n FROM check_results
                       WHERE status NOT IN ('ok', 'pending') GROUP BY check_id) f
                 WHERE c.id = f.check_id;
                 DROP INDEX IF EXISTS check_results_not_ok_idx;",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX check_results_not_ok_idx ON check_results (check_id) WHERE status <> 'ok';
                 ALTER TABLE checks DROP COLUMN failing;",
            )
            .await?;
        Ok(())
    }
}
