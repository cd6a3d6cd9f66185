//! The oldest PostgreSQL, Redis and RabbitMQ the server works with, checked at start so an
//! operator with an older one reads why instead of meeting odd failures later.

use anyhow::{bail, Context};
use sea_orm::DatabaseConnection;

/// PostgreSQL 13: the oldest release the SQL here is tested to need (docs/deployment.md).
pub const MIN_POSTGRES: (u32, u32) = (13, 0);
/// Redis 6.0: the counters use a script instead of `EXPIRE … NX` (Redis 7) for this.
pub const MIN_REDIS: (u32, u32) = (6, 0);
/// RabbitMQ 3.10 (Debian 12's): per-user limits and the queue arguments used here.
pub const MIN_RABBITMQ: (u32, u32) = (3, 10);

/// Whether a dotted version (`7.0.15`, `3.10.8`, `15.2 (Debian …)`) is at least `min`.
pub fn at_least(found: &str, min: (u32, u32)) -> Option<bool> {
    let mut parts = found
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor) >= min)
}

fn require(service: &str, found: &str, min: (u32, u32)) -> anyhow::Result<()> {
    match at_least(found, min) {
        Some(true) => Ok(()),
        Some(false) => bail!(
            "{service} {found} is too old: netcheck needs {service} {}.{} or newer",
            min.0,
            min.1
        ),
        None => {
            tracing::warn!(
                service,
                version = found,
                "cannot read the version; not checked"
            );
            Ok(())
        }
    }
}

pub async fn check_postgres(db: &DatabaseConnection) -> anyhow::Result<()> {
    let version = crate::server::db::server_version(db)
        .await
        .context("reading the PostgreSQL version")?;
    require("PostgreSQL", &version, MIN_POSTGRES)
}

/// Checks Redis when it answers; an unreachable Redis is left to `/readyz` and the log.
pub async fn check_redis(pool: &deadpool_redis::Pool) -> anyhow::Result<()> {
    let Ok(mut conn) = pool.get().await else {
        tracing::warn!("Redis is not reachable at start; its version is not checked");
        return Ok(());
    };
    let info: String = match deadpool_redis::redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
    {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the Redis version; not checked");
            return Ok(());
        }
    };
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("");
    require("Redis", version, MIN_REDIS)
}

/// Checks RabbitMQ through its management API when it answers.
pub async fn check_rabbitmq(
    mgmt: &crate::server::broker::management::Management,
) -> anyhow::Result<()> {
    match mgmt.version().await {
        Ok(version) => require("RabbitMQ", &version, MIN_RABBITMQ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the RabbitMQ version; not checked");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(at_least("7.0.15", MIN_REDIS), Some(true));
        assert_eq!(at_least("6.0.0", MIN_REDIS), Some(true));
        assert_eq!(at_least("5.0.14", MIN_REDIS), Some(false));
        assert_eq!(at_least("3.10.8", MIN_RABBITMQ), Some(true));
        assert_eq!(at_least("3.9.29", MIN_RABBITMQ), Some(false));
        assert_eq!(at_least("4.0.1", MIN_RABBITMQ), Some(true));
        assert_eq!(at_least("15.2 (Debian 15.2-1)", MIN_POSTGRES), Some(true));
        assert_eq!(at_least("12.17", MIN_POSTGRES), Some(false));
        assert_eq!(at_least("16", MIN_POSTGRES), Some(true));
        assert_eq!(at_least("", MIN_POSTGRES), None);
        assert_eq!(
            require("Redis", "5.0.1", MIN_REDIS)
                .unwrap_err()
                .to_string(),
            "Redis 5.0.1 is too old: netcheck needs Redis 6.0 or newer"
        );
    }
}
