//! Live check events. Whoever stores a result (any server instance) publishes it on a Redis
//! channel per check. Each server instance holds one pattern subscription to all of them (the
//! [`Hub`]) and fans messages out in-process to its open streams; `GET
//! /api/v1/checks/{id}/events` registers with the hub, replays what is stored, and streams the
//! rest as Server-Sent Events. Without Redis the streams poll PostgreSQL.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::Bytes;
use deadpool_redis::redis;
use futures_util::StreamExt;
use sea_orm::entity::prelude::*;

use tokio::sync::{broadcast, mpsc};

use crate::server::db::checks::{check, result};
use crate::server::AppState;
use netcheck_proto::api::checks::{CheckEvent, CheckFinished, CheckStatus};
use netcheck_proto::result::ResultStatus;

pub fn channel(state: &AppState, check_id: Uuid) -> String {
    crate::server::redis_keys::check_events(&state.settings.redis.key_prefix, check_id)
}

/// Open live streams one user may hold (per server instance).
pub const MAX_STREAMS_PER_USER: usize = 20;

/// The instance's one Redis subscription to every check's events, and the streams fed by it.
pub struct Hub {
    watchers: Mutex<HashMap<Uuid, broadcast::Sender<Arc<str>>>>,
    subscribed: AtomicBool,
    /// Counts (re)subscriptions: messages published while the subscription was down are lost,
    /// so every stream replays from the database when it changes.
    resubscribed: tokio::sync::watch::Sender<u64>,
    streams: Mutex<HashMap<Uuid, usize>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            watchers: Mutex::default(),
            subscribed: AtomicBool::new(false),
            resubscribed: tokio::sync::watch::Sender::new(0),
            streams: Mutex::default(),
        }
    }
}

/// A stream's registration for one check's events; unregisters when dropped.
pub struct Watcher {
    hub: Arc<Hub>,
    check_id: Uuid,
    rx: Option<broadcast::Receiver<Arc<str>>>,
}

impl Watcher {
    /// The next message, or `None` once the hub is gone; messages missed while lagging are
    /// skipped.
    pub async fn recv(&mut self) -> Option<Arc<str>> {
        let rx = self.rx.as_mut()?;
        loop {
            match rx.recv().await {
                Ok(m) => return Some(m),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut watchers = self.hub.watchers.lock().expect("watchers lock");
        if watchers
            .get(&self.check_id)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            watchers.remove(&self.check_id);
        }
    }
}

/// One of a user's [`MAX_STREAMS_PER_USER`] stream slots; freed when dropped.
pub struct StreamSlot {
    hub: Arc<Hub>,
    user_id: Uuid,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.hub.streams.lock().expect("streams lock");
        if let Some(n) = streams.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                streams.remove(&self.user_id);
            }
        }
    }
}

impl Hub {
    /// A stream slot for `user_id`, or `None` when they hold the maximum already.
    pub fn open_stream(self: &Arc<Self>, user_id: Uuid) -> Option<StreamSlot> {
        let mut streams = self.streams.lock().expect("streams lock");
        let n = streams.entry(user_id).or_insert(0);
        if *n >= MAX_STREAMS_PER_USER {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            hub: self.clone(),
            user_id,
        })
    }

    /// Open streams, over all users.
    pub fn open_streams(&self) -> usize {
        self.streams.lock().expect("streams lock").values().sum()
    }

    /// Whether the Redis subscription is up (otherwise streams poll).
    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    /// Registers for `check_id`'s events.
    pub fn watch(self: &Arc<Self>, check_id: Uuid) -> Watcher {
        // A stream reads its messages at once; 64 covers a burst of results meanwhile (a
        // lagging stream replays from the database).
        self.watch_for(check_id, 64)
    }

    /// Registers for `check_id`'s events, holding up to `capacity` unread ones (a `/probe`
    /// run has no database to replay from: room for every agent's answer).
    pub fn watch_for(self: &Arc<Self>, check_id: Uuid, capacity: usize) -> Watcher {
        let rx = self
            .watchers
            .lock()
            .expect("watchers lock")
            .entry(check_id)
            .or_insert_with(|| broadcast::channel(capacity.max(1)).0)
            .subscribe();
        Watcher {
            hub: self.clone(),
            check_id,
            rx: Some(rx),
        }
    }

    fn deliver(&self, check_id: Uuid, payload: Arc<str>) {
        self.deliver_here(check_id, payload);
    }

    /// Hands `payload` to this instance's watchers of `check_id`; false when it has none.
    pub fn deliver_here(&self, check_id: Uuid, payload: Arc<str>) -> bool {
        match self.watchers.lock().expect("watchers lock").get(&check_id) {
            Some(tx) => tx.send(payload).is_ok(),
            None => false,
        }
    }

    /// Keeps the subscription up until `shutdown`, reconnecting after half a second.
    pub async fn run(
        self: Arc<Self>,
        client: redis::Client,
        prefix: String,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let strip = crate::server::redis_keys::check_events_prefix(&prefix);
        let pattern = format!("{strip}*");
        loop {
            let session = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.psubscribe(&pattern).await?;
                self.subscribed.store(true, Ordering::Relaxed);
                self.resubscribed.send_modify(|n| *n += 1);
                tracing::debug!("live events subscribed");
                let (mut sink, mut messages) = pubsub.split();
                // A quiet subscription is pinged, so a connection that died without a word is
                // noticed (and replaced) within seconds rather than never.
                let mut keepalive = tokio::time::interval(Duration::from_secs(5));
                keepalive.tick().await;
                loop {
                    tokio::select! {
                        msg = messages.next() => {
                            let Some(msg) = msg else { break };
                            let Some(id) = msg
                                .get_channel_name()
                                .strip_prefix(&strip)
                                .and_then(|id| id.parse().ok())
                            else {
                                continue;
                            };
                            if let Ok(payload) = msg.get_payload::<String>() {
                                self.deliver(id, payload.into());
                            }
                        }
                        _ = keepalive.tick() => {
                            let pong = tokio::time::timeout(
                                Duration::from_secs(2),
                                sink.ping::<redis::Value>(),
                            )
                            .await;
                            if !matches!(pong, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
                Ok::<_, redis::RedisError>(())
            };
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = session => r,
            };
            self.subscribed.store(false, Ordering::Relaxed);
            match outcome {
                Ok(()) => tracing::warn!("live events subscription ended; streams poll meanwhile"),
                Err(e) => {
                    tracing::debug!(error = %e, "live events subscription unavailable; streams poll meanwhile")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}

/// Publishes stored results, then the `finished` events of the checks they completed, in one
/// Redis round trip. Best effort: without Redis, streams fall back to polling.
pub async fn publish(state: &AppState, rows: Vec<result::Model>, finished: &[Uuid]) {
    if rows.is_empty() && finished.is_empty() {
        return;
    }
    let mut pipe = redis::pipe();
    for row in rows {
        let id = row.check_id;
        pipe.cmd("PUBLISH")
            .arg(channel(state, id))
            .arg(payload(&CheckEvent::Result(Box::new(row.into()))))
            .ignore();
    }
    for &id in finished {
        let event = CheckEvent::Finished(CheckFinished {
            id,
            status: CheckStatus::Finished,
            finished_at: None,
        });
        pipe.cmd("PUBLISH")
            .arg(channel(state, id))
            .arg(payload(&event))
            .ignore();
    }
    let Ok(mut conn) = state.redis.get().await else {
        tracing::debug!("live events not published (redis unavailable)");
        return;
    };
    if let Err(e) = pipe.query_async::<()>(&mut conn).await {
        tracing::debug!(error = %e, "live events not published");
    }
}

fn payload(event: &CheckEvent) -> String {
    serde_json::to_string(event).expect("event serialises")
}

fn frame(event: &CheckEvent) -> Bytes {
    Bytes::from(event.sse_frame().expect("event serialises"))
}

/// Everything stored so far, as events; `true` when the check is finished.
async fn replay(
    state: &AppState,
    check_id: Uuid,
    sent: &mut HashSet<Uuid>,
    out: &mpsc::Sender<Bytes>,
) -> Result<bool, ()> {
    // The check's state is read before its results: when it is finished, the results read
    // afterwards are complete (reading them first could miss one stored in between).
    let Some(c) = check::Entity::find_by_id(check_id)
        .one(&state.db)
        .await
        .map_err(|_| ())?
    else {
        return Ok(true);
    };
    let rows = result::Entity::find()
        .filter(result::Column::CheckId.eq(check_id))
        .all(&state.db)
        .await
        .map_err(|_| ())?;
    for row in rows {
        if row.status != ResultStatus::Pending && sent.insert(row.agent_id) {
            out.send(frame(&CheckEvent::Result(Box::new(row.into()))))
                .await
                .map_err(|_| ())?;
        }
    }
    if c.status == CheckStatus::Finished {
        let done = CheckFinished {
            id: check_id,
            status: CheckStatus::Finished,
            finished_at: c.finished_at,
        };
        out.send(frame(&CheckEvent::Finished(done)))
            .await
            .map_err(|_| ())?;
        return Ok(true);
    }
    Ok(false)
}

/// Feeds `out` with the SSE frames of one check until it finishes or the client leaves.
pub async fn stream(
    state: actix_web::web::Data<AppState>,
    check_id: Uuid,
    out: mpsc::Sender<Bytes>,
    _slot: StreamSlot,
) {
    let mut sent = HashSet::new();
    // Register before replaying, so nothing published in between is missed.
    let mut watcher = state.events.watch(check_id);
    let mut resubscribed = state.events.resubscribed.subscribe();
    resubscribed.borrow_and_update();
    match replay(&state, check_id, &mut sent, &out).await {
        Ok(true) | Err(()) => return,
        Ok(false) => {}
    }
    let mut keepalive = tokio::time::interval(Duration::from_secs(15));
    // A safety net: catches anything missed while Redis was away (often, when it is away now).
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    let mut last_replay = tokio::time::Instant::now();
    keepalive.tick().await;
    poll.tick().await;
    loop {
        let rx = watcher.rx.as_mut().expect("receiver until dropped");
        tokio::select! {
            msg = rx.recv() => {
                let payload = match msg {
                    Ok(p) => p,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        match replay(&state, check_id, &mut sent, &out).await {
                            Ok(true) | Err(()) => return,
                            Ok(false) => continue,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                match serde_json::from_str::<CheckEvent>(&payload) {
                    Ok(CheckEvent::Result(r)) => {
                        if sent.insert(r.agent.id) && out.send(frame(&CheckEvent::Result(r))).await.is_err() {
                            return;
                        }
                    }
                    Ok(CheckEvent::Finished(_)) => {
                        // Replay once more: results stored just before may not have been seen.
                        let _ = replay(&state, check_id, &mut sent, &out).await;
                        return;
                    }
                    Err(_) => {}
                }
            }
            // The subscription came back: what was published while it was down never arrives.
            Ok(()) = resubscribed.changed() => match replay(&state, check_id, &mut sent, &out).await {
                Ok(true) | Err(()) => return,
                Ok(false) => {}
            },
            _ = poll.tick() => {
                let every = if state.events.subscribed() { Duration::from_secs(5) } else { Duration::from_secs(1) };
                if last_replay.elapsed() >= every {
                    last_replay = tokio::time::Instant::now();
                    match replay(&state, check_id, &mut sent, &out).await {
                        Ok(true) | Err(()) => return,
                        Ok(false) => {}
                    }
                }
            }
            _ = keepalive.tick() => {
                if out.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() {
                    return;
                }
            }
            // The client left: free the slot now, not at the next keep-alive.
            _ = out.closed() => return,
        }
    }
}
