//! Fixed-window counters in Redis, shared by the login limiter and the check quota.

use deadpool_redis::redis::{self, aio::ConnectionLike};

/// Adds `by` (negative to give back) to the counter at `key` and starts its window of `window_secs` if it has none;
/// returns the count and the seconds left in the window. One script, so it is atomic and
/// needs nothing newer than Redis 2.6 (`EXPIRE … NX` would need Redis 7, and a key left
/// without an expiry would lock a user out for good).
pub async fn add(
    conn: &mut impl ConnectionLike,
    key: &str,
    by: i64,
    window_secs: u64,
) -> redis::RedisResult<(i64, i64)> {
    // EVAL with the text each time: the script is short, and EVALSHA would need a retry
    // path for a Redis that restarted and forgot it.
    redis::cmd("EVAL")
        .arg(SCRIPT)
        .arg(1)
        .arg(key)
        .arg(by)
        .arg(window_secs)
        .query_async(conn)
        .await
}

const SCRIPT: &str = r"
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {n, ttl}
";
