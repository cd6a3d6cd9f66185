//! A small client of the RabbitMQ management HTTP API: just the calls netcheck's provisioning
//! needs. Every call is idempotent (PUT for create, 404 on DELETE counts as done).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{json, Value};

/// What can go wrong talking to the management API.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    #[error("RabbitMQ management API unreachable: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("RabbitMQ management API refused {method} {path}: {status} {body}")]
    Refused {
        method: Method,
        path: String,
        status: StatusCode,
        body: String,
    },
    #[error("invalid amqp.management_url(s): {0}")]
    BadUrl(String),
}

/// The management API of every broker node. A call goes to the node that answered last and
/// moves on to the next when a node is unreachable or answers 5xx (a node shutting down or
/// without a majority), so provisioning works while any node is up.
#[derive(Clone)]
pub struct Management {
    http: reqwest::Client,
    endpoints: Arc<[Endpoint]>,
    preferred: Arc<AtomicUsize>,
}

struct Endpoint {
    base: Url,
    username: String,
    password: String,
}

impl std::fmt::Debug for Management {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bases: Vec<&str> = self.endpoints.iter().map(|e| e.base.as_str()).collect();
        f.debug_struct("Management")
            .field("bases", &bases)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct ConnectionInfo {
    name: String,
    user: Option<String>,
}

/// Percent-encodes one path segment (vhost names, user names, queue names).
fn seg(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'-')
        .remove(b'_');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

impl Management {
    /// Each of `urls` is like `http://user:password@host:15672`; the credentials are taken
    /// out of it. `ca_file` adds a private CA for an https management API.
    pub fn new(urls: &[&str], ca_file: Option<&std::path::Path>) -> Result<Self, ManagementError> {
        let mut endpoints = Vec::with_capacity(urls.len());
        for url in urls {
            let mut base = Url::parse(url).map_err(|e| ManagementError::BadUrl(e.to_string()))?;
            let username = percent_decode(base.username());
            let password = percent_decode(base.password().unwrap_or(""));
            if username.is_empty() {
                return Err(ManagementError::BadUrl(
                    "it must contain credentials (http://user:password@host:15672)".into(),
                ));
            }
            let _ = base.set_username("");
            let _ = base.set_password(None);
            endpoints.push(Endpoint {
                base,
                username,
                password,
            });
        }
        if endpoints.is_empty() {
            return Err(ManagementError::BadUrl("no management URL".into()));
        }
        let builder = reqwest::Client::builder()
            // Credentials are sent to this API: never through a proxy taken from the environment.
            .no_proxy()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10));
        let http = crate::tls::trust_ca_file(builder, ca_file)
            .map_err(|e| ManagementError::BadUrl(format!("amqp.ca_file: {e:#}")))?
            .build()
            .map_err(|e| ManagementError::BadUrl(e.to_string()))?;
        Ok(Self {
            http,
            endpoints: endpoints.into(),
            preferred: Arc::default(),
        })
    }

    /// Sends one request to the first node that answers (starting with the one that answered
    /// last); a 5xx or an unreachable node passes the request on to the next.
    async fn send(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        reason: Option<&str>,
    ) -> Result<reqwest::Response, ManagementError> {
        let n = self.endpoints.len();
        let start = self.preferred.load(Ordering::Relaxed) % n;
        let mut last = None;
        for k in 0..n {
            let i = (start + k) % n;
            let e = &self.endpoints[i];
            let mut req = self
                .http
                .request(method.clone(), format!("{}api/{}", e.base, path))
                .basic_auth(&e.username, Some(&e.password));
            if let Some(body) = body {
                req = req.json(body);
            }
            if let Some(reason) = reason {
                req = req.header("X-Reason", reason);
            }
            match req.send().await {
                Ok(resp) if resp.status().is_server_error() && k + 1 < n => {
                    tracing::warn!(node = %e.base, status = %resp.status(), "management API node failing; trying the next");
                }
                Ok(resp) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(resp);
                }
                Err(err) => {
                    if n > 1 {
                        tracing::warn!(node = %e.base, error = %err, "management API node unreachable; trying the next");
                    }
                    last = Some(err);
                }
            }
        }
        Err(ManagementError::Unreachable(
            last.expect("every node was tried and none answered"),
        ))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, ManagementError> {
        let resp = self.send(&method, path, body.as_ref(), None).await?;
        let status = resp.status();
        if status.is_success() {
            let text = resp.text().await.map_err(ManagementError::Unreachable)?;
            return Ok(if text.is_empty() {
                None
            } else {
                serde_json::from_str(&text).ok()
            });
        }
        if status == StatusCode::NOT_FOUND && method == Method::DELETE {
            return Ok(None);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(ManagementError::Refused {
            method,
            path: path.to_string(),
            status,
            body,
        })
    }

    pub async fn overview(&self) -> Result<(), ManagementError> {
        self.call(Method::GET, "overview", None).await.map(|_| ())
    }

    /// The broker's version (`rabbitmq_version` of the overview).
    pub async fn version(&self) -> Result<String, ManagementError> {
        let overview = self.call(Method::GET, "overview", None).await?;
        Ok(overview
            .as_ref()
            .and_then(|o| o["rabbitmq_version"].as_str())
            .unwrap_or_default()
            .to_string())
    }

    pub async fn put_vhost(&self, vhost: &str) -> Result<(), ManagementError> {
        self.call(
            Method::PUT,
            &format!("vhosts/{}", seg(vhost)),
            Some(json!({})),
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_vhost(&self, vhost: &str) -> Result<(), ManagementError> {
        self.call(Method::DELETE, &format!("vhosts/{}", seg(vhost)), None)
            .await
            .map(|_| ())
    }

    /// Sets `user`'s permissions in `vhost` (regular expressions over resource names).
    pub async fn put_permissions(
        &self,
        vhost: &str,
        user: &str,
        configure: &str,
        write: &str,
        read: &str,
    ) -> Result<(), ManagementError> {
        self.call(
            Method::PUT,
            &format!("permissions/{}/{}", seg(vhost), seg(user)),
            Some(json!({ "configure": configure, "write": write, "read": read })),
        )
        .await
        .map(|_| ())
    }

    pub async fn put_exchange(
        &self,
        vhost: &str,
        name: &str,
        kind: &str,
    ) -> Result<(), ManagementError> {
        self.call(
            Method::PUT,
            &format!("exchanges/{}/{}", seg(vhost), seg(name)),
            Some(json!({ "type": kind, "durable": true, "auto_delete": false })),
        )
        .await
        .map(|_| ())
    }

    pub async fn put_queue(
        &self,
        vhost: &str,
        name: &str,
        arguments: Value,
    ) -> Result<(), ManagementError> {
        self.call(
            Method::PUT,
            &format!("queues/{}/{}", seg(vhost), seg(name)),
            Some(json!({ "durable": true, "auto_delete": false, "arguments": arguments })),
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_queue(&self, vhost: &str, name: &str) -> Result<(), ManagementError> {
        self.call(
            Method::DELETE,
            &format!("queues/{}/{}", seg(vhost), seg(name)),
            None,
        )
        .await
        .map(|_| ())
    }

    /// The queue's description, `None` when it does not exist.
    pub async fn queue(&self, vhost: &str, name: &str) -> Result<Option<Value>, ManagementError> {
        match self
            .call(
                Method::GET,
                &format!("queues/{}/{}", seg(vhost), seg(name)),
                None,
            )
            .await
        {
            Ok(v) => Ok(v),
            Err(ManagementError::Refused { status, .. }) if status == StatusCode::NOT_FOUND => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes the queue only if it holds no message; whether it is gone.
    pub async fn delete_queue_if_empty(
        &self,
        vhost: &str,
        name: &str,
    ) -> Result<bool, ManagementError> {
        let path = format!("queues/{}/{}?if-empty=true", seg(vhost), seg(name));
        match self.call(Method::DELETE, &path, None).await {
            Ok(_) => Ok(true),
            Err(ManagementError::Refused { status, .. }) if status == StatusCode::BAD_REQUEST => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Removes the binding of `queue` to `exchange` with the empty routing key.
    pub async fn unbind_queue(
        &self,
        vhost: &str,
        exchange: &str,
        queue: &str,
    ) -> Result<(), ManagementError> {
        // `~` is the management API's name for a binding with an empty key and no arguments.
        self.call(
            Method::DELETE,
            &format!(
                "bindings/{}/e/{}/q/{}/~",
                seg(vhost),
                seg(exchange),
                seg(queue)
            ),
            None,
        )
        .await
        .map(|_| ())
    }

    pub async fn bind_queue(
        &self,
        vhost: &str,
        exchange: &str,
        queue: &str,
        routing_key: &str,
    ) -> Result<(), ManagementError> {
        self.call(
            Method::POST,
            &format!(
                "bindings/{}/e/{}/q/{}",
                seg(vhost),
                seg(exchange),
                seg(queue)
            ),
            Some(json!({ "routing_key": routing_key })),
        )
        .await
        .map(|_| ())
    }

    /// Creates or updates a user with no management tags (it cannot use this API).
    pub async fn put_user(&self, user: &str, password: &str) -> Result<(), ManagementError> {
        self.call(
            Method::PUT,
            &format!("users/{}", seg(user)),
            Some(json!({ "password": password, "tags": "" })),
        )
        .await
        .map(|_| ())
    }

    /// Sets one of `user`'s limits (`max-connections`, `max-channels`).
    pub async fn put_user_limit(
        &self,
        user: &str,
        limit: &str,
        value: u32,
    ) -> Result<(), ManagementError> {
        self.call(
            Method::PUT,
            &format!("user-limits/{}/{}", seg(user), seg(limit)),
            Some(json!({ "value": value })),
        )
        .await
        .map(|_| ())
    }

    /// Creates or updates a policy applied to the queues whose names match `pattern`.
    pub async fn put_queue_policy(
        &self,
        vhost: &str,
        name: &str,
        pattern: &str,
        definition: Value,
    ) -> Result<(), ManagementError> {
        self.call(
            Method::PUT,
            &format!("policies/{}/{}", seg(vhost), seg(name)),
            Some(json!({
                "pattern": pattern,
                "definition": definition,
                "priority": 10,
                "apply-to": "queues",
            })),
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_user(&self, user: &str) -> Result<(), ManagementError> {
        self.call(Method::DELETE, &format!("users/{}", seg(user)), None)
            .await
            .map(|_| ())
    }

    /// Closes every connection `user` holds; returns how many were closed.
    pub async fn close_user_connections(
        &self,
        user: &str,
        reason: &str,
    ) -> Result<usize, ManagementError> {
        let list = self
            .call(Method::GET, "connections?columns=name,user", None)
            .await?;
        let conns: Vec<ConnectionInfo> = list
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let mut closed = 0;
        for c in conns
            .into_iter()
            .filter(|c| c.user.as_deref() == Some(user))
        {
            let path = format!("connections/{}", seg(&c.name));
            let resp = self
                .send(&Method::DELETE, &path, None, Some(reason))
                .await?;
            if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
                closed += 1;
            }
        }
        Ok(closed)
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_the_url() {
        let m = Management::new(
            &[
                "http://ad%40min:p%2Fw@127.0.0.1:15672",
                "http://u:v@[::1]:15673",
            ],
            None,
        )
        .unwrap();
        assert_eq!(m.endpoints[0].username, "ad@min");
        assert_eq!(m.endpoints[0].password, "p/w");
        assert_eq!(m.endpoints[0].base.as_str(), "http://127.0.0.1:15672/");
        assert_eq!(m.endpoints[1].base.as_str(), "http://[::1]:15673/");
        assert!(!format!("{m:?}").contains("p/w"));
        assert!(Management::new(&["http://127.0.0.1:15672"], None).is_err());
        assert!(Management::new(&[], None).is_err());
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(seg("/"), "%2F");
        assert_eq!(seg("a b"), "a%20b");
        assert_eq!(seg("agent.x"), "agent.x");
    }
}
