//! Admission control from queueing delay. Every stored answer says how long it waited in
//! queues: its time from the check's creation (the UUIDv7 id) to its storing, less the
//! probe's own duration. When even the shortest of those waits over the last second is above
//! `checks.max_queueing_ms`, the queue is standing, not a passing burst (CoDel's insight), and
//! a new check would wait at least as long: per agent, that agent is past capacity; over all
//! answers, the server's own pipeline is. Each instance judges from the answers its collector
//! stores, a fair sample of the shared results queue.
//!
//! Past the limit, a share of new checks is refused that grows with the wait (none at the
//! limit, all at twice it), not all of them: refusing everything let the queue drain and the
//! verdict go stale, so the machine idled between bursts and served fewer checks past
//! capacity than at it (docs/benchmarks.md, session 24). With a share, checks keep flowing
//! and the wait settles where the refused share matches the excess offered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Samples are kept as minimums per bucket; the verdict reads the current and the previous
/// bucket, so it covers the last 250–500 ms: long enough to let a burst pass, short enough
/// that a standing queue is refused before it outgrows the checks' slack.
const BUCKET: Duration = Duration::from_millis(250);

/// A verdict needs a sample this recent. Once a backlog drains and nothing new is accepted,
/// no answers arrive: the queue is then judged empty again.
const FRESH: Duration = Duration::from_secs(1);

/// A verdict needs this many answers in the window: a lone slow answer (one check at a time
/// on a busy machine) is not a queue.
const MIN_SAMPLES: u32 = 4;

/// Agents silent this long are forgotten (deleted agents, say).
const FORGET: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
struct Window {
    bucket_start: Instant,
    current: f64,
    current_n: u32,
    /// The previous bucket's minimum and count, when it is the one just before this.
    previous: Option<(f64, u32)>,
    last_sample: Instant,
    /// Refusals owed: each verdict past the limit adds the share to refuse, and a refusal
    /// pays one. Spreads refusals evenly instead of by chance.
    owed: f64,
}

impl Window {
    fn new(now: Instant, waited: f64) -> Self {
        Self {
            bucket_start: now,
            current: waited,
            current_n: 1,
            previous: None,
            last_sample: now,
            owed: 0.0,
        }
    }

    fn observe(&mut self, now: Instant, waited: f64) {
        let elapsed = now.saturating_duration_since(self.bucket_start);
        if elapsed >= BUCKET {
            self.previous = (elapsed < 2 * BUCKET).then_some((self.current, self.current_n));
            self.bucket_start = now;
            self.current = waited;
            self.current_n = 1;
        } else {
            self.current = self.current.min(waited);
            self.current_n += 1;
        }
        self.last_sample = now;
    }

    /// The least wait over the last buckets, when the window is fresh and holds enough answers.
    fn least(&self, now: Instant) -> Option<f64> {
        if now.saturating_duration_since(self.last_sample) > FRESH {
            return None;
        }
        let (least, n) = match self.previous {
            Some((p, pn)) => (p.min(self.current), pn + self.current_n),
            None => (self.current, self.current_n),
        };
        (n >= MIN_SAMPLES).then_some(least)
    }

    /// Whether to refuse the next check, given the least wait when it is over `limit` (`None`
    /// when the window says nothing is behind): a share of them, growing from none at the
    /// limit to all at twice it. Returns the wait.
    fn refuse(&mut self, over: Option<f64>, limit: f64) -> Option<Duration> {
        let Some(least) = over else {
            self.owed = 0.0;
            return None;
        };
        self.owed += ((least - limit) / limit).min(1.0);
        // Rounded, not truncated: the first verdict past half the share refuses at once.
        if self.owed < 0.5 {
            return None;
        }
        self.owed -= 1.0;
        Some(Duration::from_secs_f64(least))
    }

    /// The least wait, when it is over `limit`.
    fn over(&self, now: Instant, limit: f64) -> Option<f64> {
        self.least(now).filter(|&least| least > limit)
    }
}

#[derive(Default)]
struct Inner {
    all: Option<Window>,
    agents: HashMap<Uuid, Window>,
}

/// Recent queueing delay of answers, per agent and over all of them.
pub struct Pressure {
    /// In seconds; `None` turns admission control off.
    limit: Option<f64>,
    inner: Mutex<Inner>,
}

impl Pressure {
    pub fn new(max_queueing_ms: u64) -> Self {
        Self {
            limit: (max_queueing_ms > 0).then_some(max_queueing_ms as f64 / 1000.0),
            inner: Mutex::default(),
        }
    }

    /// One stored answer of `agent` that waited `waited` seconds in queues.
    pub fn observe(&self, agent: Uuid, waited: f64) {
        self.observe_at(agent, waited, Instant::now());
    }

    fn observe_at(&self, agent: Uuid, waited: f64, now: Instant) {
        // Answers held back by an outage (a broker failover, a database restart) count as
        // well: they did wait, and under heavy overload every answer waits longer than a
        // check's slack; leaving those out would admit everything once it is worst.
        if self.limit.is_none() {
            return;
        }
        let mut inner = self.inner.lock().expect("pressure lock");
        match inner.all.as_mut() {
            Some(w) => {
                let rolled = now.saturating_duration_since(w.bucket_start) >= BUCKET;
                w.observe(now, waited);
                if rolled {
                    inner
                        .agents
                        .retain(|_, a| now.saturating_duration_since(a.last_sample) < FORGET);
                }
            }
            None => inner.all = Some(Window::new(now, waited)),
        }
        inner
            .agents
            .entry(agent)
            .and_modify(|w| w.observe(now, waited))
            .or_insert_with(|| Window::new(now, waited));
    }

    /// How long answers of every agent have been waiting, when that is over the limit, more
    /// than one agent answered lately (the server's own pipeline, results queue and storing,
    /// is behind, not one agent) and this check is one of the share refused.
    pub fn server_behind(&self) -> Option<Duration> {
        self.server_behind_at(Instant::now())
    }

    fn server_behind_at(&self, now: Instant) -> Option<Duration> {
        let limit = self.limit?;
        let mut inner = self.inner.lock().expect("pressure lock");
        let over = inner.all.as_ref()?.over(now, limit).filter(|_| {
            // Only past the limit (rare) are the agents looked at, and only until a second
            // one that answered lately: every check creation asks, whatever the fleet's size.
            let answering = inner.agents.values().filter(|w| w.least(now).is_some());
            answering.take(2).count() > 1
        });
        inner.all.as_mut()?.refuse(over, limit)
    }

    /// How long `agent`'s answers have been waiting, when this check to it is one of the
    /// share refused past the limit.
    pub fn agent_behind(&self, agent: Uuid) -> Option<Duration> {
        self.agent_behind_at(agent, Instant::now())
    }

    fn agent_behind_at(&self, agent: Uuid, now: Instant) -> Option<Duration> {
        let limit = self.limit?;
        let mut inner = self.inner.lock().expect("pressure lock");
        let window = inner.agents.get_mut(&agent)?;
        window.refuse(window.over(now, limit), limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `n` answers of `agent`, 10 ms apart from `from`, each having waited `waited` s.
    fn answers(p: &Pressure, agent: Uuid, t0: Instant, from: u64, n: u64, waited: f64) {
        for i in 0..n {
            p.observe_at(agent, waited, t0 + ms(from + i * 10));
        }
    }

    #[test]
    fn a_passing_burst_is_not_a_standing_queue() {
        let p = Pressure::new(500);
        let (a, t0) = (Uuid::now_v7(), Instant::now());
        answers(&p, a, t0, 0, 4, 2.0);
        assert_eq!(p.agent_behind_at(a, t0 + ms(40)), Some(ms(2000)));
        // One quick answer in the same quarter second: the queue was not standing.
        p.observe_at(a, 0.01, t0 + ms(100));
        assert_eq!(p.agent_behind_at(a, t0 + ms(200)), None);
        // Nor in the next one.
        answers(&p, a, t0, 300, 4, 2.0);
        assert_eq!(p.agent_behind_at(a, t0 + ms(340)), None);
        // Once both quarters are slow, it is.
        answers(&p, a, t0, 600, 4, 2.0);
        assert_eq!(p.agent_behind_at(a, t0 + ms(640)), Some(ms(2000)));
    }

    #[test]
    fn lone_answers_are_no_queue() {
        let p = Pressure::new(500);
        let (a, t0) = (Uuid::now_v7(), Instant::now());
        // One check at a time on a slow machine: three slow answers are not enough.
        answers(&p, a, t0, 0, 3, 0.9);
        assert_eq!(p.agent_behind_at(a, t0 + ms(30)), None);
        p.observe_at(a, 20.0, t0 + ms(40));
        assert_eq!(p.agent_behind_at(a, t0 + ms(40)), Some(ms(900)));
    }

    #[test]
    fn a_standing_queue_is_seen_per_agent_and_over_all() {
        let p = Pressure::new(500);
        let (slow, other, t0) = (Uuid::now_v7(), Uuid::now_v7(), Instant::now());
        answers(&p, slow, t0, 0, 50, 1.5);
        assert_eq!(p.agent_behind_at(slow, t0 + ms(500)), Some(ms(1500)));
        // One agent behind is that agent's matter, not the server's.
        assert_eq!(p.server_behind_at(t0 + ms(500)), None);
        // Another agent keeps up: only the slow agent is behind.
        answers(&p, other, t0, 500, 4, 0.005);
        answers(&p, slow, t0, 540, 4, 1.5);
        assert!(p.agent_behind_at(slow, t0 + ms(600)).is_some());
        assert_eq!(p.agent_behind_at(other, t0 + ms(600)), None);
        assert_eq!(p.server_behind_at(t0 + ms(600)), None);
        // Every answering agent's answers wait: the server is behind.
        for i in 0..60 {
            p.observe_at(other, 0.9, t0 + ms(1000 + i * 10));
            p.observe_at(slow, 2.0, t0 + ms(1000 + i * 10));
        }
        assert_eq!(
            p.server_behind_at(t0 + ms(1600)).map(|d| d.as_millis()),
            Some(900)
        );
    }

    #[test]
    fn old_samples_say_nothing() {
        let p = Pressure::new(500);
        let (a, t0) = (Uuid::now_v7(), Instant::now());
        answers(&p, a, t0, 0, 4, 2.5);
        assert!(p.agent_behind_at(a, t0 + ms(30) + FRESH).is_some());
        assert_eq!(p.agent_behind_at(a, t0 + ms(31) + FRESH), None);
        assert_eq!(p.agent_behind_at(Uuid::now_v7(), t0), None);
        // After a gap, a new bucket does not read the stale one.
        answers(&p, a, t0, 2000, 4, 0.9);
        assert_eq!(
            p.agent_behind_at(a, t0 + ms(2030)).map(|d| d.as_millis()),
            Some(900)
        );
    }

    #[test]
    fn past_the_limit_a_share_is_refused_that_grows_with_the_wait() {
        let p = Pressure::new(500);
        let (a, t0) = (Uuid::now_v7(), Instant::now());
        let refused = |p: &Pressure, at: u64| {
            (0..100)
                .filter(|_| p.agent_behind_at(a, t0 + ms(at)).is_some())
                .count()
        };
        // At the limit: nothing refused.
        answers(&p, a, t0, 0, 4, 0.5);
        assert_eq!(refused(&p, 40), 0);
        // A tenth over it: a tenth refused, spread out rather than in a row.
        answers(&p, a, t0, 600, 4, 0.55);
        let verdicts: Vec<bool> = (0..20)
            .map(|_| p.agent_behind_at(a, t0 + ms(640)).is_some())
            .collect();
        assert_eq!(verdicts.iter().filter(|&&r| r).count(), 2, "{verdicts:?}");
        assert!(!verdicts[0] && !verdicts[1], "{verdicts:?}");
        // Half over it: half; twice the limit or more: all.
        answers(&p, a, t0, 1200, 4, 0.75);
        assert_eq!(refused(&p, 1240), 50);
        answers(&p, a, t0, 1800, 4, 1.0);
        assert_eq!(refused(&p, 1840), 100);
        answers(&p, a, t0, 2400, 4, 3.0);
        assert_eq!(refused(&p, 2440), 100);
        // The server's verdict is shared the same way.
        let b = Uuid::now_v7();
        answers(&p, a, t0, 3000, 4, 0.75);
        answers(&p, b, t0, 3000, 4, 0.75);
        let server = (0..100)
            .filter(|_| p.server_behind_at(t0 + ms(3040)).is_some())
            .count();
        assert_eq!(server, 50);
    }

    #[test]
    fn zero_turns_it_off() {
        let p = Pressure::new(0);
        let (a, t0) = (Uuid::now_v7(), Instant::now());
        answers(&p, a, t0, 0, 10, 2.0);
        assert_eq!(p.agent_behind_at(a, t0 + ms(100)), None);
        assert_eq!(p.server_behind_at(t0 + ms(100)), None);
    }

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        assert_eq!(crate::server::error::retry_after_for(ms(10)), 1);
        assert_eq!(crate::server::error::retry_after_for(ms(2100)), 3);
    }
}
