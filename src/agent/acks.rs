//! The acks of one consumer channel, sent a moment late and together.
//!
//! A request is acked once its result is confirmed. Each ack is a frame and a socket write of
//! its own (and work for the broker); at a moderate rate that was one write in every probe's
//! few. Acks wait here up to [`ACK_EVERY`]; then a single `basic.ack` with `multiple` covers
//! every finished request below the oldest one still running, and only those finished above
//! it are acked one by one. A request waiting for its ack holds a place in the prefetch
//! window, so the acks go at once when enough of them wait to matter to it.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use amqprs::channel::{BasicAckArguments, Channel};
use tokio::sync::Notify;

/// How long a finished request's ack may wait for others to go with it.
const ACK_EVERY: Duration = Duration::from_millis(50);

pub struct Acks {
    tags: Mutex<Tags>,
    /// The first ack is waiting.
    waiting: Notify,
    /// Enough acks wait that the prefetch window notices: send now.
    full: Notify,
    /// That many waiting acks are sent without waiting out [`ACK_EVERY`].
    enough: usize,
}

#[derive(Default)]
struct Tags {
    /// Delivered and not finished.
    running: BTreeSet<u64>,
    /// Finished, not acked yet.
    done: BTreeSet<u64>,
}

impl Tags {
    /// The acks that cover `done`, emptying it: `(tag, multiple)`.
    fn take(&mut self) -> Vec<(u64, bool)> {
        let oldest_running = self.running.first().copied().unwrap_or(u64::MAX);
        let above = self.done.split_off(&oldest_running);
        let below = std::mem::take(&mut self.done);
        // `multiple` acks every unacked tag up to its own, which must itself be unacked.
        below
            .last()
            .map(|&tag| (tag, true))
            .into_iter()
            .chain(above.into_iter().map(|tag| (tag, false)))
            .collect()
    }
}

impl Acks {
    /// Acks for a consumer whose prefetch window is `prefetch` requests: an eighth of it
    /// waiting is sent at once.
    pub fn new(prefetch: u16) -> Self {
        Self {
            tags: Mutex::default(),
            waiting: Notify::new(),
            full: Notify::new(),
            enough: (usize::from(prefetch) / 8).max(1),
        }
    }

    /// A request was delivered with this tag. One never finished (its result kept for a later
    /// session) stays unacked, so the requests after it are acked one by one.
    pub fn delivered(&self, tag: u64) {
        self.tags.lock().expect("acks lock").running.insert(tag);
    }

    /// The request is answered (or needs no answer): ack it with the next batch.
    pub fn finished(&self, tag: u64) {
        let waiting = {
            let mut tags = self.tags.lock().expect("acks lock");
            tags.running.remove(&tag);
            tags.done.insert(tag);
            tags.done.len()
        };
        if waiting == 1 {
            self.waiting.notify_one();
        }
        if waiting >= self.enough {
            self.full.notify_one();
        }
    }

    /// Sends what waits, now.
    pub async fn flush(&self, channel: &Channel) {
        let acks = self.tags.lock().expect("acks lock").take();
        for (tag, multiple) in acks {
            // A closed channel loses its acks anyway: its requests are redelivered, and
            // answered again from the agent's memory of what it answered.
            let _ = channel
                .basic_ack(BasicAckArguments::new(tag, multiple))
                .await;
        }
    }

    /// Sends the acks of `channel` for as long as the session lasts.
    pub async fn run(&self, channel: Channel) {
        loop {
            self.waiting.notified().await;
            tokio::select! {
                _ = tokio::time::sleep(ACK_EVERY) => {}
                _ = self.full.notified() => {}
            }
            self.flush(&channel).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(running: &[u64], done: &[u64]) -> Tags {
        Tags {
            running: running.iter().copied().collect(),
            done: done.iter().copied().collect(),
        }
    }

    #[test]
    fn finished_requests_below_every_running_one_go_in_one_multiple_ack() {
        assert_eq!(tags(&[], &[1, 2, 3, 5]).take(), [(5, true)]);
        assert_eq!(tags(&[9], &[4, 6, 7]).take(), [(7, true)]);
    }

    #[test]
    fn finished_requests_above_a_running_one_are_acked_alone() {
        let mut t = tags(&[3, 8], &[1, 2, 5, 9]);
        assert_eq!(t.take(), [(2, true), (5, false), (9, false)]);
        assert!(t.done.is_empty());
        assert_eq!(t.running.len(), 2, "running requests stay unacked");
        // The running one finishes later: the next multiple ack covers it, and only
        // unacked tags are named.
        t.running.remove(&3);
        t.done.insert(3);
        t.done.insert(4);
        assert_eq!(t.take(), [(4, true)]);
    }

    #[test]
    fn nothing_finished_sends_nothing() {
        assert!(tags(&[1, 2], &[]).take().is_empty());
        assert!(tags(&[], &[]).take().is_empty());
    }

    #[test]
    fn a_small_prefetch_window_gets_its_acks_at_once() {
        assert_eq!(Acks::new(1).enough, 1);
        assert_eq!(Acks::new(4).enough, 1);
        assert_eq!(Acks::new(256).enough, 32);
    }
}
