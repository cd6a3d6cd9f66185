//! Database schema migrations for netcheck, applied by `netcheck migrate` and at server start.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_users_and_sessions;
mod m20261128_000002_agents;
mod m20261128_000003_checks;
mod m20261128_000004_api_keys;
mod m20261128_000005_check_pending;
mod m20261201_000006_api_key_expiry;
mod m20261201_000007_agent_places;
mod m20261201_000008_history_and_shares;
mod m20261201_000009_monitors;
mod m20261201_000010_monitor_hours;
mod m20261201_000011_trace_types;
mod m20261206_000012_api_key_scopes;
mod m20261206_000013_result_headline;
mod m20261206_000014_status_pages;
mod m20261206_000015_monitor_delays;
mod m20261207_000016_check_failing;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_users_and_sessions::Migration),
            Box::new(m20261128_000002_agents::Migration),
            Box::new(m20261128_000003_checks::Migration),
            Box::new(m20261128_000004_api_keys::Migration),
            Box::new(m20261128_000005_check_pending::Migration),
            Box::new(m20261201_000006_api_key_expiry::Migration),
            Box::new(m20261201_000007_agent_places::Migration),
            Box::new(m20261201_000008_history_and_shares::Migration),
            Box::new(m20261201_000009_monitors::Migration),
            Box::new(m20261201_000010_monitor_hours::Migration),
            Box::new(m20261201_000011_trace_types::Migration),
            Box::new(m20261206_000012_api_key_scopes::Migration),
            Box::new(m20261206_000013_result_headline::Migration),
            Box::new(m20261206_000014_status_pages::Migration),
            Box::new(m20261206_000015_monitor_delays::Migration),
            Box::new(m20261207_000016_check_failing::Migration),
        ]
    }
}
