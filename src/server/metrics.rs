//! Counters the server keeps about its own work (exported on `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default, Debug)]
pub struct Metrics {
    pub checks_created: Counter,
    pub checks_finished: Counter,
    pub results_stored: Counter,
    pub results_duplicate: Counter,
    pub results_timed_out: Counter,
    /// Results not stored: sender unknown, malformed, forged, or for a check it was not asked.
    pub results_dropped_unauthenticated: Counter,
    pub results_dropped_malformed: Counter,
    pub results_dropped_forged: Counter,
    pub results_dropped_not_asked: Counter,
}
