//! Every Redis key and pub/sub channel netcheck uses, in one place. All start with
//! `redis.key_prefix`, so several deployments (and the tests) can share one Redis.

use uuid::Uuid;

/// Hash of agent id → last heartbeat (unix ms); PostgreSQL keeps the durable copy.
pub fn agents_last_seen(prefix: &str) -> String {
    format!("{prefix}:agents:last_seen")
}

/// Sliding window of the agent runs `user_id` started (the per-minute check budget).
pub fn check_quota(prefix: &str, user_id: Uuid) -> String {
    format!("{prefix}:quota:checks:{user_id}")
}

/// Sliding window of one monitor's webhook test events.
pub fn webhook_tests(prefix: &str, monitor_id: Uuid) -> String {
    format!("{prefix}:webhook-tests:{monitor_id}")
}

/// Channel of one check's live events (and of `/probe` answers for another instance).
pub fn check_events(prefix: &str, check_id: Uuid) -> String {
    format!("{}{check_id}", check_events_prefix(prefix))
}

/// What every [`check_events`] channel starts with (a check id follows).
pub fn check_events_prefix(prefix: &str) -> String {
    format!("{prefix}:check-events:")
}

/// Failed sign-ins of one user name from one client (address or IPv6 /64).
pub fn login_attempts(prefix: &str, user: &str, client: &str) -> String {
    format!("{prefix}:login-attempts:{user}:{client}")
}

/// Failed sign-ins from one client, whatever the user name.
pub fn login_attempts_ip(prefix: &str, client: &str) -> String {
    format!("{prefix}:login-attempts-ip:{client}")
}

/// Failed sign-ins from one IPv6 /48.
pub fn login_attempts_net(prefix: &str, net: &str) -> String {
    format!("{prefix}:login-attempts-net:{net}")
}

/// An account's recent failures (its slow-down).
pub fn login_failures(prefix: &str, user: &str) -> String {
    format!("{prefix}:login-failures:{user}")
}

/// Marks a client the user signed in from lately (spared the account's slow-down).
pub fn login_known(prefix: &str, user: &str, client: &str) -> String {
    format!("{prefix}:login-known:{user}:{client}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_starts_with_the_prefix_and_events_channels_share_theirs() {
        let id = Uuid::nil();
        for key in [
            agents_last_seen("p"),
            check_quota("p", id),
            webhook_tests("p", id),
            check_events("p", id),
            login_attempts("p", "u", "c"),
            login_attempts_ip("p", "c"),
            login_attempts_net("p", "n"),
            login_failures("p", "u"),
            login_known("p", "u", "c"),
        ] {
            assert!(key.starts_with("p:"), "{key}");
        }
        assert!(check_events("p", id).starts_with(&check_events_prefix("p")));
    }
}
