//! The agent's share of what nearby routers answer. Routers rate-limit the ICMP errors traces
//! read: Linux answers a burst of 6 time-exceeded messages per source, then one per
//! `icmp_ratelimit` (1000 ms), and hardware routers police their control plane alike. Every
//! trace an agent runs probes its first routers, so traces started together share one budget.
//!
//! The pacer models that limiter (a GCRA: one theoretical arrival time per address family)
//! so traces started while others are in flight queue their queries for it, up to a bounded
//! wait, instead of all losing their answers at once. A lone trace never waits (a person's
//! traceroute is immediate, as Debian's is). A query sent beyond the budget is marked, so the
//! result can tell "router silent" from "rate-limited".

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Answers a router gives at once before its limiter bites (Linux's `XRLIM_BURST_FACTOR`).
const BURST: u32 = 6;
/// One answer per this long after the burst (Linux's `net.ipv4.icmp_ratelimit`).
const PERIOD: Duration = Duration::from_millis(1000);

pub struct Pacer {
    state: Mutex<State>,
}

struct State {
    /// When the budget will be fully spent by the queries placed so far (GCRA's TAT).
    tat: Option<Instant>,
    /// Traces in flight that use this budget.
    in_flight: usize,
    /// Last moment two or more traces were in flight together.
    contended_at: Option<Instant>,
    /// When queries beyond the budget go out (recent ones only). Each may take an answer a
    /// paced query was counting on, so any trace running near one may lose answers to it.
    over_sends: VecDeque<Instant>,
}

/// How long after a query beyond the budget other traces may miss answers because of it: a
/// router's whole burst.
const OVERRUN_SHADOW: Duration = Duration::from_secs(BURST as u64);

/// Where a query goes in the budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// When to send it.
    pub at: Instant,
    /// Routers will likely not answer it: it goes out beyond their rate.
    pub over: bool,
}

impl Pacer {
    pub const fn new() -> Pacer {
        Pacer {
            state: Mutex::new(State {
                tat: None,
                in_flight: 0,
                contended_at: None,
                over_sends: VecDeque::new(),
            }),
        }
    }

    /// Places one query asked for at `now`. With other traces in flight it may be held back
    /// up to `max_wait` for the budget; a query that cannot be placed in that time goes at the
    /// end of it, marked over, and does not use the budget (the router drops it unanswered).
    pub fn place(&self, now: Instant, max_wait: Duration) -> Placement {
        let mut s = self.state.lock().expect("pacer lock");
        let tat = s.tat.map_or(now, |t| t.max(now));
        let tolerance = PERIOD * (BURST - 1);
        let earliest = tat.checked_sub(tolerance).map_or(now, |e| e.max(now));
        let wait = if s.in_flight > 0 {
            max_wait
        } else {
            Duration::ZERO
        };
        // A query due exactly when the wait ends is over: the ones past the budget go then.
        if earliest <= now || earliest < now + wait {
            s.tat = Some(tat + PERIOD);
            Placement {
                at: earliest,
                over: false,
            }
        } else {
            let at = now + wait;
            while s
                .over_sends
                .front()
                .is_some_and(|t| *t + OVERRUN_SHADOW < now)
            {
                s.over_sends.pop_front();
            }
            s.over_sends.push_back(at);
            Placement { at, over: true }
        }
    }

    /// Whether any query beyond the budget went out while a trace ran from `start` to now, or
    /// shortly before it: answers it missed may be the routers' rate limit.
    pub fn overrun_since(&self, start: Instant) -> bool {
        let now = Instant::now();
        let s = self.state.lock().expect("pacer lock");
        s.over_sends
            .iter()
            .any(|t| *t <= now && *t + OVERRUN_SHADOW >= start)
    }

    /// Counts a trace in flight until the guard is dropped.
    pub fn enter(&'static self) -> InFlight {
        let mut s = self.state.lock().expect("pacer lock");
        s.in_flight += 1;
        if s.in_flight > 1 {
            s.contended_at = Some(Instant::now());
        }
        InFlight(self)
    }

    /// Whether the agent ran other traces at the same time since `start`: their probes reach
    /// the same nearby routers, so answers this trace missed may be those routers' limiters.
    pub fn contended_since(&self, start: Instant) -> bool {
        let s = self.state.lock().expect("pacer lock");
        s.in_flight > 1 || s.contended_at.is_some_and(|t| t >= start)
    }
}

pub struct InFlight(&'static Pacer);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().expect("pacer lock");
        if s.in_flight > 1 {
            s.contended_at = Some(Instant::now());
        }
        s.in_flight -= 1;
    }
}

/// One budget per address family: IPv4 and IPv6 errors are limited separately.
pub static PACER_V4: Pacer = Pacer::new();
pub static PACER_V6: Pacer = Pacer::new();

pub fn for_family(ipv4: bool) -> &'static Pacer {
    if ipv4 {
        &PACER_V4
    } else {
        &PACER_V6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_one_a_second_while_others_run() {
        let p = Pacer::new();
        let t0 = Instant::now();
        let wait = Duration::from_secs(3);
        let mut slots = Vec::new();
        p.state.lock().unwrap().in_flight = 1;
        for _ in 0..12 {
            slots.push(p.place(t0, wait));
        }
        let offsets: Vec<u64> = slots
            .iter()
            .map(|s| (s.at - t0).as_millis() as u64)
            .collect();
        assert_eq!(&offsets[..6], &[0; 6]);
        assert_eq!(&offsets[6..8], &[1000, 2000]);
        assert!(slots[..8].iter().all(|s| !s.over));
        // Past the wait: sent at its end, marked, and the budget is not spent on them.
        assert!(slots[8..].iter().all(|s| s.over && s.at == t0 + wait));
        assert_eq!(p.state.lock().unwrap().tat, Some(t0 + 8 * PERIOD));
    }

    #[test]
    fn a_lone_trace_never_waits_but_is_marked_past_the_budget() {
        let p = Pacer::new();
        let t0 = Instant::now();
        let slots: Vec<Placement> = (0..8)
            .map(|_| p.place(t0, Duration::from_secs(5)))
            .collect();
        assert!(slots.iter().all(|s| s.at == t0));
        assert_eq!(slots.iter().filter(|s| s.over).count(), 2);
        // The budget refills at one a second.
        let later = p.place(t0 + Duration::from_secs(2), Duration::ZERO);
        assert!(!later.over);
        // A trace running then, or within a burst's time after, may have lost answers to them.
        assert!(p.overrun_since(t0));
        assert!(p.overrun_since(t0 - Duration::from_secs(3)));
    }
}
