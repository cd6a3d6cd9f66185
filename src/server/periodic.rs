//! Background rounds (sweeping, pruning, monitor runs, webhook deliveries): each runs every
//! `period` until shutdown, and again at once while a round says more work is waiting, so a
//! backlog drains in bounded steps without waiting for the next tick.

use std::future::Future;
use std::time::Duration;

use sea_orm::DbErr;
use tokio_util::sync::CancellationToken;

/// Spawns the loop. `round` returns whether more work is waiting (a full batch, say); a
/// failed round is logged with `what` and waits for the next tick.
pub fn every<F, Fut>(
    period: Duration,
    shutdown: CancellationToken,
    what: &'static str,
    mut round: F,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<bool, DbErr>> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            loop {
                match round().await {
                    Ok(true) => tokio::task::yield_now().await,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "{what} failed");
                        break;
                    }
                }
            }
        }
    });
}
