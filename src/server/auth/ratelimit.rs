//! Login throttling. Every attempt is counted *before* its password is verified, per
//! (username, client address) and per client address, in Redis fixed windows; past either
//! limit the login answers 429 with `Retry-After` and no hashing happens. A correct password
//! takes its attempt back, so only failures accumulate. An IPv6 client is counted by its /64
//! (one host is handed a whole /64), and its /48 has a tier of its own (four times the
//! address limit); IPv4-mapped addresses count as IPv4.
//!
//! Failures against one account, from any address, slow its sign-ins down: after a few, each
//! further attempt must wait twice as long as the one before (up to 30 s) or get 429. An
//! address the account signed in from lately is spared, so guessing from elsewhere never
//! locks the owner out.
//!
//! When Redis is unreachable logins answer 503 (fail closed): without the counters, nothing
//! would bound password guessing.

use deadpool_redis::{redis, Pool};

use crate::server::error::{ApiError, ApiResult};
use crate::server::redis_keys as keys;
use crate::server::window;

pub struct LoginLimiter<'a> {
    pub redis: &'a Pool,
    pub prefix: &'a str,
    pub max_per_user: u32,
    pub max_per_ip: u32,
    pub window_secs: u64,
}

/// Failures against one account before its sign-ins slow down.
const SLOW_AFTER: i64 = 5;
/// The slow-down's first wait; it doubles with each further failure. Two seconds rather
/// than one so that the wait does not vanish into the rounding of a second boundary.
const FIRST_WAIT_MS: i64 = 2_000;
/// Longest wait the slow-down asks for.
const SLOWEST_MS: i64 = 30_000;
/// How long an address an account signed in from is spared the slow-down.
const KNOWN_FOR_SECS: u64 = 30 * 86_400;

/// How a client address is counted: IPv4 as it is, IPv6 by its /64, with its /48 as a
/// wider tier.
pub fn client_key(ip: std::net::IpAddr) -> (String, Option<String>) {
    use std::net::IpAddr;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => (v4.to_string(), None),
        IpAddr::V6(v6) => {
            let net = |len| {
                ipnet::Ipv6Net::new(v6, len)
                    .expect("a valid prefix length")
                    .trunc()
                    .to_string()
            };
            (net(64), Some(net(48)))
        }
    }
}

/// An attempt counted against the limits; hand it back with [`LoginLimiter::succeeded`],
/// [`LoginLimiter::failed`] or [`LoginLimiter::not_verified`].
pub struct Attempt {
    pair_key: String,
    ip_key: String,
    net_key: Option<String>,
    account_key: String,
    known_key: String,
}

impl LoginLimiter<'_> {
    fn keys(&self, ip: std::net::IpAddr, username: &str) -> Attempt {
        let (client, net) = client_key(ip);
        let user = username.to_lowercase();
        let p = self.prefix;
        Attempt {
            pair_key: keys::login_attempts(p, &user, &client),
            ip_key: keys::login_attempts_ip(p, &client),
            net_key: net.map(|n| keys::login_attempts_net(p, &n.to_string())),
            account_key: keys::login_failures(p, &user),
            known_key: keys::login_known(p, &user, &client),
        }
    }

    /// Counts the attempt; refuses it (429) when it is over a limit, or when the account's
    /// slow-down asks this address to wait.
    pub async fn attempt(&self, ip: std::net::IpAddr, username: &str) -> ApiResult<Attempt> {
        let attempt = self.keys(ip, username);
        let count = || async {
            let mut conn = self.redis.get().await?;
            let pair = window::add(&mut conn, &attempt.pair_key, 1, self.window_secs).await?;
            let ip = window::add(&mut conn, &attempt.ip_key, 1, self.window_secs).await?;
            let net = match &attempt.net_key {
                Some(k) => window::add(&mut conn, k, 1, self.window_secs).await?,
                None => (0, 0),
            };
            let wait = self.account_wait(&mut conn, &attempt).await?;
            Ok::<_, ApiError>((pair, ip, net, wait))
        };
        // One more try after a moment: a blip of Redis should not refuse a sign-in.
        let counts = match count().await {
            Ok(c) => Ok(c),
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                count().await
            }
        };
        let ((pair, pair_ttl), (per_ip, ip_ttl), (per_net, net_ttl), wait) = match counts {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e.message(), "login refused: the rate limiter's store (Redis) is unavailable");
                return Err(ApiError::unavailable("rate limiter"));
            }
        };
        let mut retry_after = 0;
        for (over, ttl) in [
            (pair > self.max_per_user as i64, pair_ttl),
            (per_ip > self.max_per_ip as i64, ip_ttl),
            (per_net > 4 * self.max_per_ip as i64, net_ttl),
            (wait > 0, wait),
        ] {
            if over {
                retry_after = retry_after.max(ttl.max(1));
            }
        }
        if retry_after > 0 {
            tracing::warn!(%ip, "login rate limit reached");
            return Err(ApiError::rate_limited(retry_after as u64));
        }
        Ok(attempt)
    }

    /// Seconds this address must still wait before the account takes another attempt (0:
    /// none): after [`SLOW_AFTER`] failures, 2 s and twice as long per further failure,
    /// counted from the last one (timestamps in milliseconds); an address the account signed in from lately never waits.
    async fn account_wait(
        &self,
        conn: &mut deadpool_redis::Connection,
        attempt: &Attempt,
    ) -> ApiResult<i64> {
        let (failures, last): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(&attempt.account_key)
            .arg("failures")
            .arg("last")
            .query_async(conn)
            .await?;
        let failures = failures.unwrap_or(0);
        if failures < SLOW_AFTER {
            return Ok(0);
        }
        let known: bool = redis::cmd("EXISTS")
            .arg(&attempt.known_key)
            .query_async(conn)
            .await?;
        if known {
            return Ok(0);
        }
        let delay = FIRST_WAIT_MS
            .checked_shl((failures - SLOW_AFTER).min(16) as u32)
            .unwrap_or(SLOWEST_MS)
            .min(SLOWEST_MS);
        let now = chrono::Utc::now().timestamp_millis();
        let wait_ms = (last.unwrap_or(0) + delay - now).max(0);
        // Whole seconds for Retry-After, rounded up so a client waiting them is let in.
        Ok((wait_ms + 999) / 1000)
    }

    /// A wrong password: the account's failures grow (kept a window after the last one).
    pub async fn failed(&self, attempt: Attempt) {
        let result: Result<(), ApiError> = async {
            let mut conn = self.redis.get().await?;
            redis::pipe()
                .cmd("HINCRBY")
                .arg(&attempt.account_key)
                .arg("failures")
                .arg(1)
                .cmd("HSET")
                .arg(&attempt.account_key)
                .arg("last")
                .arg(chrono::Utc::now().timestamp_millis())
                .cmd("EXPIRE")
                .arg(&attempt.account_key)
                .arg(self.window_secs)
                .query_async::<()>(&mut conn)
                .await?;
            Ok(())
        }
        .await;
        if result.is_err() {
            tracing::warn!("could not count a failed login (redis unavailable)");
        }
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
                // This address is the owner's: the account's slow-down spares it.
                redis::cmd("SET")
                    .arg(&attempt.known_key)
                    .arg(1)
                    .arg("EX")
                    .arg(KNOWN_FOR_SECS)
                    .query_async::<()>(&mut conn)
                    .await?;
            } else {
                window::add(&mut conn, &attempt.pair_key, -1, self.window_secs).await?;
            }
            // Through the window script: a key that expired meanwhile comes back with a TTL.
            window::add(&mut conn, &attempt.ip_key, -1, self.window_secs).await?;
            if let Some(k) = &attempt.net_key {
                window::add(&mut conn, k, -1, self.window_secs).await?;
            }
            Ok(())
        }
        .await;
        if result.is_err() {
            tracing::warn!("could not take back a login attempt (redis unavailable)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client_key;

    #[test]
    fn ipv6_clients_count_by_their_64_and_48_and_mapped_ones_as_ipv4() {
        let a = client_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a.0, "2001:db8:1:2::/64");
        assert_eq!(a.1.as_deref(), Some("2001:db8:1::/48"));
        assert_eq!(
            client_key("::ffff:192.0.2.7".parse().unwrap()),
            ("192.0.2.7".into(), None)
        );
    }
}
