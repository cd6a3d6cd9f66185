//! Login throttling: failed attempts are counted per username and per client address in Redis
//! fixed windows; past the limit, logins answer 429 with `Retry-After`.
//!
//! When Redis is unreachable the limiter lets logins through (and logs it): an outage of the
//! cache must not lock every operator out, and argon2 already makes guessing slow.

use deadpool_redis::{redis, Pool};

use crate::server::error::{ApiError, ApiResult};

pub struct LoginLimiter<'a> {
    pub redis: &'a Pool,
    pub prefix: &'a str,
    pub max_per_user: u32,
    pub max_per_ip: u32,
    pub window_secs: u64,
}

impl LoginLimiter<'_> {
    fn keys(&self, ip: &str, username: &str) -> (String, String) {
        (
            format!(
                "{}:login-fail:user:{}",
                self.prefix,
                username.to_lowercase()
            ),
            format!("{}:login-fail:ip:{}", self.prefix, ip),
        )
    }

    /// Refuses the attempt when either counter is exhausted.
    pub async fn check(&self, ip: &str, username: &str) -> ApiResult<()> {
        let (user_key, ip_key) = self.keys(ip, username);
        let result: Result<(Option<u32>, i64, Option<u32>, i64), ApiError> = async {
            let mut conn = self.redis.get().await?;
            Ok(redis::pipe()
                .get(&user_key)
                .ttl(&user_key)
                .get(&ip_key)
                .ttl(&ip_key)
                .query_async(&mut conn)
                .await?)
        }
        .await;
        let (user_count, user_ttl, ip_count, ip_ttl) = match result {
            Ok(v) => v,
            Err(_) => {
                tracing::warn!("login rate limiter unavailable (redis); allowing attempt");
                return Ok(());
            }
        };
        let mut retry_after = 0i64;
        if user_count.unwrap_or(0) >= self.max_per_user {
            retry_after = retry_after.max(user_ttl);
        }
        if ip_count.unwrap_or(0) >= self.max_per_ip {
            retry_after = retry_after.max(ip_ttl);
        }
        if user_count.unwrap_or(0) >= self.max_per_user || ip_count.unwrap_or(0) >= self.max_per_ip
        {
            tracing::warn!(ip, "login rate limit reached");
            let secs = if retry_after > 0 {
                retry_after as u64
            } else {
                self.window_secs
            };
            return Err(ApiError::rate_limited(secs));
        }
        Ok(())
    }

    /// Counts a failed attempt against both the username and the address.
    pub async fn record_failure(&self, ip: &str, username: &str) {
        let (user_key, ip_key) = self.keys(ip, username);
        let result: Result<(), ApiError> = async {
            let mut conn = self.redis.get().await?;
            crate::server::window::add(&mut conn, &user_key, 1, self.window_secs).await?;
            crate::server::window::add(&mut conn, &ip_key, 1, self.window_secs).await?;
            Ok(())
        }
        .await;
        if result.is_err() {
            tracing::warn!("could not record failed login (redis unavailable)");
        }
    }
}
