//! Hourly roll-ups of each monitor's runs, so the monitors list can show uptime over 24 hours
//! and 7 days and a latency sparkline for a page of monitors without reading their runs.

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
CREATE TABLE monitor_hours (
    monitor_id   uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    hour         timestamptz NOT NULL,
    runs         integer NOT NULL,
    -- Runs with at least min_failing_agents failing agents (the rule's "failing run").
    failing_runs integer NOT NULL,
    -- Sum and count of the runs' mean headline times (ok answers only).
    value_sum    double precision NOT NULL,
    value_n      integer NOT NULL,
    PRIMARY KEY (monitor_id, hour)
);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE monitor_hours")
            .await?;
        Ok(())
    }
}
