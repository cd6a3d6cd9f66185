//! Live check events. Whoever stores a result (any server instance) publishes it on a Redis
//! channel per check; `GET /api/v1/checks/{id}/events` subscribes, replays what is stored,
//! and streams the rest as Server-Sent Events. Without Redis the stream polls PostgreSQL.

use std::collections::HashSet;
use std::time::Duration;

use actix_web::web::Bytes;
use deadpool_redis::redis;
use futures_util::StreamExt;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::model::{check, result, CheckResultView};
use crate::server::AppState;

fn channel(state: &AppState, check_id: Uuid) -> String {
    format!(
        "{}:check-events:{check_id}",
        state.settings.redis.key_prefix
    )
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
enum Event {
    Result(Box<CheckResultView>),
    Finished(serde_json::Value),
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
            .arg(payload(&Event::Result(Box::new(row.into()))))
            .ignore();
    }
    for &id in finished {
        let event = Event::Finished(serde_json::json!({ "id": id, "status": "finished" }));
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

fn payload(event: &Event) -> String {
    serde_json::to_string(event).expect("event serialises")
}

fn frame(event: &Event) -> Bytes {
    let (name, data) = match event {
        Event::Result(r) => ("result", serde_json::to_string(r)),
        Event::Finished(f) => ("finished", serde_json::to_string(f)),
    };
    Bytes::from(format!(
        "event: {name}\ndata: {}\n\n",
        data.expect("event serialises")
    ))
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
        if row.status != "pending" && sent.insert(row.agent_id) {
            out.send(frame(&Event::Result(Box::new(row.into()))))
                .await
                .map_err(|_| ())?;
        }
    }
    if c.status == "finished" {
        let done = serde_json::json!({ "id": check_id, "status": "finished", "finished_at": c.finished_at });
        out.send(frame(&Event::Finished(done)))
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
) {
    let mut sent = HashSet::new();
    // Subscribe before replaying, so nothing published in between is missed.
    let mut pubsub = match state.redis_client.get_async_pubsub().await {
        Ok(mut ps) => match ps.subscribe(channel(&state, check_id)).await {
            Ok(()) => Some(ps),
            Err(_) => None,
        },
        Err(_) => None,
    };
    if pubsub.is_none() {
        tracing::debug!(%check_id, "redis unavailable; event stream falls back to polling");
    }
    match replay(&state, check_id, &mut sent, &out).await {
        Ok(true) | Err(()) => return,
        Ok(false) => {}
    }
    let mut keepalive = tokio::time::interval(Duration::from_secs(15));
    let mut poll = tokio::time::interval(Duration::from_secs(if pubsub.is_some() { 5 } else { 1 }));
    keepalive.tick().await;
    poll.tick().await;
    loop {
        let message = async {
            match pubsub.as_mut() {
                Some(ps) => ps.on_message().next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = message => {
                let Some(msg) = msg else {
                    pubsub = None;
                    continue;
                };
                let Ok(payload) = msg.get_payload::<String>() else { continue };
                match serde_json::from_str::<Event>(&payload) {
                    Ok(Event::Result(r)) => {
                        if sent.insert(r.agent.id) && out.send(frame(&Event::Result(r))).await.is_err() {
                            return;
                        }
                    }
                    Ok(Event::Finished(_)) => {
                        // Replay once more: results stored just before may not have been seen.
                        let _ = replay(&state, check_id, &mut sent, &out).await;
                        return;
                    }
                    Err(_) => {}
                }
            }
            // A safety net: catches anything missed while Redis was away.
            _ = poll.tick() => match replay(&state, check_id, &mut sent, &out).await {
                Ok(true) | Err(()) => return,
                Ok(false) => {}
            },
            _ = keepalive.tick() => {
                if out.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() {
                    return;
                }
            }
        }
    }
}
