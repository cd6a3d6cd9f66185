//! Monitors: recurring checks with an alert rule, their incidents, and an outbox of webhook
//! deliveries written in the same transaction as the state change that causes them.

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
CREATE TABLE monitors (
    id                      uuid PRIMARY KEY,
    user_id                 uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                    text NOT NULL,
    check_type              text NOT NULL,
    target                  text NOT NULL,
    options                 jsonb NOT NULL,
    selection               jsonb NOT NULL,
    interval_secs           integer NOT NULL,
    min_failing_agents      integer NOT NULL,
    for_runs                integer NOT NULL,
    notify                  jsonb NOT NULL,
    -- The key webhook bodies are signed with: it has to be used, not only checked, so it is
    -- kept as it is (like the broker's own credentials).
    webhook_secret          text NOT NULL,
    paused                  boolean NOT NULL DEFAULT false,
    state                   text NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'up', 'down', 'paused')),
    failing_runs            integer NOT NULL DEFAULT 0,
    last_check_id           uuid,
    last_evaluated_check_id uuid,
    last_run_at             timestamptz,
    next_run_at             timestamptz NOT NULL,
    created_at              timestamptz NOT NULL
);
CREATE INDEX monitors_due_idx ON monitors (next_run_at) WHERE NOT paused;
CREATE INDEX monitors_user_idx ON monitors (user_id, id);

CREATE TABLE monitor_incidents (
    id             uuid PRIMARY KEY,
    monitor_id     uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    started_at     timestamptz NOT NULL,
    resolved_at    timestamptz,
    failing_agents jsonb NOT NULL,
    first_check_id uuid NOT NULL
);
CREATE INDEX monitor_incidents_idx ON monitor_incidents (monitor_id, started_at DESC);

CREATE TABLE webhook_outbox (
    id              bigserial PRIMARY KEY,
    monitor_id      uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    url             text NOT NULL,
    event           text NOT NULL,
    -- The exact bytes that are signed and sent, the same on every attempt.
    body            text NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    gave_up_at      timestamptz
);
CREATE INDEX webhook_outbox_pending_idx ON webhook_outbox (monitor_id, url, id)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX webhook_outbox_due_idx ON webhook_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

ALTER TABLE checks ADD CONSTRAINT checks_monitor_fk
    FOREIGN KEY (monitor_id) REFERENCES monitors (id) ON DELETE SET NULL;
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE checks DROP CONSTRAINT checks_monitor_fk;
                 DROP TABLE webhook_outbox; DROP TABLE monitor_incidents; DROP TABLE monitors;",
            )
            .await?;
        Ok(())
    }
}
