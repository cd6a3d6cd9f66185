//! PostgreSQL: connection pool, migrations, and server-wide settings kept in the database.

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

pub mod checks;
pub mod deliveries;
pub mod maintenance;
pub mod monitor_history;
pub mod monitor_stats;
pub mod monitors;
pub mod results;
pub mod shares;
pub mod status_history;
pub mod stored;
pub mod users;

/// Connections a one-shot command (`migrate`, `user add`) needs: it runs one statement at a time.
pub const COMMAND_CONNECTIONS: u32 = 2;

/// A connection pool of at most `max_connections`.
pub async fn connect(
    settings: &DatabaseSettings,
    max_connections: u32,
) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(settings.url.expose_secret().to_string());
    opts.max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .acquire_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .sqlx_logging(false);
    Database::connect(opts)
        .await
        .context("connecting to PostgreSQL (database.url)")
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("applying database migrations")
}

/// Runs one statement, `values` standing for `$1`, `$2`, …; how many rows it changed.
pub async fn execute<const N: usize>(
    db: &impl ConnectionTrait,
    sql: &str,
    values: [sea_orm::Value; N],
) -> Result<u64, sea_orm::DbErr> {
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            values,
        ))
        .await?;
    Ok(done.rows_affected())
}

/// The uuid column `column` of each row one statement returns.
pub async fn uuids<const N: usize>(
    db: &impl ConnectionTrait,
    sql: &str,
    values: [sea_orm::Value; N],
    column: &str,
) -> Result<Vec<uuid::Uuid>, sea_orm::DbErr> {
    db.query_all_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .await?
    .iter()
    .map(|r| r.try_get("", column))
    .collect()
}

/// Returns the value stored under `key`, storing `make()` first if there is none. Safe when
/// several server instances start at once: the first insert wins and all read the same value.
pub async fn setting_or_init(
    db: &DatabaseConnection,
    key: &str,
    make: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    let backend = db.get_database_backend();
    execute(
        db,
        "INSERT INTO server_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        [key.into(), make().into()],
    )
    .await?;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT value FROM server_settings WHERE key = $1",
            [key.into()],
        ))
        .await?
        .context("server setting vanished")?;
    Ok(row.try_get::<String>("", "value")?)
}

/// PostgreSQL's version, as `SHOW server_version` reads it (e.g. `15.19 (Debian …)`).
pub async fn server_version(db: &DatabaseConnection) -> anyhow::Result<String> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SHOW server_version",
        ))
        .await?
        .context("PostgreSQL returned no version")?;
    Ok(row.try_get("", "server_version")?)
}
