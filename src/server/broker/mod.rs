//! Broker provisioning: the server owns RabbitMQ's access control. It declares netcheck's
//! topology and gives each agent a user that can only read its own queue and only write to the
//! results exchange — and takes it away again.

pub mod link;
pub mod management;

use std::collections::HashMap;
use std::sync::Arc;

use rand::distr::{Alphanumeric, SampleString};
use serde_json::json;
use uuid::Uuid;

use crate::config::{AmqpSettings, QueueType};
pub use management::{Management, ManagementError};

/// Fanout exchange every check request is published to (bound to every agent queue).
pub const CHECKS_EXCHANGE: &str = "netcheck.checks";
/// Exchange agents publish results to.
pub const RESULTS_EXCHANGE: &str = "netcheck.results";
/// Durable queue the server collects results from, as a classic queue.
pub const RESULTS_QUEUE: &str = "netcheck.results";
/// The results queue as a quorum queue. A queue's type cannot change in place, so each type
/// has its own name: after a switch the server drains the other one, then deletes it.
pub const RESULTS_QUEUE_QUORUM: &str = "netcheck.results.quorum";

/// The results queue of `queue_type`.
pub fn results_queue(queue_type: QueueType) -> &'static str {
    match queue_type {
        QueueType::Classic => RESULTS_QUEUE,
        QueueType::Quorum => RESULTS_QUEUE_QUORUM,
    }
}

fn type_name(queue_type: QueueType) -> &'static str {
    match queue_type {
        QueueType::Classic => "classic",
        QueueType::Quorum => "quorum",
    }
}
/// Upper bound of requests waiting in one agent's queue; the oldest are dropped beyond it.
pub const AGENT_QUEUE_MAX_LENGTH: u32 = 10_000;
/// Results waiting for the server at most; past it the broker refuses publishes (agents keep
/// their results and retry), so a flood cannot fill the broker's memory.
pub const RESULTS_QUEUE_MAX_LENGTH: u32 = 200_000;
/// Bytes of results waiting at most (legitimate results are a few KB).
pub const RESULTS_QUEUE_MAX_BYTES: u64 = 512 * 1024 * 1024;
/// Connections one agent's broker user may hold.
pub const AGENT_MAX_CONNECTIONS: u32 = 2;
/// Channels one agent's broker user may open (per connection).
pub const AGENT_MAX_CHANNELS: u32 = 2;

/// Name of an agent's own queue.
pub fn agent_queue(agent_id: Uuid) -> String {
    format!("netcheck.agent.{}", agent_id.simple())
}

/// Prefix of every agent's broker user name.
const AGENT_USER_PREFIX: &str = "netcheck-agent-";

/// Name of an agent's broker user.
pub fn agent_user(agent_id: Uuid) -> String {
    format!("{AGENT_USER_PREFIX}{}", agent_id.simple())
}

/// The agent a broker user name belongs to (the inverse of [`agent_user`]).
pub fn agent_of_user(user: &str) -> Option<Uuid> {
    Uuid::parse_str(user.strip_prefix(AGENT_USER_PREFIX)?).ok()
}

#[derive(Clone, Debug)]
pub struct Provisioner {
    mgmt: Management,
    vhost: String,
    server_user: String,
    queue_type: QueueType,
    /// One provisioning at a time per agent: a registration and a token rotation both delete
    /// and re-create the agent's broker user, and interleaved they fail each other.
    agent_locks: Arc<std::sync::Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Held while one agent's broker user is changed.
struct AgentLock {
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Provisioner {
    pub fn new(settings: &AmqpSettings) -> Result<Self, ManagementError> {
        let mgmt = Management::new(
            &settings.management_endpoints(),
            settings.ca_file.as_deref(),
        )?;
        let amqp = reqwest::Url::parse(settings.server_urls()[0])
            .map_err(|e| ManagementError::BadUrl(format!("amqp.url: {e}")))?;
        let server_user = percent_encoding::percent_decode_str(amqp.username())
            .decode_utf8_lossy()
            .into_owned();
        Ok(Self {
            mgmt,
            vhost: settings.vhost.clone(),
            server_user: if server_user.is_empty() {
                "guest".into()
            } else {
                server_user
            },
            queue_type: settings.queue_type,
            agent_locks: Arc::default(),
        })
    }

    async fn lock_agent(&self, agent_id: Uuid) -> AgentLock {
        let lock = {
            let mut locks = self.agent_locks.lock().expect("agent locks");
            // Forget locks nobody holds or waits for, so the map stays as small as the work.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(agent_id).or_default().clone()
        };
        AgentLock {
            _guard: lock.lock_owned().await,
        }
    }

    pub fn management(&self) -> &Management {
        &self.mgmt
    }

    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// Declares the vhost, exchanges and results queue, and lets the server's own user use
    /// them. Idempotent: run at every start.
    pub async fn ensure_topology(&self) -> Result<Option<String>, ManagementError> {
        let v = &self.vhost;
        self.mgmt.put_vhost(v).await?;
        self.mgmt
            .put_permissions(v, &self.server_user, ".*", ".*", ".*")
            .await?;
        self.mgmt.put_exchange(v, CHECKS_EXCHANGE, "fanout").await?;
        self.mgmt
            .put_exchange(v, RESULTS_EXCHANGE, "fanout")
            .await?;
        let wanted = results_queue(self.queue_type);
        self.mgmt
            .put_queue(
                v,
                wanted,
                json!({ "x-queue-type": type_name(self.queue_type) }),
            )
            .await?;
        self.mgmt
            .bind_queue(v, RESULTS_EXCHANGE, wanted, "")
            .await?;
        // A policy rather than queue arguments: it also bounds a results queue declared by an
        // older version, which redeclaring with new arguments would refuse.
        self.mgmt
            .put_queue_policy(
                v,
                "netcheck-results-bounds",
                &format!(
                    "^({}|{})$",
                    regex_escape(RESULTS_QUEUE),
                    regex_escape(RESULTS_QUEUE_QUORUM)
                ),
                json!({
                    "max-length": RESULTS_QUEUE_MAX_LENGTH,
                    "max-length-bytes": RESULTS_QUEUE_MAX_BYTES,
                    "overflow": "reject-publish",
                }),
            )
            .await?;
        self.retire_other_results_queue().await
    }

    /// The results queue of the other type, left by a switch of `amqp.queue_type`: unbound
    /// at once (new results go only to the wanted queue), deleted when empty. Returns its
    /// name while it still holds results, which the server then drains.
    pub async fn retire_other_results_queue(&self) -> Result<Option<String>, ManagementError> {
        let v = &self.vhost;
        let other = match self.queue_type {
            QueueType::Classic => RESULTS_QUEUE_QUORUM,
            QueueType::Quorum => RESULTS_QUEUE,
        };
        let Some(queue) = self.mgmt.queue(v, other).await? else {
            return Ok(None);
        };
        if queue["type"].as_str() == Some(type_name(self.queue_type)) {
            return Ok(None);
        }
        self.mgmt.unbind_queue(v, RESULTS_EXCHANGE, other).await?;
        let held = queue["messages"].as_u64().unwrap_or(0);
        if held == 0 && self.mgmt.delete_queue_if_empty(v, other).await? {
            tracing::info!(
                queue = other,
                "removed the results queue of the former queue type"
            );
            return Ok(None);
        }
        tracing::info!(
            queue = other,
            held,
            "draining the results queue of the former queue type"
        );
        Ok(Some(other.to_string()))
    }

    /// Declares the agent's queue with the configured type. A queue of the other type (left
    /// by a switch of `amqp.queue_type`) is deleted and declared again: RabbitMQ cannot change
    /// a queue's type, and requests waiting for an agent that is registering again are few
    /// and short-lived (they are answered `timeout`).
    async fn ensure_agent_queue(&self, agent_id: Uuid) -> Result<(), ManagementError> {
        let v = &self.vhost;
        let queue = agent_queue(agent_id);
        let arguments = json!({
            "x-queue-type": type_name(self.queue_type),
            "x-max-length": AGENT_QUEUE_MAX_LENGTH,
            "x-overflow": "drop-head",
        });
        match self.mgmt.put_queue(v, &queue, arguments.clone()).await {
            Err(ManagementError::Refused { status, .. }) if status.as_u16() == 400 => {
                tracing::info!(%agent_id, queue_type = type_name(self.queue_type), "re-declaring the agent's queue with the configured type");
                self.mgmt.delete_queue(v, &queue).await?;
                self.mgmt.put_queue(v, &queue, arguments).await?;
            }
            other => other?,
        }
        self.mgmt.bind_queue(v, CHECKS_EXCHANGE, &queue, "").await
    }

    /// Creates (or re-creates) the agent's user with `password` and its least-privilege
    /// permissions: configure nothing, write only the results exchange, read only its queue.
    async fn grant(&self, agent_id: Uuid, password: &str) -> Result<(), ManagementError> {
        let user = agent_user(agent_id);
        self.mgmt.put_user(&user, password).await?;
        // One session needs one connection with one channel; the spare lets a reconnect
        // overlap a session the broker has not yet noticed is gone.
        self.mgmt
            .put_user_limit(&user, "max-connections", AGENT_MAX_CONNECTIONS)
            .await?;
        self.mgmt
            .put_user_limit(&user, "max-channels", AGENT_MAX_CHANNELS)
            .await?;
        self.mgmt
            .put_permissions(
                &self.vhost,
                &user,
                "^$",
                &format!("^{}$", regex_escape(RESULTS_EXCHANGE)),
                &format!("^{}$", regex_escape(&agent_queue(agent_id))),
            )
            .await
    }

    /// Creates the agent's user (with a throw-away password: real ones are issued at
    /// registration), its queue bound to the checks exchange, and its permissions.
    pub async fn provision_agent(&self, agent_id: Uuid) -> Result<(), ManagementError> {
        let _lock = self.lock_agent(agent_id).await;
        self.grant(agent_id, &random_password()).await?;
        self.ensure_agent_queue(agent_id).await
    }

    /// Issues a fresh broker password for the agent and ends its older sessions. The user is
    /// deleted and re-created: RabbitMQ closes a deleted user's connections at once, whereas
    /// the management API lists new connections only after its statistics interval.
    pub async fn issue_credentials(&self, agent_id: Uuid) -> Result<String, ManagementError> {
        let _lock = self.lock_agent(agent_id).await;
        let password = random_password();
        self.mgmt.delete_user(&agent_user(agent_id)).await?;
        self.grant(agent_id, &password).await?;
        // Also repairs a queue a broker lost, and moves it to the configured type.
        self.ensure_agent_queue(agent_id).await?;
        Ok(password)
    }

    /// Ends the agent's live broker session without revoking it (token rotation).
    pub async fn end_sessions(&self, agent_id: Uuid) -> Result<(), ManagementError> {
        let _lock = self.lock_agent(agent_id).await;
        self.mgmt.delete_user(&agent_user(agent_id)).await?;
        self.grant(agent_id, &random_password()).await
    }

    /// Removes every broker right of the agent: its user (RabbitMQ closes its connections),
    /// any connection still open, then its queue.
    pub async fn revoke_agent(&self, agent_id: Uuid) -> Result<(), ManagementError> {
        let _lock = self.lock_agent(agent_id).await;
        let user = agent_user(agent_id);
        self.mgmt.delete_user(&user).await?;
        self.mgmt
            .close_user_connections(&user, "agent deleted")
            .await?;
        self.mgmt
            .delete_queue(&self.vhost, &agent_queue(agent_id))
            .await?;
        Ok(())
    }
}

/// Deletes the results queue of the former queue type once the server has drained it.
pub fn spawn_drainer(state: actix_web::web::Data<crate::server::AppState>) {
    if state.broker.draining().is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match state.provisioner.retire_other_results_queue().await {
                Ok(None) => return state.broker.set_draining(None),
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(error = %e, "could not check the drained results queue"),
            }
        }
    });
}

fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = ".^$*+?()[]{}|\\".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_permission_patterns() {
        let id = Uuid::nil();
        assert_eq!(
            agent_queue(id),
            "netcheck.agent.00000000000000000000000000000000"
        );
        assert_eq!(regex_escape("netcheck.results"), "netcheck\\.results");
        let id = Uuid::now_v7();
        assert_eq!(agent_of_user(&agent_user(id)), Some(id));
        assert_eq!(agent_of_user("guest"), None);
    }
}
