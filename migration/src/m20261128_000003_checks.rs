//! Checks and their per-agent results. A result row exists from the moment the check is
//! created (status `pending`), so storing an agent's answer is a guarded update: exactly once,
//! and only for agents that were asked.

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
CREATE TABLE checks (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (type IN ('ping', 'tcp', 'http', 'dns')),
    target      text NOT NULL,
    options     jsonb NOT NULL,
    status      text NOT NULL CHECK (status IN ('in_progress', 'finished')),
    created_at  timestamptz NOT NULL,
    deadline_at timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX checks_user_idx ON checks (user_id, id DESC);
CREATE INDEX checks_due_idx ON checks (deadline_at) WHERE status = 'in_progress';

CREATE TABLE check_results (
    check_id       uuid NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    agent_id       uuid NOT NULL,
    agent_name     text NOT NULL,
    agent_region   text,
    agent_location jsonb,
    status         text NOT NULL CHECK (status IN ('pending', 'ok', 'failed', 'timeout', 'offline')),
    error          jsonb,
    started_at     timestamptz,
    duration_ms    double precision,
    data           jsonb,
    received_at    timestamptz,
    PRIMARY KEY (check_id, agent_id)
);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE check_results; DROP TABLE checks;")
            .await?;
        Ok(())
    }
}
