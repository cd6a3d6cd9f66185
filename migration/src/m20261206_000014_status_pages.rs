//! Status pages, maintenance windows, daily roll-ups of monitor runs (a page shows 90 days
//! from one indexed query), and notification channels beside webhooks in the outbox.

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
-- The channel of a delivery (a `notify` entry); NULL for a webhook at `url`, as before. `url`
-- stays the ordering key and what the delivery log shows (never a token).
ALTER TABLE webhook_outbox ADD COLUMN channel jsonb;
ALTER TABLE monitors DROP CONSTRAINT monitors_state_check;
ALTER TABLE monitors ADD CONSTRAINT monitors_state_check
    CHECK (state IN ('pending', 'up', 'down', 'paused', 'maintenance'));

CREATE TABLE monitor_days (
    monitor_id   uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    day          date NOT NULL,
    runs         integer NOT NULL,
    failing_runs integer NOT NULL,
    PRIMARY KEY (monitor_id, day)
);
INSERT INTO monitor_days (monitor_id, day, runs, failing_runs)
    SELECT monitor_id, (hour AT TIME ZONE 'UTC')::date, sum(runs), sum(failing_runs)
    FROM monitor_hours GROUP BY 1, 2;

CREATE TABLE status_pages (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    slug         text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9-]{3,40}$'),
    title        text NOT NULL,
    description  text,
    public       boolean NOT NULL,
    show_targets boolean NOT NULL,
    groups       jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX status_pages_user_idx ON status_pages (user_id, id);

CREATE TABLE maintenance_windows (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    monitor_ids      uuid[] NOT NULL DEFAULT '{}',
    status_page_id   uuid REFERENCES status_pages (id) ON DELETE CASCADE,
    starts_at        timestamptz,
    ends_at          timestamptz,
    -- Weekly: days after Monday, minutes after midnight UTC, length.
    weekly_day       smallint CHECK (weekly_day BETWEEN 0 AND 6),
    weekly_minute    smallint CHECK (weekly_minute BETWEEN 0 AND 1439),
    duration_minutes integer CHECK (duration_minutes BETWEEN 1 AND 10080),
    note             text NOT NULL,
    created_at       timestamptz NOT NULL,
    CHECK ((starts_at IS NOT NULL AND ends_at IS NOT NULL AND ends_at > starts_at)
           OR (weekly_day IS NOT NULL AND weekly_minute IS NOT NULL AND duration_minutes IS NOT NULL)),
    CHECK (status_page_id IS NOT NULL OR cardinality(monitor_ids) > 0)
);
CREATE INDEX maintenance_user_idx ON maintenance_windows (user_id, id);
CREATE INDEX maintenance_monitors_idx ON maintenance_windows USING gin (monitor_ids);
CREATE INDEX maintenance_page_idx ON maintenance_windows (status_page_id);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE maintenance_windows; DROP TABLE status_pages; DROP TABLE monitor_days;
                 ALTER TABLE webhook_outbox DROP COLUMN channel;",
            )
            .await?;
        Ok(())
    }
}
