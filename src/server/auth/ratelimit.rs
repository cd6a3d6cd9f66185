//! Login throttling. Every attempt is counted *before* its password is verified, per
//! (username, client address) and per client address, in Redis fixed windows; past either
//! limit the login answers 429 with `Retry-After` and no hashing happens. A correct password
//! takes its attempt back, so only failures accumulate. There is no per-username counter of
//! its own: failures from other addresses never lock out the owner of an account.
//!
//! When Redis is unreachable logins answer 503 (fail closed): without the counters, nothing
//! would bound password guessing.

use deadpool_redis::{redis, Pool};

use crate::server::error::{ApiError, ApiResult};
use crate::server::window;

pub struct LoginLimiter<'a> {
    pub redis: &'a Pool,
    pub prefix: &'a str,
    pub max_per_user: u32,
    pub max_per_ip: u32,
    pub window_secs: u64,
}

/// An attempt counted against both limits; hand it back with [`LoginLimiter::forgive`].
pub struct Attempt {
    pair_key: String,
    ip_key: String,
}

impl LoginLimiter<'_> {
    fn keys(&self, ip: &str, username: &str) -> Attempt {
        Attempt {
            pair_key: format!(
                "{}:login-attempts:{}:{ip}",
                self.prefix,
                username.to_lowercase()
            ),
            ip_key: format!("{}:login-attempts-ip:{ip}", self.prefix),
        }
    }

    /// Counts the attempt; refuses it (429) when it is over either limit.
    pub async fn attempt(&self, ip: &str, username: &str) -> ApiResult<Attempt> {
        let attempt = self.keys(ip, username);
        let count = || async {
            let mut conn = self.redis.get().await?;
            let pair = window::add(&mut conn, &attempt.pair_key, 1, self.window_secs).await?;
            let ip = window::add(&mut conn, &attempt.ip_key, 1, self.window_secs).await?;
            Ok::<_, ApiError>((pair, ip))
        };
        // One more try after a moment: a blip of Redis should not refuse a sign-in.
        let counts = match count().await {
            Ok(c) => Ok(c),
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                count().await
            }
        };
        let ((pair, pair_ttl), (per_ip, ip_ttl)) = match counts {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e.message(), "login refused: the rate limiter's store (Redis) is unavailable");
                return Err(ApiError::unavailable("rate limiter"));
            }
        };
        let mut retry_after = 0;
        let (pair_over, ip_over) = (
            pair > self.max_per_user as i64,
            per_ip > self.max_per_ip as i64,
        );
        if pair_over {
            retry_after = pair_ttl;
        }
        if ip_over {
            retry_after = retry_after.max(ip_ttl);
        }
        if pair_over || ip_over {
            tracing::warn!(ip, "login rate limit reached");
            return Err(ApiError::rate_limited(retry_after.max(1) as u64));
        }
        Ok(attempt)
    }

    /// A right password: the pair's failures start over and the attempt is taken back from
    /// the address's count.
    pub async fn succeeded(&self, attempt: Attempt) {
        self.give_back(attempt, true).await
    }

    /// An attempt that was never verified (no hashing capacity): taken back from both counts.
    pub async fn not_verified(&self, attempt: Attempt) {
        self.give_back(attempt, false).await
    }

    async fn give_back(&self, attempt: Attempt, reset_pair: bool) {
        let result: Result<(), ApiError> = async {
            let mut conn = self.redis.get().await?;
            if reset_pair {
                redis::cmd("DEL")
                    .arg(&attempt.pair_key)
                    .query_async::<()>(&mut conn)
                    .await?;
            } else {
                window::add(&mut conn, &attempt.pair_key, -1, self.window_secs).await?;
            }
            // Through the window script: a key that expired meanwhile comes back with a TTL.
            window::add(&mut conn, &attempt.ip_key, -1, self.window_secs).await?;
            Ok(())
        }
        .await;
        if result.is_err() {
            tracing::warn!("could not take back a login attempt (redis unavailable)");
        }
    }
}
