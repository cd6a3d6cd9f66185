//! Waiting between reconnection attempts, the one rule for the agent (to the server and its
//! broker) and the server (to its broker): exponential from `base` to at most `max`, each wait
//! drawn from the upper half of its step so that many peers that lost the same broker do not
//! come back in step, and starting over after a session that lasted.

use std::time::Duration;

use rand::RngExt;

/// A session that lasted this long was not a flap: the next loss starts from `base` again.
pub const STABLE_SESSION: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempt: 0,
        }
    }

    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let cap = self
            .base
            .saturating_mul(1 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let cap_ms = cap.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(cap_ms / 2..=cap_ms))
    }

    /// The wait after a session that lasted `lasted` ended (from `base` again if it was stable).
    pub fn after_session(&mut self, lasted: Duration) -> Duration {
        if lasted > STABLE_SESSION {
            self.attempt = 0;
        }
        self.next_wait()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_with_jitter_are_capped_and_start_over_after_a_stable_session() {
        let (base, max) = (Duration::from_millis(250), Duration::from_secs(10));
        let mut b = Backoff::new(base, max);
        let first = b.next_wait();
        assert!(first <= base && first >= base / 2, "{first:?}");
        let second = b.next_wait();
        assert!(second >= base && second <= base * 2, "doubles: {second:?}");
        for _ in 0..40 {
            assert!(b.next_wait() <= max);
        }
        assert!(b.next_wait() >= max / 2, "stays at the cap");
        assert!(
            b.after_session(Duration::from_secs(5)) >= max / 2,
            "a flap keeps waiting"
        );
        assert!(
            b.after_session(STABLE_SESSION * 2) <= base,
            "a stable session starts over"
        );
    }
}
